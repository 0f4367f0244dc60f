"""Optional persistence of matches and feedback in PostgreSQL (psycopg2).

Enabled by ``SSM_DATABASE_HOST`` (see config.py). The driver is imported only
then (Debian: python3-psycopg2, venv created with --system-site-packages).

Resilience (clients reach a Patroni cluster through HAProxy, which drops every
session when the primary changes):

* a small pool of autocommit connections; a connection found broken is
  discarded together with every idle one (they all went through the same
  failed endpoint) and the statement is retried ONCE on a fresh connection,
  so the first request after a failover reconnects and succeeds. Rows carry a
  client-generated UUID (``ON CONFLICT (id) DO NOTHING``): a retried insert
  never stores a row twice;
* when the retry fails too, the database is unreachable: the circuit opens and
  callers fail fast (no connect timeout per request) while one background
  probe per second looks for the database again;
* short connect timeout, TCP keepalives, a TCP user timeout and a statement
  timeout bound every wait;
* match records are written off the request path: a bounded queue drained in
  batches by one writer thread (a match answer never waits for the database;
  records that cannot be written -- queue full, database unreachable -- are
  dropped and counted; the queue's depth is the gauge
  ``ssm_match_write_queue_depth``). Feedback is written synchronously: the client learns
  whether it was stored (503 when the database is unreachable).

Tables are created idempotently (CREATE ... IF NOT EXISTS, serialised by an
advisory lock so two slots starting together do not race) on the first
connection, which the entry point opens in the background at start.
"""
from __future__ import annotations

import datetime
import json
import queue
import sys
import threading
import uuid

from .datatier import OK, UNREACHABLE, CachedProbe, Circuit, import_driver, read_secret

OPERATIONS = ("connect", "schema", "insert_match", "insert_feedback", "probe")
RETRY_AFTER_S = 1.0
HEALTH_TTL_S = 1.5
STATEMENT_TIMEOUT_MS = 5000
MATCH_QUEUE_SIZE = 10_000  # match records waiting for the writer thread
MATCH_BATCH = 200  # records per INSERT
SCHEMA_LOCK = 0x55_4D_61_74  # pg_advisory_lock key of the schema creation

SCHEMA = (
    """CREATE TABLE IF NOT EXISTS ssm_matches (
        id uuid PRIMARY KEY,
        created_at timestamptz NOT NULL,
        version text NOT NULL,
        slot text NOT NULL,
        candidate_id text NOT NULL,
        request_hash text NOT NULL,
        cached boolean NOT NULL,
        top_offer_id text,
        matches jsonb NOT NULL
    )""",
    "CREATE INDEX IF NOT EXISTS ssm_matches_version_slot_idx ON ssm_matches (version, slot, created_at)",
    """CREATE TABLE IF NOT EXISTS ssm_feedback (
        id uuid PRIMARY KEY,
        created_at timestamptz NOT NULL,
        version text NOT NULL,
        slot text NOT NULL,
        candidate_id text NOT NULL,
        offer_id text NOT NULL,
        correct boolean NOT NULL
    )""",
    "CREATE INDEX IF NOT EXISTS ssm_feedback_version_slot_idx ON ssm_feedback (version, slot, created_at)",
)
# created_at is the request's time (set by the service), not the insert's.
INSERT_MATCHES = (
    "INSERT INTO ssm_matches (id, created_at, version, slot, candidate_id, request_hash, cached, top_offer_id,"
    " matches) VALUES {rows} ON CONFLICT (id) DO NOTHING"
)
MATCH_ROW = "(%s, %s, %s, %s, %s, %s, %s, %s, %s::jsonb)"
INSERT_FEEDBACK = (
    "INSERT INTO ssm_feedback (id, created_at, version, slot, candidate_id, offer_id, correct)"
    " VALUES (%s, %s, %s, %s, %s, %s, %s) ON CONFLICT (id) DO NOTHING"
)


def _now():
    return datetime.datetime.now(datetime.timezone.utc)


class DatabaseUnavailable(Exception):
    """The database cannot be reached (connection failed twice, or backing off)."""


class QueryFailed(Exception):
    """The database answered with an error (permissions, missing table...) or the pool is busy."""


class PoolBusy(QueryFailed):
    """Every pooled connection stayed in use for the whole connect timeout."""


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _log(message: str) -> None:
    print(f"supersmartmatch-service: {message}", file=sys.stderr, flush=True)


class Database:
    """Thread-safe writer of matches and feedback; see the module docstring."""

    def __init__(self, config, metrics, *, driver=None, log=_log) -> None:
        self._pg = driver or import_driver("psycopg2", "SSM_DATABASE_HOST", "python3-psycopg2")
        password = read_secret(config.database_password_file, "SSM_DATABASE_PASSWORD_FILE")
        self._params = {
            "host": config.database_host,
            "port": config.database_port,
            "dbname": config.database_name,
            "user": config.database_user,
            "sslmode": config.database_sslmode,
            "connect_timeout": config.database_connect_timeout,
            "application_name": f"supersmartmatch-{config.slot}",
            "keepalives": 1,
            "keepalives_idle": 10,
            "keepalives_interval": 3,
            "keepalives_count": 3,
            "tcp_user_timeout": (config.database_connect_timeout + 5) * 1000,
            "options": f"-c statement_timeout={STATEMENT_TIMEOUT_MS}",
        }
        if config.database_sslrootcert:
            self._params["sslrootcert"] = config.database_sslrootcert
        self._password = password or None
        self.version = config.version
        self.slot = config.slot
        self.endpoint = f"{config.database_host}:{config.database_port}/{config.database_name}"
        self._acquire_timeout = float(config.database_connect_timeout)
        self._slots = threading.BoundedSemaphore(config.database_pool_size)
        self._idle: list = []
        self._lock = threading.Lock()
        self._schema_ready = False
        self._metrics = metrics
        self._log = log
        self.circuit = Circuit(RETRY_AFTER_S)
        self.health = CachedProbe(self._probe_health, HEALTH_TTL_S)
        metrics.enable_database(OPERATIONS)
        self._matches: queue.Queue = queue.Queue(MATCH_QUEUE_SIZE)
        metrics.enable_match_queue(self.queue_depth, MATCH_QUEUE_SIZE)
        self._writer = threading.Thread(target=self._write_matches, name="ssm-database-writer", daemon=True)
        self._writer.start()

    # ------------------------------------------------------------------ public
    def record_match(self, candidate_id: str, request_hash: str, cached: bool, matches: list[dict]) -> None:
        """Queue a match record for the writer thread (never blocks; a full queue drops it, counted)."""
        top = matches[0]["offer_id"] if matches else None
        row = (str(uuid.uuid4()), _now(), self.version, self.slot, candidate_id, request_hash, cached, top,
               json.dumps(matches, separators=(",", ":")))
        try:
            self._matches.put_nowait(row)
        except queue.Full:
            self._metrics.record_database_error("insert_match")

    def queue_depth(self) -> int:
        """Match records queued and not yet taken by the writer thread."""
        return self._matches.qsize()

    def record_feedback(self, candidate_id: str, offer_id: str, correct: bool) -> None:
        """Store a feedback now; raises DatabaseUnavailable / QueryFailed when it was not stored."""
        row = (str(uuid.uuid4()), _now(), self.version, self.slot, candidate_id, offer_id, correct)
        self._guarded("insert_feedback", INSERT_FEEDBACK, row)

    def state(self) -> str:
        """ok | unreachable, probed at most every HEALTH_TTL_S seconds."""
        return self.health.get()

    def close(self, timeout: float = 5.0) -> None:
        """Write the queued match records (for up to ``timeout`` s), then close the connections."""
        try:
            self._matches.put(None, timeout=timeout)
        except queue.Full:
            pass
        self._writer.join(timeout)
        self._drop_idle()

    def _write_matches(self) -> None:
        while True:
            row = self._matches.get()
            if row is None:
                return
            batch = [row]
            stop = False
            while len(batch) < MATCH_BATCH:
                try:
                    row = self._matches.get_nowait()
                except queue.Empty:
                    break
                if row is None:
                    stop = True
                    break
                batch.append(row)
            sql = INSERT_MATCHES.format(rows=", ".join([MATCH_ROW] * len(batch)))
            params = [value for row in batch for value in row]
            try:
                self._guarded("insert_match", sql, params, rows=len(batch))
            except (DatabaseUnavailable, QueryFailed):
                pass  # counted; match records are best effort
            except Exception as exc:  # pragma: no cover - keep the writer alive whatever happens
                self._metrics.record_database_error("insert_match")
                self._log(f"match records not written: {_first_line(exc)}")
            if stop:
                return

    # ------------------------------------------------------------------ internals
    def _guarded(self, operation: str, sql: str, params=None, rows: int = 1) -> None:
        """Run one statement through the circuit; count (``rows`` records lost) and re-raise failures."""
        if not self.circuit.closed:
            self._maybe_probe()
            self._metrics.record_database_error(operation, rows)
            raise DatabaseUnavailable(f"database unreachable (backing off): {self.circuit.last_error}")
        try:
            self._execute(operation, sql, params)
        except DatabaseUnavailable as exc:
            self._metrics.record_database_error(operation, rows)
            if self.circuit.failed(str(exc)):
                self._log(f"database {self.endpoint} unreachable, backing off: {exc}")
            raise
        except QueryFailed as exc:
            self._metrics.record_database_error(operation, rows)
            if operation != "probe":
                self._log(f"{operation} failed: {exc}")
            raise

    def _probe_health(self) -> str:
        if not self.circuit.closed:
            self._maybe_probe()
            return UNREACHABLE
        try:
            self._guarded("probe", "SELECT 1")
        except PoolBusy:
            return OK  # every connection is in use: the database is reachable, just busy
        except (DatabaseUnavailable, QueryFailed):
            return UNREACHABLE
        return OK

    def warm_up(self) -> None:
        """Connect (creating the tables) in the background, so they exist as soon as the service starts."""
        threading.Thread(target=self.state, name="ssm-database-warm-up", daemon=True).start()

    def _maybe_probe(self) -> None:
        if self.circuit.claim_probe():
            threading.Thread(target=self._background_probe, name="ssm-database-probe", daemon=True).start()

    def _background_probe(self) -> None:
        try:
            self._execute("probe", "SELECT 1")
        except (DatabaseUnavailable, QueryFailed) as exc:
            self.circuit.probe_done(False, str(exc))
            return
        except Exception as exc:  # pragma: no cover - never leave the circuit half-open
            self.circuit.probe_done(False, _first_line(exc))
            raise
        if self.circuit.probe_done(True):
            self._log(f"database {self.endpoint} reachable again")

    def _execute(self, operation: str, sql: str, params=None) -> None:
        """Run ``sql``; on a broken connection drop the idle pool and retry once."""
        if not self._slots.acquire(timeout=self._acquire_timeout):
            raise PoolBusy("all database connections are busy")
        try:
            for attempt in (1, 2):
                conn = None
                try:
                    conn = self._take()
                    with conn.cursor() as cur:
                        cur.execute(sql, params)
                except self._pg.Error as exc:
                    if conn is not None and not conn.closed:
                        self._give(conn)  # the server answered: the connection is fine
                        raise QueryFailed(f"{operation}: {_first_line(exc)}") from None
                    self._discard(conn)
                    self._drop_idle()
                    if attempt == 2:
                        raise DatabaseUnavailable(_first_line(exc)) from None
                else:
                    self._give(conn)
                    return
        finally:
            self._slots.release()

    def _take(self):
        with self._lock:
            if self._idle:
                return self._idle.pop()
        try:
            conn = self._pg.connect(password=self._password, **self._params)
        except self._pg.Error:
            self._metrics.record_database_error("connect")
            raise
        conn.autocommit = True
        if not self._schema_ready:
            self._create_schema(conn)
        return conn

    def _create_schema(self, conn) -> None:
        try:
            with conn.cursor() as cur:
                cur.execute("SELECT pg_advisory_lock(%s)", (SCHEMA_LOCK,))
                try:
                    for statement in SCHEMA:
                        cur.execute(statement)
                finally:
                    cur.execute("SELECT pg_advisory_unlock(%s)", (SCHEMA_LOCK,))
        except self._pg.Error as exc:
            if conn.closed:
                raise  # a connection error: the caller retries
            self._metrics.record_database_error("schema")
            self._log(f"cannot create the tables in {self.endpoint}: {_first_line(exc)}")
            return
        self._schema_ready = True

    def _give(self, conn) -> None:
        with self._lock:
            self._idle.append(conn)

    def _discard(self, conn) -> None:
        if conn is not None:
            try:
                conn.close()
            except Exception:  # noqa: BLE001 - closing a dead connection
                pass

    def _drop_idle(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for conn in idle:
            self._discard(conn)
