"""The role's Alertmanager configuration, checked and routed by the real `amtool` (0.25).

`amtool config routes test --verify.receivers` proves which receiver each
severity reaches, for each combination of configured receivers; every alert
of the rendered rule file is routed by its own labels.
"""
import pytest
import yaml

from roletemplates import render

ROUTING_KEY = "0123456789abcdef0123456789abcdef"
SLACK_URL = "https://hooks.slack.com/services/T000/B000/XXXXSECRETXXXX"
WEBHOOK = "http://alert-sink.internal:8080/alerts"

VARIANTS = {
    "all": dict(monitoring_alertmanager_pagerduty_routing_key=ROUTING_KEY,
                monitoring_alertmanager_slack_api_url=SLACK_URL, monitoring_alertmanager_webhook_url=WEBHOOK),
    "pagerduty-slack": dict(monitoring_alertmanager_pagerduty_routing_key=ROUTING_KEY,
                            monitoring_alertmanager_slack_api_url=SLACK_URL),
    "webhook-only": dict(monitoring_alertmanager_webhook_url=WEBHOOK),
    "slack-webhook": dict(monitoring_alertmanager_slack_api_url=SLACK_URL, monitoring_alertmanager_webhook_url=WEBHOOK),
    "pagerduty-only": dict(monitoring_alertmanager_pagerduty_routing_key=ROUTING_KEY),
    "none": {},
}


@pytest.fixture
def config(rendered):
    return lambda variant, **extra: rendered("alertmanager.yml.j2", "alertmanager.yml", **VARIANTS[variant], **extra)


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_check_config_accepts_every_variant(amtool, config, variant):
    result = amtool("check-config", str(config(variant)))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


@pytest.mark.parametrize("variant, labels, receiver", [
    ("all", ["severity=critical"], "pagerduty"),
    ("all", ["severity=warning"], "slack"),
    ("all", ["severity=info"], "webhook"),
    ("all", ["alertname=Watchdog"], "webhook"),
    ("pagerduty-slack", ["severity=critical"], "pagerduty"),
    ("pagerduty-slack", ["severity=warning"], "slack"),
    ("pagerduty-slack", ["severity=info"], "none"),
    ("webhook-only", ["severity=critical"], "webhook"),
    ("webhook-only", ["severity=warning"], "webhook"),
    ("slack-webhook", ["severity=critical"], "webhook"),
    ("slack-webhook", ["severity=warning"], "slack"),
    ("pagerduty-only", ["severity=critical"], "pagerduty"),
    ("pagerduty-only", ["severity=warning"], "none"),
    ("none", ["severity=critical"], "none"),
    ("none", ["severity=warning"], "none"),
])
def test_each_severity_reaches_its_receiver(amtool, config, variant, labels, receiver):
    path = str(config(variant))
    result = amtool("config", "routes", "test", "--config.file", path, "--verify.receivers", receiver, *labels)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == receiver
    # and the check can fail: another receiver is refused
    other = amtool("config", "routes", "test", "--config.file", path, "--verify.receivers", "nobody", *labels)
    assert other.returncode != 0


def test_every_alert_of_the_rules_reaches_pagerduty_or_slack(amtool, config):
    rules = yaml.safe_load(render("alerts.rules.yml.j2"))
    path = str(config("all"))
    routed = {}
    for group in rules["groups"]:
        for rule in group["rules"]:
            labels = ["alertname=" + rule["alert"]] + ["%s=%s" % item for item in rule["labels"].items()]
            result = amtool("config", "routes", "test", "--config.file", path, *labels)
            assert result.returncode == 0, result.stdout + result.stderr
            routed[rule["alert"]] = result.stdout.strip()
    assert routed == {
        "SSMServiceUnavailable": "pagerduty", "SSMPrecisionLow": "pagerduty", "SSMErrorRateHigh": "pagerduty",
        "SSMLatencyP95High": "pagerduty", "SSMHostCPUHigh": "slack", "SSMHostMemoryHigh": "slack",
        "SSMMatchQueueDeep": "slack", "SSMCacheHitRateLow": "slack"}


def test_secrets_are_files_never_inline(config):
    text = config("all").read_text()
    assert ROUTING_KEY not in text and SLACK_URL not in text
    doc = yaml.safe_load(text)
    receivers = {r["name"]: r for r in doc["receivers"]}
    assert receivers["pagerduty"]["pagerduty_configs"][0]["routing_key_file"] == \
        "/etc/prometheus/alertmanager-secrets/pagerduty_routing_key"
    assert receivers["slack"]["slack_configs"][0]["api_url_file"] == "/etc/prometheus/alertmanager-secrets/slack_api_url"
    assert receivers["webhook"]["webhook_configs"][0]["url"] == WEBHOOK


def test_grouping_repeat_and_inhibition_are_variables(amtool, config):
    path = config("all", monitoring_alertmanager_group_wait="1s", monitoring_alertmanager_group_interval="7s",
                  monitoring_alertmanager_repeat_interval="2h", monitoring_alertmanager_group_by=["alertname"],
                  monitoring_alertmanager_inhibit_equal=["instance"])
    assert amtool("check-config", str(path)).returncode == 0
    doc = yaml.safe_load(path.read_text())
    route = doc["route"]
    assert (route["group_wait"], route["group_interval"], route["repeat_interval"], route["group_by"]) == \
        ("1s", "7s", "2h", ["alertname"])
    assert doc["inhibit_rules"] == [{"source_matchers": ['severity="critical"'],
                                     "target_matchers": ['severity="warning"', 'slot=~".+"'],
                                     "equal": ["instance"]}]


@pytest.mark.parametrize("override", [
    {"monitoring_alertmanager_group_wait": "30x"},
    {"monitoring_alertmanager_group_by": ["not a label"]},
    {"monitoring_alertmanager_webhook_url": "not a url"},
])
def test_amtool_refuses_a_bad_configuration(amtool, rendered, override):
    """What the role's `validate: amtool check-config %s` refuses before the file is in place."""
    path = rendered("alertmanager.yml.j2", "alertmanager.yml", **dict(VARIANTS["all"], **override))
    result = amtool("check-config", str(path))
    assert result.returncode != 0, result.stdout
