"""Preflight and bootstrap decision of the redis_cluster role, without containers.

Bad inventories are refused before anything changes; a partially formed cluster is refused.

Runs the real role with ansible-playbook in check mode against inventories of
local-connection hosts (no containers, nothing installed): the preflight is the
first thing the role does, and each case must stop there with its message.
"""
import json
import sys

import pytest
from ansible_run import link_collection, run_check

GOOD_PASSWORD = "Sup3rSecretTestPassw0rdXYZ"
SHORT_PASSWORD = "tooShort123"

# The main entry point as a play uses it (its argument spec is validated first),
# or one task file of the role.
PLAYBOOK_MAIN = """\
- name: Apply the role
  hosts: redis
  gather_facts: false
  roles:
    - role: supersmartmatch.platform.redis_cluster
"""
PLAYBOOK_TASKS = """\
- name: Apply one task file of the role
  hosts: redis
  gather_facts: false
  tasks:
    - name: Redis Cluster
      ansible.builtin.include_role:
        name: supersmartmatch.platform.redis_cluster
        tasks_from: {tasks_from}
"""


def run_role(tmp_path, hosts, password=GOOD_PASSWORD, lb=(), tasks_from=None, verbose=False, host_vars=None,
             extra_tasks=""):
    """Apply the role in check mode; return (rc, output)."""
    redis_hosts = {}
    for index, name in enumerate(hosts, start=1):
        redis_hosts[name] = dict({"ansible_connection": "local", "ansible_python_interpreter": sys.executable,
                                  "redis_cluster_bind_address": "10.0.0.%d" % index},
                                 **(host_vars or {}).get(name, {}))
    inventory = {"all": {"children": {"redis": {"hosts": redis_hosts},
                                      "lb": {"hosts": {name: {} for name in lb}}}}}
    (tmp_path / "inventory.yml").write_text(json.dumps(inventory), encoding="utf-8")
    play = PLAYBOOK_TASKS.format(tasks_from=tasks_from) if tasks_from else PLAYBOOK_MAIN
    (tmp_path / "play.yml").write_text(play + extra_tasks, encoding="utf-8")
    args = []
    if password is not None:
        (tmp_path / "vars.yml").write_text("redis_cluster_password: %s\n" % password, encoding="utf-8")
        args += ["-e", "@%s" % (tmp_path / "vars.yml")]
    if verbose:
        args.append("-vvv")
    return run_check(tmp_path, tmp_path / "inventory.yml", tmp_path / "play.yml", *args)


def flat(text):
    """Output with line wrapping and indentation removed (messages are wrapped by the callback)."""
    return " ".join(text.split())


@pytest.fixture(autouse=True, scope="module")
def collection_link():
    link_collection()


def test_fewer_than_three_hosts_refused(tmp_path):
    rc, out = run_role(tmp_path, ["rc1", "rc2"])
    assert rc != 0, out
    assert "Redis Cluster needs at least 3 hosts in group 'redis' (redis_cluster_group), " \
           "one primary per host; this inventory has 2 (rc1, rc2)" in flat(out), out
    assert "Install redis-server" not in out


def test_missing_password_refused(tmp_path):
    """Refused by the argument spec of the main entry point, and by the preflight itself."""
    rc, out = run_role(tmp_path, ["rc1", "rc2", "rc3"], password=None)
    assert rc != 0, out
    assert "missing required arguments: redis_cluster_password" in flat(out), out
    assert "Install redis-server" not in out
    rc, out = run_role(tmp_path, ["rc1", "rc2", "rc3"], password=None, tasks_from="preflight.yml")
    assert rc != 0, out
    assert "redis_cluster_password is required (no default)" in flat(out), out


def test_short_password_refused_without_showing_it(tmp_path):
    rc, out = run_role(tmp_path, ["rc1", "rc2", "rc3"], password=SHORT_PASSWORD, verbose=True)
    assert rc != 0, out
    assert "redis_cluster_password is required (no default): at least 16 characters" in flat(out), out
    assert SHORT_PASSWORD not in out
    assert "Install redis-server" not in out


def test_password_with_a_quote_refused(tmp_path):
    rc, out = run_role(tmp_path, ["rc1", "rc2", "rc3"], password="'abc\"defghijklmnopqrstuvwxyz'")
    assert rc != 0, out
    assert "without whitespace, quotes or backslashes" in flat(out), out


def test_host_in_a_conflicting_group_refused(tmp_path):
    rc, out = run_role(tmp_path, ["rc1", "rc2", "rc3"], lb=["rc2"])
    assert rc != 0, out
    assert "Hosts rc2 of group 'redis' are also in a conflicting group (lb, " \
           "redis_cluster_conflicting_groups)" in flat(out), out
    assert "Install redis-server" not in out


def test_good_inventory_passes_the_preflight(tmp_path):
    """Control case: the same inventories pass when nothing is wrong (the failures above are the checks')."""
    rc, out = run_role(tmp_path, ["rc1", "rc2", "rc3"], tasks_from="preflight.yml", verbose=True)
    assert rc == 0, out
    assert "failed=0" in out
    assert GOOD_PASSWORD not in out


# Bootstrap decision (tasks/decide.yml): from the probed state of every
# instance (given here as host variables, as tasks/bootstrap.yml records them).
DECISION_CHECK = """\

    - name: Report the decision
      ansible.builtin.assert:
        that:
          - __redis_cluster_fresh | bool == {fresh}
          - __redis_cluster_formed | bool == {formed}
"""


def node_states(*instances):
    """instances: one (known_nodes, slots_assigned) pair per port, per host rc1..rcN."""
    return {"rc%d" % (index + 1): {"__redis_cluster_node_state": {
        "address": "10.0.0.%d" % (index + 1), "ids": {},
        "known": [known for known, _slots in pairs], "slots": [slots for _known, slots in pairs]}}
        for index, pairs in enumerate(instances)}


@pytest.mark.parametrize("states,fresh,formed", [
    (node_states([(1, 0), (1, 0)], [(1, 0), (1, 0)], [(1, 0), (1, 0)]), True, False),
    (node_states([(6, 16384), (6, 16384)], [(6, 16384), (6, 16384)], [(6, 16384), (6, 16384)]), False, True),
], ids=["not-formed", "formed"])
def test_bootstrap_decision(tmp_path, states, fresh, formed):
    rc, out = run_role(tmp_path, ["rc1", "rc2", "rc3"], tasks_from="decide.yml", host_vars=states,
                       extra_tasks=DECISION_CHECK.format(fresh=fresh, formed=formed))
    assert rc == 0, out
    assert "is partially formed:" not in flat(out)
    assert "failed=0" in out


def test_partially_formed_cluster_refused(tmp_path):
    """rc1 met rc2 but rc3 is alone: the role must not guess."""
    states = node_states([(4, 16384), (4, 16384)], [(4, 16384), (4, 16384)], [(1, 0), (1, 0)])
    rc, out = run_role(tmp_path, ["rc1", "rc2", "rc3"], tasks_from="decide.yml", host_vars=states)
    assert rc != 0, out
    text = flat(out)
    assert "Redis Cluster of group 'redis' is partially formed" in text, out
    assert "rc1:6379 knows 4 node(s) and has 16384 slots assigned; " in text, out
    assert "rc3:6380 knows 1 node(s) and has 0 slots assigned;" in text, out
