"""A throw-away data tier on loopback: PostgreSQL 15 and a Redis Cluster (standard library only).

Used by tests/integration/test_service_data_tier.py and
benchmarks/service_data_tier.py. No containers: the Debian packages'
binaries run in temporary directories on free ports, and ``destroy()``
stops them and removes everything.

* ``LocalPostgres``: ``initdb``/``pg_ctl`` run as the unprivileged user
  ``nobody`` (we are root), TLS with a self-signed certificate made with
  openssl (``cert`` is also the CA for ``verify-full``), scram-sha-256, non-TLS
  connections rejected by pg_hba; an application role owning a database.
* ``LocalRedisCluster``: N ``redis-server`` processes (requirepass) joined by
  ``redis-cli --cluster create --cluster-replicas 1``.

Secrets are generated here, passed to the servers through files or stdin
(never argv) and kept in 0600 files (``*_password_file``).
Needs postgresql-15, redis-server, redis-tools, openssl (scripts/setup).
"""
from __future__ import annotations

import glob
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import tempfile

from labwait import wait_for

PG_OWNER = "nobody"


def port_free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_ports(count: int, bus_offset: int | None = None) -> list[int]:
    """``count`` free loopback ports (with port+bus_offset free too, for Redis cluster buses)."""
    ports: list[int] = []
    while len(ports) < count:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        if port in ports or (bus_offset and (port + bus_offset > 65535 or not port_free(port + bus_offset))):
            continue
        ports.append(port)
    return ports


def secret_file(directory: str, name: str, value: str, owner: pwd.struct_passwd | None = None) -> str:
    path = os.path.join(directory, name)
    with open(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w", encoding="utf-8") as handle:
        handle.write(value + "\n")
    if owner is not None:
        os.chown(path, owner.pw_uid, owner.pw_gid)
    return path


def require(*tools: str) -> None:
    missing = [t for t in tools if shutil.which(t) is None]
    if missing:
        raise RuntimeError(f"missing {', '.join(missing)}: scripts/setup installs postgresql-15, "
                           "redis-server, redis-tools and openssl")


def pg_bindir() -> str:
    for candidate in ["/usr/lib/postgresql/15/bin"] + sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True):
        if os.path.exists(os.path.join(candidate, "initdb")):
            return candidate
    raise RuntimeError("PostgreSQL server binaries not found: scripts/setup installs postgresql-15")


class LocalPostgres:
    """A PostgreSQL cluster owned by ``nobody``: TLS + scram-sha-256 on 127.0.0.1 only."""

    def __init__(self, role: str = "ssm", database: str = "supersmartmatch") -> None:
        require("openssl", "runuser")
        self.bindir = pg_bindir()
        self.role, self.database = role, database
        self.owner = pwd.getpwnam(PG_OWNER)
        self.dir = tempfile.mkdtemp(prefix="ssm-lab-pg-")
        self.data = os.path.join(self.dir, "data")
        try:
            self._setup()
        except BaseException:
            self.destroy()
            raise

    def _setup(self) -> None:
        os.chown(self.dir, self.owner.pw_uid, self.owner.pw_gid)
        self.port = free_ports(1)[0]
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
        pwfile = secret_file(self.dir, "admin.pw", self.admin_password, self.owner)
        self._as_owner("initdb", "-D", self.data, "-U", "postgres", f"--pwfile={pwfile}", "--auth=scram-sha-256",
                       "-E", "UTF8", "--locale=C", "--no-sync")
        os.unlink(pwfile)
        with open(os.path.join(self.data, "postgresql.conf"), "a", encoding="utf-8") as conf:
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
        with open(os.path.join(self.data, "pg_hba.conf"), "w", encoding="utf-8") as hba:
            hba.write("local all all scram-sha-256\n"
                      "hostnossl all all 0.0.0.0/0 reject\n"
                      "hostssl all all 127.0.0.1/32 scram-sha-256\n")
        self.app_password_file = secret_file(self.dir, "app.pw", self.app_password)
        self.start()
        # the password goes through stdin (psql variables), never argv
        self.psql("postgres", f"CREATE ROLE {self.role} LOGIN PASSWORD :'pw';\n"
                              f"CREATE DATABASE {self.database} OWNER {self.role};\n",
                  variables={"pw": self.app_password})

    def _as_owner(self, tool: str, *args: str) -> None:
        subprocess.run([shutil.which("runuser"), "-u", PG_OWNER, "--", os.path.join(self.bindir, tool), *args],
                       check=True, capture_output=True, cwd=self.dir, env={"PATH": "/usr/bin:/bin", "LC_ALL": "C"})

    def psql(self, dbname: str, sql: str, variables: dict | None = None) -> str:
        """Run ``sql`` (stdin) as the superuser over TLS; returns unaligned tuples-only output."""
        stdin = "".join(f"\\set {k} '{v}'\n" for k, v in (variables or {}).items()) + sql
        env = {"PATH": "/usr/bin:/bin", "LC_ALL": "C", "PGPASSWORD": self.admin_password, "PGSSLMODE": "verify-full",
               "PGSSLROOTCERT": self.cert, "PGCONNECT_TIMEOUT": "5"}
        proc = subprocess.run([os.path.join(self.bindir, "psql"), "-h", "127.0.0.1", "-p", str(self.port), "-U",
                               "postgres", "-d", dbname, "-X", "-q", "-tA", "-v", "ON_ERROR_STOP=1"],
                              input=stdin, capture_output=True, text=True, env=env, check=False, timeout=30)
        if proc.returncode != 0:
            raise RuntimeError(f"psql failed: {proc.stderr.strip()}")
        return proc.stdout

    def start(self) -> None:
        self._as_owner("pg_ctl", "-D", self.data, "-l", os.path.join(self.dir, "server.log"), "-w", "-t", "30", "start")

    def stop(self) -> None:
        self._as_owner("pg_ctl", "-D", self.data, "-m", "fast", "-w", "-t", "30", "stop")

    def running(self) -> bool:
        return os.path.exists(os.path.join(self.data, "postmaster.pid"))

    def connect_params(self, superuser: bool = True) -> dict:
        """Keyword arguments for psycopg2.connect()."""
        return {"host": "127.0.0.1", "port": self.port, "dbname": self.database,
                "user": "postgres" if superuser else self.role,
                "password": self.admin_password if superuser else self.app_password,
                "sslmode": "verify-full", "sslrootcert": self.cert, "connect_timeout": 5}

    def env(self) -> dict:
        """The service's SSM_DATABASE_* settings for this cluster."""
        return {
            "SSM_DATABASE_HOST": "127.0.0.1",
            "SSM_DATABASE_PORT": str(self.port),
            "SSM_DATABASE_NAME": self.database,
            "SSM_DATABASE_USER": self.role,
            "SSM_DATABASE_PASSWORD_FILE": self.app_password_file,
            "SSM_DATABASE_SSLMODE": "verify-full",
            "SSM_DATABASE_SSLROOTCERT": self.cert,
        }

    def destroy(self) -> None:
        try:
            if os.path.isdir(self.data) and self.running():
                self.stop()
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)


class LocalRedisCluster:
    """``count`` redis-server processes (half primaries, half replicas) with requirepass, on loopback."""

    def __init__(self, count: int = 6) -> None:
        require("redis-server", "redis-cli")
        self.dir = tempfile.mkdtemp(prefix="ssm-lab-redis-")
        self.procs: list[subprocess.Popen] = []
        try:
            self._setup(count)
        except BaseException:
            self.destroy()
            raise

    def _setup(self, count: int) -> None:
        self.password = secrets.token_urlsafe(18)
        self.password_file = secret_file(self.dir, "redis.pw", self.password)
        self.ports = free_ports(count, bus_offset=10000)
        self.cli_env = {"PATH": "/usr/bin:/bin", "REDISCLI_AUTH": self.password}
        for port in self.ports:
            node_dir = os.path.join(self.dir, str(port))
            os.mkdir(node_dir)
            conf = os.path.join(node_dir, "redis.conf")
            with open(os.open(conf, os.O_WRONLY | os.O_CREAT, 0o600), "w", encoding="utf-8") as handle:
                handle.write(f"port {port}\nbind 127.0.0.1\ndaemonize no\ndir {node_dir}\n"
                             f"logfile {node_dir}/redis.log\ncluster-enabled yes\n"
                             f"cluster-config-file nodes.conf\ncluster-node-timeout 2000\n"
                             f'save ""\nappendonly no\nrequirepass {self.password}\nmasterauth {self.password}\n')
            self.procs.append(subprocess.Popen(["redis-server", conf], stdout=subprocess.DEVNULL,
                                               stderr=subprocess.DEVNULL))
        for port in self.ports:
            wait_for(lambda port=port: self.cli(port, "PING").stdout.strip() == "PONG", 10, f"redis on {port}")
        subprocess.run(["redis-cli", "--cluster", "create", *self.nodes(), "--cluster-replicas", "1",
                        "--cluster-yes"], check=True, capture_output=True, env=self.cli_env, timeout=30)
        for port in self.ports:
            wait_for(lambda port=port: "cluster_state:ok" in self.cli(port, "CLUSTER", "INFO").stdout, 15,
                     f"cluster_state:ok on {port}")

    def cli(self, port: int, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run(["redis-cli", "-h", "127.0.0.1", "-p", str(port), *args], capture_output=True,
                              text=True, env=self.cli_env, timeout=10, check=False)

    def nodes(self) -> list[str]:
        return [f"127.0.0.1:{port}" for port in self.ports]

    def dbsize(self) -> int:
        """Keys stored on the primaries."""
        total = 0
        for port in self.ports:
            if "role:master" in self.cli(port, "INFO", "replication").stdout:
                total += int(self.cli(port, "DBSIZE").stdout.strip())
        return total

    def kill(self) -> None:
        for proc in self.procs:
            proc.kill()
        for proc in self.procs:
            proc.wait(10)

    def env(self) -> dict:
        """The service's SSM_CACHE_* settings for this cluster."""
        return {"SSM_CACHE_NODES": ",".join(self.nodes()), "SSM_CACHE_PASSWORD_FILE": self.password_file}

    def destroy(self) -> None:
        try:
            self.kill()
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)
