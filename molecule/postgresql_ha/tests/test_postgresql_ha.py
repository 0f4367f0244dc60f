"""Verify the postgresql_ha role on three real nodes (etcd, Patroni/PostgreSQL 15, HAProxy).

Service and file checks use testinfra; SQL runs with psql inside the containers
through `docker exec -e PGPASSWORD` (the password travels in the environment,
never in argv). The failover test runs last (tests run in file order).
"""
import json
import os
import subprocess
import sys
import time

import pytest

ROOT = os.environ.get("MOLECULE_PROJECT_DIRECTORY",
                      os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", "..")))
sys.path.insert(0, os.path.join(ROOT, "tools"))

from labwait import poll  # noqa: E402

testinfra_hosts = ["ansible://pg-node1", "ansible://pg-node2", "ansible://pg-node3"]

NODES = ["pg-node1", "pg-node2", "pg-node3"]
SUPERUSER_PASSWORD = "molecule-superuser-secret"
APP_PASSWORD = "molecule-app-secret"
APP = {"user": "supersmartmatch", "dbname": "supersmartmatch"}
RW_PORT, RO_PORT = 5000, 5001
FAILOVER_LIMIT = 30.0
REJOIN_TIMEOUT = 120.0


def docker_exec(node, argv, password=None, timeout=30, user=None):
    env = dict(os.environ)
    cmd = ["docker", "exec"]
    if password is not None:
        env["PGPASSWORD"] = password
        cmd += ["-e", "PGPASSWORD"]  # value taken from our environment
    if user:
        cmd += ["-u", user]
    return subprocess.run(cmd + [node] + argv, env=env, capture_output=True, text=True, timeout=timeout, check=False)


def psql(node, sql, port=RW_PORT, host="127.0.0.1", sslmode="require", user=APP["user"], dbname=APP["dbname"],
         password=APP_PASSWORD, timeout=15):
    """Run SQL through psql on `node`; return the CompletedProcess (stdout: unaligned tuples)."""
    conninfo = "host=%s port=%d dbname=%s user=%s sslmode=%s connect_timeout=3" % (host, port, dbname, user, sslmode)
    return docker_exec(node, ["psql", conninfo, "-v", "ON_ERROR_STOP=1", "-XtAc", sql], password=password,
                       timeout=timeout)


def local_sql(node, sql, dbname="postgres"):
    """SQL as the superuser over the local socket (peer authentication)."""
    proc = docker_exec(node, ["psql", "-d", dbname, "-XtAc", sql], user="postgres")
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip()


def patroni_members(node):
    proc = docker_exec(node, ["patronictl", "-c", "/etc/patroni/config.yml", "list", "-f", "json"])
    if proc.returncode != 0:
        return []
    return json.loads(proc.stdout)


def leader_of(node):
    leaders = [m["Member"] for m in patroni_members(node) if m["Role"] == "Leader" and m["State"] == "running"]
    return leaders[0] if len(leaders) == 1 else None


def primary_by_rest(node):
    """Nodes whose Patroni REST API answers 200 on GET /primary (asked from `node`)."""
    found = []
    for other in NODES:
        proc = docker_exec(node, ["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "-m", "3",
                                  "http://%s:8008/primary" % address(other)])
        if proc.stdout.strip() == "200":
            found.append(other)
    return found


_ADDRESSES = {}


def address(node):
    if node not in _ADDRESSES:
        proc = subprocess.run(["docker", "inspect", "-f", "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}",
                               node], capture_output=True, text=True, check=True)
        _ADDRESSES[node] = proc.stdout.strip()
    return _ADDRESSES[node]


def streaming_replicas(leader):
    return int(local_sql(leader, "SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming'"))


def diagnostics(nodes=None):
    nodes = NODES if nodes is None else nodes
    out = []
    for node in nodes:
        listing = docker_exec(node, ["patronictl", "-c", "/etc/patroni/config.yml", "list"]).stdout
        out.append("== %s patronictl list\n%s" % (node, listing))
        out.append("== %s journalctl -u patroni\n%s" % (node, docker_exec(node, ["journalctl", "-u", "patroni",
                                                                                 "-n", "25", "--no-pager"]).stdout))
    return "\n".join(out)


@pytest.fixture(scope="module")
def leader():
    name = poll(lambda: leader_of(NODES[0]), 60, delay=1).value
    assert name, diagnostics()
    return name


def test_services_running_and_enabled(host):
    for unit in ("etcd.service", "patroni.service", "haproxy.service"):
        service = host.service(unit)
        assert service.is_running, unit
        assert service.is_enabled, unit
    # Debian's packaged cluster is gone: Patroni owns the only data directory.
    assert not host.file("/etc/postgresql/15/main").exists
    assert host.file("/var/lib/postgresql/15/patroni/PG_VERSION").exists


def test_secret_files_are_private(host):
    config = host.file("/etc/patroni/config.yml")
    assert config.user == "postgres"
    assert config.mode == 0o600
    key = host.file("/etc/patroni/tls/server.key")
    assert key.user == "postgres"
    assert key.mode == 0o600
    # No password on any command line.
    for secret in ("molecule-superuser-secret", "molecule-replication-secret", "molecule-restapi-secret",
                   "molecule-app-secret"):
        assert secret not in host.check_output("ps -eo args")


def test_etcd_has_the_three_inventory_members(host):
    out = host.check_output("ETCDCTL_API=3 etcdctl --endpoints=http://127.0.0.1:2379 member list -w json")
    names = sorted(m["name"] for m in json.loads(out)["members"])
    assert names == NODES
    health = host.run("ETCDCTL_API=3 etcdctl --endpoints=http://127.0.0.1:2379 endpoint health")
    assert health.rc == 0, health.stderr


def test_one_leader_two_streaming_replicas(leader):
    members = patroni_members(leader)
    roles = sorted(m["Role"] for m in members)
    # synchronous quorum commit (the role's default): both replicas are quorum standbys (ANY 1).
    assert roles == ["Leader", "Quorum Standby", "Quorum Standby"], members
    assert primary_by_rest(NODES[1]) == [leader]
    assert poll(lambda: streaming_replicas(leader) == 2, 30, delay=1).value, local_sql(
        leader, "TABLE pg_stat_replication")
    assert local_sql(leader, "SELECT pg_is_in_recovery()") == "f"


def test_haproxy_configuration_is_valid(host):
    out = host.run("haproxy -c -f /etc/haproxy/haproxy.cfg")
    assert out.rc == 0, out.stdout + out.stderr
    # the node's own address and loopback, no other interface (not 0.0.0.0)
    node_address = address(host.backend.get_hostname())
    for port in (RW_PORT, RO_PORT):
        assert host.socket("tcp://%s:%d" % (node_address, port)).is_listening
        assert host.socket("tcp://127.0.0.1:%d" % port).is_listening
        assert not host.socket("tcp://0.0.0.0:%d" % port).is_listening


def test_write_through_rw_endpoint_with_tls_and_scram(leader):
    client = next(node for node in NODES if node != leader)
    proc = psql(client, "CREATE TABLE IF NOT EXISTS ha_probe (id serial PRIMARY KEY, note text NOT NULL);"
                        "INSERT INTO ha_probe (note) VALUES ('hello');"
                        "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid();")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().splitlines()[-1] == "t"  # the session is encrypted
    stored = local_sql(leader, "SELECT rolpassword LIKE 'SCRAM-SHA-256$%' FROM pg_authid WHERE rolname = 'supersmartmatch'")
    assert stored == "t"
    assert local_sql(leader, "SHOW password_encryption") == "scram-sha-256"


def test_connection_without_tls_is_rejected(leader):
    client = next(node for node in NODES if node != leader)
    proc = psql(client, "SELECT 1", sslmode="disable")
    assert proc.returncode != 0
    assert "pg_hba.conf rejects connection" in proc.stderr and "no encryption" in proc.stderr, proc.stderr


def test_wrong_password_is_rejected(leader):
    proc = psql(leader, "SELECT 1", password="not-the-password")
    assert proc.returncode != 0
    assert "password authentication failed" in proc.stderr, proc.stderr


def test_other_user_or_database_is_rejected(leader):
    local_sql(leader, "DROP ROLE IF EXISTS intruder; CREATE ROLE intruder LOGIN PASSWORD 'intruder-pass'")
    try:
        proc = psql(leader, "SELECT 1", user="intruder", password="intruder-pass")
        assert proc.returncode != 0
        assert "pg_hba.conf rejects connection" in proc.stderr, proc.stderr
        # The application user only reaches its own database.
        proc = psql(leader, "SELECT 1", dbname="postgres")
        assert proc.returncode != 0
        assert "pg_hba.conf rejects connection" in proc.stderr, proc.stderr
    finally:
        local_sql(leader, "DROP ROLE IF EXISTS intruder")


def test_read_only_endpoint_reaches_a_replica(leader):
    for node in NODES:
        proc = psql(node, "SELECT pg_is_in_recovery(), inet_server_addr()", port=RO_PORT)
        assert proc.returncode == 0, proc.stderr
        in_recovery, server = proc.stdout.strip().split("|")
        assert in_recovery == "t"
        assert server != address(leader)


def test_leftovers_of_another_cluster_are_refused():
    """refusals.yml: an etcd member or a data directory that does not match is refused, nothing changes."""
    project = os.environ["MOLECULE_PROJECT_DIRECTORY"]
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=os.path.join(project, ".collections"),
               ANSIBLE_CONFIG=os.path.join(project, "ansible.cfg"), ANSIBLE_NOCOLOR="1")
    playbook = os.path.join(os.path.dirname(sys.executable), "ansible-playbook")
    proc = subprocess.run([playbook, "-i", os.environ["MOLECULE_INVENTORY_FILE"],
                           os.path.join(os.environ["MOLECULE_SCENARIO_DIRECTORY"], "refusals.yml")],
                          env=env, capture_output=True, text=True, timeout=600, check=False)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-6000:]
    assert "rescued=2" in out, out[-3000:]
    for secret in ("molecule-superuser-secret", "molecule-replication-secret", "molecule-restapi-secret",
                   "molecule-app-secret"):
        assert secret not in out


def _write(client, note):
    return psql(client, "INSERT INTO ha_probe (note) VALUES ('%s')" % note, timeout=8).returncode == 0


def test_failover_keeps_committed_rows_and_old_leader_rejoins(leader):
    client = next(node for node in NODES if node != leader)
    assert psql(client, "CREATE TABLE IF NOT EXISTS ha_probe (id serial PRIMARY KEY, note text NOT NULL)").returncode == 0
    proc = psql(client, "INSERT INTO ha_probe (note) SELECT 'before-' || g FROM generate_series(1, 200) g;"
                        "SELECT count(*) FROM ha_probe")
    assert proc.returncode == 0, proc.stderr
    committed = int(proc.stdout.strip().splitlines()[-1])

    tag = "after-failover-%d" % time.time_ns()
    stopped = time.monotonic()
    stop = docker_exec(leader, ["systemctl", "stop", "patroni"], timeout=60)
    assert stop.returncode == 0, stop.stderr
    try:
        ok = poll(lambda: _write(client, tag), FAILOVER_LIMIT + 10, delay=0.5).value
        elapsed = time.monotonic() - stopped
        print("failover: first write after %.1f s" % elapsed)
        assert ok, "no write through %s:%d within %.0f s\n%s" % (client, RW_PORT, elapsed, diagnostics())
        assert elapsed < FAILOVER_LIMIT, "write resumed after %.1f s\n%s" % (elapsed, diagnostics())
        new_leader = leader_of(client)
        assert new_leader and new_leader != leader, diagnostics()

        proc = psql(client, "SELECT count(*) FROM ha_probe WHERE note <> '%s'" % tag)
        assert proc.returncode == 0, proc.stderr
        assert int(proc.stdout.strip()) == committed  # nothing committed before the stop is lost
        assert int(psql(client, "SELECT count(*) FROM ha_probe WHERE note = '%s'" % tag).stdout.strip()) >= 1
    finally:
        start = docker_exec(leader, ["systemctl", "start", "patroni"], timeout=60)
    assert start.returncode == 0, start.stderr

    def rejoined():
        members = {m["Member"]: m for m in patroni_members(client)}
        old = members.get(leader, {})
        return old.get("Role") in ("Replica", "Sync Standby", "Quorum Standby") and old.get("State") in (
            "running", "streaming")

    assert poll(rejoined, REJOIN_TIMEOUT, delay=2).value, diagnostics()
    new_leader = leader_of(client)
    assert poll(lambda: streaming_replicas(new_leader) == 2, 60, delay=2).value, diagnostics()
    # The old leader serves the rows as a replica.
    total = local_sql(new_leader, "SELECT count(*) FROM ha_probe", dbname=APP["dbname"])

    def replicated():
        return local_sql(leader, "SELECT count(*) FROM ha_probe", dbname=APP["dbname"]) == total
    assert poll(replicated, 30, delay=1).value, diagnostics([leader])
    assert local_sql(leader, "SELECT pg_is_in_recovery()") == "t"
