"""Verify the alerts end to end: Prometheus -> Alertmanager -> the receivers.

The receivers (PagerDuty's Events API URL, the Slack webhook URL and the
generic webhook) all point at the alert sink of prepare.yml on mon-app1, a
real HTTP server that records every POST with the time it arrived. The
degraded 2.0.0 (green) and a stopped slot must page "PagerDuty", a warning
must reach "Slack", each with its labels, within the rule's `for` plus two
evaluation intervals (molecule.yml: `for` 10 s, evaluation every 2 s).
"""
import json
import shlex

from conftest import DELAY, prom_get
from labwait import poll  # tools/, on sys.path from conftest.py

testinfra_hosts = ["ansible://mon-role1"]

AM = "http://127.0.0.1:9093"
FOR_S, EVAL_S = 10, 2
TARGET_S = FOR_S + 2 * EVAL_S
ROUTING_KEY = "ssm-molecule-routing-key-0123456789"
SLACK_URL = "http://mon-app1:9099/slack/T000/B000/molecule-secret"
SECRETS = "/etc/prometheus/alertmanager-secrets"
RECORD = "/var/lib/ssm-alert-sink/received.jsonl"


def received(app_host, path=None):
    """What the sink recorded (optionally only for one receiver path), oldest first."""
    text = app_host.run("cat %s 2>/dev/null || true" % RECORD).stdout
    records = [json.loads(line) for line in text.splitlines() if line.strip()]
    return [r for r in records if path is None or r["path"].startswith(path)]


def pagerduty_events(app_host, alertname, **labels):
    """PagerDuty events of one alert (its labels are in custom_details.firing / resolved)."""
    found = []
    for record in received(app_host, "/pagerduty"):
        details = record["body"]["payload"]["custom_details"]
        text = details.get("firing", "") + details.get("resolved", "")
        wanted = ["alertname = %s" % alertname] + ["%s = %s" % item for item in labels.items()]
        if all(w in text for w in wanted):
            found.append(record)
    return found


def am_alerts(host, **labels):
    """Alerts Alertmanager holds with these labels (its API v2)."""
    args = " ".join("--data-urlencode %s" % shlex.quote('filter=%s="%s"' % item) for item in labels.items())
    return json.loads(host.check_output("curl -sfG %s %s/api/v2/alerts" % (args, AM)))


def test_alertmanager_runs_with_secrets_in_files(host):
    service = host.service("prometheus-alertmanager.service")
    assert service.is_running and service.is_enabled
    assert host.socket("tcp://0.0.0.0:9093").is_listening
    config = host.file("/etc/prometheus/alertmanager.yml")
    assert (config.user, config.group, config.mode) == ("root", "prometheus", 0o640)
    assert host.file(SECRETS).mode == 0o750
    for name, value in (("pagerduty_routing_key", ROUTING_KEY), ("slack_api_url", SLACK_URL)):
        secret = host.file("%s/%s" % (SECRETS, name))
        assert (secret.user, secret.group, secret.mode) == ("root", "prometheus", 0o640)
        assert secret.content_string == value
        assert value not in config.content_string
    assert "routing_key_file: \"%s/pagerduty_routing_key\"" % SECRETS in config.content_string
    processes = host.check_output("ps -eo args")
    assert "prometheus-alertmanager" in processes
    assert ROUTING_KEY not in processes and "molecule-secret" not in processes
    check = host.run("amtool check-config /etc/prometheus/alertmanager.yml")
    assert check.rc == 0, check.stdout + check.stderr


def test_prometheus_sends_alerts_to_the_local_alertmanager(host):
    def active():
        return prom_get(host, "/api/v1/alertmanagers")["activeAlertmanagers"]

    assert [a["url"] for a in poll(active, 30, delay=DELAY).value] == ["http://127.0.0.1:9093/api/v2/alerts"]


def test_live_routes(host):
    for labels, receiver in (("severity=critical", "pagerduty"), ("severity=warning", "slack"),
                             ("severity=info", "webhook")):
        result = host.run("amtool config routes test --config.file=/etc/prometheus/alertmanager.yml"
                          " --verify.receivers=%s alertname=X %s", receiver, labels)
        assert result.rc == 0, result.stdout + result.stderr


def test_degraded_release_pages_pagerduty(host, app_host, traffic):
    labels = {"version": "2.0.0", "slot": "green", "severity": "critical"}
    events = poll(lambda: [e for e in pagerduty_events(app_host, "SSMPrecisionLow", **labels)
                           if e["received"] > traffic and e["body"]["event_action"] == "trigger"], 60, delay=DELAY).value
    assert events, received(app_host)
    event = events[0]["body"]
    assert event["routing_key"] == ROUTING_KEY  # read from routing_key_file
    assert event["event_action"] == "trigger"
    assert event["payload"]["severity"] == "critical"
    assert "SSMPrecisionLow" in event["payload"]["summary"]
    # The fault is visible from the first scrape that saw a wrong top offer of 2.0.0.
    samples = prom_get(host, "/api/v1/query", query='ssm_feedback_total{version="2.0.0",outcome="miss"}[30m]')
    values = [(float(t), float(v)) for t, v in samples["result"][0]["values"]]
    before = max([v for t, v in values if t < traffic] or [0.0])
    seen = min(t for t, v in values if t >= traffic and v > before)
    latency = events[0]["received"] - seen
    print("degraded release: PagerDuty %.1f s after the first scrape of a wrong answer (target %d s)"
          % (latency, TARGET_S))
    assert 0 < latency <= TARGET_S
    # nothing about the clean 1.0.0 was ever sent
    assert pagerduty_events(app_host, "SSMPrecisionLow", version="1.0.0") == []


def test_warning_reaches_slack_with_its_labels(app_host):
    def memory_warnings():
        return [r for r in received(app_host, "/slack/T000/B000/molecule-secret")
                if "SSMHostMemoryHigh" in r["body"]["attachments"][0]["title"]]

    def scenario_hosts():
        # (the package's own default configuration may have scraped localhost:9100 before the role's)
        return [m for m in memory_warnings() if "instance=mon-app1:9100" in m["body"]["attachments"][0]["text"]]

    messages = poll(scenario_hosts, 60, delay=DELAY).value
    assert messages, received(app_host)
    body = messages[0]["body"]
    assert body["channel"] == "#ssm-alerts"
    attachment = body["attachments"][0]
    assert attachment["title"].startswith("[FIRING:1] SSMHostMemoryHigh (warning)")
    assert "severity=warning" in attachment["text"] and "job=node" in attachment["text"]
    # warnings never page
    assert pagerduty_events(app_host, "SSMHostMemoryHigh") == []


def post_alert(host, labels):
    body = json.dumps([{"labels": labels, "annotations": {"summary": "synthetic"}}])
    host.check_output("curl -sf -X POST -H 'Content-Type: application/json' -d %s %s/api/v2/alerts",
                      body, AM)


def test_critical_inhibits_the_matching_warning_and_the_webhook_gets_the_rest(host, app_host):
    """Synthetic alerts posted to Alertmanager's API: a critical one for 3.0.0/green silences
    the warning of 3.0.0/green, not the one of 3.0.0/blue; an info alert goes to the webhook."""
    post_alert(host, {"alertname": "SSMSyntheticCritical", "severity": "critical", "version": "3.0.0", "slot": "green"})
    assert poll(lambda: am_alerts(host, alertname="SSMSyntheticCritical"), 30, delay=DELAY).value
    for slot in ("green", "blue"):
        post_alert(host, {"alertname": "SSMSyntheticWarning", "severity": "warning", "version": "3.0.0", "slot": slot})
    post_alert(host, {"alertname": "SSMSyntheticInfo", "severity": "info", "version": "3.0.0", "slot": "blue"})

    def states():
        alerts = am_alerts(host, alertname="SSMSyntheticWarning")
        return {a["labels"]["slot"]: a["status"] for a in alerts} if len(alerts) == 2 else None

    status = poll(states, 30, delay=DELAY).value
    assert status["green"]["state"] == "suppressed" and status["green"]["inhibitedBy"], status
    assert status["blue"]["state"] == "active" and not status["blue"]["inhibitedBy"], status

    def webhook_info():
        return [r for r in received(app_host, "/webhook")
                if any(a["labels"].get("alertname") == "SSMSyntheticInfo" for a in r["body"]["alerts"])]

    def slack_synthetic():
        return [r["body"]["attachments"][0]["text"] for r in received(app_host, "/slack/")
                if "SSMSyntheticWarning" in r["body"]["attachments"][0]["title"]]

    info = poll(webhook_info, 30, delay=DELAY).value
    assert info and info[0]["body"]["alerts"][0]["labels"]["severity"] == "info", received(app_host)
    texts = poll(slack_synthetic, 30, delay=DELAY).value
    assert texts and all("slot=blue" in text for text in texts), texts  # the inhibited one is never sent
    assert pagerduty_events(app_host, "SSMSyntheticCritical", version="3.0.0")


def test_stopped_slot_pages_pagerduty_and_resolves(host, app_host, traffic):
    labels = {"slot": "blue", "instance": "mon-app1:5062", "severity": "critical"}
    stopped = float(app_host.check_output("date +%s.%N && systemctl stop supersmartmatch-blue.service").split()[0])
    try:
        events = poll(lambda: [e for e in pagerduty_events(app_host, "SSMServiceUnavailable", **labels)
                               if e["received"] > stopped], 60, delay=DELAY).value
        assert events, received(app_host)
        assert events[0]["body"]["event_action"] == "trigger"
        # The fault is visible from the first scrape that found the slot down (as for the
        # degraded release): the rule's `for` and the evaluations run from there.
        samples = prom_get(host, "/api/v1/query", query='up{instance="mon-app1:5062"}[5m]')
        values = [(float(t), float(v)) for t, v in samples["result"][0]["values"]]
        seen = min(t for t, v in values if t >= stopped and v == 0)
        latency = events[0]["received"] - seen
        print("stopped slot: PagerDuty %.1f s after the first scrape that found it down, %.1f s after the stop "
              "(target %d s)" % (latency, events[0]["received"] - stopped, TARGET_S))
        assert 0 < latency <= TARGET_S
    finally:
        app_host.check_output("systemctl start supersmartmatch-blue.service")

    def resolved():
        return [e for e in pagerduty_events(app_host, "SSMServiceUnavailable", **labels)
                if e["received"] > stopped and e["body"]["event_action"] == "resolve"]

    assert poll(resolved, 60, delay=DELAY).value, received(app_host, "/pagerduty")
