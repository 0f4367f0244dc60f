"""Benchmark: point-in-time restore time, on the backup Molecule scenario.

The scenario (molecule/backup) runs the PostgreSQL trio (Patroni, etcd,
HAProxy) and a repository host with pgBackRest (TLS, encrypted posix
repository, backups from a replica). Per run:

1. rows are loaded into the application database (--rows, about 250 bytes
   each), and `playbooks/backup.yml` takes a full backup (timed);
2. more rows are written in small transactions, an instant T is read from the
   leader's clock between two of them, more rows follow, and `pgbackrest
   check` makes sure the last WAL is in the repository;
3. `playbooks/restore.yml -e restore_target_time=T -e restore_replace=true`
   restores into the scratch instance (timed end to end, as an operator runs
   it: pgBackRest restore, WAL replay up to T, promotion);
4. the scratch instance's rows must equal the leader's rows committed at or
   before T, exactly.

    python benchmarks/pitr.py [--runs 3] [--rows 200000] [--reuse] [--keep]

Without --reuse it creates and converges the scenario (`molecule converge -s
backup`, which also runs prepare), and destroys it at the end unless --keep.
SQL runs in the containers as postgres (peer authentication). Writes
benchmarks/results/pitr.json and its section of docs/benchmarks.md.
"""
import argparse
import datetime
import glob
import json
import os
import statistics
import subprocess
import time

from labtools import ROOT, RESULTS, VENV, run, write_section

SCENARIO = "backup"
NODES = ["bk-node1", "bk-node2", "bk-node3"]
REPO = "bk-repo"
SCRATCH = NODES[-1]
BEGIN, END = "<!-- pitr:begin -->", "<!-- pitr:end -->"


def molecule(*args):
    os.environ["PATH"] = os.path.join(VENV, "bin") + os.pathsep + os.environ.get("PATH", "")
    proc = run([os.path.join(VENV, "bin", "molecule"), *args, "-s", SCENARIO], timeout=1800)
    if proc.returncode != 0:
        raise SystemExit("molecule %s failed:\n%s" % (" ".join(args), (proc.stdout + proc.stderr)[-4000:]))


def inventory():
    found = sorted(glob.glob(os.path.expanduser("~/.ansible/tmp/molecule.*.%s/inventory" % SCENARIO)),
                   key=os.path.getmtime)
    if not found:
        raise SystemExit("no converged %s scenario (run without --reuse)" % SCENARIO)
    return found[-1]


def sh(container, argv, user=None, timeout=600):
    proc = subprocess.run(["docker", "exec"] + (["-u", user] if user else []) + [container] + argv,
                          capture_output=True, text=True, timeout=timeout, check=False)
    if proc.returncode != 0:
        raise SystemExit("%s: %s failed: %s" % (container, " ".join(argv)[:200], proc.stderr[-2000:]))
    return proc.stdout.strip()


def sql(node, query, port=5432, dbname="supersmartmatch"):
    return sh(node, ["psql", "-p", str(port), "-h", "/var/run/postgresql", "-d", dbname, "-v", "ON_ERROR_STOP=1",
                     "-XtAc", query], user="postgres")


def leader():
    members = json.loads(sh(NODES[0], ["/opt/patroni/bin/patronictl", "-c", "/etc/patroni/config.yml", "list",
                                       "-f", "json"]))
    return next(m["Member"] for m in members if m["Role"] == "Leader")


def playbook(name, *extra):
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=os.path.join(ROOT, ".collections"),
               ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"), ANSIBLE_NOCOLOR="1")
    argv = [os.path.join(VENV, "bin", "ansible-playbook"), "-i", inventory(), os.path.join(ROOT, "playbooks", name)]
    for item in extra:
        argv += ["-e", item]
    started = time.monotonic()
    proc = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=1800, check=False)
    if proc.returncode != 0:
        raise SystemExit("%s failed:\n%s" % (name, (proc.stdout + proc.stderr)[-4000:]))
    return time.monotonic() - started


def one_run(index, rows):
    primary = leader()
    sql(primary, "CREATE TABLE IF NOT EXISTS pitr_bench (id bigserial PRIMARY KEY, run int NOT NULL, "
                 "at timestamptz NOT NULL DEFAULT clock_timestamp(), payload text NOT NULL)")
    sql(primary, "INSERT INTO pitr_bench (run, payload) SELECT %d, repeat(md5(g::text), 7) "
                 "FROM generate_series(1, %d) g" % (index, rows))
    backup_s = playbook("backup.yml", "backup_dir=%s" % os.path.join(ROOT, ".work", "backups"))
    for _batch in range(20):
        sql(primary, "INSERT INTO pitr_bench (run, payload) SELECT %d, 'before' FROM generate_series(1, 50)" % index)
    time.sleep(1.1)
    target = sql(primary, "SELECT clock_timestamp()", dbname="postgres")
    time.sleep(1.1)
    for _batch in range(20):
        sql(primary, "INSERT INTO pitr_bench (run, payload) SELECT %d, 'after' FROM generate_series(1, 50)" % index)
    sh(REPO, ["pgbackrest", "--stanza=supersmartmatch", "check"], user="postgres")
    expected = sql(primary, "SELECT count(*), coalesce(max(id), 0) FROM pitr_bench WHERE at <= '%s'" % target)
    restore_s = playbook("restore.yml", "restore_target_time='%s'" % target, "restore_replace=true")
    got = sql(SCRATCH, "SELECT count(*), coalesce(max(id), 0) FROM pitr_bench", port=5433)
    size = sql(primary, "SELECT pg_database_size('supersmartmatch')", dbname="postgres")
    return {"run": index, "backup_s": round(backup_s, 2), "restore_s": round(restore_s, 2), "target": target,
            "expected": expected, "restored": got, "match": got == expected, "database_bytes": int(size)}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--rows", type=int, default=200000, help="rows loaded before each run's backup")
    parser.add_argument("--reuse", action="store_true", help="use the converged scenario as it is")
    parser.add_argument("--keep", action="store_true", help="do not destroy the scenario at the end")
    args = parser.parse_args()
    if not args.reuse:
        molecule("converge")
    try:
        results = []
        for index in range(1, args.runs + 1):
            result = one_run(index, args.rows)
            results.append(result)
            print("run %d: backup.yml %.1f s, restore.yml %.1f s, database %.0f MiB, rows %s"
                  % (index, result["backup_s"], result["restore_s"], result["database_bytes"] / 2 ** 20,
                     "match" if result["match"] else "DIFFER %s != %s" % (result["restored"], result["expected"])),
                  flush=True)
        playbook("restore.yml", "restore_remove=true")
    finally:
        if not args.reuse and not args.keep:
            molecule("destroy")
    record = {"date": datetime.date.today().isoformat(), "runs": results, "rows_per_run": args.rows,
              "load": os.getloadavg()[0]}
    os.makedirs(RESULTS, exist_ok=True)
    with open(os.path.join(RESULTS, "pitr.json"), "w") as handle:
        json.dump(record, handle, indent=2)
    restores = [r["restore_s"] for r in results]
    backups = [r["backup_s"] for r in results]
    lines = ["Measured %s on %s (2 cores, load %.0f): %d runs, each loading %d rows (about %d bytes each) before a "
             "full backup from a replica into the encrypted repository." % (
                 record["date"], os.uname().nodename, record["load"], len(results), args.rows, 250),
             "",
             "| run | database | `backup.yml` (full) | `restore.yml` to T | rows at T restored exactly |",
             "|---|---|---|---|---|"]
    for r in results:
        lines.append("| %d | %.0f MiB | %.1f s | %.1f s | %s |" % (
            r["run"], r["database_bytes"] / 2 ** 20, r["backup_s"], r["restore_s"],
            "yes (%s)" % r["expected"].split("|")[0] if r["match"] else "**no**"))
    lines += ["", "Median `restore.yml` %.1f s, median `backup.yml` %.1f s; restore over backup %.1f x (same run)."
              % (statistics.median(restores), statistics.median(backups),
                 statistics.median(restores) / statistics.median(backups))]
    write_section(BEGIN, END, lines)
    print("\n".join(lines))
    if not all(r["match"] for r in results):
        raise SystemExit("a restore did not match its instant")


if __name__ == "__main__":
    main()
