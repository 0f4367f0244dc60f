"""Benchmark: Redis Cluster failover time, on the redis_cluster Molecule scenario.

For each run, one primary (the 6379 instance of rc-node1, rc-node2, rc-node3 in
turn) is stopped with `systemctl stop`; the time measured goes from just before
the stop to the first successful write (SET, through a redis-cli -c on another
node) of a key whose slot belongs to the stopped primary, i.e. the moment the
cluster serves that slot again from the promoted replica. The run also records
when the promoted replica reports cluster_state:ok. Between runs the stopped
instance is started again, waits until it is an in-sync replica, and takes its
slots back with CLUSTER FAILOVER (planned, lossless), so every run starts from
the same layout.

    python benchmarks/redis_failover.py [--runs 5] [--reuse] [--keep]

Without --reuse it creates and converges the scenario (`molecule create` and
`molecule converge -s redis_cluster`), and destroys it at the end unless
--keep. Uses only the docker CLI (and molecule): every command runs inside the
scenario's containers, traffic stays on their network, the password is read
inside the containers from the instance configuration (REDISCLI_AUTH), never
on a command line. Every wait is bounded. Writes
benchmarks/results/redis_failover.json.
"""
import argparse
import binascii
import datetime
import json
import os
import shutil
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tools"))

from labwait import poll  # noqa: E402

SCENARIO = "redis_cluster"
NODES = ["rc-node1", "rc-node2", "rc-node3"]
PRIMARY, REPLICA = 6379, 6380
TOTAL_SLOTS = 16384
TARGET_S = 15.0
WRITE_TIMEOUT_S = 60
RESULT = os.path.join(ROOT, "benchmarks", "results", "redis_failover.json")
AUTH = ('REDISCLI_AUTH="$(sed -n \'s/^requirepass "\\(.*\\)"$/\\1/p\' /etc/redis/ssm-redis-%d.conf)"; '
        'export REDISCLI_AUTH; ' % PRIMARY)


def molecule(*args):
    venv = os.environ.get("VENV", os.path.join(ROOT, ".venv"))
    path = os.pathsep.join([os.path.join(venv, "bin"), os.environ.get("PATH", "")])
    exe = shutil.which("molecule", path=path)
    if not exe:
        raise SystemExit("molecule not found (set VENV or PATH)")
    env = dict(os.environ, PATH=path)
    started = time.monotonic()
    proc = subprocess.run([exe] + list(args) + ["-s", SCENARIO], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=1800, check=False)
    if proc.returncode != 0:
        raise SystemExit("molecule %s failed (rc=%d):\n%s" % (" ".join(args), proc.returncode,
                                                              (proc.stdout + proc.stderr)[-4000:]))
    return time.monotonic() - started


def sh(node, script, timeout=90, check=True):
    """Run a shell script in a container; return stdout."""
    proc = subprocess.run(["docker", "exec", node, "sh", "-c", script], capture_output=True, text=True,
                          timeout=timeout, check=False)
    if check and proc.returncode != 0:
        raise RuntimeError("%s: %s failed (rc=%d): %s %s"
                           % (node, script[:80], proc.returncode, proc.stdout, proc.stderr))
    return proc.stdout


def cli(node, port, *args, cluster=False):
    quoted = " ".join("'%s'" % str(a).replace("'", "'\\''") for a in args)
    return sh(node, AUTH + "redis-cli %s-h 127.0.0.1 -p %d %s" % ("-c " if cluster else "", port, quoted),
              check=False)


def address(node):
    return sh(node, "hostname -I").split()[0]


def cluster_nodes(node):
    members = {}
    for line in cli(node, PRIMARY, "CLUSTER", "NODES").splitlines():
        fields = line.split()
        if len(fields) >= 8:
            members[fields[1].split("@")[0]] = {
                "id": fields[0], "role": "master" if "master" in fields[2] else "slave",
                "master": fields[3], "slots": fields[8:]}
    return members


def cluster_ok(node, port):
    return "cluster_state:ok" in cli(node, port, "CLUSTER", "INFO")


def role(node, port):
    out = cli(node, port, "ROLE").split()
    return out[0] if out else ""


def key_in(slots):
    ranges = [tuple(int(x) for x in (r.split("-") + [r])[:2]) for r in slots if not r.startswith("[")]
    for index in range(100000):
        key = "bench:failover:%d" % index
        slot = binascii.crc_hqx(key.encode(), 0) % TOTAL_SLOTS
        if any(low <= slot <= high for low, high in ranges):
            return key
    raise RuntimeError("no key found for slots %s" % slots)


def check_layout(addresses):
    """Initial layout: every 6379 a primary, every 6380 an in-sync replica; cluster ok everywhere."""
    members = cluster_nodes(NODES[0])
    for node in NODES:
        if members.get("%s:%d" % (addresses[node], PRIMARY), {}).get("role") != "master":
            return False
        if "master_link_status:up" not in cli(node, REPLICA, "INFO", "replication"):
            return False
    return all(cluster_ok(node, port) for node in NODES for port in (PRIMARY, REPLICA))


def one_run(index, addresses):
    victim = NODES[index % len(NODES)]
    # Node N's replica instance replicates node N+1's primary.
    promoted = NODES[(index - 1) % len(NODES)]
    writer = NODES[(index + 1) % len(NODES)]
    if not poll(lambda: check_layout(addresses), 60, delay=0.25).value:
        raise RuntimeError("cluster not in its initial layout before run %d" % (index + 1))
    members = cluster_nodes(NODES[0])
    key = key_in(members["%s:%d" % (addresses[victim], PRIMARY)]["slots"])
    value = "run-%d-%d" % (index, time.time_ns())
    loop = (AUTH + "end=$(( $(date +%%s) + %d )); "
            "while [ $(date +%%s) -lt $end ]; do "
            "r=$(redis-cli -c -h 127.0.0.1 -p %d SET %s %s 2>&1 | tail -n 1); "
            "[ \"$r\" = OK ] && { echo WRITE_OK; exit 0; }; sleep 0.05; done; exit 1"
            % (WRITE_TIMEOUT_S, PRIMARY, key, value))

    start = time.monotonic()
    sh(victim, "systemctl stop ssm-redis@%d.service" % PRIMARY)
    stopped = time.monotonic() - start
    out = sh(writer, loop, timeout=WRITE_TIMEOUT_S + 30, check=False)
    write_s = time.monotonic() - start
    if "WRITE_OK" not in out:
        sh(victim, "systemctl start ssm-redis@%d.service" % PRIMARY, check=False)
        raise RuntimeError("run %d: no successful write within %d s" % (index + 1, WRITE_TIMEOUT_S))
    promoted_ok = poll(lambda: role(promoted, REPLICA) == "master" and cluster_ok(promoted, REPLICA), 30, delay=0.25)
    ok_s = write_s + promoted_ok.elapsed if promoted_ok.value else None
    readback = cli(writer, PRIMARY, "GET", key, cluster=True).strip().splitlines()[-1:]

    # Restore: start, wait for an in-sync replica, planned failover back.
    restart = time.monotonic()
    sh(victim, "systemctl start ssm-redis@%d.service" % PRIMARY)
    rejoined, rejoin = poll(lambda: role(victim, PRIMARY) == "slave"
                            and "master_link_status:up" in cli(victim, PRIMARY, "INFO", "replication"), 60, delay=0.25)
    if not rejoined:
        raise RuntimeError("run %d: %s:%d did not rejoin as a replica" % (index + 1, victim, PRIMARY))
    cli(victim, PRIMARY, "CLUSTER", "FAILOVER")
    if not poll(lambda: role(victim, PRIMARY) == "master" and cluster_ok(victim, PRIMARY), 60, delay=0.25).value:
        raise RuntimeError("run %d: CLUSTER FAILOVER back to %s:%d failed" % (index + 1, victim, PRIMARY))
    record = {
        "run": index + 1, "stopped_primary": "%s:%d" % (victim, PRIMARY),
        "promoted_replica": "%s:%d" % (promoted, REPLICA), "writer": writer, "key": key,
        "stop_s": round(stopped, 2), "first_write_s": round(write_s, 2),
        "promoted_cluster_ok_s": None if ok_s is None else round(ok_s, 2),
        "read_back_ok": readback == [value],
        "rejoin_as_replica_s": round(rejoin, 2), "restore_total_s": round(time.monotonic() - restart, 2),
    }
    print("run %d: stop %-14s -> first write %5.2f s (stop took %.2f s), %s promoted; rejoined in %.1f s"
          % (index + 1, record["stopped_primary"], write_s, stopped, record["promoted_replica"], rejoin))
    return record


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--reuse", action="store_true", help="use the running scenario (no create/converge)")
    parser.add_argument("--keep", action="store_true", help="do not destroy the scenario at the end")
    args = parser.parse_args()
    if args.runs < 3:
        parser.error("--runs must be at least 3")

    setup_s = None
    if not args.reuse:
        setup_s = molecule("create") + molecule("converge")
        print("scenario created and converged in %.0f s" % setup_s)
    try:
        addresses = {node: address(node) for node in NODES}
        node_timeout = cli(NODES[0], PRIMARY, "CONFIG", "GET", "cluster-node-timeout").split()[-1:]
        records = [one_run(index, addresses) for index in range(args.runs)]
    finally:
        if not args.keep and not args.reuse:
            molecule("destroy")

    times = [r["first_write_s"] for r in records]
    summary = {
        "min_s": round(min(times), 2), "median_s": round(statistics.median(times), 2),
        "max_s": round(max(times), 2), "target_s": TARGET_S, "all_under_target": max(times) < TARGET_S,
        "all_read_back": all(r["read_back_ok"] for r in records),
    }
    result = {
        "benchmark": "redis_failover", "date": datetime.datetime.now(datetime.timezone.utc).isoformat(),
        "runs": args.runs, "node_timeout_ms": int(node_timeout[0]) if node_timeout else None, "setup_s": setup_s, "summary": summary, "records": records,
    }
    os.makedirs(os.path.dirname(RESULT), exist_ok=True)
    with open(RESULT, "w", encoding="utf-8") as handle:
        json.dump(result, handle, indent=2)
    print("stop primary -> first write to its slots over %d runs: min %.2f s, median %.2f s, max %.2f s "
          "(target < %.0f s: %s)" % (args.runs, summary["min_s"], summary["median_s"], summary["max_s"],
                                     TARGET_S, "met" if summary["all_under_target"] else "MISSED"))
    print("result: %s" % os.path.relpath(RESULT, ROOT))
    return 0 if summary["all_under_target"] and summary["all_read_back"] else 1


if __name__ == "__main__":
    sys.exit(main())
