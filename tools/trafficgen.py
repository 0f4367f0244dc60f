"""Traffic generator for SuperSmartMatch (standard library only).

Replays a labelled data set (candidates, offers, and the offer that is truly
best under the healthy service's scoring) through one or more load-balancer
URLs as many distinct users (cookie ``ssm_uid=u<i>``, the NGINX sticky key;
header ``X-API-Key: <prefix>u<i>``, the key of the balancers' per-client rate
limit, 1000 requests/hour each), and reports per served version: share,
status codes, latency percentiles and precision of the top match.

CLI::

    trafficgen.py load  --target URL [--target URL ...] (--duration S | --requests N)
                        [--users N] [--concurrency N] [--rate R] [--stop-file PATH] [common]
    trafficgen.py probe --target URL [...] [--users N] [--concurrency N] [common]
    common: [--cacert PATH | --insecure] [--host-header NAME] [--timeout S]
            [--keep-alive] [--api-key-prefix PREFIX] [--seed N] [--dataset-size N]
            [--report-json PATH] [--allow-failures] [--quiet]

``load`` sends, per case, ``POST /api/v2/match`` then ``POST /api/v2/feedback``
(``--requests`` counts cases, i.e. match requests), as a real client does: the
feedback sends back the ``feedback_token`` of its match answer (the service
refuses feedback without it, 401; an answer without a token, from a release
before signed feedback, gets feedback without one). Every request of user
``u<i>`` carries ``X-API-Key: <api_key_prefix>u<i>`` (default prefix
``ssm-lab-``, so 1000 users stay under the per-client limit at the lab's
steady rate; ``--api-key-prefix ''`` sends no key). ``probe`` sends exactly one
match request per user and reports ``user_versions``. Exit code 0 if no request
failed (connection error, 5xx, unusable 200), else 1 unless --allow-failures;
2 on usage errors. By default every request uses a new connection (an NGINX
reload closes idle keep-alive connections); failures are never retried.

Library: ``run_load()``, ``run_probe()``, ``LoadRunner`` (start/stop/report in a
background thread), ``build_dataset()``, ``percentile()``, ``format_report()``.
"""
from __future__ import annotations

import argparse
import http.client
import json
import math
import os
import random
import signal
import ssl
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

try:  # the scoring must be the service's own: never a copy
    from supersmartmatch_service import matching
except ImportError:  # pragma: no cover - depends on how the script is launched
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "service" / "src"))
    from supersmartmatch_service import matching

# The lab's steady load, in cases per second (a match and its feedback: twice
# as many requests). The load generator shares the lab machine's CPUs with the
# balancers, the services and Ansible; unbounded, it saturates them and every
# measurement then times the contention, not the rollout.
LAB_STEADY_RATE = 50.0
MAX_DURATION_S = 3600.0
MAX_ERRORS_KEPT = 20
LATENCY_SAMPLES = 100_000  # per version, reservoir-sampled beyond this
MATCH_PATH = "/api/v2/match"
FEEDBACK_PATH = "/api/v2/feedback"
COOKIE_NAME = "ssm_uid"
API_KEY_HEADER = "X-API-Key"
API_KEY_PREFIX = "ssm-lab-"  # X-API-Key of user u<i>: ssm-lab-u<i>

SKILLS = (
    "python", "go", "java", "rust", "sql", "kubernetes", "docker", "ansible", "terraform", "aws",
    "gcp", "azure", "linux", "nginx", "postgres", "redis", "kafka", "react", "typescript", "css",
    "ml", "pandas", "spark", "airflow", "grafana", "prometheus", "bash", "c", "c++", "scala",
)
LOCATIONS = ("paris", "lyon", "lille", "nantes", "bordeaux", "marseille")


# --------------------------------------------------------------------------- data set
@dataclass(frozen=True)
class Case:
    """One labelled match request: ``label`` is the truly best offer id."""

    candidate: dict
    offers: list
    label: str

    def match_body(self) -> dict:
        return {"candidate": self.candidate, "offers": self.offers}


def _best(candidate: dict, offers: list) -> tuple[str, float]:
    """(best offer id, margin over the second best) with the service's scoring."""
    parsed = matching.parse_candidate(candidate)
    ranked = matching.rank(parsed, [matching.parse_offer(o) for o in offers])
    return ranked[0]["offer_id"], ranked[0]["score"] - ranked[1]["score"]


def build_dataset(seed: int = 42, size: int = 200) -> list[Case]:
    """Deterministic labelled cases: ``size`` candidates with 5-10 offers each.

    Offers are redrawn until the best one leads by at least 0.01, so the label
    is unambiguous: a healthy service scores precision 1.0, a reversed ranking 0.
    """
    rng = random.Random(seed)
    cases = []
    for i in range(size):
        candidate = {
            "id": f"c{i}",
            "skills": rng.sample(SKILLS, rng.randint(3, 8)),
            "experience_years": rng.randint(0, 15),
            "location": rng.choice(LOCATIONS),
        }
        for _attempt in range(1000):
            offers = []
            for j in range(rng.randint(5, 10)):
                pool = candidate["skills"] if rng.random() < 0.5 else SKILLS
                required = rng.sample(pool, min(len(pool), rng.randint(1, 5)))
                offers.append({
                    "id": f"o{i}-{j}",
                    "required_skills": required,
                    "min_experience": rng.randint(0, 10),
                    "location": rng.choice(LOCATIONS + ("remote",)),
                })
            label, margin = _best(candidate, offers)
            if margin >= 0.01:
                break
        else:  # pragma: no cover - statistically impossible
            raise RuntimeError(f"could not draw an unambiguous case {i}")
        cases.append(Case(candidate, offers, label))
    return cases


# --------------------------------------------------------------------------- helpers
def percentile(values, pct: float) -> float | None:
    """Nearest-rank percentile (``pct`` in 0..100) of ``values``; None if empty."""
    if not 0 <= pct <= 100:
        raise ValueError(f"percentile must be in 0..100, got {pct}")
    ordered = sorted(values)
    if not ordered:
        return None
    rank = max(1, math.ceil(pct / 100 * len(ordered)))
    return ordered[rank - 1]


@dataclass(frozen=True)
class Target:
    url: str
    scheme: str
    host: str
    port: int
    prefix: str

    @classmethod
    def parse(cls, url: str) -> "Target":
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"target must be an http(s)://host[:port][/prefix] URL, got {url!r}")
        port = parts.port or (443 if parts.scheme == "https" else 80)
        return cls(url, parts.scheme, parts.hostname, port, parts.path.rstrip("/"))


@dataclass
class Response:
    status: int
    version: str | None
    body: object
    latency_ms: float


class _SNIHTTPSConnection(http.client.HTTPSConnection):
    """HTTPS to an address, with SNI and certificate check for another name."""

    def __init__(self, host, port, *, server_hostname, **kwargs):
        super().__init__(host, port, **kwargs)
        self._server_hostname = server_hostname

    def connect(self):
        http.client.HTTPConnection.connect(self)
        self.sock = self._context.wrap_socket(self.sock, server_hostname=self._server_hostname)


class Client:
    """Minimal JSON-over-HTTP(S) client; new connection per request by default."""

    def __init__(self, *, cacert: str | None = None, insecure: bool = False,
                 host_header: str | None = None, timeout: float = 5.0, keep_alive: bool = False):
        if cacert and insecure:
            raise ValueError("cacert and insecure are mutually exclusive")
        self.host_header = host_header
        self.timeout = timeout
        self.keep_alive = keep_alive
        self._local = threading.local()
        self._ssl = ssl.create_default_context(cafile=cacert)
        if insecure:
            self._ssl.check_hostname = False
            self._ssl.verify_mode = ssl.CERT_NONE

    def _connection(self, target: Target):
        pool = getattr(self._local, "pool", None)
        if pool is None:
            pool = self._local.pool = {}
        if self.keep_alive and target in pool:
            return pool[target]
        if target.scheme == "https":
            conn = _SNIHTTPSConnection(target.host, target.port, timeout=self.timeout, context=self._ssl,
                                       server_hostname=self.host_header or target.host)
        else:
            conn = http.client.HTTPConnection(target.host, target.port, timeout=self.timeout)
        if self.keep_alive:
            pool[target] = conn
        return conn

    def _drop(self, target: Target, conn) -> None:
        conn.close()
        pool = getattr(self._local, "pool", {})
        if pool.get(target) is conn:
            del pool[target]

    def post(self, target: Target, path: str, payload: dict, user: str, api_key: str = "") -> Response:
        """POST JSON as ``user`` (with ``api_key`` unless empty); raises OSError/HTTPException on
        connection-level failure."""
        data = json.dumps(payload).encode()
        headers = {"Content-Type": "application/json", "Cookie": f"{COOKIE_NAME}={user}",
                   "Connection": "keep-alive" if self.keep_alive else "close"}
        if api_key:
            headers[API_KEY_HEADER] = api_key
        if self.host_header:
            headers["Host"] = self.host_header
        start = time.perf_counter()
        conn = self._connection(target)
        try:
            conn.request("POST", target.prefix + path, body=data, headers=headers)
            resp = conn.getresponse()
            raw = resp.read()
        except BaseException:
            self._drop(target, conn)
            raise
        if not self.keep_alive or resp.will_close:
            self._drop(target, conn)
        latency = (time.perf_counter() - start) * 1000
        try:
            body = json.loads(raw)
        except ValueError:
            body = None
        version = resp.getheader("X-SSM-Version")
        if not version and isinstance(body, dict) and isinstance(body.get("version"), str):
            version = body["version"]
        return Response(resp.status, version, body, latency)


# --------------------------------------------------------------------------- statistics
class _VersionStats:
    def __init__(self):
        self.count = 0
        self.failed = 0
        self.status = Counter()
        self.feedback_status = Counter()
        self.latencies: list[float] = []
        self.hits = 0
        self.misses = 0
        self.first_seen: float | None = None  # wall clock of the first and last match answered
        self.last_seen: float | None = None


class Stats:
    """Thread-safe accumulator of request outcomes."""

    def __init__(self, seed: int = 0):
        self._lock = threading.Lock()
        self._rng = random.Random(seed)
        self.total = self.matches = self.feedbacks = 0
        self.connection_errors = self.server_errors = self.protocol_errors = self.client_errors = 0
        self.unversioned = 0
        self.errors: dict[str, int] = {}
        self.versions: dict[str, _VersionStats] = {}
        self.user_seen: dict[str, set] = {}
        self.user_versions: dict[str, str | None] = {}

    def _error(self, text: str) -> None:
        if text in self.errors or len(self.errors) < MAX_ERRORS_KEPT:
            self.errors[text] = self.errors.get(text, 0) + 1

    def record(self, kind: str, user: str, target: Target, resp: Response | None,
               error: str | None = None, correct: bool | None = None, probe: bool = False) -> None:
        with self._lock:
            self.total += 1
            if kind == "match":
                self.matches += 1
            else:
                self.feedbacks += 1
            version = resp.version if resp else None
            if probe:
                self.user_versions[user] = version if resp and resp.status < 500 and not error else None
            vs = None
            if version:
                self.user_seen.setdefault(user, set()).add(version)
                vs = self.versions.setdefault(version, _VersionStats())
            elif kind == "match":
                self.unversioned += 1
            failed = False
            if resp is None:
                self.connection_errors += 1
                failed = True
                self._error(f"{kind} via {target.url}: {error}")
            elif resp.status >= 500:
                self.server_errors += 1
                failed = True
                self._error(f"{kind} via {target.url}: HTTP {resp.status}")
            elif resp.status >= 400:
                self.client_errors += 1
                self._error(f"{kind} via {target.url}: HTTP {resp.status}")
            elif error:
                self.protocol_errors += 1
                failed = True
                self._error(f"{kind} via {target.url}: {error}")
            if vs is None:
                return
            if failed:
                vs.failed += 1
            if kind != "match":
                vs.feedback_status[str(resp.status)] += 1
                return
            vs.count += 1
            now = time.time()
            if vs.first_seen is None:
                vs.first_seen = now
            vs.last_seen = now
            vs.status[str(resp.status)] += 1
            if len(vs.latencies) < LATENCY_SAMPLES:
                vs.latencies.append(resp.latency_ms)
            else:  # reservoir sampling keeps memory bounded on long runs
                slot = self._rng.randrange(vs.count)
                if slot < LATENCY_SAMPLES:
                    vs.latencies[slot] = resp.latency_ms
            if correct is True:
                vs.hits += 1
            elif correct is False:
                vs.misses += 1

    def snapshot(self) -> dict:
        with self._lock:
            versioned = sum(v.count for v in self.versions.values())
            hits = sum(v.hits for v in self.versions.values())
            misses = sum(v.misses for v in self.versions.values())
            versions = {}
            for name, v in sorted(self.versions.items()):
                lat = list(v.latencies)
                versions[name] = {
                    "count": v.count,
                    "share_pct": round(100.0 * v.count / versioned, 3) if versioned else 0.0,
                    "status": dict(sorted(v.status.items())),
                    "feedback_status": dict(sorted(v.feedback_status.items())),
                    "failed": v.failed,
                    "latency_ms": {f"p{p}": _round(percentile(lat, p)) for p in (50, 95, 99)},
                    "hits": v.hits,
                    "misses": v.misses,
                    "precision": _ratio(v.hits, v.misses),
                    "first_seen": _round(v.first_seen),
                    "last_seen": _round(v.last_seen),
                }
            return {
                "total_requests": self.total,
                "match_requests": self.matches,
                "feedback_requests": self.feedbacks,
                "failed_requests": self.connection_errors + self.server_errors + self.protocol_errors,
                "connection_errors": self.connection_errors,
                "server_errors": self.server_errors,
                "protocol_errors": self.protocol_errors,
                "client_errors": self.client_errors,
                "errors": [{"message": m, "count": c} for m, c in self.errors.items()],
                "unversioned": self.unversioned,
                "versions": versions,
                "precision": _ratio(hits, misses),
                "users_seen": len(self.user_seen),
                "users_switched": sum(1 for s in self.user_seen.values() if len(s) > 1),
                "user_versions": dict(self.user_versions),
            }


def _round(value):
    return None if value is None else round(value, 3)


def _ratio(hits: int, misses: int) -> float | None:
    return round(hits / (hits + misses), 6) if hits + misses else None


# --------------------------------------------------------------------------- runner
class LoadRunner:
    """Bounded traffic in background threads.

    ``mode="load"``: cases until ``duration`` seconds or ``requests`` cases
    (at least one bound; duration is capped at 3600 s), each a match then a
    feedback request. ``mode="probe"``: one match request per user for
    ``users`` users, no feedback. Stops early on ``stop()``, on ``stop_event``
    being set or when ``stop_file`` exists. ``report()`` works while running.
    Every request of user ``u<i>`` carries ``X-API-Key: <api_key_prefix>u<i>``
    (no header when ``api_key_prefix`` is empty).
    """

    def __init__(self, targets, *, mode: str = "load", duration: float | None = None,
                 requests: int | None = None, users: int = 1000, concurrency: int = 8,
                 rate: float | None = None, cacert: str | None = None, insecure: bool = False,
                 host_header: str | None = None, timeout: float = 5.0, keep_alive: bool = False,
                 feedback: bool = True, seed: int = 42, dataset_size: int = 200,
                 stop_file: str | None = None, stop_event: threading.Event | None = None,
                 dataset: list[Case] | None = None, api_key_prefix: str = API_KEY_PREFIX):
        if mode not in ("load", "probe"):
            raise ValueError(f"mode must be load or probe, got {mode!r}")
        if isinstance(targets, str):
            targets = [targets]
        self.targets = [Target.parse(t) for t in targets]
        if not self.targets:
            raise ValueError("at least one target is required")
        if users < 1 or concurrency < 1:
            raise ValueError("users and concurrency must be >= 1")
        if mode == "probe":
            requests, feedback = users, False
        if duration is None and requests is None:
            raise ValueError("load needs a bound: duration and/or requests")
        if duration is not None and not 0 < duration <= MAX_DURATION_S:
            raise ValueError(f"duration must be in (0, {MAX_DURATION_S:g}] seconds")
        if requests is not None and requests < 1:
            raise ValueError("requests must be >= 1")
        if rate is not None and rate <= 0:
            raise ValueError("rate must be > 0")
        if any(c.isspace() or not c.isprintable() for c in api_key_prefix or ""):
            raise ValueError(f"api_key_prefix must be printable without spaces, got {api_key_prefix!r}")
        self.mode = mode
        self.duration = min(duration or MAX_DURATION_S, MAX_DURATION_S)
        self.requests = requests
        self.users = users
        self.concurrency = concurrency
        self.rate = rate
        self.feedback = feedback
        self.api_key_prefix = api_key_prefix or ""
        self.stop_file = stop_file
        self.client = Client(cacert=cacert, insecure=insecure, host_header=host_header,
                             timeout=timeout, keep_alive=keep_alive)
        self.dataset = dataset or build_dataset(seed, dataset_size)
        self.stats = Stats(seed)
        self._stop = stop_event or threading.Event()
        self._lock = threading.Lock()
        self._issued = 0
        self._next_slot = 0.0
        self._threads: list[threading.Thread] = []
        self._started = self._finished = None
        self.stopped_by: str | None = None

    # -- control
    def start(self) -> "LoadRunner":
        if self._threads:
            raise RuntimeError("LoadRunner already started")
        self._started = time.monotonic()
        self._started_wall = time.time()
        self._next_slot = self._started
        self._threads = [threading.Thread(target=self._worker, name=f"trafficgen-{i}", daemon=True)
                         for i in range(min(self.concurrency, self.requests or self.concurrency))]
        for thread in self._threads:
            thread.start()
        return self

    def wait(self, timeout: float | None = None) -> bool:
        """Wait for the run to end by itself; True if it has ended."""
        deadline = None if timeout is None else time.monotonic() + timeout
        for thread in self._threads:
            thread.join(None if deadline is None else max(0.0, deadline - time.monotonic()))
        return not self.running

    def stop(self, timeout: float | None = 30.0) -> dict:
        """Ask the workers to stop, wait for in-flight requests, return the report."""
        self._halt("stop_event")
        self.wait(timeout)
        return self.report()

    def run(self) -> dict:
        """Start, wait until a bound or a stop condition is reached, report."""
        self.start()
        while not self.wait(0.5):
            pass
        return self.report()

    @property
    def running(self) -> bool:
        return any(t.is_alive() for t in self._threads)

    def report(self) -> dict:
        report = self.stats.snapshot()
        if self.mode != "probe":
            report.pop("user_versions")
        elapsed = 0.0
        if self._started is not None:
            elapsed = (self._finished or time.monotonic()) - self._started
        report.update({
            "mode": self.mode,
            "targets": [t.url for t in self.targets],
            "users": self.users,
            "concurrency": self.concurrency,
            "started_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(getattr(self, "_started_wall", 0))),
            "elapsed_s": round(elapsed, 3),
            "running": self.running,
            "stopped_by": self.stopped_by,
        })
        return report

    # -- workers
    def _halt(self, reason: str) -> None:
        with self._lock:
            if self.stopped_by is None:
                self.stopped_by = reason
        self._stop.set()

    def _claim(self) -> int | None:
        """Next case index, or None when a bound or a stop condition is reached."""
        if self.rate:
            with self._lock:
                now = time.monotonic()
                slot = max(now, self._next_slot)
                self._next_slot = slot + 1.0 / self.rate
            if slot > now and self._stop.wait(slot - now):
                self._halt("stop_event")
        if self._stop.is_set():
            self._halt("stop_event")
            return None
        if self.stop_file and os.path.exists(self.stop_file):
            self._halt("stop_file")
            return None
        if time.monotonic() - self._started >= self.duration:
            self._halt("duration")
            return None
        with self._lock:
            if self.requests is not None and self._issued >= self.requests:
                index = None
            else:
                index = self._issued
                self._issued += 1
        if index is None:
            self._halt("requests")
        return index

    def _worker(self) -> None:
        try:
            while (index := self._claim()) is not None:
                self._one(index)
        finally:
            with self._lock:
                self._finished = time.monotonic()

    def api_key(self, user: str) -> str:
        """The X-API-Key of ``user`` ('' when disabled): unique per simulated user."""
        return f"{self.api_key_prefix}{user}" if self.api_key_prefix else ""

    def _post(self, kind: str, target: Target, path: str, payload: dict, user: str):
        try:
            return self.client.post(target, path, payload, user, self.api_key(user)), None
        except (OSError, http.client.HTTPException, ssl.SSLError) as exc:
            return None, f"{type(exc).__name__}: {exc}"

    def _one(self, index: int) -> None:
        user = f"u{index % self.users}"
        target = self.targets[index % len(self.targets)]
        case = self.dataset[index % len(self.dataset)]
        probe = self.mode == "probe"
        resp, error = self._post("match", target, MATCH_PATH, case.match_body(), user)
        top = correct = token = None
        if resp is not None and resp.status == 200:
            try:
                top = resp.body["matches"][0]["offer_id"]
                correct = top == case.label
                token = resp.body.get("feedback_token")
            except (TypeError, KeyError, IndexError):
                error = "unusable match response body"
        self.stats.record("match", user, target, resp, error, correct, probe=probe)
        if self.feedback and top is not None:
            payload = {"candidate_id": case.candidate["id"], "offer_id": top, "correct": correct}
            if isinstance(token, str) and token:  # the real flow: the match answer's own token
                payload["feedback_token"] = token
            resp, error = self._post("feedback", target, FEEDBACK_PATH, payload, user)
            self.stats.record("feedback", user, target, resp, error)


def run_load(targets, *, duration: float | None = None, requests: int | None = None,
             users: int = 1000, concurrency: int = 8, rate: float | None = None,
             stop_event: threading.Event | None = None, **options) -> dict:
    """Run a bounded load in the calling thread and return the report.

    ``options``: cacert, insecure, host_header, timeout, keep_alive, feedback,
    seed, dataset_size, stop_file, dataset, api_key_prefix (see LoadRunner).
    """
    return LoadRunner(targets, mode="load", duration=duration, requests=requests, users=users,
                      concurrency=concurrency, rate=rate, stop_event=stop_event, **options).run()


def run_probe(targets, *, users: int = 10000, concurrency: int = 32,
              stop_event: threading.Event | None = None, **options) -> dict:
    """One match request per user u0..u<users-1>; report includes user_versions."""
    return LoadRunner(targets, mode="probe", users=users, concurrency=concurrency,
                      stop_event=stop_event, **options).run()


def exit_code(report: dict, allow_failures: bool = False) -> int:
    return 0 if allow_failures or report["failed_requests"] == 0 else 1


def format_report(report: dict) -> str:
    """Human-readable table of a report."""
    lines = [
        f"mode={report['mode']} targets={','.join(report['targets'])} elapsed={report['elapsed_s']}s "
        f"stopped_by={report['stopped_by']}",
        f"requests: total={report['total_requests']} match={report['match_requests']} "
        f"feedback={report['feedback_requests']} failed={report['failed_requests']} "
        f"(connection={report['connection_errors']} 5xx={report['server_errors']} "
        f"protocol={report['protocol_errors']}) 4xx={report['client_errors']} "
        f"unversioned={report['unversioned']}",
        f"users: seen={report['users_seen']} switched={report['users_switched']} "
        f"precision={_fmt(report['precision'])}",
        "",
        f"{'version':<20} {'count':>8} {'share%':>8} {'failed':>7} {'p50ms':>8} {'p95ms':>8} "
        f"{'p99ms':>8} {'precision':>9}  status",
    ]
    for name, v in report["versions"].items():
        lat = v["latency_ms"]
        status = " ".join(f"{k}:{n}" for k, n in v["status"].items())
        lines.append(f"{name:<20} {v['count']:>8} {v['share_pct']:>8.2f} {v['failed']:>7} "
                     f"{_fmt(lat['p50']):>8} {_fmt(lat['p95']):>8} {_fmt(lat['p99']):>8} "
                     f"{_fmt(v['precision']):>9}  {status}")
    if report["errors"]:
        lines += ["", f"errors (first {MAX_ERRORS_KEPT} distinct):"]
        lines += [f"  {e['count']:>6} x {e['message']}" for e in report["errors"]]
    return "\n".join(lines)


def _fmt(value) -> str:
    return "-" if value is None else f"{value:.3f}"


# --------------------------------------------------------------------------- CLI
def _parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--target", action="append", required=True, metavar="URL",
                        help="load balancer base URL (repeatable; requests are spread round-robin)")
    tls = common.add_mutually_exclusive_group()
    tls.add_argument("--cacert", metavar="PATH", help="CA bundle to verify HTTPS targets")
    tls.add_argument("--insecure", action="store_true", help="do not verify HTTPS certificates")
    common.add_argument("--host-header", metavar="NAME", help="Host header and TLS SNI name")
    common.add_argument("--timeout", type=float, default=5.0, help="per request timeout (s)")
    common.add_argument("--keep-alive", action="store_true", help="reuse connections (default: new per request)")
    common.add_argument("--api-key-prefix", default=API_KEY_PREFIX, metavar="PREFIX",
                        help=f"X-API-Key of user u<i> is PREFIX + u<i> (default {API_KEY_PREFIX!r}; '' sends none)")
    common.add_argument("--seed", type=int, default=42, help="data set seed")
    common.add_argument("--dataset-size", type=int, default=200, help="number of labelled cases")
    common.add_argument("--concurrency", type=int, help="worker threads (load: 8, probe: 32)")
    common.add_argument("--report-json", metavar="PATH", help="write the JSON report there")
    common.add_argument("--allow-failures", action="store_true", help="exit 0 even if requests failed")
    common.add_argument("--quiet", action="store_true", help="do not print the table")
    parser = argparse.ArgumentParser(description="SuperSmartMatch traffic generator")
    sub = parser.add_subparsers(dest="mode", required=True)
    load = sub.add_parser("load", parents=[common], help="bounded load with feedback")
    load.add_argument("--duration", type=float, help=f"seconds (max {MAX_DURATION_S:g})")
    load.add_argument("--requests", type=int, help="number of cases (match requests)")
    load.add_argument("--users", type=int, default=1000, help="distinct users (cookies)")
    load.add_argument("--rate", type=float, help="max cases per second")
    load.add_argument("--stop-file", metavar="PATH", help="stop when this file exists")
    probe = sub.add_parser("probe", parents=[common], help="one match request per user")
    probe.add_argument("--users", type=int, default=10000, help="distinct users (cookies)")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    options = dict(cacert=args.cacert, insecure=args.insecure, host_header=args.host_header,
                   timeout=args.timeout, keep_alive=args.keep_alive, seed=args.seed,
                   dataset_size=args.dataset_size, users=args.users, api_key_prefix=args.api_key_prefix)
    stop = threading.Event()
    try:
        if args.mode == "load":
            runner = LoadRunner(args.target, mode="load", duration=args.duration, requests=args.requests,
                                concurrency=args.concurrency or 8, rate=args.rate,
                                stop_file=args.stop_file, stop_event=stop, **options)
        else:
            runner = LoadRunner(args.target, mode="probe", concurrency=args.concurrency or 32,
                                stop_event=stop, **options)
    except (ValueError, OSError) as exc:
        parser.error(str(exc))
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    report = runner.run()
    if not args.quiet:
        print(format_report(report))
    if args.report_json:
        path = Path(args.report_json)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps(report, indent=2, sort_keys=True) + "\n")
        tmp.replace(path)
    return exit_code(report, args.allow_failures)


if __name__ == "__main__":
    sys.exit(main())
