"""Feedback tokens: feedback is only counted for a match this fleet served.

Every ``POST /api/v2/match`` answer carries ``match_id`` and
``feedback_token``; ``POST /api/v2/feedback`` must send that token back in its
body (``feedback_token``). A token is

    1.<claims>.<mac>

``claims`` is base64url (no padding) of a compact JSON object
``{"m": match id, "c": candidate id, "o": top offer id, "e": expiry (unix s),
"v": version that answered}`` and ``mac`` is base64url of
HMAC-SHA256(key, ``"ssm-feedback-v1." + claims``). Claims are signed, not
encrypted (they hold nothing secret).

The key is shared by every slot of every host (a user's match and feedback
may go through different balancers and slots) and read from a file
(``SSM_FEEDBACK_KEY_FILE``): the first non-empty line is the current key
(signs and verifies), an optional second line the previous one (verifies
only), so a key is rotated without rejecting tokens in flight. Comparison is
constant-time (``hmac.compare_digest``), against every key.

``verify`` checks, in this order (the first failure is the answer, 401):
missing, malformed, forged (no key gives the MAC), expired, mismatch (a token
of another match: its candidate or offer differ from the feedback's). A
valid token used twice on the same process is refused by ``ReplayGuard``
(409). A valid token issued by another version is accepted but not counted
in that slot's precision (the caller compares ``claims.version``).

Pure logic with an injectable clock; unit-tested in
tests/unit/service/test_service_feedback_auth.py.
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
import secrets
import threading
import time
from dataclasses import dataclass

TOKEN_VERSION = "1"
_DOMAIN = b"ssm-feedback-v1."
MIN_KEY_LENGTH = 32
MAX_KEY_LENGTH = 1024
MAX_TOKEN_LENGTH = 4096
_KEY_RE = re.compile(r"[\x21-\x7e]+\Z")  # printable ASCII, no spaces
_TOKEN_RE = re.compile(r"1\.([A-Za-z0-9_-]{1,%d})\.([A-Za-z0-9_-]{43})\Z" % MAX_TOKEN_LENGTH)
_MATCH_ID_RE = re.compile(r"[0-9a-f]{32}\Z")

# reasons (label values of ssm_feedback_not_counted_total)
MISSING = "missing"
MALFORMED = "malformed"
FORGED = "forged"
EXPIRED = "expired"
MISMATCH = "mismatch"
REPLAYED = "replayed"
OTHER_VERSION = "other_version"
OVERLOADED = "overloaded"
REASONS = (MISSING, MALFORMED, FORGED, EXPIRED, MISMATCH, REPLAYED, OTHER_VERSION, OVERLOADED)
_MESSAGES = {
    MISSING: "feedback_token is required: send back the one from the match response",
    MALFORMED: "feedback_token is malformed",
    FORGED: "feedback_token is not valid (bad signature)",
    EXPIRED: "feedback_token has expired",
    MISMATCH: "feedback_token was issued for another match (candidate_id or offer_id differ)",
}


class FeedbackKeyError(ValueError):
    """The key file is missing, unreadable or holds an unusable key."""


class FeedbackAuthError(Exception):
    """A token is refused; ``reason`` is one of REASONS (the message never echoes the token)."""

    def __init__(self, reason: str) -> None:
        super().__init__(_MESSAGES[reason])
        self.reason = reason


@dataclass(frozen=True)
class Claims:
    match_id: str
    candidate_id: str
    offer_id: str
    expires: int
    version: str


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def parse_keys(text: str, source: str = "SSM_FEEDBACK_KEY_FILE") -> tuple[bytes, ...]:
    """Keys of a key file's ``text``: (current,) or (current, previous).

    Each non-empty line (surrounding whitespace ignored) is one key of
    MIN_KEY_LENGTH..MAX_KEY_LENGTH printable ASCII characters. Errors never
    quote the key.
    """
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if not lines:
        raise FeedbackKeyError(f"{source}: no key (the file is empty)")
    if len(lines) > 2:
        raise FeedbackKeyError(f"{source}: {len(lines)} keys, at most 2 (current, then previous)")
    for number, key in enumerate(lines, 1):
        if not MIN_KEY_LENGTH <= len(key) <= MAX_KEY_LENGTH or not _KEY_RE.match(key):
            raise FeedbackKeyError(f"{source}: key on line {number} must be {MIN_KEY_LENGTH}..{MAX_KEY_LENGTH}"
                                   " printable ASCII characters without spaces")
    if len(lines) == 2 and lines[0] == lines[1]:
        lines.pop()
    return tuple(key.encode("ascii") for key in lines)


def load_keys(path: str) -> tuple[bytes, ...]:
    """Keys from the file at ``path``; an empty path gives one random key for this process only."""
    if not path:
        return (secrets.token_urlsafe(48).encode("ascii"),)
    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read(4 * MAX_KEY_LENGTH)
    except (OSError, UnicodeDecodeError) as exc:
        raise FeedbackKeyError(f"SSM_FEEDBACK_KEY_FILE: cannot read {path}: "
                               f"{getattr(exc, 'strerror', None) or 'not UTF-8 text'}") from None
    return parse_keys(text)


def _mac(key: bytes, claims: str) -> bytes:
    return hmac.new(key, _DOMAIN + claims.encode("ascii"), hashlib.sha256).digest()


def sign(key: bytes, claims: str) -> str:
    """The ``mac`` part of a token for the encoded ``claims`` part."""
    return _b64(_mac(key, claims))


def new_match_id() -> str:
    return secrets.token_hex(16)


def issue(keys: tuple[bytes, ...], claims: Claims) -> str:
    """A token for ``claims``, signed with the current key (``keys[0]``)."""
    body = _b64(json.dumps({"m": claims.match_id, "c": claims.candidate_id, "o": claims.offer_id,
                            "e": int(claims.expires), "v": claims.version},
                           separators=(",", ":"), sort_keys=True).encode("utf-8"))
    return f"{TOKEN_VERSION}.{body}.{sign(keys[0], body)}"


def _decode_claims(body: str) -> Claims:
    try:
        raw = json.loads(_unb64(body).decode("utf-8"))
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise FeedbackAuthError(MALFORMED) from None
    if not isinstance(raw, dict):
        raise FeedbackAuthError(MALFORMED)
    match_id, candidate, offer, expires, version = (raw.get(k) for k in ("m", "c", "o", "e", "v"))
    if not (isinstance(match_id, str) and _MATCH_ID_RE.match(match_id) and isinstance(candidate, str)
            and isinstance(offer, str) and isinstance(version, str)
            and isinstance(expires, int) and not isinstance(expires, bool)):
        raise FeedbackAuthError(MALFORMED)
    return Claims(match_id, candidate, offer, expires, version)


def verify(keys: tuple[bytes, ...], token, candidate_id: str, offer_id: str, now: float) -> Claims:
    """The token's claims, or FeedbackAuthError (see the module docstring for the order)."""
    if token is None or token == "":
        raise FeedbackAuthError(MISSING)
    if not isinstance(token, str) or len(token) > MAX_TOKEN_LENGTH:
        raise FeedbackAuthError(MALFORMED)
    parsed = _TOKEN_RE.match(token)
    if not parsed:
        raise FeedbackAuthError(MALFORMED)
    body, mac_text = parsed.groups()
    try:
        presented = _unb64(mac_text)
    except binascii.Error:
        raise FeedbackAuthError(MALFORMED) from None
    valid = False
    for key in keys:  # every key is compared (no early exit on the first match)
        valid |= hmac.compare_digest(_mac(key, body), presented)
    if not valid:
        raise FeedbackAuthError(FORGED)
    claims = _decode_claims(body)
    if claims.expires <= now:
        raise FeedbackAuthError(EXPIRED)
    if claims.candidate_id != candidate_id or claims.offer_id != offer_id:
        raise FeedbackAuthError(MISMATCH)
    return claims


class ReplayGuard:
    """Match ids whose feedback was taken, kept until their token expires.

    ``claim(match_id, expires)``: True the first time, False on a replay.
    Memory is bounded: at ``capacity`` live entries, ``claim`` raises
    OverflowError (the caller answers 429 and counts nothing).
    """

    def __init__(self, capacity: int = 200_000, clock=time.time) -> None:
        self.capacity = capacity
        self._clock = clock
        self._lock = threading.Lock()
        self._seen: dict[str, int] = {}
        self._full_until = 0.0  # while full of live entries: refuse without rescanning

    def __len__(self) -> int:
        with self._lock:
            return len(self._seen)

    def claim(self, match_id: str, expires: int) -> bool:
        with self._lock:
            if match_id in self._seen:
                return False
            if len(self._seen) >= self.capacity:
                now = self._clock()
                if now < self._full_until:
                    raise OverflowError("too many feedback tokens in flight")
                self._seen = {m: e for m, e in self._seen.items() if e > now}
                if len(self._seen) >= self.capacity:
                    self._full_until = min(self._seen.values())
                    raise OverflowError("too many feedback tokens in flight")
            self._seen[match_id] = expires
            return True

    def release(self, match_id: str) -> None:
        """Forget ``match_id`` (its feedback could not be stored: a retry is not a replay)."""
        with self._lock:
            self._seen.pop(match_id, None)
