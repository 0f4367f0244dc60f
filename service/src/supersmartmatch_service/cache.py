"""Optional cache of match results in a Redis Cluster (redis-py ``RedisCluster``).

Enabled by ``SSM_CACHE_NODES`` (see config.py). The client is imported only
then (Debian: python3-redis 4.3, venv created with --system-site-packages).

The cache saves latency, it is never needed for a correct answer: any cache
error makes the request compute its match as usual, counts
``ssm_cache_requests_total{result="error"}`` and opens a circuit. While it is
open (``SSM_CACHE_RETRY_S`` seconds) requests skip the cache without touching
the network; then one background probe (PING to the primaries) decides
whether to use it again, so no request pays a timeout while the cache is down
(only the request that discovers the outage does, bounded by the short socket
timeouts).

Key: ``ssm:match:<version>:<sha256>`` where the digest covers the release
version, the ranking variant (the degraded fault reverses it) and the raw
request body. A hit is answered without even parsing the body: an entry only
exists for a body that was valid (validation and ranking are deterministic),
so the cached answer is exactly what the service would compute. Bodies that
differ in formatting only are distinct entries (a miss, never a wrong answer).
Blue and green share entries only when they run the same version.

Each entry lives a random 50-100 % of ``SSM_CACHE_TTL``: entries made
together (a new release's first minutes) do not all expire together, so the
answers a release computes come as a steady stream, not in bursts every TTL.
The rollout judge compares the candidate's computed answers with the stable
release's, and needs the stable side's all the time.
"""
from __future__ import annotations

import hashlib
import json
import logging
import random
import sys
import threading

from .datatier import OK, UNREACHABLE, CachedProbe, Circuit, import_driver, read_secret

HEALTH_TTL_S = 1.5
KEY_PREFIX = "ssm:match:"
TTL_JITTER = 0.5  # an entry lives between (1 - TTL_JITTER) x ttl and ttl seconds


def entry_ttl(ttl: int, draw=random.random) -> int:
    """Seconds one entry lives: uniform in [(1 - TTL_JITTER) x ttl, ttl], at least 1."""
    low = max(1, int(round(ttl * (1 - TTL_JITTER))))
    return max(low, min(ttl, low + int(draw() * (ttl - low + 1))))


def canonical_json(value) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def request_digest(body: bytes) -> str:
    """sha256 (hex) of a raw request body."""
    return hashlib.sha256(body).hexdigest()


def cache_key(version: str, body: bytes, *, degraded: bool = False) -> str:
    """Cache key of a match request: depends on version, variant and the raw body only."""
    digest = hashlib.sha256()
    digest.update(f"{version}\0{'degraded' if degraded else 'normal'}\0".encode())
    digest.update(body)
    return f"{KEY_PREFIX}{version}:{digest.hexdigest()}"


def _log(message: str) -> None:
    print(f"supersmartmatch-service: {message}", file=sys.stderr, flush=True)


def _describe(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


class MatchCache:
    """Thread-safe get/set of cached match results with back-off; see the module docstring."""

    def __init__(self, config, metrics, *, factory=None, log=_log) -> None:
        if factory is None:
            import_driver("redis.cluster", "SSM_CACHE_NODES", "python3-redis")
            # redis-py logs every retried connection error with a traceback (logger.exception):
            # the outage is reported once by this class instead.
            logging.getLogger("redis.cluster").setLevel(logging.CRITICAL)
            factory = self._redis_cluster
        self._password = read_secret(config.cache_password_file, "SSM_CACHE_PASSWORD_FILE") or None
        self._factory = factory
        self.nodes = config.cache_nodes
        self.ttl = config.cache_ttl
        self._timeout = config.cache_timeout_ms / 1000
        self._client = None
        self._lock = threading.Lock()
        self._metrics = metrics
        self._log = log
        self.circuit = Circuit(config.cache_retry_s)
        self.health = CachedProbe(self._probe_health, HEALTH_TTL_S)
        metrics.enable_cache()

    def _redis_cluster(self):
        from redis.cluster import ClusterNode, RedisCluster

        # redis-py 4.3 deep-copies its connection kwargs while re-discovering a cluster whose
        # nodes are down; a copy that fails half-way leaves a ClusterNode whose __del__ prints
        # "AttributeError: ... no attribute 'redis_connection'" (redis/redis-py#2354).
        if not hasattr(ClusterNode, "redis_connection"):
            ClusterNode.redis_connection = None
        return RedisCluster(
            startup_nodes=[ClusterNode(host, port) for host, port in self.nodes],
            password=self._password,
            socket_timeout=self._timeout,
            socket_connect_timeout=self._timeout,
            cluster_error_retry_attempts=1,
            require_full_coverage=False,
        )

    # ------------------------------------------------------------------ public
    def get(self, key: str):
        """The cached value (parsed JSON) or None on a miss, an error or while backing off."""
        if not self.circuit.closed:
            self._maybe_probe()
            self._metrics.record_cache("error")
            return None
        try:
            raw = self._connected().get(key)
            value = None if raw is None else json.loads(raw)
        except Exception as exc:  # noqa: BLE001 - any cache failure only costs latency
            self._failed(exc)
            self._metrics.record_cache("error")
            return None
        self._metrics.record_cache("miss" if value is None else "hit")
        return value

    def set(self, key: str, value) -> None:
        """Store ``value`` for ``ttl`` seconds; a failure is counted as an error, never raised."""
        if not self.circuit.closed:
            return  # already counted by get()
        try:
            self._connected().set(key, canonical_json(value), ex=entry_ttl(self.ttl))
        except Exception as exc:  # noqa: BLE001
            self._failed(exc)
            self._metrics.record_cache("error")

    def state(self) -> str:
        """ok | unreachable, probed at most every HEALTH_TTL_S seconds."""
        return self.health.get()

    def close(self) -> None:
        with self._lock:
            client, self._client = self._client, None
        self._close(client)

    # ------------------------------------------------------------------ internals
    def _connected(self):
        with self._lock:
            if self._client is None:
                self._client = self._factory()
            return self._client

    def _failed(self, exc: BaseException) -> None:
        self.close()  # the next attempt rebuilds the client (and its view of the cluster)
        if self.circuit.failed(_describe(exc)):
            self._log(f"cache unreachable, bypassing it for {self.circuit.retry_after:g}s: {_describe(exc)}")

    def _ping(self) -> None:
        client = self._connected()
        client.ping(target_nodes=client.PRIMARIES)

    def _probe_health(self) -> str:
        if not self.circuit.closed:
            self._maybe_probe()
            return UNREACHABLE
        try:
            self._ping()
        except Exception as exc:  # noqa: BLE001
            self._failed(exc)
            return UNREACHABLE
        return OK

    def _maybe_probe(self) -> None:
        if self.circuit.claim_probe():
            threading.Thread(target=self._background_probe, name="ssm-cache-probe", daemon=True).start()

    def _background_probe(self) -> None:
        try:
            self._ping()
        except Exception as exc:  # noqa: BLE001
            self.close()
            self.circuit.probe_done(False, _describe(exc))
            return
        if self.circuit.probe_done(True):
            self._log("cache reachable again")

    @staticmethod
    def _close(client) -> None:
        if client is not None:
            try:
                client.close()
            except Exception:  # noqa: BLE001 - closing a broken client
                pass
