"""Configuration from environment variables (one EnvironmentFile per slot).

=====================  =========  ==============================================
Variable               Default    Meaning
=====================  =========  ==============================================
SSM_PORT               5062       TCP port (0 = ephemeral, for tests)
SSM_BIND               0.0.0.0    bind address (IPv4 or IPv6 literal, or name)
SSM_SLOT               blue       deployment slot: blue | green
SSM_VERSION            (package)  overrides the reported version (tests only)
SSM_FAULT_LATENCY_MS   0          latency added to /api/v2/match, ms (0..60000, fractions allowed)
SSM_FAULT_ERROR_RATE   0.0        probability (0..1) that /api/v2/match -> 500
SSM_FAULT_DEGRADED     0          1: ranking reversed (precision collapses)
SSM_FAULT_UNHEALTHY    0          1: /health answers 503 "unhealthy"
SSM_ACCESS_LOG         0          1: log every request on stderr
=====================  =========  ==============================================

Optional data tier (both off unless their first variable is set; see
``database.py`` and ``cache.py``). Secrets are only ever read from files:

=============================  ===============  ===============================
Variable                       Default          Meaning
=============================  ===============  ===============================
SSM_DATABASE_HOST              (empty: off)     PostgreSQL host(s) (HAProxy endpoints, comma-separated)
SSM_DATABASE_PORT              5000             its port
SSM_DATABASE_NAME              supersmartmatch  database
SSM_DATABASE_USER              supersmartmatch  role
SSM_DATABASE_PASSWORD_FILE     (empty: none)    file holding the role's password
SSM_DATABASE_SSLMODE           require          libpq sslmode
SSM_DATABASE_SSLROOTCERT       (empty)          CA bundle (verify-ca/verify-full)
SSM_DATABASE_CONNECT_TIMEOUT   3                seconds (2..60)
SSM_DATABASE_POOL_SIZE         4                connections at most (1..64)
SSM_CACHE_NODES                (empty: off)     Redis Cluster seeds, host:port,...
SSM_CACHE_PASSWORD_FILE        (empty: none)    file holding requirepass
SSM_CACHE_TTL                  300              seconds a cached match lives at most (each entry: a random 50-100 % of it)
SSM_CACHE_TIMEOUT_MS           250              Redis socket/connect timeout
SSM_CACHE_RETRY_S              5                back-off after a cache error
=============================  ===============  ===============================

Feedback tokens (see ``tokens.py``): every match answer carries a
``feedback_token`` that ``POST /api/v2/feedback`` must send back.

=============================  ===============  ===============================
Variable                       Default          Meaning
=============================  ===============  ===============================
SSM_FEEDBACK_KEY_FILE          (empty: random)  file of HMAC keys, one per line (>= 32 bytes each): the first signs,
                                                all verify. Empty: a random key of this process (a warning is logged)
SSM_FEEDBACK_TOKEN_TTL         3600             seconds a feedback token is accepted (60..604800)
=============================  ===============  ===============================

Booleans accept 1/0, true/false, yes/no, on/off.
"""
from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import metadata

PACKAGE = "supersmartmatch_service"
SLOTS = ("blue", "green")
MAX_LATENCY_MS = 60_000
_VERSION_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9.+_-]{0,63}$")
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}
SSLMODES = ("disable", "allow", "prefer", "require", "verify-ca", "verify-full")
_NAME_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.$-]{0,62}$")
# one host, or a comma-separated list that libpq tries in order (one HAProxy endpoint per node)
_HOST_RE = re.compile(r"^[A-Za-z0-9_.:-]+(,[A-Za-z0-9_.:-]+)*$")


class ConfigError(ValueError):
    """One or more environment variables are invalid (message lists them all)."""


def package_version() -> str:
    """The installed package version, or ``0+unknown`` when run from a source tree."""
    try:
        return metadata.version(PACKAGE)
    except metadata.PackageNotFoundError:
        return "0+unknown"


@dataclass(frozen=True)
class Config:
    port: int = 5062
    bind: str = "0.0.0.0"
    slot: str = "blue"
    version: str = "0+unknown"
    fault_latency_ms: float = 0
    fault_error_rate: float = 0.0
    fault_degraded: bool = False
    fault_unhealthy: bool = False
    access_log: bool = False
    # optional data tier: empty database_host / cache_nodes = disabled
    database_host: str = ""
    database_port: int = 5000
    database_name: str = "supersmartmatch"
    database_user: str = "supersmartmatch"
    database_password_file: str = ""
    database_sslmode: str = "require"
    database_sslrootcert: str = ""
    database_connect_timeout: int = 3
    database_pool_size: int = 4
    cache_nodes: tuple[tuple[str, int], ...] = ()
    cache_password_file: str = ""
    cache_ttl: int = 300
    cache_timeout_ms: int = 250
    cache_retry_s: int = 5
    # feedback tokens: the key file's path only (its keys are read by tokens.py, never kept here)
    feedback_key_file: str = ""
    feedback_token_ttl: int = 3600

    @property
    def database_enabled(self) -> bool:
        return bool(self.database_host)

    @property
    def cache_enabled(self) -> bool:
        return bool(self.cache_nodes)

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> "Config":
        """Build a Config from ``env``; raise ConfigError naming every bad variable."""
        errors: list[str] = []

        def get(name: str, default: str) -> str:
            return env.get(name, default).strip()

        def integer(name: str, default: int, low: int, high: int) -> int:
            raw = get(name, str(default))
            try:
                value = int(raw)
            except ValueError:
                value = None
            if value is None or not low <= value <= high:
                errors.append(f"{name} must be an integer in {low}..{high}, got {raw!r}")
                return default
            return value

        def boolean(name: str) -> bool:
            raw = get(name, "0").lower()
            if raw in _TRUE:
                return True
            if raw not in _FALSE:
                errors.append(f"{name} must be 1/0 (or true/false), got {raw!r}")
            return False

        port = integer("SSM_PORT", 5062, 0, 65535)
        bind = get("SSM_BIND", "0.0.0.0")
        if not bind or any(c.isspace() for c in bind):
            errors.append(f"SSM_BIND must be an address, got {bind!r}")
        slot = get("SSM_SLOT", "blue")
        if slot not in SLOTS:
            errors.append(f"SSM_SLOT must be one of {'|'.join(SLOTS)}, got {slot!r}")
        version = get("SSM_VERSION", "") or package_version()
        if not _VERSION_RE.match(version):
            errors.append(f"SSM_VERSION must match {_VERSION_RE.pattern}, got {version!r}")
        raw_latency = get("SSM_FAULT_LATENCY_MS", "0")
        try:
            latency = float(raw_latency)
        except ValueError:
            latency = float("nan")
        if not 0.0 <= latency <= MAX_LATENCY_MS:  # also rejects nan
            errors.append(f"SSM_FAULT_LATENCY_MS must be a number of milliseconds in 0..{MAX_LATENCY_MS}, "
                          f"got {raw_latency!r}")
            latency = 0.0
        raw_rate = get("SSM_FAULT_ERROR_RATE", "0")
        try:
            rate = float(raw_rate)
        except ValueError:
            rate = float("nan")
        if not 0.0 <= rate <= 1.0:  # also rejects nan
            errors.append(f"SSM_FAULT_ERROR_RATE must be a number in 0.0..1.0, got {raw_rate!r}")
            rate = 0.0
        db_host = get("SSM_DATABASE_HOST", "")
        if db_host and not _HOST_RE.match(db_host):
            errors.append(f"SSM_DATABASE_HOST must be a host name or address, or a comma-separated list of them, got {db_host!r}")
        db_port = integer("SSM_DATABASE_PORT", 5000, 1, 65535)
        db_name = get("SSM_DATABASE_NAME", "supersmartmatch")
        db_user = get("SSM_DATABASE_USER", "supersmartmatch")
        for name, value in (("SSM_DATABASE_NAME", db_name), ("SSM_DATABASE_USER", db_user)):
            if not _NAME_RE.match(value):
                errors.append(f"{name} must be a PostgreSQL identifier, got {value!r}")
        sslmode = get("SSM_DATABASE_SSLMODE", "require")
        if sslmode not in SSLMODES:
            errors.append(f"SSM_DATABASE_SSLMODE must be one of {'|'.join(SSLMODES)}, got {sslmode!r}")
        cache_nodes = []
        raw_nodes = get("SSM_CACHE_NODES", "")
        for item in filter(None, (n.strip() for n in raw_nodes.split(","))):
            node = parse_node(item)
            if node is None:
                errors.append(f"SSM_CACHE_NODES must be host:port[,host:port...], got {item!r}")
            else:
                cache_nodes.append(node)
        config = cls(
            port=port,
            bind=bind,
            slot=slot,
            version=version,
            fault_latency_ms=latency,
            fault_error_rate=rate,
            fault_degraded=boolean("SSM_FAULT_DEGRADED"),
            fault_unhealthy=boolean("SSM_FAULT_UNHEALTHY"),
            access_log=boolean("SSM_ACCESS_LOG"),
            database_host=db_host,
            database_port=db_port,
            database_name=db_name,
            database_user=db_user,
            database_password_file=get("SSM_DATABASE_PASSWORD_FILE", ""),
            database_sslmode=sslmode,
            database_sslrootcert=get("SSM_DATABASE_SSLROOTCERT", ""),
            database_connect_timeout=integer("SSM_DATABASE_CONNECT_TIMEOUT", 3, 2, 60),
            database_pool_size=integer("SSM_DATABASE_POOL_SIZE", 4, 1, 64),
            cache_nodes=tuple(cache_nodes),
            cache_password_file=get("SSM_CACHE_PASSWORD_FILE", ""),
            cache_ttl=integer("SSM_CACHE_TTL", 300, 1, 86400),
            cache_timeout_ms=integer("SSM_CACHE_TIMEOUT_MS", 250, 10, 10000),
            cache_retry_s=integer("SSM_CACHE_RETRY_S", 5, 1, 300),
            feedback_key_file=get("SSM_FEEDBACK_KEY_FILE", ""),
            feedback_token_ttl=integer("SSM_FEEDBACK_TOKEN_TTL", 3600, 60, 604800),
        )
        if errors:
            raise ConfigError("; ".join(errors))
        return config


def parse_node(text: str) -> tuple[str, int] | None:
    """``host:port`` or ``[v6]:port`` -> (host, port); None when malformed."""
    host, sep, port = text.strip().rpartition(":")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if not sep or not host or not _HOST_RE.match(host) or not port.isdigit() or not 1 <= int(port) <= 65535:
        return None
    return host, int(port)
