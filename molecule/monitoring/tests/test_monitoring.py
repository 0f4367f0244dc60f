"""Verify the monitoring role: Prometheus scrapes both slots and the gate rules work.

Runs against the monitoring host (mon-role1); traffic is sent from inside the
application host (mon-app1) with curl (conftest.py). The alerts end to end:
test_monitoring_alerts.py.
"""
import json
import os
import subprocess

import pytest
from conftest import DELAY, INVENTORY, PROM, ROOT, SLOTS, TIMEOUT, prom_get, query
from labwait import poll  # tools/, on sys.path from conftest.py

testinfra_hosts = ["ansible://mon-role1"]
# Precision each slot must show: every top offer of 1.0.0 is right, every one
# of the degraded 2.0.0 wrong.
PRECISION = {"blue": 1.0, "green": 0.0}


def test_prometheus_and_node_exporter_running(host):
    for unit in ("prometheus.service", "prometheus-node-exporter.service"):
        service = host.service(unit)
        assert service.is_running, unit
        assert service.is_enabled, unit
    assert host.socket("tcp://0.0.0.0:9090").is_listening


def test_node_exporter_on_the_app_host(app_host):
    assert app_host.service("prometheus-node-exporter.service").is_running
    assert not app_host.package("prometheus").is_installed


def test_promtool_accepts_the_live_configuration(host):
    out = host.run("promtool check config /etc/prometheus/prometheus.yml")
    assert out.rc == 0, out.stdout + out.stderr
    assert "SUCCESS" in out.stdout + out.stderr
    for name in ("supersmartmatch-recording.yml", "supersmartmatch-alerts.yml"):
        res = host.run("promtool check rules /etc/prometheus/rules/%s" % name)
        assert res.rc == 0, res.stdout + res.stderr


def test_configuration_loaded_with_the_arguments(host):
    args = host.file("/etc/default/prometheus").content_string
    assert "--web.listen-address=0.0.0.0:9090" in args
    assert "--storage.tsdb.retention.time=15d" in args
    metrics = host.check_output("curl -sf %s/metrics", PROM)
    assert "prometheus_config_last_reload_successful 1" in metrics
    config = prom_get(host, "/api/v1/status/config")["yaml"]
    assert "scrape_interval: 2s" in config
    assert "evaluation_interval: 2s" in config


def _slot_targets(host):
    targets = prom_get(host, "/api/v1/targets", state="active")["activeTargets"]
    return {t["labels"]["slot"]: t for t in targets if t["labels"]["job"] == "supersmartmatch"}


def test_both_slot_targets_are_up(host):
    def both_up():
        targets = _slot_targets(host)
        return targets if targets and all(t["health"] == "up" for t in targets.values()) else None

    targets = poll(both_up, TIMEOUT, delay=DELAY).value or _slot_targets(host)
    assert set(targets) == {"blue", "green"}, targets
    for slot, (port, _version) in SLOTS.items():
        assert targets[slot]["health"] == "up", targets[slot]
        assert targets[slot]["scrapeUrl"] == "http://mon-app1:%d/metrics" % port
    up = query(host, 'up{job="supersmartmatch"}')
    assert up == {"blue": 1.0, "green": 1.0}


def test_service_slot_label_is_not_duplicated(host):
    series = prom_get(host, "/api/v1/query", query="ssm_build_info")["result"]
    assert {(s["metric"]["version"], s["metric"]["slot"]) for s in series} == {
        (v, s) for s, (_p, v) in SLOTS.items()}
    assert all("exported_slot" not in s["metric"] for s in series)


def test_node_targets_are_up(host):
    def nodes_up():
        targets = prom_get(host, "/api/v1/targets", state="active")["activeTargets"]
        nodes = {t["labels"]["instance"]: t["health"] for t in targets if t["labels"]["job"] == "node"}
        return nodes if nodes and set(nodes.values()) == {"up"} else None

    assert poll(nodes_up, TIMEOUT, delay=DELAY).value == {"mon-app1:9100": "up", "mon-role1:9100": "up"}


def test_rules_are_loaded(host):
    groups = prom_get(host, "/api/v1/rules")["groups"]
    names = {rule["name"] for group in groups for rule in group["rules"]}
    assert {"ssm:feedback_precision:ratio", "ssm:error_rate:ratio", "ssm:latency_p95:seconds",
            "ssm:availability:ratio", "ssm:match_requests:rate", "ssm:target_up:ratio",
            "SSMServiceUnavailable", "SSMPrecisionLow", "SSMErrorRateHigh", "SSMLatencyP95High",
            "SSMHostCPUHigh", "SSMHostMemoryHigh", "SSMMatchQueueDeep", "SSMCacheHitRateLow"} <= names
    assert all(rule.get("health") != "err" for group in groups for rule in group["rules"])


def test_precision_per_version_matches_the_feedback_sent(host, traffic):
    expected = {(v, s): PRECISION[s] for s, (_p, v) in SLOTS.items()}

    def precise():
        values = query(host, "ssm:feedback_precision:ratio")
        ok = all(abs(values.get(k, -1) - v) < 0.01 for k, v in expected.items())
        return values if ok else None

    values = poll(precise, TIMEOUT, delay=DELAY).value or query(host, "ssm:feedback_precision:ratio")
    for key, value in expected.items():
        assert values.get(key) == pytest.approx(value, abs=0.01), values


def test_error_rate_availability_latency_of_clean_versions(host, traffic):
    keys = {(v, s) for s, (_p, v) in SLOTS.items()}

    def all_present():
        errors = query(host, "ssm:error_rate:ratio")
        return errors if keys <= set(errors) else None

    errors = poll(all_present, TIMEOUT, delay=DELAY).value or query(host, "ssm:error_rate:ratio")
    assert {k: errors.get(k) for k in keys} == {k: 0.0 for k in keys}
    availability = query(host, "ssm:availability:ratio")
    assert {k: availability.get(k) for k in keys} == {k: 1.0 for k in keys}
    latency = query(host, "ssm:latency_p95:seconds")
    for key in keys:
        assert 0 < latency[key] < 0.2, latency
    rate = query(host, "ssm:match_requests:rate")
    for key in keys:
        assert rate[key] > 0, rate
    assert poll(lambda: query(host, "ssm:target_up:ratio") == {"blue": 1.0, "green": 1.0}, TIMEOUT, delay=DELAY).value


def test_no_alert_fires_for_the_clean_version(host, traffic):
    alerts = prom_get(host, "/api/v1/alerts")["alerts"]
    assert [a for a in alerts if a["labels"].get("version") == "1.0.0"] == []


# --------------------------------------------------------------------------
# metric_gate against this real Prometheus (run as Ansible runs it, on the
# monitoring host, through the molecule inventory)
# --------------------------------------------------------------------------


def metric_gate(**args):
    """Run supersmartmatch.platform.metric_gate on mon-role1; return (rc, result)."""
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"),
               ANSIBLE_COLLECTIONS_PATH=os.path.join(ROOT, ".collections"),
               ANSIBLE_LOAD_CALLBACK_PLUGINS="1", ANSIBLE_STDOUT_CALLBACK="ansible.builtin.json")
    proc = subprocess.run(["ansible", "-i", INVENTORY, "mon-role1", "-m", "supersmartmatch.platform.metric_gate",
                           "-a", json.dumps(dict({"url": PROM, "interval": 1}, **args))],
                          capture_output=True, text=True, env=env, timeout=120, check=False)
    doc = json.loads(proc.stdout)
    return proc.returncode, doc["plays"][0]["tasks"][0]["hosts"]["mon-role1"]


def gate_check(name, expr, **bounds):
    return dict(name=name, query=expr, **bounds)


def test_metric_gate_passes_on_the_real_prometheus(traffic):
    sel = '{version="1.0.0",slot="blue"}'
    checks = [gate_check("precision", "ssm:feedback_precision:ratio" + sel, min=0.94),
              gate_check("error_rate", "ssm:error_rate:ratio" + sel, max=0.02),
              gate_check("latency_p95", "ssm:latency_p95:seconds" + sel, max=0.2),
              gate_check("availability", "ssm:availability:ratio" + sel, min=0.99)]
    rc, result = metric_gate(checks=checks, count=2)
    assert rc == 0, result
    assert result["verdict"] == "passed", result["msg"]
    assert len(result["measurements"]) == 8
    assert result["summary"]["precision"]["last_value"] == pytest.approx(1.0)


def test_metric_gate_fails_with_the_measured_value_and_threshold(traffic):
    checks = [gate_check("precision", 'ssm:feedback_precision:ratio{version="2.0.0",slot="green"}', min=0.94)]
    rc, result = metric_gate(checks=checks, count=3, name="canary")
    assert rc != 0
    assert result["verdict"] == "failed"
    assert result["msg"] == "metric gate 'canary' failed: precision 0 < min 0.94 in 1 of 1 measurements"


def test_metric_gate_no_data_is_inconclusive_never_passed(traffic):
    checks = [gate_check("precision", 'ssm:feedback_precision:ratio{version="9.9.9"}', min=0.94)]
    rc, result = metric_gate(checks=checks, count=2)
    assert rc != 0 and result["verdict"] == "inconclusive"
    assert "precision inconclusive in 2 of 2 measurements" in result["msg"]
    rc, result = metric_gate(checks=checks, count=1, allow_inconclusive=True)
    assert rc == 0 and result["verdict"] == "inconclusive"


def test_metric_gate_bad_query_is_an_error(traffic):
    checks = [gate_check("broken", "sum(rate(ssm_http_requests_total[1m])", max=1)]
    rc, result = metric_gate(checks=checks, count=1, consecutive_error_limit=2, error_retry_interval=0.5)
    assert rc != 0 and result["verdict"] == "error"
    assert "broken: 2 consecutive errors (consecutive_error_limit 2)" in result["msg"]
    assert "bad_data" in result["msg"]
