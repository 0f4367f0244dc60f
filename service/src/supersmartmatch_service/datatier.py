"""Pieces shared by the optional data tier (PostgreSQL, Redis Cluster).

* ``Circuit``       -- back-off after a dependency failed: callers skip it
  (fail fast) until a single background probe finds it reachable again.
* ``CachedProbe``   -- /health probes run at most once per ``ttl`` seconds.
* ``compose_health``-- the /health answer from the fault flag and the
  dependency states.
* ``read_secret``   -- passwords come from files only (never env or argv).

All of it is pure logic with an injectable clock (unit-tested with fakes).
"""
from __future__ import annotations

import threading
import time
from collections.abc import Callable

OK = "ok"
UNREACHABLE = "unreachable"
DISABLED = "disabled"
STATES = (OK, UNREACHABLE, DISABLED)


class DataTierError(RuntimeError):
    """The data tier is configured but cannot be used at all (driver or secret missing)."""


def import_driver(module: str, variable: str, package: str):
    """Import a driver module only when its dependency is configured."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise DataTierError(
            f"{variable} is set but the Python module {module!r} is not importable ({exc}): "
            f"install the Debian package {package} and create the release virtualenv with "
            f"--system-site-packages (or pip install it into the virtualenv)") from None


def read_secret(path: str, variable: str) -> str:
    """The first line of ``path`` (a password file); '' when ``path`` is empty."""
    if not path:
        return ""
    try:
        with open(path, encoding="utf-8") as handle:
            secret = handle.readline().rstrip("\r\n")
    except OSError as exc:
        raise DataTierError(f"{variable}: cannot read {path}: {exc.strerror}") from None
    if not secret:
        raise DataTierError(f"{variable}: {path} is empty")
    return secret


class Circuit:
    """Closed: use the dependency. Open (after a failure): skip it until
    ``retry_after`` seconds have passed, then let exactly one probe through;
    the probe's outcome closes the circuit or re-opens it for another period.
    """

    def __init__(self, retry_after: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.retry_after = float(retry_after)
        self._clock = clock
        self._lock = threading.Lock()
        self._open = False
        self._retry_at = 0.0
        self._probing = False
        self.last_error = ""

    @property
    def closed(self) -> bool:
        with self._lock:
            return not self._open

    def succeeded(self) -> bool:
        """Record a success; True when this closed an open circuit."""
        with self._lock:
            was_open, self._open = self._open, False
            self.last_error = ""
            return was_open

    def failed(self, error: str = "") -> bool:
        """Record a failure; True when this opened a closed circuit."""
        with self._lock:
            was_open, self._open = self._open, True
            self._retry_at = self._clock() + self.retry_after
            self.last_error = error
            return not was_open

    def claim_probe(self) -> bool:
        """True (once per back-off period) when the caller should probe the dependency now."""
        with self._lock:
            if not self._open or self._probing or self._clock() < self._retry_at:
                return False
            self._probing = True
            return True

    def probe_done(self, ok: bool, error: str = "") -> bool:
        """Record the probe's outcome; True when it closed the circuit."""
        with self._lock:
            self._probing = False
        if ok:
            return self.succeeded()
        self.failed(error)
        return False


class CachedProbe:
    """Run ``probe()`` at most once per ``ttl`` seconds; concurrent callers wait for the running probe."""

    def __init__(self, probe: Callable[[], str], ttl: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._probe = probe
        self.ttl = float(ttl)
        self._clock = clock
        self._lock = threading.Lock()
        self._value: str | None = None
        self._at = 0.0

    def get(self) -> str:
        with self._lock:
            now = self._clock()
            if self._value is None or now - self._at >= self.ttl:
                self._value = self._probe()
                self._at = self._clock()
            return self._value


def compose_health(fault_unhealthy: bool, database: str, cache: str) -> tuple[int, str, int]:
    """(HTTP status, status field, up) of /health.

    The database is needed for correctness (feedback must be persisted): unreachable -> 503
    "unhealthy". The cache only saves latency: unreachable -> 200 "degraded".
    """
    if database not in STATES or cache not in STATES:
        raise ValueError(f"unknown dependency state database={database!r} cache={cache!r}")
    if fault_unhealthy or database == UNREACHABLE:
        return 503, "unhealthy", 0
    if cache == UNREACHABLE:
        return 200, "degraded", 1
    return 200, "ok", 1
