"""Configuration from the environment, and the process entry point."""
import os
import re
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from supersmartmatch_service.config import Config, ConfigError

SRC = Path(__file__).resolve().parents[3] / "service" / "src"


def test_defaults():
    cfg = Config.from_env({})
    assert (cfg.port, cfg.bind, cfg.slot) == (5062, "0.0.0.0", "blue")
    assert (cfg.fault_latency_ms, cfg.fault_error_rate, cfg.fault_degraded, cfg.fault_unhealthy) == (0, 0.0, False, False)
    assert cfg.version  # package version, or 0+unknown from a source tree


def test_overrides():
    cfg = Config.from_env({
        "SSM_PORT": "8081", "SSM_BIND": "::1", "SSM_SLOT": "green", "SSM_VERSION": "2.0.0-rc1",
        "SSM_FAULT_LATENCY_MS": "250", "SSM_FAULT_ERROR_RATE": "0.5",
        "SSM_FAULT_DEGRADED": "true", "SSM_FAULT_UNHEALTHY": "1",
    })
    assert cfg == Config(port=8081, bind="::1", slot="green", version="2.0.0-rc1", fault_latency_ms=250,
                         fault_error_rate=0.5, fault_degraded=True, fault_unhealthy=True)


def test_fractional_latency_fault():
    assert Config.from_env({"SSM_FAULT_LATENCY_MS": "0.4"}).fault_latency_ms == 0.4


@pytest.mark.parametrize("name, value", [
    ("SSM_PORT", "http"), ("SSM_PORT", "70000"), ("SSM_PORT", "-1"),
    ("SSM_SLOT", "red"), ("SSM_BIND", "a b"), ("SSM_VERSION", "1.0 beta"),
    ("SSM_FAULT_LATENCY_MS", "fast"), ("SSM_FAULT_LATENCY_MS", "-5"), ("SSM_FAULT_LATENCY_MS", "nan"),
    ("SSM_FAULT_LATENCY_MS", "60001"),
    ("SSM_FAULT_ERROR_RATE", "1.5"), ("SSM_FAULT_ERROR_RATE", "nan"), ("SSM_FAULT_ERROR_RATE", "x"),
    ("SSM_FAULT_DEGRADED", "maybe"), ("SSM_FAULT_UNHEALTHY", "2"),
])
def test_bad_values_name_the_variable(name, value):
    with pytest.raises(ConfigError, match=name):
        Config.from_env({name: value})


def test_all_errors_reported_at_once():
    with pytest.raises(ConfigError) as err:
        Config.from_env({"SSM_PORT": "x", "SSM_SLOT": "red"})
    assert "SSM_PORT" in str(err.value) and "SSM_SLOT" in str(err.value)


def _env(**extra):
    env = {k: v for k, v in os.environ.items() if not k.startswith("SSM_")}
    env.update(PYTHONPATH=str(SRC), **extra)
    return env


def test_main_exits_2_on_bad_env():
    proc = subprocess.run([sys.executable, "-m", "supersmartmatch_service"], env=_env(SSM_SLOT="purple"),
                          capture_output=True, text=True, timeout=30, check=False)
    assert proc.returncode == 2
    assert "invalid configuration" in proc.stderr and "SSM_SLOT" in proc.stderr


def test_main_serves_and_stops_gracefully_on_sigterm():
    proc = subprocess.Popen([sys.executable, "-m", "supersmartmatch_service"],
                            env=_env(SSM_PORT="0", SSM_BIND="127.0.0.1", SSM_VERSION="3.1.4", SSM_SLOT="green"),
                            stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stderr.readline()
        url = re.search(r"listening on (http://\S+)", line).group(1)
        with urllib.request.urlopen(url + "/health", timeout=5) as resp:
            assert resp.status == 200
            assert resp.headers["X-SSM-Version"] == "3.1.4" and resp.headers["X-SSM-Slot"] == "green"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
        assert "SIGTERM received" in proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
