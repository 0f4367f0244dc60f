"""Verify the pgbackrest role and playbooks/backup.yml and restore.yml on real nodes.

Three PostgreSQL nodes (Patroni, etcd, HAProxy, as the postgresql_ha scenario)
and a repository host, bk-repo. SQL runs with psql inside the containers as the
postgres user (peer authentication, no password anywhere). The playbooks run
as an operator runs them, with the scenario's inventory. Tests run in file
order: the PITR test uses the backup the backup test takes.
"""
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = os.environ.get("MOLECULE_PROJECT_DIRECTORY",
                      os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", "..")))
testinfra_hosts = ["ansible://bk-node1", "ansible://bk-node2", "ansible://bk-node3", "ansible://bk-repo"]

NODES = ["bk-node1", "bk-node2", "bk-node3"]
REPO = "bk-repo"
STANZA = "supersmartmatch"
LIVE = "/var/lib/postgresql/15/patroni"
SCRATCH = "/var/lib/postgresql/15/restore-scratch"
SCRATCH_PORT = 5433
RESULTS = Path(ROOT) / ".work" / "backup"


def sh(node, argv, user=None, timeout=120):
    cmd = ["docker", "exec"] + (["-u", user] if user else []) + [node] + argv
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)


def sql(node, query, port=5432, dbname="supersmartmatch"):
    proc = sh(node, ["psql", "-p", str(port), "-h", "/var/run/postgresql", "-d", dbname, "-v", "ON_ERROR_STOP=1",
                     "-XtAc", query], user="postgres", timeout=30)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip()


def pgbackrest(*args):
    proc = sh(REPO, ["pgbackrest", "--stanza=" + STANZA] + list(args), user="postgres", timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


def playbook(name, *extra):
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=os.path.join(ROOT, ".collections"),
               ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"), ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0")
    argv = [os.path.join(os.path.dirname(sys.executable), "ansible-playbook"), "-i",
            os.environ["MOLECULE_INVENTORY_FILE"], os.path.join(ROOT, "playbooks", name)]
    for item in extra:
        argv += ["-e", item]
    started = time.monotonic()
    proc = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=900, check=False)
    return proc.returncode, proc.stdout + proc.stderr, time.monotonic() - started


def leader():
    proc = sh(NODES[0], ["/opt/patroni/bin/patronictl", "-c", "/etc/patroni/config.yml", "list", "-f", "json"])
    assert proc.returncode == 0, proc.stderr
    return next(m["Member"] for m in json.loads(proc.stdout) if m["Role"] == "Leader")


def flat(text):
    return " ".join(text.split())


def test_every_host_runs_the_pgbackrest_tls_server(host):
    assert host.service("pgbackrest.service").is_running
    conf = host.file("/etc/pgbackrest/pgbackrest.conf")
    assert (conf.user, conf.group, conf.mode) == ("root", "postgres", 0o640)
    assert "repo1-host-type=tls" in conf.content_string or "tls-server-auth=bk-node1=" in conf.content_string
    # the passphrase lives on the repository host only
    assert ("repo1-cipher-pass=" in conf.content_string) == (host.backend.get_hostname() == REPO)
    assert host.socket("tcp://0.0.0.0:8432").is_listening is False
    assert host.file("/etc/pgbackrest/tls/server.key").mode == 0o640


def test_archiving_goes_through_patroni_on_every_node():
    for node in NODES:
        assert sql(node, "SHOW archive_mode", dbname="postgres") == "on"
        assert sql(node, "SHOW archive_command", dbname="postgres") == \
            "pgbackrest --stanza=%s archive-push %%p" % STANZA
    address = sh(NODES[0], ["hostname", "-i"]).stdout.split()[0]
    config = json.loads(sh(NODES[0], ["curl", "-s", "http://%s:8008/config" % address]).stdout)
    assert config["postgresql"]["parameters"]["archive_mode"] == "on"


def test_the_repository_is_encrypted_and_checked():
    info = json.loads(pgbackrest("--output=json", "info"))[0]
    assert info["cipher"] == "aes-256-cbc"
    head = sh(REPO, ["head", "-c", "8", "/var/lib/pgbackrest/backup/%s/backup.info" % STANZA])
    assert head.stdout == "Salted__", head.stdout
    pgbackrest("check")  # switches a WAL segment on the leader and waits until the repository has it


def test_full_and_differential_backups_are_timed():
    """On the repository host only: it finds the leader (or a replica) itself."""
    for kind in ("full", "diff"):
        state = sh(REPO, ["systemctl", "is-enabled", "pgbackrest-%s.timer" % kind]).stdout.strip(), \
            sh(REPO, ["systemctl", "is-active", "pgbackrest-%s.timer" % kind]).stdout.strip()
        assert state == ("enabled", "active"), (kind, state)
    unit = sh(REPO, ["systemctl", "cat", "pgbackrest-backup@full.service"]).stdout
    assert "--type=%i backup" in unit and "User=postgres" in unit
    for node in NODES:
        assert sh(node, ["systemctl", "cat", "pgbackrest-full.timer"]).returncode != 0


def test_backup_playbook_takes_a_backup_from_a_replica_with_a_manifest():
    before = len(json.loads(pgbackrest("--output=json", "info"))[0]["backup"])
    rc, out = playbook("backup.yml", "backup_dir=%s" % (RESULTS / "backups"))[:2]
    assert rc == 0, out[-4000:]
    backups = json.loads(pgbackrest("--output=json", "info"))[0]["backup"]
    assert len(backups) == before + 1 and backups[-1]["type"] == "full"
    runs = sorted((RESULTS / "backups").iterdir())
    manifest_file = runs[-1] / "manifest.json"
    manifest = json.loads(manifest_file.read_text())
    assert manifest["postgresql"]["label"] == backups[-1]["label"]
    assert manifest["postgresql"]["cipher"] == "aes-256-cbc"
    assert manifest["balancers"].startswith("skipped")
    assert manifest_file.stat().st_mode & 0o777 == 0o600
    # backup-standby: the files came from a replica, not the leader
    log = sh(REPO, ["cat", "/var/log/pgbackrest/%s-backup.log" % STANZA]).stdout
    assert "--backup-standby" in log and "wait for replay on the standby" in log


def test_the_pre_deployment_check_reads_the_latest_backup():
    """With a backup host in the inventory, the check's backup row reads the pgbackrest role's stanza."""
    report_dir = RESULTS / "checks-report"
    rc, out = playbook("pre_deployment_check.yml", "pre_check_report_dir=%s" % report_dir)[:2]
    report = json.loads((report_dir / "checks" / "pre_deployment_check.json").read_text())
    rows = [r for r in report["rows"] if r["check"] == "backup"]
    assert len(rows) == 1 and rows[0]["status"] == "pass", (rows, out[-3000:])
    label = json.loads(pgbackrest("--output=json", "info"))[0]["backup"][-1]["label"]
    assert label in rows[0]["detail"], rows
    assert rc == 0 and report["passed"] is True, report["table"]


def test_point_in_time_restore_into_a_scratch_instance_matches_the_instant():
    primary = leader()
    sql(primary, "CREATE TABLE IF NOT EXISTS pitr_probe (id int PRIMARY KEY, at timestamptz DEFAULT clock_timestamp())")
    sql(primary, "INSERT INTO pitr_probe (id) SELECT g FROM generate_series(1, 500) g")
    sql(primary, "INSERT INTO pitr_probe (id) SELECT g FROM generate_series(501, 1000) g")
    time.sleep(1.2)
    target = sql(primary, "SELECT clock_timestamp()", dbname="postgres")
    time.sleep(1.2)
    sql(primary, "INSERT INTO pitr_probe (id) SELECT g FROM generate_series(1001, 1500) g")
    expected = sql(primary, "SELECT count(*), max(id) FROM pitr_probe WHERE at <= '%s'" % target)
    assert expected == "1000|1000"
    pgbackrest("check")  # the segment with the last commit is in the repository

    rc, out, seconds = playbook("restore.yml", "restore_target_time='%s'" % target, "restore_replace=true")
    assert rc == 0, out[-4000:]
    node = NODES[-1]
    assert sql(node, "SELECT count(*), max(id) FROM pitr_probe", port=SCRATCH_PORT) == expected
    assert sql(node, "SELECT pg_is_in_recovery()", port=SCRATCH_PORT) == "f"
    # the scratch instance never archives into the stanza, and listens on loopback only
    assert sql(node, "SHOW archive_mode", port=SCRATCH_PORT, dbname="postgres") == "off"
    assert sql(node, "SHOW listen_addresses", port=SCRATCH_PORT, dbname="postgres") == "127.0.0.1"
    # the live cluster is untouched: all 1500 rows, three members streaming
    assert sql(primary, "SELECT count(*) FROM pitr_probe") == "1500"
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "pitr.json").write_text(json.dumps({"restore_seconds": round(seconds, 2), "target": target,
                                                   "rows": 1000, "database_bytes": json.loads(pgbackrest(
                                                       "--output=json", "info"))[0]["backup"][-1]["info"]["size"]}))

    # latest: every archived commit
    rc, out = playbook("restore.yml", "restore_replace=true")[:2]
    assert rc == 0, out[-4000:]
    assert sql(node, "SELECT count(*) FROM pitr_probe", port=SCRATCH_PORT) == "1500"

    rc, out = playbook("restore.yml", "restore_remove=true")[:2]
    assert rc == 0, out[-4000:]
    assert sh(node, ["test", "-e", SCRATCH]).returncode == 1


@pytest.mark.parametrize("extra, named", [
    (["restore_path=%s" % LIVE], "restore_path"),
    (["restore_path=/var/lib/postgresql/15"], "restore_path"),
    (["restore_path=%s/base" % LIVE], "restore_path"),
    (["restore_path=/var/lib/postgresql/15/../15/patroni"], "restore_path"),
    (["restore_port=5432"], "restore_port"),
    (["restore_target_time='yesterday; rm -rf /'"], "restore_target_time"),
    (["restore_host=bk-repo"], "restore_host"),
])
def test_a_restore_that_could_touch_the_live_cluster_is_refused(extra, named):
    before = sql(NODES[0], "SELECT system_identifier FROM pg_control_system()", dbname="postgres")
    rc, out = playbook("restore.yml", *extra)[:2]
    assert rc != 0
    assert named in flat(out) and "Nothing was changed" in flat(out), out[-3000:]
    assert sql(NODES[0], "SELECT system_identifier FROM pg_control_system()", dbname="postgres") == before
    assert sh(NODES[-1], ["test", "-e", SCRATCH]).returncode == 1


def test_an_earlier_scratch_instance_is_not_replaced_unasked():
    rc, out = playbook("restore.yml")[:2]
    assert rc == 0, out[-4000:]
    started = sh(NODES[-1], ["stat", "-c", "%Y", SCRATCH + "/postmaster.pid"]).stdout
    rc, out = playbook("restore.yml")[:2]
    assert rc != 0 and "restore_replace=true" in flat(out), out[-3000:]
    assert sh(NODES[-1], ["stat", "-c", "%Y", SCRATCH + "/postmaster.pid"]).stdout == started
    rc, out = playbook("restore.yml", "restore_remove=true")[:2]
    assert rc == 0, out[-4000:]


def test_secrets_stay_out_of_argv_and_output():
    passphrase = Path(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"], "pgbackrest-cipher-pass").read_text().strip()
    rc, out = playbook("backup.yml", "backup_type=diff", "backup_dir=%s" % (RESULTS / "backups"))[:2]
    assert rc == 0, out[-4000:]
    assert passphrase not in out
    for node in NODES + [REPO]:
        ps = sh(node, ["ps", "-eo", "args"]).stdout
        assert passphrase not in ps and "molecule-restapi-secret" not in ps
    assert json.loads(pgbackrest("--output=json", "info"))[0]["backup"][-1]["type"] == "diff"
