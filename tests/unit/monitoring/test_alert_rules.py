"""The release guide's alerts, with `promtool test rules` on the role's rendered rule files.

For every alert, with the role's default thresholds and durations (the guide's):
- a value exactly at the threshold does not fire (the guide's bounds are strict);
- a value just past it fires, with its labels and annotations, exactly when
  its `for` has elapsed and not one evaluation earlier;
and, through the recording rules, the raw series the services and the node
exporters publish give the alert (or none, for a healthy series).

Times: samples every 15 s, rules evaluated every 15 s. A rate needs two
samples, so a rate-based condition starts at 15 s.
"""
import pytest
import yaml

from roletemplates import render

DEFAULT_FOR = {
    "SSMServiceUnavailable": "30s", "SSMPrecisionLow": "5m", "SSMErrorRateHigh": "3m", "SSMLatencyP95High": "5m",
    "SSMHostCPUHigh": "10m", "SSMHostMemoryHigh": "15m", "SSMMatchQueueDeep": "2m", "SSMCacheHitRateLow": "5m",
}
SEVERITY = {name: "critical" for name in ("SSMServiceUnavailable", "SSMPrecisionLow", "SSMErrorRateHigh",
                                          "SSMLatencyP95High")}
SEVERITY.update({name: "warning" for name in ("SSMHostCPUHigh", "SSMHostMemoryHigh", "SSMMatchQueueDeep",
                                              "SSMCacheHitRateLow")})

APP = {"job": "supersmartmatch", "instance": "app1:5062", "slot": "blue", "version": "1.0.0"}
NODE = {"job": "node", "instance": "app1:9100"}
HOST = {"instance": "app1:9100"}  # the CPU share is summed by instance
GREEN = {"version": "2.0.0", "slot": "green"}
BUCKETS = ("0.005", "0.01", "0.025", "0.05", "0.1", "0.15", "0.2", "0.25", "0.5", "1", "2.5", "5", "+Inf")


def series(name, labels, values):
    inner = ",".join('%s="%s"' % item for item in sorted(labels.items()))
    return {"series": "%s{%s}" % (name, inner), "values": values}


def counter(per_step, steps=80):
    return "0+%sx%d" % (per_step, steps)


def seconds(duration):
    units = {"s": 1, "m": 60, "h": 3600}
    return int(duration[:-1]) * units[duration[-1]]


def at(total_seconds):
    return "%ds" % total_seconds


@pytest.fixture(scope="module")
def alert_rules():
    """{alertname: rule} of the rendered rules with the role defaults."""
    doc = yaml.safe_load(render("alerts.rules.yml.j2"))
    return {rule["alert"]: rule for group in doc["groups"] for rule in group["rules"]}


def expected(alert_rules, alert, labels, summary):
    return {"exp_labels": dict(labels, severity=SEVERITY[alert]),
            "exp_annotations": {"summary": summary,
                                "description": alert_rules[alert]["annotations"]["description"]}}


def test_the_guides_list_exactly(alert_rules):
    assert {name: (rule["for"], rule["labels"]["severity"]) for name, rule in alert_rules.items()} == {
        name: (DEFAULT_FOR[name], SEVERITY[name]) for name in DEFAULT_FOR}


# --------------------------------------------------------------------------- thresholds and `for`
# alert, input series (the alert's own input: a recording rule or a raw gauge),
# value at the threshold, value just past it, labels of the alert, summary,
# onset (s) of the condition.
THRESHOLDS = [
    ("SSMPrecisionLow", [("ssm:feedback_precision:ratio", GREEN, "{v}x80")], "0.94", "0.9399",
     GREEN, "Precision of 2.0.0 (green) is 93.99%", 0),
    ("SSMErrorRateHigh", [("ssm:error_rate:ratio", GREEN, "{v}x80")], "0.01", "0.0101",
     GREEN, "5xx rate of 2.0.0 (green) on /api/v2/match is 1.01%", 0),
    ("SSMLatencyP95High", [("ssm:latency_p95:seconds", GREEN, "{v}x80")], "0.2", "0.2001",
     GREEN, "p95 latency of 2.0.0 (green) on /api/v2/match is 200.1ms", 0),
    ("SSMHostMemoryHigh", [("node_memory_MemAvailable_bytes", NODE, "{v}x80"),
                           ("node_memory_MemTotal_bytes", NODE, "1000x80")], "300", "299",
     NODE, "Memory of app1:9100 is 70.1% used", 0),
    ("SSMMatchQueueDeep", [("ssm_match_write_queue_depth", APP, "{v}x80")], "100", "101",
     APP, "101 match records wait for the database on app1:5062 (1.0.0)", 0),
    # Rate ratios: busy = 1 - idle / all CPU time; hit rate = hits / all cache requests.
    ("SSMHostCPUHigh", [("node_cpu_seconds_total", dict(NODE, cpu="0", mode="idle"), "0+{v}x80"),
                        ("node_cpu_seconds_total", dict(NODE, cpu="0", mode="user"), "0+{w}x80")], "40", "39",
     HOST, "CPU of app1:9100 is 61% busy", 15),
    ("SSMCacheHitRateLow", [("ssm_cache_requests_total", dict(APP, result="hit"), "0+{v}x80"),
                            ("ssm_cache_requests_total", dict(APP, result="miss"), "0+{w}x80"),
                            ("ssm_cache_requests_total", dict(APP, result="error"), "0+0x80")], "85", "84",
     {"version": "1.0.0", "slot": "blue"}, "Cache hit rate of 1.0.0 (blue) is 84%", 15),
]


def threshold_inputs(inputs, value):
    # {w} is the complement to 100 of {v} (the other mode / result of the same total).
    return [series(name, labels, values.format(v=value, w=100 - int(value) if value.isdigit() else ""))
            for name, labels, values in inputs]


@pytest.mark.parametrize("alert, inputs, at_threshold, past, labels, summary, onset", THRESHOLDS,
                         ids=[case[0] for case in THRESHOLDS])
def test_fires_past_the_threshold_exactly_after_for(promtool_test, rendered, alert_rules, alert, inputs,
                                                    at_threshold, past, labels, summary, onset):
    rules = [rendered("recording.rules.yml.j2", "recording.yml"), rendered("alerts.rules.yml.j2", "alerts.yml")]
    fires_at = onset + seconds(DEFAULT_FOR[alert])
    firing = [expected(alert_rules, alert, dict(labels, alertname=alert), summary)]
    tests = [
        {"interval": "15s", "input_series": threshold_inputs(inputs, at_threshold),
         "alert_rule_test": [{"eval_time": at(fires_at + 60), "alertname": alert, "exp_alerts": []}]},
        {"interval": "15s", "input_series": threshold_inputs(inputs, past),
         "alert_rule_test": [{"eval_time": at(fires_at - 15), "alertname": alert, "exp_alerts": []},
                             {"eval_time": at(fires_at), "alertname": alert, "exp_alerts": firing}]},
    ]
    result = promtool_test(rules, tests)
    assert result.returncode == 0, result.stdout + result.stderr


# --------------------------------------------------------------------------- service unavailable
UNAVAILABLE_LABELS = {"job": "supersmartmatch", "instance": "app1:5062", "slot": "blue"}


@pytest.mark.parametrize("values, checks", [
    # up for 150 s, then down from 150 s: fires at 150 + 30 s, not at 165 s.
    ("1x9 0x40", [(165, False), (180, True)]),
    # a slot never up (never deployed) never fires
    ("0x80", [(60, False), (1200, False)]),
    # down for 25 min: still firing long after the 10 min lookback
    ("1x3 0x120", [(75, False), (90, True), (1500, True)]),
    # back up: resolved
    ("1x3 0x8 1x20", [(180, True), (195, False), (300, False)]),
    # scrape failures shorter than `for` do not fire
    ("1x3 0 1 0 1 0 1x20", [(120, False), (300, False)]),
], ids=["down-30s", "never-up", "down-beyond-lookback", "back-up", "flapping-shorter-than-for"])
def test_service_unavailable(promtool_test, rendered, alert_rules, values, checks):
    alert = "SSMServiceUnavailable"
    firing = [expected(alert_rules, alert, dict(UNAVAILABLE_LABELS, alertname=alert),
                       "Slot blue on app1:5062 is unavailable")]
    tests = [{"interval": "15s", "input_series": [series("up", UNAVAILABLE_LABELS, values)],
              "alert_rule_test": [{"eval_time": at(t), "alertname": alert, "exp_alerts": firing if fires else []}
                                  for t, fires in checks]}]
    result = promtool_test([rendered("alerts.rules.yml.j2", "alerts.yml")], tests)
    assert result.returncode == 0, result.stdout + result.stderr


# --------------------------------------------------------------------------- from the raw series
def requests(path, status, per_step):
    return series("ssm_http_requests_total", dict(APP, method="POST", path=path, status=status), counter(per_step))


def histogram(le_from, per_step):
    """All requests of /api/v2/match in the bucket whose upper bound is le_from (and above)."""
    index = BUCKETS.index(le_from)
    return [series("ssm_http_request_duration_seconds_bucket",
                   dict(APP, path="/api/v2/match", status="200", le=le),
                   counter(per_step if position >= index else 0))
            for position, le in enumerate(BUCKETS)]


SERVICE = {"version": "1.0.0", "slot": "blue"}
CHAINS = [
    # a degraded release: 1 correct feedback in 10
    ("SSMPrecisionLow", [series("ssm_feedback_total", dict(APP, outcome="hit"), counter(1)),
                         series("ssm_feedback_total", dict(APP, outcome="miss"), counter(9))],
     SERVICE, "Precision of 1.0.0 (blue) is 10%"),
    ("SSMPrecisionLow", [series("ssm_feedback_total", dict(APP, outcome="hit"), counter(19)),
                         series("ssm_feedback_total", dict(APP, outcome="miss"), counter(1))], None, None),
    ("SSMErrorRateHigh", [requests("/api/v2/match", "200", 98), requests("/api/v2/match", "500", 2)],
     SERVICE, "5xx rate of 1.0.0 (blue) on /api/v2/match is 2%"),
    # no 5xx series at all: the error rate is 0, not missing
    ("SSMErrorRateHigh", [requests("/api/v2/match", "200", 100)], None, None),
    # every request between 250 ms and 500 ms: p95 interpolated at 487.5 ms
    ("SSMLatencyP95High", histogram("0.5", 10), SERVICE, "p95 latency of 1.0.0 (blue) on /api/v2/match is 487.5ms"),
    ("SSMLatencyP95High", histogram("0.1", 10), None, None),
    # 2 CPUs: one fully busy, one idle -> 50 %; one 90 % busy, one 40 % -> 65 %
    ("SSMHostCPUHigh", [series("node_cpu_seconds_total", dict(NODE, cpu="0", mode="user"), counter(15)),
                        series("node_cpu_seconds_total", dict(NODE, cpu="1", mode="idle"), counter(15))], None, None),
    ("SSMHostCPUHigh", [series("node_cpu_seconds_total", dict(NODE, cpu="0", mode="system"), counter(13.5)),
                        series("node_cpu_seconds_total", dict(NODE, cpu="0", mode="idle"), counter(1.5)),
                        series("node_cpu_seconds_total", dict(NODE, cpu="1", mode="user"), counter(6)),
                        series("node_cpu_seconds_total", dict(NODE, cpu="1", mode="idle"), counter(9))],
     HOST, "CPU of app1:9100 is 65% busy"),
    # the cache is down: every request is an error
    ("SSMCacheHitRateLow", [series("ssm_cache_requests_total", dict(APP, result="hit"), counter(0)),
                            series("ssm_cache_requests_total", dict(APP, result="miss"), counter(0)),
                            series("ssm_cache_requests_total", dict(APP, result="error"), counter(10))],
     SERVICE, "Cache hit rate of 1.0.0 (blue) is 0%"),
    # no cache traffic at all (0/0): no alert
    ("SSMCacheHitRateLow", [series("ssm_cache_requests_total", dict(APP, result=result), "0x80")
                            for result in ("hit", "miss", "error")], None, None),
]


@pytest.mark.parametrize("alert, inputs, labels, summary", CHAINS,
                         ids=["%s-%s" % (case[0], "fires" if case[2] else "quiet") for case in CHAINS])
def test_raw_series_through_the_recording_rules(promtool_test, rendered, alert_rules, alert, inputs, labels,
                                                summary):
    rules = [rendered("recording.rules.yml.j2", "recording.yml"), rendered("alerts.rules.yml.j2", "alerts.yml")]
    # every input has 80 steps (20 min); check after `for` plus the rate windows
    check = at(seconds(DEFAULT_FOR[alert]) + 90)
    exp = [expected(alert_rules, alert, dict(labels, alertname=alert), summary)] if labels else []
    tests = [{"interval": "15s", "input_series": inputs,
              "alert_rule_test": [{"eval_time": check, "alertname": alert, "exp_alerts": exp}]}]
    result = promtool_test(rules, tests)
    assert result.returncode == 0, result.stdout + result.stderr


def test_thresholds_and_durations_are_variables(promtool_test, rendered, alert_rules):
    """Another threshold and `for` change when the alert fires."""
    rules = [rendered("alerts.rules.yml.j2", "alerts.yml", monitoring_alert_queue_depth_max=10,
                      monitoring_alert_queue_depth_for="45s")]
    tests = [{"interval": "15s", "input_series": [series("ssm_match_write_queue_depth", APP, "11x20")],
              "alert_rule_test": [
                  {"eval_time": "30s", "alertname": "SSMMatchQueueDeep", "exp_alerts": []},
                  {"eval_time": "45s", "alertname": "SSMMatchQueueDeep", "exp_alerts": [{
                      "exp_labels": dict(APP, alertname="SSMMatchQueueDeep", severity="warning"),
                      "exp_annotations": {
                          "summary": "11 match records wait for the database on app1:5062 (1.0.0)",
                          "description": "Write-behind queue of match records deeper than 10 for 45s"
                                         " (records beyond its capacity are dropped)."}}]}]}]
    result = promtool_test(rules, tests)
    assert result.returncode == 0, result.stdout + result.stderr
