"""The real HTTP server on an ephemeral loopback port: endpoints, metrics, faults."""
import http.client
import re
import time

import pytest

from supersmartmatch_service.metrics import DURATION_BUCKETS
from trafficgen import build_dataset

CASE = {
    "candidate": {"id": "c1", "skills": ["python", "sql"], "experience_years": 4, "location": "paris"},
    "offers": [
        {"id": "far", "required_skills": ["go"], "min_experience": 8, "location": "lyon"},
        {"id": "best", "required_skills": ["python", "sql"], "min_experience": 2, "location": "paris"},
        {"id": "mid", "required_skills": ["python", "go"], "min_experience": 4, "location": "remote"},
    ],
}
LINE_RE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$')
LABEL_RE = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


def parse_metrics(text):
    """Prometheus text -> {(name, frozenset(labels.items())): float}; fails on bad lines."""
    samples = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            assert not line or re.match(r"^# (HELP|TYPE) \w+ .+$", line), line
            continue
        match = LINE_RE.match(line)
        assert match, f"unparsable metrics line {line!r}"
        name, labels, value = match.groups()
        samples[(name, frozenset(LABEL_RE.findall(labels or "")))] = float(value)
    return samples


def sample(samples, name, **labels):
    want = set(labels.items())
    found = [v for (n, ls), v in samples.items() if n == name and want <= set(ls)]
    assert len(found) <= 1, f"ambiguous selector {name} {labels}"
    return found[0] if found else 0.0


def test_health_and_identity_headers(serve, call):
    server = serve(SSM_SLOT="green", SSM_VERSION="2.0.0")
    status, headers, body = call(server, "GET", "/health")
    assert status == 200
    assert body == {"status": "ok", "version": "2.0.0", "slot": "green", "up": 1}
    assert headers["X-SSM-Version"] == "2.0.0" and headers["X-SSM-Slot"] == "green"


def test_match_ranks_best_first(serve, call):
    server = serve()
    status, headers, body = call(server, "POST", "/api/v2/match", CASE)
    assert status == 200 and headers["X-SSM-Slot"] == "blue"
    assert body["candidate_id"] == "c1" and body["version"] == "1.0.0" and body["slot"] == "blue"
    assert [m["offer_id"] for m in body["matches"]] == ["best", "mid", "far"]
    assert body["matches"][0]["score"] == 1.0
    scores = [m["score"] for m in body["matches"]]
    assert scores == sorted(scores, reverse=True) and all(0 <= s <= 1 for s in scores)


@pytest.mark.parametrize("raw, message", [
    (b"{not json", "body is not valid JSON"),
    (b'{"candidate": {}, "offers": []}', "candidate.id is required"),
    (b'{"candidate": {"id": "c", "skills": "x", "experience_years": 1, "location": "p"}, "offers": [1]}',
     "candidate.skills must be a list of strings"),
    (b"", "body is not valid JSON"),
])
def test_match_invalid_body_is_400(serve, call, raw, message):
    status, headers, body = call(serve(), "POST", "/api/v2/match", raw=raw)
    assert status == 400 and message in body["error"]
    assert headers["X-SSM-Version"] == "1.0.0"


def test_feedback_is_counted_by_outcome(serve, call):
    server = serve()
    for correct in (True, True, False):  # the real flow: each feedback sends back its match's token
        token = call(server, "POST", "/api/v2/match", CASE)[2]["feedback_token"]
        status, _headers, body = call(server, "POST", "/api/v2/feedback",
                                      {"candidate_id": "c1", "offer_id": "best", "correct": correct,
                                       "feedback_token": token})
        assert status == 202 and body["accepted"] is True
    status, _headers, body = call(server, "POST", "/api/v2/feedback",
                                  {"candidate_id": "c1", "offer_id": "best", "feedback_token": token})
    assert status == 400 and "body.correct is required" in body["error"]
    samples = parse_metrics(call(server, "GET", "/metrics")[2])
    assert sample(samples, "ssm_feedback_total", outcome="hit", version="1.0.0", slot="blue") == 2
    assert sample(samples, "ssm_feedback_total", outcome="miss") == 1


@pytest.mark.parametrize("method, path, status", [
    ("GET", "/nope", 404), ("POST", "/api/v1/match", 404), ("GET", "/api/v2/match", 405),
    ("POST", "/health", 405), ("DELETE", "/metrics", 405),
])
def test_unknown_paths_and_methods(serve, call, method, path, status):
    got, headers, body = call(serve(), method, path)
    assert got == status and "error" in body
    assert headers["X-SSM-Slot"] == "blue"


def test_metrics_counters_move_and_histogram_is_cumulative(serve, call):
    server = serve(SSM_VERSION="9.9.9")
    for _attempt in range(3):
        assert call(server, "POST", "/api/v2/match", CASE)[0] == 200
    call(server, "POST", "/api/v2/match", raw=b"[]")
    call(server, "GET", "/health")
    status, headers, text = call(server, "GET", "/metrics")
    assert status == 200 and headers["Content-Type"].startswith("text/plain; version=0.0.4")
    samples = parse_metrics(text)
    base = {"version": "9.9.9", "slot": "blue"}
    assert sample(samples, "ssm_build_info", **base) == 1
    assert sample(samples, "ssm_http_requests_total", method="POST", path="/api/v2/match", status="200", **base) == 3
    assert sample(samples, "ssm_http_requests_total", method="POST", path="/api/v2/match", status="400", **base) == 1
    assert sample(samples, "ssm_http_requests_total", method="GET", path="/health", status="200", **base) == 1
    sel = {"path": "/api/v2/match", "status": "200", **base}
    buckets = [sample(samples, "ssm_http_request_duration_seconds_bucket", le=le, **sel)
               for le in [format(float(b), "g") for b in DURATION_BUCKETS] + ["+Inf"]]
    assert buckets == sorted(buckets) and buckets[-1] == 3
    assert sample(samples, "ssm_http_request_duration_seconds_count", **sel) == 3
    assert 0 < sample(samples, "ssm_http_request_duration_seconds_sum", **sel) < 3 * 5
    # The next scrape sees this scrape, and counters only move by what happened.
    again = parse_metrics(call(server, "GET", "/metrics")[2])
    assert sample(again, "ssm_http_requests_total", path="/metrics", status="200", **base) == 1
    assert sample(again, "ssm_http_requests_total", path="/api/v2/match", status="200", **base) == 3


def test_keep_alive_serves_several_requests_on_one_connection(serve):
    server = serve()
    conn = http.client.HTTPConnection(*server.server_address[:2], timeout=5)
    try:
        for _attempt in range(3):
            conn.request("GET", "/health")
            resp = conn.getresponse()
            resp.read()
            assert resp.status == 200 and not resp.will_close
        sock = conn.sock
        conn.request("GET", "/health")
        conn.getresponse().read()
        assert conn.sock is sock  # same TCP connection reused
    finally:
        conn.close()


def test_fault_unhealthy(serve, call):
    status, _headers, body = call(serve(SSM_FAULT_UNHEALTHY="1"), "GET", "/health")
    assert status == 503 and body["status"] == "unhealthy" and body["up"] == 0


def test_fault_error_rate(serve, call):
    server = serve(SSM_FAULT_ERROR_RATE="1.0")
    statuses = [call(server, "POST", "/api/v2/match", CASE)[0] for _attempt in range(5)]
    assert statuses == [500] * 5
    assert call(server, "GET", "/health")[0] == 200  # only matching is affected
    samples = parse_metrics(call(server, "GET", "/metrics")[2])
    assert sample(samples, "ssm_http_requests_total", path="/api/v2/match", status="500") == 5


def test_fault_latency(serve, call):
    server = serve(SSM_FAULT_LATENCY_MS="300")
    start = time.perf_counter()
    assert call(server, "POST", "/api/v2/match", CASE)[0] == 200
    assert 0.3 <= time.perf_counter() - start < 2.0
    start = time.perf_counter()
    call(server, "GET", "/health")
    assert time.perf_counter() - start < 0.25


@pytest.mark.parametrize("env, low, high", [({}, 1.0, 1.0), ({"SSM_FAULT_DEGRADED": "1"}, 0.0, 0.94)])
def test_precision_on_labelled_dataset(serve, call, env, low, high):
    server = serve(**env)
    cases = build_dataset(seed=7, size=60)
    hits = sum(call(server, "POST", "/api/v2/match", c.match_body())[2]["matches"][0]["offer_id"] == c.label
               for c in cases)
    assert low <= hits / len(cases) <= high
    if env:
        assert hits / len(cases) < 0.94
