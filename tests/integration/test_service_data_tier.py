"""The service against a REAL PostgreSQL 15 (scram + TLS) and a REAL 6-node Redis Cluster.

Both run on loopback, started here in temporary directories on free ports and
stopped at the end (no containers): PostgreSQL via initdb/pg_ctl as the
unprivileged user ``nobody`` (TLS with a self-signed certificate made with
openssl, non-TLS connections rejected by pg_hba), Redis Cluster as six
redis-server processes (requirepass) joined by ``redis-cli --cluster create``.
The service runs in-process on an ephemeral port, configured from SSM_* env
exactly as its systemd unit does.

Needs the Debian packages postgresql-15, redis-server, redis-tools and openssl
(scripts/setup) and psycopg2 + redis in the venv (requirements-test.txt).
"""
import glob
import http.client
import json
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT / "service" / "src") not in sys.path:
    sys.path.insert(0, str(ROOT / "service" / "src"))

import psycopg2  # noqa: E402

from supersmartmatch_service.config import Config  # noqa: E402
from supersmartmatch_service.server import running_server  # noqa: E402

PG_USER = "nobody"
APP_ROLE = "ssm"
APP_DB = "supersmartmatch"
CASE = {
    "candidate": {"id": "cand-7", "skills": ["python", "sql"], "experience_years": 4, "location": "paris"},
    "offers": [
        {"id": "far", "required_skills": ["go"], "min_experience": 8, "location": "lyon"},
        {"id": "best", "required_skills": ["python", "sql"], "min_experience": 2, "location": "paris"},
        {"id": "mid", "required_skills": ["python", "go"], "min_experience": 4, "location": "remote"},
    ],
}
RANKING = ["best", "mid", "far"]


# --------------------------------------------------------------------------- helpers
def _port_free(port):
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _free_ports(count, bus_offset=None):
    """``count`` free loopback ports (and port+bus_offset free too, for Redis cluster buses)."""
    ports = []
    while len(ports) < count:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        if port in ports or (bus_offset and (port + bus_offset > 65535 or not _port_free(port + bus_offset))):
            continue
        ports.append(port)
    return ports


def _wait(predicate, timeout, what):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.1)


def _secret_file(directory, name, value, owner=None):
    path = os.path.join(directory, name)
    with open(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as handle:
        handle.write(value + "\n")
    if owner is not None:
        os.chown(path, owner.pw_uid, owner.pw_gid)
    return path


def _pg_bindir():
    for candidate in ["/usr/lib/postgresql/15/bin"] + sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True):
        if os.path.exists(os.path.join(candidate, "initdb")):
            return candidate
    pytest.fail("PostgreSQL server binaries not found: scripts/setup installs postgresql-15")


def request(server, method, path, body=None):
    host, port = server.server_address[:2]
    conn = http.client.HTTPConnection(host, port, timeout=30)
    try:
        conn.request(method, path, body=None if body is None else json.dumps(body).encode())
        resp = conn.getresponse()
        payload = resp.read()
        if resp.getheader("Content-Type", "").startswith("application/json"):
            return resp.status, json.loads(payload)
        return resp.status, payload.decode()
    finally:
        conn.close()


def metric(server, name, **labels):
    text = request(server, "GET", "/metrics")[1]
    want = [f'{k}="{v}"' for k, v in labels.items()]
    for line in text.splitlines():
        if line.startswith(name + "{") and all(w in line for w in want):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"no sample {name} {labels} in /metrics")


# --------------------------------------------------------------------------- PostgreSQL
class Postgres:
    """A PostgreSQL cluster owned by ``nobody``: TLS + scram-sha-256 on 127.0.0.1 only."""

    def __init__(self):
        self.bindir = _pg_bindir()
        self.owner = pwd.getpwnam(PG_USER)
        self.dir = tempfile.mkdtemp(prefix="ssm-it-pg-")
        self.data = os.path.join(self.dir, "data")
        try:
            self._setup()
        except BaseException:
            self.destroy()
            raise

    def _setup(self):
        os.chown(self.dir, self.owner.pw_uid, self.owner.pw_gid)
        self.port = _free_ports(1)[0]
        self.admin_password = secrets.token_urlsafe(18)
        self.app_password = secrets.token_urlsafe(18)
        self.cert = os.path.join(self.dir, "server.crt")
        self.key = os.path.join(self.dir, "server.key")
        subprocess.run(
            ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
             "-days", "2", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
             "-keyout", self.key, "-out", self.cert],
            check=True, capture_output=True)
        for path in (self.cert, self.key):
            os.chown(path, self.owner.pw_uid, self.owner.pw_gid)
        os.chmod(self.key, 0o600)
        pwfile = _secret_file(self.dir, "admin.pw", self.admin_password, self.owner)
        self._as_owner("initdb", "-D", self.data, "-U", "postgres", f"--pwfile={pwfile}", "--auth=scram-sha-256",
                       "-E", "UTF8", "--locale=C", "--no-sync")
        os.unlink(pwfile)
        with open(os.path.join(self.data, "postgresql.conf"), "a") as conf:
            conf.write(f"""
listen_addresses = '127.0.0.1'
port = {self.port}
unix_socket_directories = '{self.dir}'
ssl = on
ssl_cert_file = '{self.cert}'
ssl_key_file = '{self.key}'
password_encryption = 'scram-sha-256'
fsync = off
synchronous_commit = off
full_page_writes = off
shared_buffers = 16MB
max_connections = 40
""")
        with open(os.path.join(self.data, "pg_hba.conf"), "w") as hba:
            hba.write("local all all scram-sha-256\n"
                      "hostnossl all all 0.0.0.0/0 reject\n"
                      "hostssl all all 127.0.0.1/32 scram-sha-256\n")
        self.app_password_file = _secret_file(self.dir, "app.pw", self.app_password)
        self.start()
        conn = self.admin()
        try:
            with conn.cursor() as cur:
                cur.execute(f"CREATE ROLE {APP_ROLE} LOGIN PASSWORD %s", (self.app_password,))
                cur.execute(f"CREATE DATABASE {APP_DB} OWNER {APP_ROLE}")
        finally:
            conn.close()

    def _as_owner(self, tool, *args):
        subprocess.run([shutil.which("runuser"), "-u", PG_USER, "--", os.path.join(self.bindir, tool), *args],
                       check=True, capture_output=True, cwd=self.dir, env={"PATH": "/usr/bin:/bin", "LC_ALL": "C"})

    def start(self):
        self._as_owner("pg_ctl", "-D", self.data, "-l", os.path.join(self.dir, "server.log"), "-w", "-t", "30", "start")

    def stop(self):
        self._as_owner("pg_ctl", "-D", self.data, "-m", "fast", "-w", "-t", "30", "stop")

    def running(self):
        return os.path.exists(os.path.join(self.data, "postmaster.pid"))

    def admin(self, dbname="postgres", sslmode="verify-full"):
        conn = psycopg2.connect(host="127.0.0.1", port=self.port, user="postgres", password=self.admin_password,
                                dbname=dbname, sslmode=sslmode, sslrootcert=self.cert, connect_timeout=5)
        conn.autocommit = True
        return conn

    def query(self, sql, params=None):
        conn = self.admin(APP_DB)
        try:
            with conn.cursor() as cur:
                cur.execute(sql, params)
                return cur.fetchall()
        finally:
            conn.close()

    def env(self):
        return {
            "SSM_DATABASE_HOST": "127.0.0.1",
            "SSM_DATABASE_PORT": str(self.port),
            "SSM_DATABASE_NAME": APP_DB,
            "SSM_DATABASE_USER": APP_ROLE,
            "SSM_DATABASE_PASSWORD_FILE": self.app_password_file,
            "SSM_DATABASE_SSLMODE": "verify-full",
            "SSM_DATABASE_SSLROOTCERT": self.cert,
        }

    def destroy(self):
        try:
            if self.running():
                self.stop()
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture(scope="module")
def ssm_postgres():
    for tool in ("openssl", "runuser"):
        if shutil.which(tool) is None:
            pytest.fail(f"{tool} is missing")
    pg = Postgres()
    yield pg
    pg.destroy()


# --------------------------------------------------------------------------- Redis Cluster
class RedisCluster:
    """Six redis-server processes (3 primaries + 3 replicas) with requirepass, on loopback."""

    def __init__(self, count=6):
        if shutil.which("redis-server") is None or shutil.which("redis-cli") is None:
            pytest.fail("redis-server/redis-cli missing: scripts/setup installs redis-server and redis-tools")
        self.dir = tempfile.mkdtemp(prefix="ssm-it-redis-")
        self.procs = []
        try:
            self._setup(count)
        except BaseException:
            self.destroy()
            raise

    def _setup(self, count):
        self.password = secrets.token_urlsafe(18)
        self.password_file = _secret_file(self.dir, "redis.pw", self.password)
        self.ports = _free_ports(count, bus_offset=10000)
        self.cli_env = {"PATH": "/usr/bin:/bin", "REDISCLI_AUTH": self.password}
        for port in self.ports:
            node_dir = os.path.join(self.dir, str(port))
            os.mkdir(node_dir)
            conf = os.path.join(node_dir, "redis.conf")
            with open(os.open(conf, os.O_WRONLY | os.O_CREAT, 0o600), "w") as handle:
                handle.write(f"port {port}\nbind 127.0.0.1\ndaemonize no\ndir {node_dir}\n"
                             f"logfile {node_dir}/redis.log\ncluster-enabled yes\n"
                             f"cluster-config-file nodes.conf\ncluster-node-timeout 2000\n"
                             f'save ""\nappendonly no\nrequirepass {self.password}\nmasterauth {self.password}\n')
            self.procs.append(subprocess.Popen(["redis-server", conf], stdout=subprocess.DEVNULL,
                                               stderr=subprocess.DEVNULL))
        for port in self.ports:
            _wait(lambda port=port: self.cli(port, "PING").stdout.strip() == "PONG", 10, f"redis on {port}")
        subprocess.run(["redis-cli", "--cluster", "create", *self.nodes(), "--cluster-replicas", "1",
                        "--cluster-yes"], check=True, capture_output=True, env=self.cli_env, timeout=30)
        for port in self.ports:
            _wait(lambda port=port: "cluster_state:ok" in self.cli(port, "CLUSTER", "INFO").stdout, 15,
                  f"cluster_state:ok on {port}")

    def cli(self, port, *args):
        return subprocess.run(["redis-cli", "-h", "127.0.0.1", "-p", str(port), *args], capture_output=True,
                              text=True, env=self.cli_env, timeout=10, check=False)

    def nodes(self):
        return [f"127.0.0.1:{port}" for port in self.ports]

    def dbsize(self):
        """Keys stored on the primaries."""
        total = 0
        for port in self.ports:
            if "role:master" in self.cli(port, "INFO", "replication").stdout:
                total += int(self.cli(port, "DBSIZE").stdout.strip())
        return total

    def kill(self):
        for proc in self.procs:
            proc.kill()
        for proc in self.procs:
            proc.wait(10)

    def env(self):
        return {"SSM_CACHE_NODES": ",".join(self.nodes()), "SSM_CACHE_PASSWORD_FILE": self.password_file}

    def destroy(self):
        try:
            self.kill()
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture
def ssm_redis_cluster():
    cluster = RedisCluster()
    yield cluster
    cluster.destroy()


# --------------------------------------------------------------------------- the service
@pytest.fixture
def ssm_data_service():
    """ssm_data_service(**env) -> a running in-process service configured like a slot."""
    with ExitStack() as stack:
        def _serve(**env):
            env = {"SSM_PORT": "0", "SSM_BIND": "127.0.0.1", "SSM_VERSION": "3.1.0", "SSM_SLOT": "green", **env}
            return stack.enter_context(running_server(Config.from_env(env)))
        yield _serve


# --------------------------------------------------------------------------- tests
def test_postgres_fixture_requires_tls(ssm_postgres):
    with pytest.raises(psycopg2.OperationalError, match="no encryption"):
        ssm_postgres.admin(sslmode="disable").close()


def test_rows_land_and_second_match_is_a_cache_hit(ssm_postgres, ssm_redis_cluster, ssm_data_service):
    server = ssm_data_service(**ssm_postgres.env(), **ssm_redis_cluster.env())
    status, health = request(server, "GET", "/health")
    assert status == 200
    assert health == {"status": "ok", "version": "3.1.0", "slot": "green", "up": 1,
                      "database": "ok", "cache": "ok"}

    status, first = request(server, "POST", "/api/v2/match", CASE)
    assert status == 200 and [m["offer_id"] for m in first["matches"]] == RANKING
    assert ssm_redis_cluster.dbsize() == 1
    # same content, other key order: same cache entry
    reordered = {"offers": CASE["offers"], "candidate": dict(reversed(list(CASE["candidate"].items())))}
    status, second = request(server, "POST", "/api/v2/match", reordered)
    assert status == 200 and second == first
    assert metric(server, "ssm_cache_requests_total", result="miss", version="3.1.0", slot="green") == 1
    assert metric(server, "ssm_cache_requests_total", result="hit") == 1
    assert metric(server, "ssm_cache_requests_total", result="error") == 0

    status, body = request(server, "POST", "/api/v2/feedback",
                           {"candidate_id": "cand-7", "offer_id": "best", "correct": True})
    assert status == 202 and body["accepted"] is True

    rows = ssm_postgres.query(
        "SELECT version, slot, candidate_id, cached, top_offer_id, matches FROM ssm_matches"
        " WHERE candidate_id = 'cand-7' ORDER BY created_at")
    assert [(r[0], r[1], r[2], r[3], r[4]) for r in rows] == [
        ("3.1.0", "green", "cand-7", False, "best"), ("3.1.0", "green", "cand-7", True, "best")]
    assert rows[0][5] == first["matches"]
    assert ssm_postgres.query("SELECT version, slot, candidate_id, offer_id, correct FROM ssm_feedback"
                              " WHERE candidate_id = 'cand-7'") == [("3.1.0", "green", "cand-7", "best", True)]


def test_dropped_sessions_reconnect_on_the_next_request(ssm_postgres, ssm_data_service):
    """A Patroni failover behind HAProxy drops every session: the next write reconnects and succeeds."""
    server = ssm_data_service(**ssm_postgres.env())
    feedback = {"candidate_id": "cand-failover", "offer_id": "x", "correct": False}
    assert request(server, "POST", "/api/v2/feedback", feedback)[0] == 202
    killed = ssm_postgres.query("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                                " WHERE usename = %s", (APP_ROLE,))[0][0]
    assert killed >= 1
    status, body = request(server, "POST", "/api/v2/feedback", feedback)
    assert status == 202, body
    assert ssm_postgres.query("SELECT count(*) FROM ssm_feedback WHERE candidate_id = 'cand-failover'") == [(2,)]
    assert metric(server, "ssm_database_errors_total", operation="insert_feedback") == 0


def test_cache_killed_matches_stay_correct_and_health_degrades(ssm_postgres, ssm_redis_cluster, ssm_data_service):
    server = ssm_data_service(**ssm_postgres.env(), **ssm_redis_cluster.env(), SSM_CACHE_RETRY_S="30")
    assert request(server, "POST", "/api/v2/match", CASE)[0] == 200
    ssm_redis_cluster.kill()

    status, body = request(server, "POST", "/api/v2/match", CASE)  # discovers the outage
    assert status == 200 and [m["offer_id"] for m in body["matches"]] == RANKING
    timings = []
    for _attempt in range(5):  # backing off: no cache round trip, no timeout paid
        start = time.monotonic()
        status, again = request(server, "POST", "/api/v2/match", CASE)
        timings.append(time.monotonic() - start)
        assert status == 200 and again["matches"] == body["matches"]
    assert max(timings) < 0.2, timings
    assert metric(server, "ssm_cache_requests_total", result="error") >= 6

    def degraded():
        result = request(server, "GET", "/health")
        return result if result[1].get("cache") == "unreachable" else None
    status, health = _wait(degraded, 5, "/health to report the cache unreachable")
    assert status == 200 and health["status"] == "degraded" and health["up"] == 1 and health["database"] == "ok"


def test_database_stopped_is_unhealthy_then_reconnects(ssm_postgres, ssm_data_service):
    server = ssm_data_service(**ssm_postgres.env())
    assert request(server, "GET", "/health")[1]["database"] == "ok"
    ssm_postgres.stop()
    try:
        def unhealthy():
            result = request(server, "GET", "/health")
            return result if result[0] == 503 else None
        status, health = _wait(unhealthy, 10, "/health 503 with the database stopped")
        assert health == {"status": "unhealthy", "version": "3.1.0", "slot": "green", "up": 0,
                          "database": "unreachable", "cache": "disabled"}
        status, body = request(server, "POST", "/api/v2/feedback",
                               {"candidate_id": "cand-outage", "offer_id": "best", "correct": True})
        assert status == 503 and "not stored" in body["error"]
        status, body = request(server, "POST", "/api/v2/match", CASE)  # matching does not need the database
        assert status == 200 and [m["offer_id"] for m in body["matches"]] == RANKING
        assert metric(server, "ssm_database_errors_total", operation="insert_feedback") >= 1
        assert metric(server, "ssm_database_errors_total", operation="insert_match") >= 1
    finally:
        ssm_postgres.start()

    _wait(lambda: request(server, "GET", "/health")[0] == 200, 15, "/health 200 after the database restarted")
    status = request(server, "POST", "/api/v2/feedback",
                     {"candidate_id": "cand-outage", "offer_id": "best", "correct": True})[0]
    assert status == 202
    assert ssm_postgres.query("SELECT count(*) FROM ssm_feedback WHERE candidate_id = 'cand-outage'") == [(1,)]
