"""Signed feedback tokens: only the match a slot actually answered can be rated.

A match answer carries ``feedback_token``, signed over the candidate id and the
top offer id it returned, and an expiry time; ``POST /api/v2/feedback`` must
send it back in its JSON body (``feedback_token``) with the same
``candidate_id`` and ``offer_id``. Otherwise the feedback is refused (401) and
counted in ``ssm_feedback_rejected_total{reason}``, never in
``ssm_feedback_total`` (the precision gate's metric) nor in the database.

Token format (ASCII, 57 characters)::

    v1.<expiry>.<mac>

* ``expiry``: Unix time (seconds, decimal) after which the token is refused:
  the issuing process's clock + ``SSM_FEEDBACK_TOKEN_TTL``.
* ``mac``: unpadded base64url of HMAC-SHA256(key, message), where message is
  ``b"ssm-feedback\\0v1\\0" + expiry + b"\\0" + JSON ["<candidate_id>", "<offer_id>"]``
  (``json.dumps`` with its defaults: ASCII only, hence unambiguous).

Version and slot are not signed: every slot and host of a service shares the
keys, so feedback that a traffic switch sends to the other slot still counts.

Keys (``SSM_FEEDBACK_KEY_FILE``): one per line, at least 32 bytes each, blank
lines ignored. The first line signs, every line verifies. Rotation without
refusing feedback in flight: (1) append the new key as a second line on every
host and slot, (2) once they all run with it, move it to the first line (it
now signs), (3) one token lifetime later, remove the old line. Without a key
file the process draws a random key of its own: its tokens then verify on that
process only (tests, a single process); the app role always sets a file.

The keys never leave this module: not in logs, ``repr``, /health or /metrics.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import secrets
import time
from collections.abc import Callable

from .config import ConfigError

VERSION = "v1"
MIN_KEY_BYTES = 32
MAC_CHARS = 43  # unpadded base64url of 32 bytes
# Why a feedback was refused (the label of ssm_feedback_rejected_total).
MISSING, MALFORMED, EXPIRED, FORGED = "missing", "malformed", "expired", "forged"
REASONS = (MISSING, MALFORMED, EXPIRED, FORGED)
_TOKEN_RE = re.compile(r"v1\.([0-9]{1,12})\.([A-Za-z0-9_-]{%d})\Z" % MAC_CHARS)
_MESSAGES = {
    MISSING: "feedback_token is required: send back the feedback_token of the match answer you rate",
    MALFORMED: "feedback_token is malformed (expected v1.<expiry>.<mac> from a match answer)",
    EXPIRED: "feedback_token has expired: rate a newer match",
    FORGED: "feedback_token does not match this candidate_id and offer_id (or was not signed by this service)",
}


class KeyFileError(ConfigError):
    """The feedback key file is unusable (the message never includes a key)."""


class TokenRejected(Exception):
    """A feedback token was refused; ``reason`` is one of REASONS."""

    def __init__(self, reason: str) -> None:
        super().__init__(_MESSAGES[reason])
        self.reason = reason


def load_keys(path: str, variable: str = "SSM_FEEDBACK_KEY_FILE") -> list[bytes]:
    """The keys of ``path``, first (signing) key first; KeyFileError naming the line when one is unusable."""
    try:
        with open(path, encoding="utf-8") as handle:
            lines = handle.read().splitlines()
    except OSError as exc:
        raise KeyFileError(f"{variable}: cannot read {path}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise KeyFileError(f"{variable}: {path} is not UTF-8 text (one key per line)") from None
    keys = []
    for number, line in enumerate(lines, 1):
        key = line.strip().encode("utf-8")
        if not key:
            continue
        if len(key) < MIN_KEY_BYTES:
            raise KeyFileError(f"{variable}: the key on line {number} of {path} is {len(key)} bytes long, "
                               f"feedback keys need at least {MIN_KEY_BYTES} (e.g. openssl rand -base64 48)")
        keys.append(key)
    if not keys:
        raise KeyFileError(f"{variable}: {path} holds no key (one key of at least {MIN_KEY_BYTES} bytes per line)")
    return keys


def _message(expiry: str, candidate_id: str, offer_id: str) -> bytes:
    return b"ssm-feedback\0" + VERSION.encode() + b"\0" + expiry.encode() + b"\0" + \
        json.dumps([candidate_id, offer_id]).encode()


def _mac(key: bytes, message: bytes) -> str:
    digest = hmac.new(key, message, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


class FeedbackTokens:
    """Issue and verify feedback tokens with ``keys`` (the first signs); thread-safe (immutable)."""

    def __init__(self, keys: list[bytes], ttl: int, *, clock: Callable[[], float] = time.time,
                 ephemeral: bool = False) -> None:
        if not keys or any(len(k) < MIN_KEY_BYTES for k in keys):
            raise ValueError(f"feedback keys must be at least {MIN_KEY_BYTES} bytes long")
        self._keys = tuple(keys)
        self.ttl = int(ttl)
        self._clock = clock
        self.ephemeral = ephemeral  # a random key of this process: its tokens verify here only

    @classmethod
    def from_config(cls, config, *, clock: Callable[[], float] = time.time) -> "FeedbackTokens":
        """The keys of ``config.feedback_key_file`` (KeyFileError), or a random key of this process."""
        if config.feedback_key_file:
            return cls(load_keys(config.feedback_key_file), config.feedback_token_ttl, clock=clock)
        return cls([secrets.token_bytes(MIN_KEY_BYTES)], config.feedback_token_ttl, clock=clock, ephemeral=True)

    @property
    def key_count(self) -> int:
        return len(self._keys)

    def __repr__(self) -> str:
        return f"<FeedbackTokens keys={len(self._keys)} ttl={self.ttl}s ephemeral={self.ephemeral}>"

    def issue(self, candidate_id: str, offer_id: str) -> str:
        """A token for feedback on ``offer_id`` as the top match of ``candidate_id``, valid ``ttl`` seconds."""
        expiry = str(int(self._clock()) + self.ttl)
        return f"{VERSION}.{expiry}.{_mac(self._keys[0], _message(expiry, candidate_id, offer_id))}"

    def verify(self, token, candidate_id: str, offer_id: str) -> None:
        """Return when ``token`` was issued for this candidate and offer and has not expired; else TokenRejected."""
        if token is None or token == "":
            raise TokenRejected(MISSING)
        if not isinstance(token, str) or not (found := _TOKEN_RE.match(token)):
            raise TokenRejected(MALFORMED)
        expiry, mac = found.groups()
        message = _message(expiry, candidate_id, offer_id)
        # every key is tried (no early exit), each comparison in constant time
        valid = [hmac.compare_digest(_mac(key, message), mac) for key in self._keys]
        if not any(valid):
            raise TokenRejected(FORGED)
        if int(expiry) < self._clock():
            raise TokenRejected(EXPIRED)
