"""Feedback tokens: the pure logic (table-driven) and the real HTTP flow on loopback."""
import base64
import hashlib
import hmac
import json
import os
import subprocess
import sys

import pytest

from supersmartmatch_service import feedback_auth as fa
from test_service_http import CASE, parse_metrics, sample

KEY = b"k" * 40
OLD = b"o" * 40
OTHER = b"x" * 40
NOW = 1_800_000_000
MID = "0123456789abcdef0123456789abcdef"
CLAIMS = fa.Claims(MID, "c1", "best", NOW + 60, "2.0.0")


def b64(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def signed(claims_obj, key=KEY):
    """A token over arbitrary claims (to forge well-signed but odd claims)."""
    body = b64(json.dumps(claims_obj).encode())
    mac = hmac.new(key, b"ssm-feedback-v1." + body.encode(), hashlib.sha256).digest()
    return f"1.{body}.{b64(mac)}"


def tamper(token):
    version, body, mac = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    claims["c"] = "someone-else"
    return f"{version}.{b64(json.dumps(claims).encode())}.{mac}"


GOOD = fa.issue((KEY,), CLAIMS)


# ----------------------------------------------------------------------------- keys
@pytest.mark.parametrize("text, keys", [
    ("k" * 40 + "\n", (KEY,)),
    ("  " + "k" * 40 + "  \r\n\n" + "o" * 40 + "\n", (KEY, OLD)),
    ("k" * 40 + "\n" + "k" * 40 + "\n", (KEY,)),  # same key twice: one
    ("a" * 32, (b"a" * 32,)),
])
def test_parse_keys(text, keys):
    assert fa.parse_keys(text) == keys


@pytest.mark.parametrize("text, message", [
    ("", "no key"),
    ("\n \n", "no key"),
    ("a" * 31, "line 1 must be 32..1024"),
    ("k" * 40 + "\n" + "short", "line 2 must be 32..1024"),
    ("k" * 40 + " " + "k" * 40, "line 1 must be"),
    ("k" * 39 + "é", "line 1 must be"),
    ("a" * 1025, "line 1 must be"),
    ("\n".join(["k" * 40, "o" * 40, "x" * 40]), "3 keys, at most 2"),
])
def test_parse_keys_refuses_bad_files_without_quoting_them(text, message):
    with pytest.raises(fa.FeedbackKeyError, match=message) as info:
        fa.parse_keys(text)
    assert "kkkkkkkkkk" not in str(info.value) and "aaaaaaaaaa" not in str(info.value)


def test_load_keys(tmp_path):
    path = tmp_path / "feedback.key"
    path.write_text("k" * 40 + "\n")
    assert fa.load_keys(str(path)) == (KEY,)
    with pytest.raises(fa.FeedbackKeyError, match="cannot read .*missing"):
        fa.load_keys(str(tmp_path / "missing"))
    first, second = fa.load_keys(""), fa.load_keys("")
    assert len(first) == 1 and len(first[0]) >= fa.MIN_KEY_LENGTH and first != second  # per process, random


# ----------------------------------------------------------------------------- verify
@pytest.mark.parametrize("keys, token, candidate, offer, now, expected", [
    ((KEY,), GOOD, "c1", "best", NOW, CLAIMS),
    ((KEY, OLD), GOOD, "c1", "best", NOW, CLAIMS),
    ((OTHER, KEY), GOOD, "c1", "best", NOW, CLAIMS),  # rotated: the token's key is now the previous one
    ((KEY,), GOOD, "c1", "best", NOW + 59, CLAIMS),
    ((KEY,), None, "c1", "best", NOW, fa.MISSING),
    ((KEY,), "", "c1", "best", NOW, fa.MISSING),
    ((KEY,), 42, "c1", "best", NOW, fa.MALFORMED),
    ((KEY,), ["1.a.b"], "c1", "best", NOW, fa.MALFORMED),
    ((KEY,), "garbage", "c1", "best", NOW, fa.MALFORMED),
    ((KEY,), GOOD + "\n", "c1", "best", NOW, fa.MALFORMED),
    ((KEY,), "2" + GOOD[1:], "c1", "best", NOW, fa.MALFORMED),
    ((KEY,), GOOD[:-1], "c1", "best", NOW, fa.MALFORMED),
    ((KEY,), "1." + "A" * 5000 + "." + "A" * 43, "c1", "best", NOW, fa.MALFORMED),
    ((OTHER,), GOOD, "c1", "best", NOW, fa.FORGED),  # another fleet's key
    ((KEY,), GOOD[:-2] + ("AA" if not GOOD.endswith("AA") else "BB"), "c1", "best", NOW, fa.FORGED),
    ((KEY,), tamper(GOOD), "someone-else", "best", NOW, fa.FORGED),
    ((KEY,), signed({"m": MID, "c": "c1", "o": "best", "e": NOW + 60, "v": "2.0.0"}, OTHER), "c1", "best", NOW, fa.FORGED),
    ((KEY,), GOOD, "c1", "best", NOW + 60, fa.EXPIRED),
    ((KEY,), GOOD, "c1", "best", NOW + 10_000, fa.EXPIRED),
    ((KEY,), GOOD, "c2", "best", NOW, fa.MISMATCH),  # another match's token
    ((KEY,), GOOD, "c1", "mid", NOW, fa.MISMATCH),  # rating another offer than the one served first
    ((KEY,), signed({"m": "nothex", "c": "c1", "o": "best", "e": NOW + 60, "v": "2.0.0"}), "c1", "best", NOW, fa.MALFORMED),
    ((KEY,), signed({"m": MID, "c": "c1", "o": "best", "e": True, "v": "2.0.0"}), "c1", "best", NOW, fa.MALFORMED),
    ((KEY,), signed([MID]), "c1", "best", NOW, fa.MALFORMED),
])
def test_verify(keys, token, candidate, offer, now, expected):
    if isinstance(expected, fa.Claims):
        assert fa.verify(keys, token, candidate, offer, now) == expected
        return
    with pytest.raises(fa.FeedbackAuthError) as info:
        fa.verify(keys, token, candidate, offer, now)
    assert info.value.reason == expected
    assert not (isinstance(token, str) and token) or token[-20:] not in str(info.value)


def test_issue_signs_with_the_current_key_only():
    token = fa.issue((KEY, OLD), CLAIMS)
    assert fa.verify((KEY,), token, "c1", "best", NOW) == CLAIMS
    with pytest.raises(fa.FeedbackAuthError, match="bad signature"):
        fa.verify((OLD,), token, "c1", "best", NOW)
    assert fa.new_match_id() != fa.new_match_id() and len(fa.new_match_id()) == 32


@pytest.mark.parametrize("steps, expected", [
    ([("claim", "a", 10), ("claim", "b", 10)], [True, True]),
    ([("claim", "a", 10), ("claim", "a", 10)], [True, False]),
    ([("claim", "a", 10), ("release", "a", 0), ("claim", "a", 10)], [True, None, True]),
    # full of live entries: refused; once they expire the guard makes room
    ([("claim", "a", 10), ("claim", "b", 10), ("claim", "c", 10)], [True, True, OverflowError]),
    ([("claim", "a", 10), ("claim", "b", 10), ("tick", 11, 0), ("claim", "c", 20), ("claim", "a", 20)],
     [True, True, None, True, True]),
])
def test_replay_guard(steps, expected):
    now = [0]
    guard = fa.ReplayGuard(capacity=2, clock=lambda: now[0])
    got = []
    for action, arg, expires in steps:
        if action == "tick":
            now[0] = arg
            got.append(None)
        elif action == "release":
            got.append(guard.release(arg))
        else:
            try:
                got.append(guard.claim(arg, expires))
            except OverflowError:
                got.append(OverflowError)
    assert got == expected


# ----------------------------------------------------------------------------- over HTTP
@pytest.fixture
def key_file(tmp_path):
    def _write(*keys):
        path = tmp_path / "feedback.key"
        path.write_text("".join(k.decode() + "\n" for k in keys))
        path.chmod(0o640)
        return str(path)
    return _write


def match(call, server, case=None):
    status, _headers, body = call(server, "POST", "/api/v2/match", case or CASE)
    assert status == 200
    return body


def feedback(call, server, body, token, **overrides):
    payload = {"candidate_id": body["candidate_id"], "offer_id": body["matches"][0]["offer_id"],
               "correct": True, **({"feedback_token": token} if token is not None else {}), **overrides}
    return call(server, "POST", "/api/v2/feedback", payload)


def counts(call, server):
    samples = parse_metrics(call(server, "GET", "/metrics")[2])
    return ({o: sample(samples, "ssm_feedback_total", outcome=o) for o in ("hit", "miss")},
            {r: sample(samples, "ssm_feedback_not_counted_total", reason=r) for r in fa.REASONS})


OTHER_CASE = {"candidate": {**CASE["candidate"], "id": "c9"}, "offers": CASE["offers"]}


@pytest.mark.parametrize("make_token, overrides, reason", [
    (lambda body, other: None, {}, fa.MISSING),
    (lambda body, other: "", {}, fa.MISSING),
    (lambda body, other: "not-a-token", {}, fa.MALFORMED),
    (lambda body, other: fa.issue((OTHER,), fa.Claims(body["match_id"], "c1", "best", NOW * 2, "1.0.0")), {}, fa.FORGED),
    (lambda body, other: tamper(body["feedback_token"]), {"candidate_id": "someone-else"}, fa.FORGED),
    (lambda body, other: fa.issue((KEY,), fa.Claims(body["match_id"], "c1", "best", 1_000, "1.0.0")), {}, fa.EXPIRED),
    (lambda body, other: other["feedback_token"], {}, fa.MISMATCH),  # the token of another match
    (lambda body, other: body["feedback_token"], {"offer_id": "far"}, fa.MISMATCH),
])
def test_refused_feedback_is_401_and_not_counted(serve, call, key_file, make_token, overrides, reason):
    server = serve(SSM_FEEDBACK_KEY_FILE=key_file(KEY))
    body, other = match(call, server), match(call, server, OTHER_CASE)
    status, headers, answer = feedback(call, server, body, make_token(body, other), correct=False, **overrides)
    assert status == 401 and answer["reason"] == reason and "error" in answer
    assert headers["WWW-Authenticate"].startswith("SSM-Feedback-Token")
    outcomes, refused = counts(call, server)
    assert outcomes == {"hit": 0, "miss": 0}
    assert refused == {r: int(r == reason) for r in fa.REASONS}
    # the real token still works afterwards (a refusal does not burn it)
    assert feedback(call, server, body, body["feedback_token"])[0] == 202
    assert counts(call, server)[0] == {"hit": 1, "miss": 0}


def test_valid_token_counted_once_then_409(serve, call, key_file):
    server = serve(SSM_FEEDBACK_KEY_FILE=key_file(KEY))
    body = match(call, server)
    assert len(body["match_id"]) == 32 and body["feedback_token"].startswith("1.")
    status, _headers, answer = feedback(call, server, body, body["feedback_token"])
    assert status == 202 and answer["counted"] is True and answer["match_id"] == body["match_id"]
    for _replay in range(3):
        status, _headers, answer = feedback(call, server, body, body["feedback_token"], correct=False)
        assert status == 409 and answer["reason"] == fa.REPLAYED
    outcomes, refused = counts(call, server)
    assert outcomes == {"hit": 1, "miss": 0} and refused[fa.REPLAYED] == 3


def test_slots_and_hosts_sharing_the_key_accept_each_others_tokens(serve, call, key_file):
    path = key_file(KEY)
    blue = serve(SSM_FEEDBACK_KEY_FILE=path, SSM_SLOT="blue", SSM_VERSION="1.0.0")
    blue_other_host = serve(SSM_FEEDBACK_KEY_FILE=path, SSM_SLOT="blue", SSM_VERSION="1.0.0")
    green = serve(SSM_FEEDBACK_KEY_FILE=path, SSM_SLOT="green", SSM_VERSION="2.0.0")
    stranger = serve(SSM_VERSION="1.0.0")  # no key file: a key of its own
    body = match(call, blue)
    status, _headers, answer = feedback(call, blue_other_host, body, body["feedback_token"])
    assert status == 202 and answer["counted"] is True
    assert counts(call, blue_other_host)[0]["hit"] == 1
    # the other slot (another version) takes it but never counts it in its own precision
    body = match(call, blue)
    status, _headers, answer = feedback(call, green, body, body["feedback_token"])
    assert status == 202 and answer["counted"] is False
    outcomes, refused = counts(call, green)
    assert outcomes == {"hit": 0, "miss": 0} and refused[fa.OTHER_VERSION] == 1
    body = match(call, green)
    assert feedback(call, blue, body, body["feedback_token"])[2]["counted"] is False
    assert feedback(call, stranger, body, body["feedback_token"])[2]["reason"] == fa.FORGED


def test_key_rotation(serve, call, key_file):
    old_server = serve(SSM_FEEDBACK_KEY_FILE=key_file(OLD))
    in_flight = match(call, old_server)
    rotated = serve(SSM_FEEDBACK_KEY_FILE=key_file(KEY, OLD))  # new key first, the old one second
    fresh = match(call, rotated)
    assert feedback(call, rotated, in_flight, in_flight["feedback_token"])[0] == 202
    assert feedback(call, rotated, fresh, fresh["feedback_token"])[0] == 202
    # a host not yet rotated refuses tokens of the new key; after the old key is dropped, so does everyone
    assert feedback(call, old_server, fresh, fresh["feedback_token"])[2]["reason"] == fa.FORGED
    done = serve(SSM_FEEDBACK_KEY_FILE=key_file(KEY))
    stale = match(call, old_server)
    assert feedback(call, done, stale, stale["feedback_token"])[2]["reason"] == fa.FORGED
    assert counts(call, rotated)[0]["hit"] == 2


def test_bad_key_file_stops_the_service_cleanly(tmp_path):
    """main() exits 2 with a message naming the variable, no traceback, no key in the output."""
    path = tmp_path / "short.key"
    path.write_text("tooshort-secret\n")
    env = {**os.environ, "SSM_PORT": "0", "SSM_BIND": "127.0.0.1", "SSM_FEEDBACK_KEY_FILE": str(path),
           "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    for target in (str(path), str(tmp_path / "missing.key")):
        env["SSM_FEEDBACK_KEY_FILE"] = target
        result = subprocess.run([sys.executable, "-m", "supersmartmatch_service"], env=env, capture_output=True,
                                text=True, timeout=60, check=False)
        assert result.returncode == 2, result.stderr
        assert "invalid configuration: SSM_FEEDBACK_KEY_FILE" in result.stderr
        assert "Traceback" not in result.stderr and "tooshort-secret" not in result.stderr
