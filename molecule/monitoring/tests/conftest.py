"""Shared pieces of the monitoring scenario's verifiers: Prometheus queries,
traffic sent from inside the application host (mon-app1). Bounded waits:
labwait.poll (tools/, put on sys.path here)."""
import json
import os
import shlex
import sys
import time
import urllib.parse

import pytest
import testinfra

ROOT = os.environ.get("MOLECULE_PROJECT_DIRECTORY",
                      os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", "..")))
sys.path.insert(0, os.path.join(ROOT, "tools"))

from labwait import poll  # noqa: E402  pylint: disable=wrong-import-position

INVENTORY = os.environ.get("MOLECULE_INVENTORY_FILE", "")
PROM = "http://127.0.0.1:9090"
# slot -> (port, version); 2.0.0 is deployed degraded (its ranking reversed).
SLOTS = {"blue": (5062, "1.0.0"), "green": (5070, "2.0.0")}
# The right top offer for MATCH_BODY; the degraded release answers another one.
RIGHT_OFFER = "o-1"
MATCHES_PER_SLOT = 6
FEEDBACK_PER_SLOT = 4
TIMEOUT = 90  # seconds for Prometheus to see what was sent (polled every DELAY s)
DELAY = 2

MATCH_BODY = {
    "candidate": {"id": "c-1", "skills": ["python", "sql"], "experience_years": 5, "location": "Paris"},
    "offers": [
        {"id": "o-1", "required_skills": ["python"], "min_experience": 2, "location": "Paris"},
        {"id": "o-2", "required_skills": ["java"], "min_experience": 8, "location": "Lyon"},
    ],
}


@pytest.fixture(scope="session")
def app_host():
    return testinfra.get_host("ansible://mon-app1", ansible_inventory=INVENTORY)


@pytest.fixture(scope="session")
def mon_host():
    return testinfra.get_host("ansible://mon-role1", ansible_inventory=INVENTORY)


def prom_get(host, path, **params):
    url = PROM + path + ("?" + urllib.parse.urlencode(params) if params else "")
    out = host.check_output("curl -sf %s", url)
    data = json.loads(out)
    assert data["status"] == "success", data
    return data["data"]


def query(host, expr):
    """Instant query -> {(version, slot): value} ({slot: value} if no version label)."""
    result = prom_get(host, "/api/v1/query", query=expr)["result"]
    values = {}
    for item in result:
        labels = item["metric"]
        key = (labels["version"], labels["slot"]) if "version" in labels else labels.get("slot")
        values[key] = float(item["value"][1])
    return values


def post(app_host, port, path, body):
    """POST JSON from inside mon-app1 -> HTTP status."""
    cmd = "curl -s -o /dev/null -w '%%{http_code}' -X POST -H 'Content-Type: application/json' -d %s http://127.0.0.1:%d%s" % (
        shlex.quote(json.dumps(body)), port, path)
    return app_host.check_output(cmd)


# Run on mon-app1 (one command per slot): the matches, then the client's
# feedback on the top offer of the first ones, each with the feedback_token of
# its match answer (the service refuses feedback without it); prints the
# statuses and tops.
CLIENT = """
import json, sys, urllib.request
port, matches, feedback, right, body = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5]
def post(path, data):
    request = urllib.request.Request("http://127.0.0.1:%d%s" % (port, path), data=data.encode(),
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as answer:
        return answer.status, json.loads(answer.read())
answers, statuses = [], []
for _ in range(matches):
    status, answer = post("/api/v2/match", body)
    statuses.append(status)
    answers.append(answer)
for answer in answers[:feedback]:
    top = answer["matches"][0]["offer_id"]
    status, _answer = post("/api/v2/feedback", json.dumps({"candidate_id": answer["candidate_id"], "offer_id": top,
                                                           "correct": top == right,
                                                           "feedback_token": answer["feedback_token"]}))
    statuses.append(status)
print(json.dumps({"tops": [a["matches"][0]["offer_id"] for a in answers], "statuses": statuses}))
"""


def client(app_host, port, matches, feedback):
    out = app_host.check_output("python3 -c %s %d %d %d %s %s" % (
        shlex.quote(CLIENT), port, matches, feedback, RIGHT_OFFER, shlex.quote(json.dumps(MATCH_BODY))))
    return json.loads(out)


@pytest.fixture(scope="session")
def traffic(app_host, mon_host):
    """Matches to both slots, and the feedback a client gives on each top offer (once per run).

    rate() cannot see the first value of a series that appears between two
    scrapes (ssm_http_requests_total{path="/api/v2/match"} is born with the
    first request), so one warm-up match per slot is sent and scraped first.
    The feedback counters exist from the start (at 0). Returns the time the
    first feedback was sent.
    """
    for slot, (port, _version) in SLOTS.items():
        assert post(app_host, port, "/api/v2/match", MATCH_BODY) == "200"
    born = 'ssm_http_requests_total{job="supersmartmatch",path="/api/v2/match"}'
    assert poll(lambda: len(query(mon_host, born)) == len(SLOTS), TIMEOUT, delay=DELAY).value, query(mon_host, born)
    time.sleep(3)  # one more scrape (2 s) after the series appeared
    started = time.time()
    for slot, (port, _version) in SLOTS.items():
        sent = client(app_host, port, MATCHES_PER_SLOT, FEEDBACK_PER_SLOT)
        assert sent["statuses"] == [200] * MATCHES_PER_SLOT + [202] * FEEDBACK_PER_SLOT, sent
        assert set(sent["tops"]) == {RIGHT_OFFER if slot == "blue" else "o-2"}, sent
    return started
