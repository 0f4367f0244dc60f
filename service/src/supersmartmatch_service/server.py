"""HTTP server and the ``supersmartmatch-service`` entry point.

Endpoints: ``POST /api/v2/match``, ``POST /api/v2/feedback``, ``GET /health``,
``GET /metrics``. All answers are JSON (metrics: Prometheus text) and carry the
``X-SSM-Version`` and ``X-SSM-Slot`` headers. HTTP/1.1 with keep-alive.

Signed feedback (tokens.py): a match answer carries ``feedback_token``, an
HMAC over its candidate id, its top offer id and an expiry. A feedback body
must hold it (``{"candidate_id", "offer_id", "correct", "feedback_token"}``):
missing, malformed, expired or forged -> 401 ``{"error", "reason"}`` with
``WWW-Authenticate: SSM-Feedback-Token``, counted in
``ssm_feedback_rejected_total{reason}`` and neither in ``ssm_feedback_total``
nor in the database.

Optional data tier (off unless configured, see config.py): matches and
feedback are stored in PostgreSQL (database.py) and match results cached in a
Redis Cluster (cache.py). When either is configured /health also reports
``database`` and ``cache`` (ok | unreachable | disabled): an unreachable
database makes it 503 "unhealthy" (feedback cannot be stored, it answers 503
too), an unreachable cache only "degraded" (200; matches are computed).
"""
from __future__ import annotations

import contextlib
import json
import os
import random
import signal
import socket
import sys
import threading
import time
import traceback
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

from . import matching
from .cache import MatchCache, cache_key, request_digest
from .config import Config, ConfigError
from .database import Database, DatabaseUnavailable, QueryFailed
from .datatier import DISABLED, DataTierError, compose_health
from .metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE
from .metrics import Metrics
from .tokens import FeedbackTokens, TokenRejected

MAX_BODY = 1 << 20  # 1 MiB
SHUTDOWN_GRACE_S = 10.0
JSON_TYPE = "application/json"
ROUTES = {
    "/api/v2/match": ("POST",),
    "/api/v2/feedback": ("POST",),
    "/health": ("GET", "HEAD"),
    "/metrics": ("GET", "HEAD"),
}


class HTTPError(Exception):
    def __init__(self, status: int, message: str, *, headers: dict | None = None, **extra) -> None:
        super().__init__(message)
        self.status = status
        self.payload = {"error": message, **extra}
        self.headers = headers or {}


def _json_body(raw: bytes):
    try:
        return json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise HTTPError(400, f"body is not valid JSON: {exc}") from None


class App:
    """Request handling independent of the HTTP plumbing; thread-safe."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.metrics = Metrics(config.version, config.slot)
        # First: a bad key file (KeyFileError, a ConfigError) stops the start before any connection is made.
        self.feedback_tokens = FeedbackTokens.from_config(config)
        # Both stay None (and the service stdlib-only) unless configured; they
        # raise DataTierError when configured but unusable (driver, secret).
        self.database = Database(config, self.metrics) if config.database_enabled else None
        self.cache = MatchCache(config, self.metrics) if config.cache_enabled else None
        self._active = 0
        self._idle = threading.Condition()

    # in-flight tracking, used for a graceful shutdown
    @contextlib.contextmanager
    def in_flight(self):
        with self._idle:
            self._active += 1
        try:
            yield
        finally:
            with self._idle:
                self._active -= 1
                self._idle.notify_all()

    def wait_idle(self, timeout: float) -> bool:
        with self._idle:
            return self._idle.wait_for(lambda: self._active == 0, timeout)

    def close(self) -> None:
        """Release data tier connections (after the last request)."""
        for dependency in (self.database, self.cache):
            if dependency is not None:
                dependency.close()

    def handle(self, method: str, path: str, body: bytes) -> tuple[int, object, str]:
        """Return (status, payload, content type); payload is a str for metrics."""
        allowed = ROUTES.get(path)
        if allowed is None:
            raise HTTPError(404, "not found", path=path)
        if method not in allowed:
            raise HTTPError(405, f"method {method} not allowed", allowed=list(allowed))
        if path == "/health":
            if self.database is None and self.cache is None:
                if self.config.fault_unhealthy:
                    return 503, self._health("unhealthy", 0), JSON_TYPE
                return 200, self._health("ok", 1), JSON_TYPE
            database = self.database.state() if self.database else DISABLED
            cache = self.cache.state() if self.cache else DISABLED
            code, status, up = compose_health(self.config.fault_unhealthy, database, cache)
            return code, {**self._health(status, up), "database": database, "cache": cache}, JSON_TYPE
        if path == "/metrics":
            return 200, self.metrics.render(), METRICS_CONTENT_TYPE
        if path == "/api/v2/match":
            return self._match(body)
        return self._feedback(body)

    def _health(self, status: str, up: int) -> dict:
        return {"status": status, "version": self.config.version, "slot": self.config.slot, "up": up}

    def _match(self, body: bytes):
        cfg = self.config
        start = time.perf_counter()
        if cfg.fault_latency_ms:
            time.sleep(cfg.fault_latency_ms / 1000)
        if cfg.fault_error_rate and random.random() < cfg.fault_error_rate:
            raise HTTPError(500, "injected fault")
        cached = None
        if self.cache is not None:
            # Entries exist only for valid bodies (see cache.py): a hit skips parsing and ranking.
            key = cache_key(cfg.version, body, degraded=cfg.fault_degraded)
            cached = self.cache.get(key)
            if not (isinstance(cached, dict) and isinstance(cached.get("candidate_id"), str)
                    and isinstance(cached.get("matches"), list)):
                cached = None
        if cached is not None:
            candidate_id, matches = cached["candidate_id"], cached["matches"]
        else:
            try:
                candidate, offers = matching.parse_match_request(_json_body(body))
            except matching.ValidationError as exc:
                raise HTTPError(400, str(exc)) from None
            candidate_id = candidate.id
            matches = matching.rank(candidate, offers, degraded=cfg.fault_degraded)
            if self.cache is not None:
                self.cache.set(key, {"candidate_id": candidate_id, "matches": matches})
            self.metrics.observe_computed_match(time.perf_counter() - start)
        if self.database is not None:  # queued, written in the background: the answer never waits for it
            self.database.record_match(candidate_id, request_digest(body), cached is not None, matches)
        # Issued per answer (never cached): feedback may rate the top offer of this answer until the expiry.
        token = self.feedback_tokens.issue(candidate_id, matches[0]["offer_id"]) if matches else None
        return 200, {
            "candidate_id": candidate_id,
            "matches": matches,
            "feedback_token": token,
            "version": cfg.version,
            "slot": cfg.slot,
        }, JSON_TYPE

    def _feedback(self, body: bytes):
        data = _json_body(body)
        try:
            candidate_id, offer_id, correct = matching.parse_feedback(data)
        except matching.ValidationError as exc:
            raise HTTPError(400, str(exc)) from None
        try:  # before anything is stored or counted
            self.feedback_tokens.verify(data.get("feedback_token"), candidate_id, offer_id)
        except TokenRejected as exc:
            self.metrics.record_feedback_rejected(exc.reason)
            raise HTTPError(401, str(exc), reason=exc.reason,
                            headers={"WWW-Authenticate": "SSM-Feedback-Token"}) from None
        if self.database is not None:
            try:
                self.database.record_feedback(candidate_id, offer_id, correct)
            except DatabaseUnavailable:
                raise HTTPError(503, "database unreachable, feedback not stored: retry later") from None
            except QueryFailed:  # logged by the database layer
                raise HTTPError(500, "feedback not stored") from None
        self.metrics.record_feedback(correct)
        return 202, {"accepted": True, "candidate_id": candidate_id, "offer_id": offer_id,
                     "version": self.config.version, "slot": self.config.slot}, JSON_TYPE


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "SuperSmartMatch"
    timeout = 75  # seconds an idle keep-alive connection is kept (above NGINX upstream keepalive_timeout 60 s)
    disable_nagle_algorithm = True  # headers and body are two writes: no 40 ms delayed-ACK stall
    server: "SSMServer"

    def do_GET(self):
        self._dispatch()

    do_HEAD = do_POST = do_PUT = do_DELETE = do_PATCH = do_GET

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            self.close_connection = True
            raise HTTPError(411, "chunked bodies are not supported, send Content-Length")
        raw = self.headers.get("Content-Length", "0") or "0"
        try:
            length = int(raw)
        except ValueError:
            length = -1
        if length < 0:
            self.close_connection = True
            raise HTTPError(400, f"invalid Content-Length {raw!r}")
        if length > MAX_BODY:
            self.close_connection = True
            raise HTTPError(413, f"body larger than {MAX_BODY} bytes")
        return self.rfile.read(length) if length else b""

    def _dispatch(self) -> None:
        app = self.server.app
        start = time.perf_counter()
        path = urlsplit(self.path).path
        metric_path = path if path in ROUTES else "other"
        with app.in_flight():
            try:
                body = self._read_body()
                status, payload, ctype = app.handle(self.command, path, body)
                headers = {}
            except HTTPError as exc:
                status, payload, ctype = exc.status, exc.payload, JSON_TYPE
                headers = {"Allow": ", ".join(exc.payload["allowed"])} if status == 405 else exc.headers
            except Exception:  # pragma: no cover - defensive
                traceback.print_exc(file=sys.stderr)
                status, payload, ctype, headers = 500, {"error": "internal error"}, JSON_TYPE, {}
            # Counted before the response is written: once a client holds its
            # response, /metrics already includes that request (no race).
            app.metrics.observe_request(self.command, metric_path, status, time.perf_counter() - start)
            self._respond(status, payload, ctype, headers)

    def _respond(self, status: int, payload, ctype: str, headers: dict | None = None) -> None:
        cfg = self.server.app.config
        data = (payload if isinstance(payload, str) else json.dumps(payload)).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("X-SSM-Version", cfg.version)
        self.send_header("X-SSM-Slot", cfg.slot)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def send_error(self, code, message=None, explain=None):
        """Protocol-level errors (bad request line, ...) as JSON with our headers."""
        self.close_connection = True
        self._respond(code, {"error": message or HTTPStatus(code).phrase}, JSON_TYPE)

    def log_message(self, format, *args):
        if self.server.app.config.access_log:
            super().log_message(format, *args)


class SSMServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 1024  # listen backlog; socketserver's default of 5 drops bursts

    def __init__(self, config: Config) -> None:
        self.app = App(config)
        if ":" in config.bind:
            self.address_family = socket.AF_INET6
        super().__init__((config.bind, config.port), Handler)

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        host = f"[{host}]" if ":" in host else host
        return f"http://{host}:{port}"


@contextlib.contextmanager
def running_server(config: Config):
    """Run a server in a background thread (for tests); yields the SSMServer."""
    server = SSMServer(config)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
        server.app.close()


def main(argv: list[str] | None = None) -> int:
    """Entry point: configure from the environment, serve until SIGTERM/SIGINT."""
    prog = "supersmartmatch-service"
    try:
        config = Config.from_env(os.environ)
    except ConfigError as exc:
        print(f"{prog}: invalid configuration: {exc}", file=sys.stderr)
        return 2
    try:
        server = SSMServer(config)
    except (ConfigError, DataTierError) as exc:  # ConfigError: the feedback key file
        print(f"{prog}: invalid configuration: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"{prog}: cannot listen on {config.bind}:{config.port}: {exc}", file=sys.stderr)
        return 1
    stopping = threading.Event()

    def on_signal(signum, _frame):
        if not stopping.is_set():
            stopping.set()
            print(f"{prog}: {signal.Signals(signum).name} received, shutting down", file=sys.stderr, flush=True)
            # shutdown() blocks until serve_forever() returns: call it off the main thread.
            threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    print(f"{prog}: version {config.version} slot {config.slot} listening on {server.url}", file=sys.stderr, flush=True)
    if server.app.feedback_tokens.ephemeral:
        print(f"{prog}: warning: SSM_FEEDBACK_KEY_FILE is not set: feedback tokens are signed with a random key"
              " of this process and verify on this process only (set it when several processes or hosts serve"
              " the same users, or when feedback must survive a restart)", file=sys.stderr, flush=True)
    else:
        print(f"{prog}: feedback tokens signed with the first of {server.app.feedback_tokens.key_count} key(s)"
              f" of {config.feedback_key_file} (valid {config.feedback_token_ttl}s)", file=sys.stderr, flush=True)
    if server.app.database is not None:
        server.app.database.warm_up()
        print(f"{prog}: storing matches and feedback in {server.app.database.endpoint}"
              f" (sslmode {config.database_sslmode})", file=sys.stderr, flush=True)
    if server.app.cache is not None:
        nodes = ",".join(f"{h}:{p}" for h, p in config.cache_nodes)
        print(f"{prog}: caching matches in Redis Cluster {nodes} (ttl {config.cache_ttl}s)", file=sys.stderr, flush=True)
    try:
        server.serve_forever(poll_interval=0.5)
    finally:
        server.app.wait_idle(SHUTDOWN_GRACE_S)  # let in-flight requests finish
        server.server_close()
        server.app.close()
    print(f"{prog}: stopped", file=sys.stderr, flush=True)
    return 0
