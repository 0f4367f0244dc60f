"""Preflight of the redis_cluster role: bad inventories are refused before anything changes.

Runs the real role with ansible-playbook in check mode against inventories of
local-connection hosts (no containers, nothing installed): the preflight is the
first thing the role does, and each case must stop there with its message.
"""
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
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


def _ansible_playbook():
    local = Path(sys.executable).with_name("ansible-playbook")
    found = str(local) if local.exists() else shutil.which("ansible-playbook")
    if not found:
        pytest.fail("ansible-playbook not found (activate the project venv)")
    return found


def run_role(tmp_path, hosts, password=GOOD_PASSWORD, lb=(), tasks_from=None, verbose=False):
    """Apply the role in check mode; return (rc, output)."""
    lines = ["[redis]"]
    for index, name in enumerate(hosts, start=1):
        lines.append("%s ansible_connection=local ansible_python_interpreter=%s redis_cluster_bind_address=10.0.0.%d"
                     % (name, sys.executable, index))
    lines.append("[lb]")
    lines.extend(lb)
    (tmp_path / "inventory.ini").write_text("\n".join(lines) + "\n", encoding="utf-8")
    play = PLAYBOOK_TASKS.format(tasks_from=tasks_from) if tasks_from else PLAYBOOK_MAIN
    (tmp_path / "play.yml").write_text(play, encoding="utf-8")
    cmd = [_ansible_playbook(), "-i", str(tmp_path / "inventory.ini"), str(tmp_path / "play.yml"), "--check"]
    if password is not None:
        (tmp_path / "vars.yml").write_text("redis_cluster_password: %s\n" % password, encoding="utf-8")
        cmd += ["-e", "@%s" % (tmp_path / "vars.yml")]
    if verbose:
        cmd.append("-vvv")
    env = dict(os.environ,
               ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"),
               ANSIBLE_COLLECTIONS_PATH=str(ROOT / ".collections"),
               ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0",
               ANSIBLE_LOCAL_TEMP=str(tmp_path / "tmp"), ANSIBLE_REMOTE_TEMP=str(tmp_path / "tmp"))
    proc = subprocess.run(cmd, cwd=str(tmp_path), env=env, capture_output=True, text=True, timeout=180, check=False)
    return proc.returncode, proc.stdout + proc.stderr


def flat(text):
    """Output with line wrapping and indentation removed (messages are wrapped by the callback)."""
    return " ".join(text.split())


@pytest.fixture(autouse=True, scope="module")
def collection_link():
    link = ROOT / ".collections" / "ansible_collections" / "supersmartmatch" / "platform"
    if not link.exists():
        subprocess.run([str(ROOT / "scripts" / "link-collection")], check=True, capture_output=True)


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
