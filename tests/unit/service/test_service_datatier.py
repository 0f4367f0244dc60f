"""Pure logic of the optional data tier: configuration, cache key, back-off, health composition.

The real PostgreSQL / Redis Cluster behaviour is tested in
tests/integration/test_service_data_tier.py.
"""
import hashlib
import json
import re
import sys

import pytest

from supersmartmatch_service.cache import cache_key, request_digest
from supersmartmatch_service.config import Config, ConfigError, parse_node
from supersmartmatch_service.datatier import (
    CachedProbe, Circuit, DataTierError, compose_health, import_driver, read_secret)
from supersmartmatch_service.metrics import Metrics
from supersmartmatch_service.server import App

BODY = {"candidate": {"id": "c", "skills": ["a"], "experience_years": 1, "location": "x"},
        "offers": [{"id": "o", "required_skills": [], "min_experience": 0, "location": "remote"}]}


class FakeClock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


# --------------------------------------------------------------------------- configuration
def test_data_tier_is_off_by_default():
    cfg = Config.from_env({})
    assert not cfg.database_enabled and not cfg.cache_enabled
    assert (cfg.database_port, cfg.database_sslmode, cfg.cache_ttl) == (5000, "require", 300)


def test_data_tier_settings():
    cfg = Config.from_env({
        "SSM_DATABASE_HOST": "db1.example", "SSM_DATABASE_PORT": "5001", "SSM_DATABASE_NAME": "ssm",
        "SSM_DATABASE_USER": "app", "SSM_DATABASE_PASSWORD_FILE": "/etc/x/db.pw",
        "SSM_DATABASE_SSLMODE": "verify-full", "SSM_DATABASE_SSLROOTCERT": "/etc/x/ca.pem",
        "SSM_CACHE_NODES": "10.0.0.1:6379, 10.0.0.2:6380,[fd00::3]:6379", "SSM_CACHE_TTL": "60",
        "SSM_CACHE_PASSWORD_FILE": "/etc/x/redis.pw",
    })
    assert cfg.database_enabled and cfg.cache_enabled
    assert (cfg.database_host, cfg.database_port, cfg.database_name, cfg.database_user) == ("db1.example", 5001, "ssm", "app")
    assert (cfg.database_sslmode, cfg.database_sslrootcert) == ("verify-full", "/etc/x/ca.pem")
    assert cfg.cache_nodes == (("10.0.0.1", 6379), ("10.0.0.2", 6380), ("fd00::3", 6379))
    assert cfg.cache_ttl == 60


def test_database_host_may_list_every_endpoint():
    cfg = Config.from_env({"SSM_DATABASE_HOST": "data1,data2,data3"})
    assert cfg.database_host == "data1,data2,data3"


@pytest.mark.parametrize("name, value", [
    ("SSM_DATABASE_PORT", "0"), ("SSM_DATABASE_SSLMODE", "on"), ("SSM_DATABASE_HOST", "db host"),
    ("SSM_DATABASE_HOST", "db1,,db2"), ("SSM_DATABASE_HOST", "db1,"),
    ("SSM_DATABASE_USER", "a;b"), ("SSM_DATABASE_CONNECT_TIMEOUT", "1"), ("SSM_CACHE_NODES", "redis1"),
    ("SSM_CACHE_NODES", "redis1:0"), ("SSM_CACHE_TTL", "0"), ("SSM_CACHE_RETRY_S", "x"),
])
def test_bad_data_tier_values_name_the_variable(name, value):
    with pytest.raises(ConfigError, match=name):
        Config.from_env({name: value})


@pytest.mark.parametrize("text, node", [
    ("h:1", ("h", 1)), ("[::1]:6379", ("::1", 6379)), ("h", None), (":1", None), ("h:x", None), ("h:70000", None),
])
def test_parse_node(text, node):
    assert parse_node(text) == node


# --------------------------------------------------------------------------- secrets and drivers
def test_read_secret(tmp_path):
    path = tmp_path / "pw"
    path.write_text("s3cret\nignored\n")
    assert read_secret(str(path), "SSM_X") == "s3cret"
    assert read_secret("", "SSM_X") == ""
    with pytest.raises(DataTierError, match="SSM_X: cannot read"):
        read_secret(str(tmp_path / "missing"), "SSM_X")
    (tmp_path / "empty").write_text("\n")
    with pytest.raises(DataTierError, match="is empty"):
        read_secret(str(tmp_path / "empty"), "SSM_X")


def test_missing_driver_is_a_clear_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "psycopg2", None)  # import psycopg2 -> ImportError
    with pytest.raises(DataTierError, match="SSM_DATABASE_HOST is set but .*python3-psycopg2.*--system-site-packages"):
        import_driver("psycopg2", "SSM_DATABASE_HOST", "python3-psycopg2")
    with pytest.raises(DataTierError, match="psycopg2"):
        App(Config.from_env({"SSM_DATABASE_HOST": "db"}))


def test_unreadable_password_file_is_refused_at_start(tmp_path):
    cfg = Config.from_env({"SSM_CACHE_NODES": "127.0.0.1:1", "SSM_CACHE_PASSWORD_FILE": str(tmp_path / "nope")})
    with pytest.raises(DataTierError, match="SSM_CACHE_PASSWORD_FILE"):
        App(cfg)


# --------------------------------------------------------------------------- cache key
RAW = json.dumps(BODY).encode()


def test_cache_key_is_stable_and_names_the_version():
    assert cache_key("1.0.0", RAW) == cache_key("1.0.0", json.dumps(BODY).encode())
    assert re.fullmatch(r"ssm:match:1\.0\.0:[0-9a-f]{64}", cache_key("1.0.0", RAW))
    assert request_digest(RAW) == hashlib.sha256(RAW).hexdigest()


def test_cache_key_depends_on_version_variant_and_body():
    other = json.dumps({**BODY, "offers": [{**BODY["offers"][0], "id": "p"}]}).encode()
    reformatted = json.dumps(BODY, indent=1).encode()  # same content, other bytes: a distinct (never wrong) entry
    keys = {cache_key("1.0.0", RAW), cache_key("2.0.0", RAW), cache_key("1.0.0", RAW, degraded=True),
            cache_key("1.0.0", other), cache_key("1.0.0", reformatted)}
    assert len(keys) == 5


# --------------------------------------------------------------------------- back-off
def test_circuit_backs_off_then_lets_one_probe_through():
    clock = FakeClock()
    circuit = Circuit(5, clock)
    assert circuit.closed and not circuit.claim_probe()
    assert circuit.failed("boom") is True          # opened
    assert circuit.failed("boom again") is False   # already open
    assert not circuit.closed and circuit.last_error == "boom again"
    clock.now += 4.9
    assert not circuit.claim_probe()               # still backing off
    clock.now += 0.2
    assert circuit.claim_probe()                   # one probe...
    assert not circuit.claim_probe()               # ...at a time
    assert circuit.probe_done(False, "still down") is False
    assert not circuit.closed and not circuit.claim_probe()  # a new back-off period started
    clock.now += 5
    assert circuit.claim_probe()
    assert circuit.probe_done(True) is True
    assert circuit.closed and circuit.last_error == ""
    assert circuit.succeeded() is False            # already closed


def test_cached_probe_runs_at_most_once_per_ttl():
    clock = FakeClock()
    answers = iter(["ok", "unreachable", "ok"])
    calls = []

    def probe():
        calls.append(clock.now)
        return next(answers)

    cached = CachedProbe(probe, 1.5, clock)
    assert cached.get() == "ok"
    clock.now += 1.0
    assert cached.get() == "ok" and len(calls) == 1
    clock.now += 0.6
    assert cached.get() == "unreachable" and len(calls) == 2
    clock.now += 1.5
    assert cached.get() == "ok" and len(calls) == 3


# --------------------------------------------------------------------------- health composition
@pytest.mark.parametrize("fault, database, cache, expected", [
    (False, "ok", "ok", (200, "ok", 1)),
    (False, "ok", "disabled", (200, "ok", 1)),
    (False, "disabled", "ok", (200, "ok", 1)),
    (False, "ok", "unreachable", (200, "degraded", 1)),
    (False, "disabled", "unreachable", (200, "degraded", 1)),
    (False, "unreachable", "ok", (503, "unhealthy", 0)),
    (False, "unreachable", "unreachable", (503, "unhealthy", 0)),
    (True, "ok", "ok", (503, "unhealthy", 0)),
])
def test_compose_health(fault, database, cache, expected):
    assert compose_health(fault, database, cache) == expected


def test_compose_health_rejects_unknown_states():
    with pytest.raises(ValueError):
        compose_health(False, "up", "ok")


# --------------------------------------------------------------------------- metrics
def test_data_tier_metrics_only_when_enabled():
    metrics = Metrics("1.0.0", "blue")
    assert "ssm_cache_requests_total" not in metrics.render()
    assert "ssm_database_errors_total" not in metrics.render()
    metrics.enable_cache()
    metrics.enable_database(("insert_match", "probe"))
    metrics.record_cache("hit")
    metrics.record_cache("error")
    metrics.record_database_error("probe")
    text = metrics.render()
    assert 'ssm_cache_requests_total{version="1.0.0",slot="blue",result="hit"} 1' in text
    assert 'ssm_cache_requests_total{version="1.0.0",slot="blue",result="miss"} 0' in text
    assert 'ssm_database_errors_total{version="1.0.0",slot="blue",operation="probe"} 1' in text
    assert 'ssm_database_errors_total{version="1.0.0",slot="blue",operation="insert_match"} 0' in text
