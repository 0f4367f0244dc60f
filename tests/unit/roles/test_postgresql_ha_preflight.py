"""Preflight of the postgresql_ha role: bad inventories are refused before anything changes.

Runs ansible-playbook against an inventory of local "nodes" (connection local,
no containers, no root). Bad inputs go through the role's main entry point, so
the refusal also proves that the preflight runs before any task that installs
or changes something; the valid input runs only tasks/preflight.yml. Every run
is in check mode (--check) as a safety net: even a preflight that let a bad
input through could not change this machine.
"""
import os
import subprocess
import sys
import textwrap

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
PLAYBOOK = os.path.join(os.path.dirname(sys.executable), "ansible-playbook")
SECRETS = {
    "postgresql_ha_superuser_password": "unit-superuser-secret",
    "postgresql_ha_replication_password": "unit-replication-secret",
    "postgresql_ha_restapi_password": "unit-restapi-secret",
    "postgresql_ha_app_password": "unit-app-secret",
}
GOOD = dict(SECRETS, postgresql_ha_app_networks=["10.0.0.0/24"], postgresql_ha_replication_networks=["10.0.0.0/24"])


def run_role(tmp_path, nodes=3, lb=(), tasks_from=None, **overrides):
    names = ["node%d" % i for i in range(1, nodes + 1)]
    hosts = "\n".join("%s ansible_connection=local ansible_python_interpreter=%s" % (n, sys.executable) for n in names)
    lb_hosts = "\n".join(lb)
    (tmp_path / "hosts.ini").write_text("[postgresql]\n%s\n[lb]\n%s\n" % (hosts, lb_hosts))
    variables = dict(GOOD)
    variables.update(overrides)
    variables = {k: v for k, v in variables.items() if v is not None}
    (tmp_path / "vars.yml").write_text("\n".join("%s: %s" % (k, repr(v) if isinstance(v, str) else v)
                                                 for k, v in variables.items()) + "\n")
    include = "tasks_from: %s" % tasks_from if tasks_from else ""
    (tmp_path / "play.yml").write_text(textwrap.dedent("""\
        - name: Apply postgresql_ha
          hosts: postgresql
          gather_facts: false
          vars_files: [vars.yml]
          tasks:
            - name: Apply the role
              ansible.builtin.include_role:
                name: supersmartmatch.platform.postgresql_ha
                %s
        """) % include)
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"), ANSIBLE_NOCOLOR="1",
               ANSIBLE_FORCE_COLOR="0", ANSIBLE_STDOUT_CALLBACK="ansible.builtin.default")
    proc = subprocess.run([PLAYBOOK, "--check", "-i", str(tmp_path / "hosts.ini"), str(tmp_path / "play.yml")],
                          cwd=str(tmp_path), env=env, capture_output=True, text=True, timeout=180, check=False)
    return proc.returncode, proc.stdout + proc.stderr


def test_valid_inventory_passes_the_preflight(tmp_path):
    rc, out = run_role(tmp_path, tasks_from="preflight.yml")
    assert rc == 0, out
    assert "ok=" in out and "failed=0" in out
    for secret in SECRETS.values():
        assert secret not in out


@pytest.mark.parametrize("nodes, expected", [
    (2, "has 2 member(s)"),
    (4, "has 4 member(s)"),
    (1, "has 1 member(s)"),
])
def test_etcd_member_count_must_be_odd_and_at_least_three(tmp_path, nodes, expected):
    rc, out = run_role(tmp_path, nodes=nodes)
    assert rc != 0
    assert "etcd needs an odd number of members, at least 3" in out
    assert expected in out
    assert "Install" not in out  # nothing after the preflight ran


@pytest.mark.parametrize("missing", sorted(SECRETS))
def test_missing_password_is_refused(tmp_path, missing):
    # Refused by the role's argument spec (required, no_log), before its first task.
    rc, out = run_role(tmp_path, **{missing: None})
    assert rc != 0
    assert "missing required arguments: %s" % missing in out
    assert "Install" not in out
    for secret in SECRETS.values():
        assert secret not in out


def test_empty_password_is_refused(tmp_path):
    rc, out = run_role(tmp_path, postgresql_ha_replication_password="")
    assert rc != 0
    assert "postgresql_ha_replication_password is required (no default)" in out


def test_host_in_a_conflicting_group_is_refused(tmp_path):
    rc, out = run_role(tmp_path, lb=["node2"])
    assert rc != 0
    assert "node2 is in group(s) lb (postgresql_ha_conflicting_groups)" in out
    assert "Install" not in out  # the other nodes stopped too (any_errors_fatal)


def test_bad_failover_timing_is_refused(tmp_path):
    rc, out = run_role(tmp_path, postgresql_ha_ttl=8)
    assert rc != 0
    assert "Patroni needs ttl >= loop_wait + 2 * retry_timeout" in out


def test_strict_synchronous_mode_needs_synchronous_mode(tmp_path):
    rc, out = run_role(tmp_path, postgresql_ha_synchronous_mode=False, postgresql_ha_synchronous_mode_strict=True)
    assert rc != 0
    assert "postgresql_ha_synchronous_mode_strict needs postgresql_ha_synchronous_mode" in out
    assert "Install" not in out


@pytest.mark.parametrize("overrides, expected", [
    (dict(postgresql_ha_patroni_version="3.0.2"), "must be a Patroni 4.x.y release (got '3.0.2')"),
    (dict(postgresql_ha_patroni_version="4.1.5\nevil"), "must be a Patroni 4.x.y release"),
    (dict(postgresql_ha_patroni_version="4.1"), "must be a Patroni 4.x.y release"),
    (dict(postgresql_ha_patroni_venv="opt/patroni"), "postgresql_ha_patroni_venv ('opt/patroni') must be absolute"),
    (dict(postgresql_ha_patroni_venv="/opt/pat roni"), "postgresql_ha_patroni_venv ('/opt/pat roni') must be absolute"),
])
def test_bad_patroni_installation_is_refused(tmp_path, overrides, expected):
    rc, out = run_role(tmp_path, **overrides)
    assert rc != 0
    assert expected in out
    assert "Install" not in out


@pytest.mark.parametrize("overrides", [
    dict(postgresql_ha_etcd_heartbeat_ms=500, postgresql_ha_etcd_election_timeout_ms=1000),  # < 5 heartbeats
    dict(postgresql_ha_etcd_election_timeout_ms=6000),  # more than ttl / 4 (20 s)
])
def test_bad_etcd_timing_is_refused(tmp_path, overrides):
    rc, out = run_role(tmp_path, **overrides)
    assert rc != 0
    assert "etcd's election timeout must be at least 5 heartbeats and at most ttl / 4" in out
    assert "Install" not in out


def test_missing_networks_are_refused(tmp_path):
    rc, out = run_role(tmp_path, postgresql_ha_app_networks=[])
    assert rc != 0
    assert "must be non-empty lists of CIDRs" in out
