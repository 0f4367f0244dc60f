"""Thread-safe Prometheus metrics, rendered in text exposition format 0.0.4."""
from __future__ import annotations

import threading
from collections import defaultdict
from collections.abc import Callable

from .tokens import REASONS as FEEDBACK_REJECTED_REASONS

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
CACHE_RESULTS = ("hit", "miss", "error")
# Fine below 200 ms (the p95 gate's threshold): the p95 is interpolated within
# a bucket, and the judge compares the candidate's p95 with the stable side's,
# so a 40 % slower release must not land in the same bucket as the stable one.
# A match answers in well under 1 ms on an idle host: the buckets go down to
# 0.25 ms, about 20 % apart there.
DURATION_BUCKETS = (0.00025, 0.0004, 0.0005, 0.0006, 0.0007, 0.0008, 0.001, 0.0012, 0.0015, 0.002, 0.0025,
                    0.003, 0.004, 0.005, 0.0075, 0.01, 0.015, 0.02, 0.03, 0.04, 0.05, 0.06, 0.075, 0.1,
                    0.125, 0.15, 0.175, 0.2, 0.25, 0.5, 1, 2.5, 5)


def _escape(value: str) -> str:
    return str(value).replace("\\", r"\\").replace("\n", r"\n").replace('"', r"\"")


def _labels(pairs) -> str:
    return "{" + ",".join(f'{k}="{_escape(v)}"' for k, v in pairs) + "}"


def _num(value: float) -> str:
    return format(value, "g") if isinstance(value, float) else str(value)


def _new_histogram() -> list:
    """[per-bucket counts (non cumulative) + overflow, sum, count]."""
    return [[0] * (len(DURATION_BUCKETS) + 1), 0.0, 0]


def _observe(histogram: list, seconds: float) -> None:
    index = next((i for i, b in enumerate(DURATION_BUCKETS) if seconds <= b), len(DURATION_BUCKETS))
    histogram[0][index] += 1
    histogram[1] += seconds
    histogram[2] += 1


def _render_histogram(name: str, base: tuple, histogram) -> list[str]:
    """The _bucket (cumulative), _sum and _count lines of one histogram series."""
    counts, total, count = histogram
    out, cumulative = [], 0
    for bound, n in zip(DURATION_BUCKETS + ("+Inf",), counts):
        cumulative += n
        le = bound if bound == "+Inf" else _num(float(bound))
        out.append(f"{name}_bucket{_labels(base + (('le', le),))} {cumulative}")
    out.append(f"{name}_sum{_labels(base)} {total!r}")
    out.append(f"{name}_count{_labels(base)} {count}")
    return out


class Metrics:
    """Request counter, request duration histogram, feedback counters, build info.

    All series carry the constant labels ``version`` and ``slot``.
    """

    def __init__(self, version: str, slot: str) -> None:
        self.version = version
        self.slot = slot
        self._lock = threading.Lock()
        self._requests: dict[tuple[str, str, str], int] = defaultdict(int)
        # (path, status) -> [per-bucket counts (non cumulative) + overflow, sum, count]
        self._durations: dict[tuple[str, str], list] = {}
        # the same for the match answers that were computed (not served from the cache)
        self._computed = _new_histogram()
        self._feedback = {"hit": 0, "miss": 0}
        # refused feedback (401), by reason: never part of _feedback (the precision gate's counter)
        self._feedback_rejected = dict.fromkeys(FEEDBACK_REJECTED_REASONS, 0)
        # data tier series exist only when that tier is configured (None: not rendered)
        self._cache: dict[str, int] | None = None
        self._database_errors: dict[str, int] | None = None
        # write-behind queue of match records: (depth getter, capacity), None without a database
        self._match_queue: tuple[Callable[[], int], int] | None = None

    def enable_cache(self) -> None:
        with self._lock:
            self._cache = dict.fromkeys(CACHE_RESULTS, 0)

    def enable_database(self, operations) -> None:
        with self._lock:
            self._database_errors = dict.fromkeys(operations, 0)

    def enable_match_queue(self, depth: Callable[[], int], capacity: int) -> None:
        """Export the depth (read at each scrape from ``depth()``) and capacity of the match write queue."""
        with self._lock:
            self._match_queue = (depth, int(capacity))

    def record_cache(self, result: str) -> None:
        """One cache request: hit, miss or error (failed, or skipped while backing off)."""
        with self._lock:
            self._cache[result] += 1

    def record_database_error(self, operation: str, count: int = 1) -> None:
        """``count`` failed (or skipped) database operations / records not written."""
        with self._lock:
            self._database_errors[operation] = self._database_errors.get(operation, 0) + count

    def cache_counts(self) -> dict[str, int]:
        with self._lock:
            return dict(self._cache or {})

    def database_error_counts(self) -> dict[str, int]:
        with self._lock:
            return dict(self._database_errors or {})

    def observe_request(self, method: str, path: str, status: int, seconds: float) -> None:
        status_s = str(status)
        with self._lock:
            self._requests[(method, path, status_s)] += 1
            _observe(self._durations.setdefault((path, status_s), _new_histogram()), seconds)

    def observe_computed_match(self, seconds: float) -> None:
        """A match answer computed by this release (not served from the cache), ``seconds`` after its start.

        The judge compares candidate and stable on these: a new release starts
        with a cold cache, so its overall latency is no measure of its code.
        """
        with self._lock:
            _observe(self._computed, seconds)

    def record_feedback(self, correct: bool) -> None:
        with self._lock:
            self._feedback["hit" if correct else "miss"] += 1

    def feedback_counts(self) -> dict[str, int]:
        with self._lock:
            return dict(self._feedback)

    def record_feedback_rejected(self, reason: str) -> None:
        """A feedback refused for ``reason`` (a feedback token missing, malformed, expired or forged)."""
        with self._lock:
            self._feedback_rejected[reason] += 1

    def feedback_rejected_counts(self) -> dict[str, int]:
        with self._lock:
            return dict(self._feedback_rejected)

    def render(self) -> str:
        const = (("version", self.version), ("slot", self.slot))
        with self._lock:
            requests = sorted(self._requests.items())
            durations = sorted((k, (list(v[0]), v[1], v[2])) for k, v in self._durations.items())
            computed = (list(self._computed[0]), self._computed[1], self._computed[2])
            feedback = dict(self._feedback)
            rejected = dict(self._feedback_rejected)
            cache = None if self._cache is None else dict(self._cache)
            database_errors = None if self._database_errors is None else sorted(self._database_errors.items())
            match_queue = self._match_queue
        out = [
            "# HELP ssm_http_requests_total HTTP requests handled.",
            "# TYPE ssm_http_requests_total counter",
        ]
        for (method, path, status), value in requests:
            out.append(f"ssm_http_requests_total{_labels((('method', method), ('path', path), ('status', status)) + const)} {value}")
        out += [
            "# HELP ssm_http_request_duration_seconds HTTP request duration in seconds.",
            "# TYPE ssm_http_request_duration_seconds histogram",
        ]
        for (path, status), histogram in durations:
            out += _render_histogram("ssm_http_request_duration_seconds", (("path", path), ("status", status)) + const,
                                     histogram)
        out += [
            "# HELP ssm_match_computed_duration_seconds Duration of the match requests whose answer was computed, "
            "not served from the cache.",
            "# TYPE ssm_match_computed_duration_seconds histogram",
        ]
        out += _render_histogram("ssm_match_computed_duration_seconds", const, computed)
        out += [
            "# HELP ssm_feedback_total Feedback on the top match, by outcome.",
            "# TYPE ssm_feedback_total counter",
        ]
        for outcome in ("hit", "miss"):
            out.append(f"ssm_feedback_total{_labels(const + (('outcome', outcome),))} {feedback[outcome]}")
        out += [
            "# HELP ssm_feedback_rejected_total Feedback refused with 401 (its feedback token missing, malformed, "
            "expired or forged), by reason; not counted in ssm_feedback_total.",
            "# TYPE ssm_feedback_rejected_total counter",
        ]
        for reason in FEEDBACK_REJECTED_REASONS:
            out.append(f"ssm_feedback_rejected_total{_labels(const + (('reason', reason),))} {rejected[reason]}")
        if cache is not None:
            out += [
                "# HELP ssm_cache_requests_total Match cache requests, by result (error: failed or skipped while backing off).",
                "# TYPE ssm_cache_requests_total counter",
            ]
            for result in CACHE_RESULTS:
                out.append(f"ssm_cache_requests_total{_labels(const + (('result', result),))} {cache[result]}")
        if database_errors is not None:
            out += [
                "# HELP ssm_database_errors_total Failed (or skipped, while backing off) database operations.",
                "# TYPE ssm_database_errors_total counter",
            ]
            for operation, value in database_errors:
                out.append(f"ssm_database_errors_total{_labels(const + (('operation', operation),))} {value}")
        if match_queue is not None:
            depth, capacity = match_queue
            out += [
                "# HELP ssm_match_write_queue_depth Match records waiting in the write-behind queue for the database writer.",
                "# TYPE ssm_match_write_queue_depth gauge",
                f"ssm_match_write_queue_depth{_labels(const)} {int(depth())}",
                "# HELP ssm_match_write_queue_capacity Size of the write-behind queue (records beyond it are dropped and counted).",
                "# TYPE ssm_match_write_queue_capacity gauge",
                f"ssm_match_write_queue_capacity{_labels(const)} {capacity}",
            ]
        out += [
            "# HELP ssm_build_info Build information.",
            "# TYPE ssm_build_info gauge",
            f"ssm_build_info{_labels(const)} 1",
        ]
        return "\n".join(out) + "\n"
