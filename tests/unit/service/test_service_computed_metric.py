"""The histogram of computed match answers (ssm_match_computed_duration_seconds).

The judge compares the candidate's p95 with the stable side's on the answers
each release computed itself: a cache hit must not count, a computed answer
must (with or without a cache), and a refused request neither.
"""
import json
import re

import pytest

from supersmartmatch_service.cache import MatchCache, entry_ttl
from supersmartmatch_service.config import Config
from supersmartmatch_service.server import App, HTTPError

BODY = json.dumps({"candidate": {"id": "c", "skills": ["a"], "experience_years": 1, "location": "x"},
                   "offers": [{"id": "o", "required_skills": [], "min_experience": 0, "location": "remote"}]}).encode()


class FakeRedis:
    """The two calls MatchCache makes on a redis-py client, on a dict."""

    def __init__(self):
        self.data = {}

    def get(self, key):
        return self.data.get(key)

    def set(self, key, value, ex=None):
        self.data[key] = value


def computed_count(app):
    found = re.findall(r'^ssm_match_computed_duration_seconds_count\{version="1\.0\.0",slot="blue"\} (\d+)$',
                       app.metrics.render(), re.M)
    assert len(found) == 1
    return int(found[0])


def make_app(cache):
    env = {"SSM_VERSION": "1.0.0", "SSM_SLOT": "blue"}
    app = App(Config.from_env(env))
    if cache:
        redis = FakeRedis()
        app.cache = MatchCache(Config.from_env(dict(env, SSM_CACHE_NODES="127.0.0.1:1")), app.metrics,
                               factory=lambda: redis, log=lambda _message: None)
    return app


@pytest.mark.parametrize("cache, requests, computed", [
    (False, 0, 0),   # rendered from zero, so the series exists before the first answer
    (False, 3, 3),   # no cache: every answer is computed
    (True, 1, 1),    # a miss is computed
    (True, 3, 1),    # then the same body is a hit twice: not counted
])
def test_only_computed_answers_are_observed(cache, requests, computed):
    app = make_app(cache)
    for _request in range(requests):
        status, payload, _ctype = app.handle("POST", "/api/v2/match", BODY)
        assert status == 200 and payload["candidate_id"] == "c"
    assert computed_count(app) == computed
    assert '# TYPE ssm_match_computed_duration_seconds histogram' in app.metrics.render()


def test_a_refused_request_is_not_observed():
    app = make_app(cache=False)
    with pytest.raises(HTTPError):
        app.handle("POST", "/api/v2/match", b"{not json")
    assert computed_count(app) == 0


def test_the_latency_fault_is_part_of_the_computed_duration():
    app = App(Config.from_env({"SSM_VERSION": "1.0.0", "SSM_SLOT": "blue", "SSM_FAULT_LATENCY_MS": "20"}))
    app.handle("POST", "/api/v2/match", BODY)
    total = re.findall(r'^ssm_match_computed_duration_seconds_sum\{[^}]*\} (\S+)$', app.metrics.render(), re.M)
    assert float(total[0]) >= 0.02


# --------------------------------------------------------------------------- TTL jitter
@pytest.mark.parametrize("ttl, draw, expected", [
    (300, 0.0, 150),      # the shortest life: half the TTL
    (300, 0.999999, 300),  # the longest: the TTL itself
    (300, 0.5, 225),
    (1, 0.0, 1),          # never 0 (Redis refuses ex=0)
    (1, 0.999999, 1),
    (3, 0.999999, 3),
])
def test_entry_ttl_is_between_half_the_ttl_and_the_ttl(ttl, draw, expected):
    assert entry_ttl(ttl, draw=lambda: draw) == expected


def test_entries_made_together_do_not_expire_together():
    redis = FakeRedis()
    ttls = []
    redis.set = lambda key, value, ex=None: ttls.append(ex)
    cache = MatchCache(Config.from_env({"SSM_CACHE_NODES": "127.0.0.1:1", "SSM_CACHE_TTL": "300"}),
                       make_app(cache=False).metrics, factory=lambda: redis, log=lambda _message: None)
    for index in range(200):
        cache.set("key-%d" % index, {"candidate_id": "c", "matches": []})
    assert all(150 <= ttl <= 300 for ttl in ttls)
    assert len(set(ttls)) > 50
