"""Verify the redis_cluster role on rc-node1..3: layout, authentication, secret handling, failover.

Commands run in the containers through the docker backend. The tests' redis-cli
gets the password through REDISCLI_AUTH, read inside the container from the
instance's configuration file, so it is never on a command line (not even docker
exec's); the role itself gives it on redis-cli's standard input (--askpass).
The test runs in file order: the failover test comes last and puts the
cluster back in its initial layout.
"""
import binascii
import os
import shlex
import subprocess
import sys
import threading

import pytest
import testinfra

ROOT = os.environ.get("MOLECULE_PROJECT_DIRECTORY",
                      os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", "..")))
sys.path.insert(0, os.path.join(ROOT, "tools"))

from labwait import poll  # noqa: E402

NODES = ["rc-node1", "rc-node2", "rc-node3"]
PORTS = [6379, 6380]
TOTAL_SLOTS = 16384
KEYS = 500
FAILOVER_LIMIT = 15.0
PASSWORD_FILE = os.path.join(os.environ.get("MOLECULE_EPHEMERAL_DIRECTORY", ""), "redis_cluster_password")
AUTH = ('REDISCLI_AUTH="$(sed -n \'s/^requirepass "\\(.*\\)"$/\\1/p\' /etc/redis/ssm-redis-6379.conf)"; '
        'export REDISCLI_AUTH; ')

# testinfra_hosts: every node (per-host tests); cluster-wide tests use the fixtures below.
testinfra_hosts = ["docker://%s" % name for name in NODES]


def node(name):
    return testinfra.get_host("docker://%s" % name)


@pytest.fixture(scope="module")
def nodes():
    return {name: node(name) for name in NODES}


def cli(host, port, *args, cluster=False, target="127.0.0.1"):
    """Run redis-cli (authenticated) on host; return the result (rc, stdout, stderr)."""
    quoted = " ".join(shlex.quote(str(a)) for a in args)
    cmd = AUTH + "redis-cli %s-h %s -p %d %s" % ("-c " if cluster else "", target, port, quoted)
    return host.run(cmd)


def cli_out(host, port, *args, **kw):
    res = cli(host, port, *args, **kw)
    assert res.rc == 0, "redis-cli %s on port %d: %s %s" % (args, port, res.stdout, res.stderr)
    return res.stdout


def info(host, port):
    out = cli_out(host, port, "CLUSTER", "INFO")
    return dict(line.strip().split(":", 1) for line in out.splitlines() if ":" in line)


def address(host):
    return host.check_output("hostname -I").split()[0]


def cluster_nodes(host, port=6379):
    """CLUSTER NODES -> list of dicts (id, endpoint, ip, port, role, master, slots, failed)."""
    result = []
    for line in cli_out(host, port, "CLUSTER", "NODES").splitlines():
        fields = line.split()
        if len(fields) < 8:
            continue
        endpoint = fields[1].split("@")[0]
        ip, port_s = endpoint.rsplit(":", 1)
        flags = fields[2].split(",")
        result.append({
            "id": fields[0], "endpoint": endpoint, "ip": ip, "port": int(port_s),
            "role": "master" if "master" in flags else "slave", "master": fields[3],
            "slots": fields[8:], "failed": "fail" in flags or "fail?" in flags,
        })
    return result


def slot_of(key):
    """Redis Cluster key slot: CRC16-XMODEM (binascii.crc_hqx) of the key (no hash tags here) mod 16384."""
    return binascii.crc_hqx(key.encode(), 0) % TOTAL_SLOTS


def in_slots(slot, ranges):
    for item in ranges:
        low, _sep, high = item.partition("-")
        if int(low) <= slot <= int(high or low):
            return True
    return False


def diagnostics(nodes):
    parts = []
    for name, host in nodes.items():
        parts.append("== %s CLUSTER NODES\n%s" % (name, cli(host, 6379, "CLUSTER", "NODES").stdout))
        for port in PORTS:
            journal = host.run("journalctl -u ssm-redis@%d.service --no-pager -n 15" % port).stdout
            parts.append("== %s ssm-redis@%d journal\n%s" % (name, port, journal))
    return "\n".join(parts)


def test_instances_running_and_packaged_service_off(host):
    for port in PORTS:
        unit = host.service("ssm-redis@%d.service" % port)
        assert unit.is_running, port
        assert unit.is_enabled, port
        assert host.socket("tcp://127.0.0.1:%d" % port).is_listening
        assert host.socket("tcp://%s:%d" % (address(host), port + 10000)).is_listening
    # Stopped, disabled and masked. In these containers the packaged unit cannot
    # even start (its PrivateUsers= needs user namespaces), so it may be "failed".
    assert host.run("systemctl is-active redis-server.service").stdout.strip() in ("inactive", "failed")
    assert host.run("systemctl is-enabled redis-server.service").stdout.strip() == "masked"


def test_config_files_not_world_readable(host):
    for port in PORTS:
        conf = host.file("/etc/redis/ssm-redis-%d.conf" % port)
        assert conf.exists
        assert (conf.user, conf.group) == ("root", "redis")
        assert conf.mode & 0o007 == 0, oct(conf.mode)
        assert conf.mode == 0o640, oct(conf.mode)
        assert conf.contains("^requirepass ") and conf.contains("^masterauth ")
        data = host.file("/var/lib/redis/cluster/%d" % port)
        assert data.user == "redis" and data.mode & 0o007 == 0


def test_password_not_on_any_command_line(host):
    with open(PASSWORD_FILE, encoding="utf-8") as handle:
        password = handle.read().split()[0]
    assert len(password) == 32
    # /proc/*/cmdline of every process, one per line (NULs as spaces).
    lines = host.check_output("ps -eo pid=,args= -ww").splitlines()
    servers = [line for line in lines if "redis-server" in line and "[cluster]" in line]
    assert len(servers) == len(PORTS), lines
    leaking = [line.split()[0] for line in lines if password in line]
    assert not leaking, "password visible in the command line of pid(s) %s" % leaking


def test_password_never_in_argv_environment_or_output_while_the_role_runs():
    """The role run again (converge.yml, -vvv: every remote command is printed) while every node's
    ps eww (each process's argv and environment) is sampled: the password appears in neither. A task
    ``environment:`` would show it in both (Ansible puts it on the remote shell's command line)."""
    with open(PASSWORD_FILE, encoding="utf-8") as handle:
        password = handle.read().split()[0]
    samples, stop = [], threading.Event()

    def sample():
        while not stop.is_set():
            for node in NODES:
                proc = subprocess.run(["docker", "exec", node, "ps", "eww", "-e", "-o", "args="],
                                      capture_output=True, text=True, timeout=30, check=False)
                samples.append((node, proc.stdout))
            stop.wait(0.1)

    watcher = threading.Thread(target=sample, daemon=True)
    watcher.start()
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=os.path.join(ROOT, ".collections"),
               ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"), ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0")
    try:
        proc = subprocess.run([os.path.join(os.path.dirname(sys.executable), "ansible-playbook"), "-vvv",
                               "-i", os.environ["MOLECULE_INVENTORY_FILE"],
                               os.path.join(ROOT, "molecule", "redis_cluster", "converge.yml")],
                              env=env, capture_output=True, text=True, timeout=600, check=False)
    finally:
        stop.set()
        watcher.join(60)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output[-4000:]
    assert "Probe every instance" in output and "EXEC" in output, "the -vvv output shows no remote command"
    assert password not in output, "the password is in the -vvv output of the role"
    assert len(samples) >= 3 * len(NODES), len(samples)
    leaking = sorted({node for node, text in samples if password in text})
    assert not leaking, "the password is in ps eww on %s" % leaking


def test_unauthenticated_command_refused(host, nodes):
    other = nodes["rc-node2"] if host.backend.name != "rc-node2" else nodes["rc-node3"]
    for port in PORTS:
        local = host.run("env -u REDISCLI_AUTH redis-cli -h 127.0.0.1 -p %d GET somekey" % port)
        assert "NOAUTH" in local.stdout + local.stderr, local.stdout
        remote = other.run("env -u REDISCLI_AUTH redis-cli -h %s -p %d PING" % (address(host), port))
        assert "NOAUTH" in remote.stdout + remote.stderr, remote.stdout
        wrong = host.run("REDISCLI_AUTH=not-the-password redis-cli -h 127.0.0.1 -p %d PING" % port)
        assert "PONG" not in wrong.stdout, wrong.stdout


def test_every_instance_reports_cluster_ok(host):
    for port in PORTS:
        values = info(host, port)
        assert values["cluster_state"] == "ok", values
        assert values["cluster_slots_assigned"] == str(TOTAL_SLOTS), values
        assert values["cluster_slots_ok"] == str(TOTAL_SLOTS), values
        assert values["cluster_known_nodes"] == "6", values
        assert values["cluster_size"] == "3", values


def test_layout_three_primaries_and_replicas_on_other_hosts(nodes):
    addresses = {name: address(host) for name, host in nodes.items()}
    members = cluster_nodes(nodes["rc-node1"])
    by_id = {m["id"]: m for m in members}
    masters = [m for m in members if m["role"] == "master"]
    slaves = [m for m in members if m["role"] == "slave"]
    assert len(masters) == 3 and len(slaves) == 3, members
    assert all(m["slots"] for m in masters), masters
    for slave in slaves:
        assert by_id[slave["master"]]["ip"] != slave["ip"], "replica %s on its master's host" % slave["endpoint"]
    # Deterministic layout: 6379 primary on every node, 6380 of node N
    # replicates the primary of node N+1.
    for index, name in enumerate(NODES):
        primary = "%s:6379" % addresses[name]
        replica = "%s:6380" % addresses[name]
        next_primary = "%s:6379" % addresses[NODES[(index + 1) % 3]]
        assert primary in {m["endpoint"] for m in masters}, members
        replica_entry = next(m for m in slaves if m["endpoint"] == replica)
        assert by_id[replica_entry["master"]]["endpoint"] == next_primary, members
    covered = 0
    for master in masters:
        for item in master["slots"]:
            low, _sep, high = item.partition("-")
            covered += int(high or low) - int(low) + 1
    assert covered == TOTAL_SLOTS


def test_failover_keeps_the_data_and_the_stopped_primary_rejoins(nodes):
    """Stop rc-node2's primary: rc-node1:6380 takes over within 15 s, no key is lost, it rejoins as replica."""
    n1, n2 = nodes["rc-node1"], nodes["rc-node2"]
    victim_ip = address(n2)
    victim = "%s:6379" % victim_ip
    promoted = "%s:6380" % address(n1)
    members = {m["endpoint"]: m for m in cluster_nodes(n1)}
    assert members[victim]["role"] == "master" and members[promoted]["role"] == "slave", members
    victim_slots = members[victim]["slots"]

    # 500 keys through the cluster (redis-cli -c follows the MOVED redirections).
    script = "".join("SET failover:%d value-%d\n" % (i, i) for i in range(KEYS))
    res = n1.run(AUTH + "printf %s | redis-cli -c -h 127.0.0.1 -p 6379", script)
    assert res.rc == 0 and res.stdout.count("OK") == KEYS, res.stdout[-500:]
    keys_on_victim = [i for i in range(KEYS) if in_slots(slot_of("failover:%d" % i), victim_slots)]
    assert keys_on_victim, "no test key in the slots of %s" % victim

    n2.check_output("systemctl stop ssm-redis@6379.service")
    try:
        def promoted_and_ok():
            role = cli(n1, 6380, "ROLE").stdout.split()
            return bool(role) and role[0] == "master" and info(n1, 6380).get("cluster_state") == "ok"

        done, elapsed = poll(promoted_and_ok, FAILOVER_LIMIT + 5, delay=0.2)
        print("failover: %s promoted and cluster_state:ok after %.1f s" % (promoted, elapsed))
        assert done and elapsed < FAILOVER_LIMIT, "replica %s not promoted within %.0f s (%.1f s)\n%s" % (
            promoted, FAILOVER_LIMIT, elapsed, diagnostics(nodes))
        for name, host in nodes.items():
            ports = [6380] if name == "rc-node2" else PORTS
            for port in ports:
                state, _elapsed = poll(lambda h=host, p=port: info(h, p).get("cluster_state") == "ok", 10, delay=0.2)
                assert state, "%s:%d not ok after the failover\n%s" % (name, port, diagnostics(nodes))

        # Every key written before is readable, from another node.
        n3 = nodes["rc-node3"]
        reads = "".join("GET failover:%d\n" % i for i in range(KEYS))
        res = n3.run(AUTH + "printf %s | redis-cli -c -h 127.0.0.1 -p 6379", reads)
        values = [line for line in res.stdout.splitlines() if line.startswith("value-")]
        assert values == ["value-%d" % i for i in range(KEYS)], "%d/%d keys read back\n%s" % (
            len(values), KEYS, diagnostics(nodes))
        # Writes succeed, also to the slots of the stopped primary.
        key = "failover:%d" % keys_on_victim[0]
        assert cli_out(n3, 6379, "SET", key, "after-failover", cluster=True).strip().endswith("OK")
        assert cli_out(n1, 6380, "GET", key).strip() == "after-failover"
    finally:
        n2.run("systemctl start ssm-redis@6379.service")

    # The stopped primary rejoins as a replica of the promoted one.
    def rejoined():
        role = cli(n2, 6379, "ROLE").stdout.split()
        repl = cli(n2, 6379, "INFO", "replication").stdout
        return bool(role) and role[0] == "slave" and "master_link_status:up" in repl

    done, elapsed = poll(rejoined, 30, delay=0.5)
    assert done, "%s did not rejoin as a replica within 30 s\n%s" % (victim, diagnostics(nodes))
    members = {m["endpoint"]: m for m in cluster_nodes(n1)}
    assert members[victim]["role"] == "slave" and members[victim]["master"] == members[promoted]["id"], members
    assert cli_out(n2, 6379, "GET", "failover:%d" % keys_on_victim[0], cluster=True).strip() == "after-failover"

    # Put the initial layout back (planned failover, no data loss).
    assert cli_out(n2, 6379, "CLUSTER", "FAILOVER").strip() == "OK"

    def back():
        role = cli(n2, 6379, "ROLE").stdout.split()
        return bool(role) and role[0] == "master" and info(n2, 6379).get("cluster_state") == "ok"

    done, _elapsed = poll(back, 30, delay=0.5)
    assert done, "planned failover back to %s failed\n%s" % (victim, diagnostics(nodes))
