"""Configuration from environment variables (one EnvironmentFile per slot).

=====================  =========  ==============================================
Variable               Default    Meaning
=====================  =========  ==============================================
SSM_PORT               5062       TCP port (0 = ephemeral, for tests)
SSM_BIND               0.0.0.0    bind address (IPv4 or IPv6 literal, or name)
SSM_SLOT               blue       deployment slot: blue | green
SSM_VERSION            (package)  overrides the reported version (tests only)
SSM_FAULT_LATENCY_MS   0          latency added to /api/v2/match (0..60000)
SSM_FAULT_ERROR_RATE   0.0        probability (0..1) that /api/v2/match -> 500
SSM_FAULT_DEGRADED     0          1: ranking reversed (precision collapses)
SSM_FAULT_UNHEALTHY    0          1: /health answers 503 "unhealthy"
SSM_ACCESS_LOG         0          1: log every request on stderr
=====================  =========  ==============================================

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
    fault_latency_ms: int = 0
    fault_error_rate: float = 0.0
    fault_degraded: bool = False
    fault_unhealthy: bool = False
    access_log: bool = False

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
        latency = integer("SSM_FAULT_LATENCY_MS", 0, 0, MAX_LATENCY_MS)
        raw_rate = get("SSM_FAULT_ERROR_RATE", "0")
        try:
            rate = float(raw_rate)
        except ValueError:
            rate = float("nan")
        if not 0.0 <= rate <= 1.0:  # also rejects nan
            errors.append(f"SSM_FAULT_ERROR_RATE must be a number in 0.0..1.0, got {raw_rate!r}")
            rate = 0.0
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
        )
        if errors:
            raise ConfigError("; ".join(errors))
        return config
