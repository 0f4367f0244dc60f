"""Benchmark: Vault (OpenBao) failover time, on the vault Molecule scenario.

For each run the active node is stopped (`systemctl stop openbao`, a graceful
shutdown, or with --kill `systemctl kill -s KILL openbao`, a crash); the time
measured goes from just before the stop to the first successful KV v2 write
through one of the two other nodes (hvac from the controller, TLS verified
against the lab CA; a node forwards writes to the active node). The run also
records when a standby first reports itself active. Between runs the stopped
node is started again (it comes back sealed), unsealed through the API with
the keys of the scenario's init file (request bodies, never a command line),
and the benchmark waits until raft autopilot reports every server healthy.

    python benchmarks/vault_failover.py [--runs 5] [--kill] [--reuse] [--keep]

Without --reuse it creates and converges the scenario (`molecule create` and
`molecule converge -s vault`), and destroys it at the end unless --keep.
Traffic stays on the scenario's Docker network; every wait is bounded.
Writes benchmarks/results/vault_failover.json and the section of
docs/benchmarks.md between the vault_failover markers.
"""
import argparse
import datetime
import glob
import json
import os
import statistics
import subprocess
import sys
import time

import hvac
import requests

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "benchmarks"))
import labtools  # noqa: E402

SCENARIO = "vault"
NODES = ["vault-node1", "vault-node2", "vault-node3"]
TARGET_S = 10.0
LIMIT_S = 60.0
HEALTH = "/v1/sys/health?standbycode=429&perfstandbyok=false&sealedcode=503&uninitcode=501"
RESULT = os.path.join(ROOT, "benchmarks", "results", "vault_failover.json")
BEGIN, END = "<!-- vault_failover:begin -->", "<!-- vault_failover:end -->"


def molecule(*args):
    # The scenario runs raft with performance_multiplier 5 for CI; the benchmark measures the role's default, 1.
    os.environ.setdefault("SSM_VAULT_PERFORMANCE_MULTIPLIER", "1")
    return labtools.molecule(SCENARIO, *args)


def ephemeral():
    """The scenario's ephemeral directory: the newest one holding an init file."""
    found = [path for path in glob.glob(os.path.expanduser("~/.ansible/tmp/molecule.*.%s" % SCENARIO))
             if os.path.exists(os.path.join(path, "secrets", "vault-init.json"))]
    if not found:
        raise SystemExit("no converged vault scenario found (run without --reuse)")
    return max(found, key=os.path.getmtime)


def docker(*args, timeout=60):
    return subprocess.run(["docker"] + list(args), capture_output=True, text=True, timeout=timeout, check=False)


def multiplier():
    """performance_multiplier of the running configuration (what was measured, whatever converged it)."""
    out = docker("exec", NODES[0], "sed", "-n", "s/^ *performance_multiplier = \\([0-9]*\\)$/\\1/p", "/etc/openbao/openbao.hcl")
    return int(out.stdout.strip() or 0)


class Cluster:
    def __init__(self, directory):
        self.ca = os.path.join(directory, "pki", "ca.crt")
        self.init = json.load(open(os.path.join(directory, "secrets", "vault-init.json")))
        self.admin = json.load(open(os.path.join(directory, "secrets", "vault-admin.json")))
        self.urls = {}
        for name in NODES:
            out = docker("inspect", "-f", "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}", name)
            self.urls[name] = "https://%s:8200" % out.stdout.strip()
        self.token = self.login()

    def client(self, name, token=None):
        return hvac.Client(url=self.urls[name], token=token, verify=self.ca, timeout=3)

    def login(self):
        for name in NODES:
            try:
                client = self.client(name)
                client.auth.approle.login(role_id=self.admin["role_id"], secret_id=self.admin["secret_id"])
                return client.token
            except (requests.RequestException, hvac.exceptions.VaultError):
                continue
        raise SystemExit("the ssm-admin AppRole cannot log in")

    def state(self, name):
        try:
            code = requests.get(self.urls[name] + HEALTH, verify=self.ca, timeout=2).status_code
        except requests.RequestException:
            return "unreachable"
        return {200: "active", 429: "standby", 503: "sealed", 501: "uninitialized"}.get(code, "unreachable")

    def write(self, name, value):
        try:
            self.client(name, self.token).secrets.kv.v2.create_or_update_secret(
                mount_point="secret", path="benchmark/failover", secret={"value": value})
            return True
        except (requests.RequestException, hvac.exceptions.VaultError):
            return False

    def unseal(self, name):
        keys = self.init["keys_base64"][:self.init["key_threshold"]]
        client = self.client(name)
        client.sys.submit_unseal_keys(keys)

    def healthy(self):
        try:
            state = self.client(NODES[0], self.token).adapter.get("/v1/sys/storage/raft/autopilot/state")
            return bool(state["data"]["healthy"])
        except (requests.RequestException, hvac.exceptions.VaultError, KeyError, TypeError):
            return False


def wait(predicate, limit, step=0.2):
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(step)
    return False


def one_run(cluster, number, kill):
    active = [name for name in NODES if cluster.state(name) == "active"]
    if len(active) != 1:
        raise SystemExit("run %d: expected one active node, found %s" % (number, active))
    active = active[0]
    others = [name for name in NODES if name != active]
    cmd = ["systemctl", "kill", "-s", "KILL", "openbao"] if kill else ["systemctl", "stop", "openbao"]
    started = time.monotonic()
    docker("exec", active, *cmd)
    new_active_at = write_at = None
    new_active = None
    while time.monotonic() - started < LIMIT_S:
        for name in others:
            if new_active_at is None and cluster.state(name) == "active":
                new_active_at, new_active = time.monotonic() - started, name
            if cluster.write(name, "run-%d" % number):
                write_at = time.monotonic() - started
                break
        if write_at is not None:
            break
        time.sleep(0.1)
    if write_at is None:
        raise SystemExit("run %d: no write went through within %.0f s after stopping %s" % (number, LIMIT_S, active))
    if new_active_at is None:
        new_active = [name for name in others if cluster.state(name) == "active"][:1] or ["?"]
        new_active, new_active_at = new_active[0], write_at
    # Put the node back: start, unseal, wait until every raft server is healthy.
    if kill:
        docker("exec", active, "systemctl", "reset-failed", "openbao")
    docker("exec", active, "systemctl", "start", "openbao")
    if not wait(lambda: cluster.state(active) == "sealed", 60):
        raise SystemExit("run %d: %s did not come back (state %s)" % (number, active, cluster.state(active)))
    cluster.unseal(active)
    back = time.monotonic()
    if not wait(lambda: cluster.state(active) == "standby" and cluster.healthy(), 120, step=0.5):
        raise SystemExit("run %d: %s did not rejoin as a healthy standby" % (number, active))
    rejoin = time.monotonic() - back
    print("run %d: stopped %s, %s active after %.2f s, first write through %.2f s; rejoined in %.1f s"
          % (number, active, new_active, new_active_at, write_at, rejoin), flush=True)
    return {"run": number, "stopped": active, "new_active": new_active, "new_active_s": round(new_active_at, 3),
            "first_write_s": round(write_at, 3), "rejoin_s": round(rejoin, 1)}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--kill", action="store_true", help="SIGKILL the active node instead of stopping it")
    parser.add_argument("--reuse", action="store_true", help="use the running scenario (no create/converge)")
    parser.add_argument("--keep", action="store_true", help="do not destroy the scenario at the end")
    args = parser.parse_args()
    setup_s = None
    if not args.reuse:
        setup_s = molecule("create") + molecule("converge")
    try:
        cluster = Cluster(ephemeral())
        runs = [one_run(cluster, number, args.kill) for number in range(1, args.runs + 1)]
    finally:
        if not args.reuse and not args.keep:
            molecule("destroy")
    writes = [run["first_write_s"] for run in runs]
    summary = {"date": datetime.date.today().isoformat(), "mode": "kill" if args.kill else "stop",
               "performance_multiplier": multiplier(), "runs": runs,
               "min_s": min(writes), "median_s": statistics.median(writes),
               "max_s": max(writes), "target_s": TARGET_S, "setup_s": setup_s,
               "load": os.getloadavg()[0]}
    os.makedirs(os.path.dirname(RESULT), exist_ok=True)
    with open(RESULT, "w") as handle:
        json.dump(summary, handle, indent=2)
    lines = [
        "Measured %s, `--runs %d`%s, performance_multiplier = %d, load average %.0f at the end:"
        % (summary["date"], args.runs, " `--kill`" if args.kill else "", summary["performance_multiplier"], summary["load"]),
        "**min %.2f s / median %.2f s / max %.2f s** from the stop of the active node to the first write "
        "through another node (target < %.0f s)." % (summary["min_s"], summary["median_s"], summary["max_s"], TARGET_S),
        "",
        "| run | stopped | new active | new active after (s) | first write (s) | rejoined, unsealed (s) |",
        "|---|---|---|---|---|---|",
    ]
    row = "| %(run)d | %(stopped)s | %(new_active)s | %(new_active_s).2f | %(first_write_s).2f | %(rejoin_s).1f |"
    lines += [row % run for run in runs]
    labtools.write_section(BEGIN, END, lines)
    print("min %(min_s).2f s, median %(median_s).2f s, max %(max_s).2f s (target < %(target_s).0f s)" % summary)
    return 0 if summary["max_s"] < TARGET_S else 1


if __name__ == "__main__":
    sys.exit(main())
