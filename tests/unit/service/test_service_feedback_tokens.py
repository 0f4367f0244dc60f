"""Signed feedback: only the match a slot answered can be rated (tokens.py, POST /api/v2/feedback).

Every refusal is a 401 naming its reason, counted in ssm_feedback_rejected_total and never in
ssm_feedback_total (the precision gate's counter) nor in the database. Expiry is tested with an
injected clock (no sleeps); the key never shows in /metrics, /health, an answer or the logs.
"""
import json
import os
import re
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from supersmartmatch_service.config import Config
from supersmartmatch_service.server import App, HTTPError
from supersmartmatch_service.tokens import MIN_KEY_BYTES, FeedbackTokens, KeyFileError, TokenRejected, load_keys

SRC = Path(__file__).resolve().parents[3] / "service" / "src"
KEY = "k" * 31 + "-first-signing-key"            # 49 bytes
OTHER_KEY = "o" * 40 + "-second-key"              # 51 bytes
UNKNOWN_KEY = "u" * 48
TOKEN_RE = re.compile(r"^v1\.[0-9]+\.[A-Za-z0-9_-]{43}$")
CASE = {
    "candidate": {"id": "c1", "skills": ["python", "sql"], "experience_years": 4, "location": "paris"},
    "offers": [
        {"id": "far", "required_skills": ["go"], "min_experience": 8, "location": "lyon"},
        {"id": "best", "required_skills": ["python", "sql"], "min_experience": 2, "location": "paris"},
    ],
}


class FakeClock:
    def __init__(self, now=1_800_000_000.0):
        self.now = now

    def __call__(self):
        return self.now


def key_file(tmp_path, *lines, name="feedback.key"):
    path = tmp_path / name
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return str(path)


def tokens(*keys, ttl=3600, clock=None):
    return FeedbackTokens([k.encode() for k in keys], ttl, clock=clock or FakeClock())


def counters(server, call):
    """(ssm_feedback_total by outcome, ssm_feedback_rejected_total by reason) from /metrics."""
    text = call(server, "GET", "/metrics")[2]
    accepted = dict(re.findall(r'^ssm_feedback_total\{.*outcome="(\w+)"\} (\d+)$', text, re.M))
    rejected = dict(re.findall(r'^ssm_feedback_rejected_total\{.*reason="(\w+)"\} (\d+)$', text, re.M))
    return ({k: int(v) for k, v in accepted.items()}, {k: int(v) for k, v in rejected.items()})


def match(server, call, case=None):
    status, _headers, answer = call(server, "POST", "/api/v2/match", CASE if case is None else case)
    assert status == 200, answer
    return answer


def feedback_for(answer, **changes):
    body = {"candidate_id": answer["candidate_id"], "offer_id": answer["matches"][0]["offer_id"],
            "correct": True, "feedback_token": answer["feedback_token"]}
    body.update(changes)
    return {k: v for k, v in body.items() if v is not None}


# --------------------------------------------------------------------------- the token itself
def test_round_trip_and_format():
    signer = tokens(KEY)
    token = signer.issue("c1", "best")
    assert TOKEN_RE.match(token) and len(token) == 57
    assert token.split(".")[1] == str(1_800_000_000 + 3600)
    signer.verify(token, "c1", "best")  # no exception


@pytest.mark.parametrize("candidate_id, offer_id", [("c1", "far"), ("c2", "best"), ("c1", "best "), ("best", "c1")])
def test_a_token_rates_only_its_own_candidate_and_offer(candidate_id, offer_id):
    signer = tokens(KEY)
    with pytest.raises(TokenRejected) as refused:
        signer.verify(signer.issue("c1", "best"), candidate_id, offer_id)
    assert refused.value.reason == "forged"


def test_ids_cannot_be_shifted_between_fields():
    signer = tokens(KEY)
    with pytest.raises(TokenRejected, match="does not match"):
        signer.verify(signer.issue("a", "b\u0000c"), "a\u0000b", "c")


def test_expiry_with_an_injected_clock():
    clock = FakeClock()
    signer = tokens(KEY, ttl=60, clock=clock)
    token = signer.issue("c1", "best")
    clock.now += 60
    signer.verify(token, "c1", "best")  # valid up to and including its expiry second
    clock.now += 1
    with pytest.raises(TokenRejected) as refused:
        signer.verify(token, "c1", "best")
    assert refused.value.reason == "expired"


@pytest.mark.parametrize("token, reason", [
    (None, "missing"), ("", "missing"),
    (42, "malformed"), (["v1"], "malformed"), ("v1", "malformed"), ("v1.123", "malformed"),
    ("v2.1800003600." + "A" * 43, "malformed"), ("v1.soon." + "A" * 43, "malformed"),
    ("v1.1800003600." + "A" * 42, "malformed"), ("v1.1800003600." + "A" * 44, "malformed"),
    ("v1.1800003600." + "A" * 42 + "=", "malformed"), ("v1.1800003600." + "A" * 43 + "\n", "malformed"),
    ("v1.1800003600." + "A" * 43, "forged"),
])
def test_refusal_reasons(token, reason):
    with pytest.raises(TokenRejected) as refused:
        tokens(KEY).verify(token, "c1", "best")
    assert refused.value.reason == reason


def test_a_forged_expiry_breaks_the_mac():
    token = tokens(KEY).issue("c1", "best")
    version, expiry, mac = token.split(".")
    with pytest.raises(TokenRejected, match="does not match"):
        tokens(KEY).verify(".".join((version, str(int(expiry) + 86400), mac)), "c1", "best")


def test_rotation_first_key_signs_every_key_verifies(tmp_path):
    both = FeedbackTokens(load_keys(key_file(tmp_path, KEY, "", OTHER_KEY)), 3600, clock=FakeClock())
    assert both.key_count == 2
    from_second = tokens(OTHER_KEY).issue("c1", "best")  # a host still signing with the other key
    both.verify(from_second, "c1", "best")
    tokens(KEY).verify(both.issue("c1", "best"), "c1", "best")  # the first line signs
    with pytest.raises(TokenRejected, match="does not match"):
        both.verify(tokens(UNKNOWN_KEY).issue("c1", "best"), "c1", "best")


def test_repr_never_shows_a_key(tmp_path):
    signer = FeedbackTokens(load_keys(key_file(tmp_path, KEY, OTHER_KEY)), 3600)
    assert KEY not in repr(signer) and OTHER_KEY not in repr(signer) and "keys=2" in repr(signer)


# --------------------------------------------------------------------------- the key file
@pytest.mark.parametrize("lines, words", [
    (["too-short"], "the key on line 1 of {path} is 9 bytes long, feedback keys need at least 32"),
    ([KEY, "x" * 31], "the key on line 2 of {path} is 31 bytes long"),
    ([], "{path} holds no key"),
    (["", "   "], "{path} holds no key"),
])
def test_bad_key_files_are_refused_at_start(tmp_path, lines, words):
    path = key_file(tmp_path, *lines)
    with pytest.raises(KeyFileError) as refused:
        App(Config.from_env({"SSM_FEEDBACK_KEY_FILE": path}))
    message = str(refused.value)
    assert message.startswith("SSM_FEEDBACK_KEY_FILE: ") and words.format(path=path) in message
    for line in lines:
        if line.strip():
            assert line not in message


def test_an_unreadable_key_file_is_named(tmp_path):
    with pytest.raises(KeyFileError, match=r"SSM_FEEDBACK_KEY_FILE: cannot read .*/absent\.key: No such file"):
        App(Config.from_env({"SSM_FEEDBACK_KEY_FILE": str(tmp_path / "absent.key")}))


def test_keys_are_stripped_and_exactly_32_bytes_is_enough(tmp_path):
    keys = load_keys(key_file(tmp_path, "  " + "a" * MIN_KEY_BYTES + " \r"))
    assert keys == [b"a" * MIN_KEY_BYTES]


def test_the_config_holds_the_path_only(tmp_path):
    path = key_file(tmp_path, KEY)
    cfg = Config.from_env({"SSM_FEEDBACK_KEY_FILE": path, "SSM_FEEDBACK_TOKEN_TTL": "120"})
    assert (cfg.feedback_key_file, cfg.feedback_token_ttl) == (path, 120)
    assert KEY not in repr(cfg)


# --------------------------------------------------------------------------- over HTTP
def test_match_answer_carries_a_token_and_its_feedback_counts(serve, call, tmp_path):
    server = serve(SSM_FEEDBACK_KEY_FILE=key_file(tmp_path, KEY))
    answer = match(server, call)
    assert TOKEN_RE.match(answer["feedback_token"])
    FeedbackTokens([KEY.encode()], 3600).verify(answer["feedback_token"], "c1", "best")  # the file's first key signs
    status, _headers, body = call(server, "POST", "/api/v2/feedback", feedback_for(answer))
    assert status == 202 and body["accepted"] is True
    assert counters(server, call) == ({"hit": 1, "miss": 0},
                                      {"missing": 0, "malformed": 0, "expired": 0, "forged": 0})


@pytest.mark.parametrize("changes, reason", [
    ({"feedback_token": None}, "missing"),
    ({"feedback_token": "not-a-token"}, "malformed"),
    ({"offer_id": "far"}, "forged"),                 # the token of another offer
    ({"candidate_id": "c2"}, "forged"),              # ... or of another candidate
    ({"feedback_token": "v1.9999999999." + "A" * 43}, "forged"),
])
def test_refused_feedback_is_401_and_never_counted(serve, call, changes, reason):
    server = serve()
    answer = match(server, call)
    status, headers, body = call(server, "POST", "/api/v2/feedback", feedback_for(answer, **changes))
    assert status == 401 and body["reason"] == reason and "feedback_token" in body["error"]
    assert headers["WWW-Authenticate"] == "SSM-Feedback-Token"
    assert headers["X-SSM-Slot"] == "blue"
    accepted, rejected = counters(server, call)
    assert accepted == {"hit": 0, "miss": 0}
    assert rejected[reason] == 1 and sum(rejected.values()) == 1


def test_forged_mac_over_http(serve, call, tmp_path):
    server = serve(SSM_FEEDBACK_KEY_FILE=key_file(tmp_path, KEY))
    answer = match(server, call)
    version, expiry, mac = answer["feedback_token"].split(".")
    flipped = ("B" if mac[0] == "A" else "A") + mac[1:]
    forged = feedback_for(answer, feedback_token=".".join((version, expiry, flipped)), correct=False)
    assert call(server, "POST", "/api/v2/feedback", forged)[0] == 401
    by_attacker = feedback_for(answer, feedback_token=tokens(UNKNOWN_KEY).issue("c1", "best"))
    assert call(server, "POST", "/api/v2/feedback", by_attacker)[0] == 401
    assert counters(server, call) == ({"hit": 0, "miss": 0},
                                      {"missing": 0, "malformed": 0, "expired": 0, "forged": 2})


def test_expired_token_over_http(serve, call, tmp_path):
    server = serve(SSM_FEEDBACK_KEY_FILE=key_file(tmp_path, KEY), SSM_FEEDBACK_TOKEN_TTL="60")
    answer = match(server, call)
    issued_long_ago = tokens(KEY, ttl=60, clock=FakeClock(1_000_000_000)).issue("c1", "best")
    status, _headers, body = call(server, "POST", "/api/v2/feedback",
                                  feedback_for(answer, feedback_token=issued_long_ago))
    assert status == 401 and body["reason"] == "expired"
    assert counters(server, call)[0] == {"hit": 0, "miss": 0}


def test_rotation_over_http(serve, call, tmp_path):
    """A host with [new, old] accepts the feedback of a match answered by a host still on [old]."""
    old_host = serve(SSM_FEEDBACK_KEY_FILE=key_file(tmp_path, OTHER_KEY, name="old.key"))
    new_host = serve(SSM_FEEDBACK_KEY_FILE=key_file(tmp_path, KEY, OTHER_KEY, name="new.key"))
    answer = match(old_host, call)
    assert call(new_host, "POST", "/api/v2/feedback", feedback_for(answer))[0] == 202
    answer = match(new_host, call)  # signed with the new key: the old host cannot verify it yet
    assert call(old_host, "POST", "/api/v2/feedback", feedback_for(answer))[0] == 401


def test_hosts_sharing_the_key_file_accept_each_others_tokens(serve, call, tmp_path):
    path = key_file(tmp_path, KEY)
    blue, green = serve(SSM_FEEDBACK_KEY_FILE=path), serve(SSM_FEEDBACK_KEY_FILE=path, SSM_SLOT="green")
    assert call(green, "POST", "/api/v2/feedback", feedback_for(match(blue, call)))[0] == 202


def test_without_a_key_file_tokens_verify_on_their_own_process_only(serve, call):
    first, second = serve(), serve()
    assert first.app.feedback_tokens.ephemeral
    answer = match(first, call)
    assert call(second, "POST", "/api/v2/feedback", feedback_for(answer))[2]["reason"] == "forged"
    assert call(first, "POST", "/api/v2/feedback", feedback_for(answer))[0] == 202


def test_an_invalid_body_is_still_400(serve, call):
    status, _headers, body = call(serve(), "POST", "/api/v2/feedback", {"candidate_id": "c1", "offer_id": "best"})
    assert status == 400 and "body.correct is required" in body["error"]


def test_the_key_is_never_served(serve, call, tmp_path):
    server = serve(SSM_FEEDBACK_KEY_FILE=key_file(tmp_path, KEY, OTHER_KEY))
    answer = match(server, call)
    call(server, "POST", "/api/v2/feedback", feedback_for(answer))
    call(server, "POST", "/api/v2/feedback", feedback_for(answer, offer_id="far"))
    for path in ("/metrics", "/health"):
        text = json.dumps(call(server, "GET", path)[2])
        for secret in (KEY, OTHER_KEY):
            assert secret not in text and secret[:20] not in text
    assert KEY not in json.dumps(answer)
    assert 'ssm_feedback_rejected_total{version="1.0.0",slot="blue",reason="forged"} 1' in \
        call(server, "GET", "/metrics")[2]


# --------------------------------------------------------------------------- nothing stored when refused
class FakeDatabase:
    def __init__(self):
        self.feedback = []

    def record_match(self, *_args):
        pass

    def record_feedback(self, candidate_id, offer_id, correct):
        self.feedback.append((candidate_id, offer_id, correct))

    def close(self):
        pass


def test_refused_feedback_never_reaches_the_database():
    app = App(Config.from_env({"SSM_VERSION": "1.0.0"}))
    app.database = FakeDatabase()
    _status, answer, _ctype = app.handle("POST", "/api/v2/match", json.dumps(CASE).encode())
    with pytest.raises(HTTPError) as refused:
        app.handle("POST", "/api/v2/feedback", json.dumps(feedback_for(answer, offer_id="far")).encode())
    assert refused.value.status == 401 and app.database.feedback == []
    status, _body, _ctype = app.handle("POST", "/api/v2/feedback", json.dumps(feedback_for(answer)).encode())
    assert status == 202 and app.database.feedback == [("c1", "best", True)]


# --------------------------------------------------------------------------- the process
def _env(**extra):
    env = {k: v for k, v in os.environ.items() if not k.startswith("SSM_")}
    env.update(PYTHONPATH=str(SRC), **extra)
    return env


def test_main_refuses_a_short_key_without_a_traceback(tmp_path):
    path = key_file(tmp_path, "short-secret-value")
    proc = subprocess.run([sys.executable, "-m", "supersmartmatch_service"],
                          env=_env(SSM_FEEDBACK_KEY_FILE=path, SSM_PORT="0", SSM_BIND="127.0.0.1"),
                          capture_output=True, text=True, timeout=30, check=False)
    assert proc.returncode == 2
    assert proc.stderr.strip() == (f"supersmartmatch-service: invalid configuration: SSM_FEEDBACK_KEY_FILE: the key on"
                                   f" line 1 of {path} is 18 bytes long, feedback keys need at least 32"
                                   " (e.g. openssl rand -base64 48)")
    assert "short-secret-value" not in proc.stderr and "Traceback" not in proc.stderr


@pytest.mark.parametrize("with_key", [True, False])
def test_main_logs_where_the_key_is_never_the_key(tmp_path, with_key):
    env = _env(SSM_PORT="0", SSM_BIND="127.0.0.1")
    if with_key:
        env["SSM_FEEDBACK_KEY_FILE"] = key_file(tmp_path, KEY)
    proc = subprocess.Popen([sys.executable, "-m", "supersmartmatch_service"], env=env,
                            stderr=subprocess.PIPE, text=True)
    try:
        url = re.search(r"listening on (http://\S+)", proc.stderr.readline()).group(1)
        second = proc.stderr.readline()
        with urllib.request.urlopen(url + "/health", timeout=5) as resp:
            assert resp.status == 200
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
        logged = second + proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    if with_key:
        assert "feedback tokens signed with the first of 1 key(s) of" in second
    else:
        assert "warning: SSM_FEEDBACK_KEY_FILE is not set" in second and "this process only" in second
    assert KEY not in logged and KEY[:20] not in logged
