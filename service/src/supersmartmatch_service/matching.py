"""Request validation and the deterministic matching score.

Scoring (each component in 0..1, the score is their weighted sum, rounded to
6 decimals so that it is exactly reproducible):

* skills      (weight 0.60): share of the offer's ``required_skills`` the
  candidate has (case- and whitespace-insensitive); 1.0 if none are required.
* experience  (weight 0.25): ``min(1, experience_years / min_experience)``;
  1.0 if ``min_experience`` is 0.
* location    (weight 0.15): 1.0 if the offer location equals the candidate
  location (case-insensitive) or the offer is ``"remote"``, else 0.0.

Ranking sorts by score descending, ties broken by ``offer_id`` ascending.
The degraded fault mode returns that order reversed (worst first).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

WEIGHT_SKILLS = 0.60
WEIGHT_EXPERIENCE = 0.25
WEIGHT_LOCATION = 0.15
REMOTE = "remote"
MAX_OFFERS = 1000
MAX_SKILLS = 200


class ValidationError(ValueError):
    """A request body is invalid; the message names the offending field."""


@dataclass(frozen=True)
class Candidate:
    id: str
    skills: frozenset[str]
    experience_years: float
    location: str


@dataclass(frozen=True)
class Offer:
    id: str
    required_skills: frozenset[str]
    min_experience: float
    location: str


def normalize(text: str) -> str:
    """Case-fold and collapse whitespace, so 'Python ' == 'python'."""
    return " ".join(text.split()).casefold()


def score(candidate: Candidate, offer: Offer) -> float:
    """Return the match score of ``offer`` for ``candidate`` (0..1)."""
    if offer.required_skills:
        skills = len(offer.required_skills & candidate.skills) / len(offer.required_skills)
    else:
        skills = 1.0
    if offer.min_experience > 0:
        experience = min(1.0, candidate.experience_years / offer.min_experience)
    else:
        experience = 1.0
    location = 1.0 if offer.location in (REMOTE, candidate.location) else 0.0
    total = WEIGHT_SKILLS * skills + WEIGHT_EXPERIENCE * experience + WEIGHT_LOCATION * location
    return round(total, 6)


def rank(candidate: Candidate, offers: list[Offer], *, degraded: bool = False) -> list[dict]:
    """Rank offers best first as ``[{"offer_id", "score"}]`` (worst first if degraded)."""
    ranked = sorted(((score(candidate, o), o.id) for o in offers), key=lambda m: (-m[0], m[1]))
    if degraded:
        ranked.reverse()
    return [{"offer_id": offer_id, "score": value} for value, offer_id in ranked]


# --------------------------------------------------------------------------- validation
def _field(obj: dict, key: str, where: str):
    if key not in obj:
        raise ValidationError(f"{where}.{key} is required")
    return obj[key]


def _string(obj: dict, key: str, where: str) -> str:
    value = _field(obj, key, where)
    if not isinstance(value, str) or not value.strip():
        raise ValidationError(f"{where}.{key} must be a non-empty string")
    return value


def _number(obj: dict, key: str, where: str) -> float:
    value = _field(obj, key, where)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValidationError(f"{where}.{key} must be a number")
    if value < 0:
        raise ValidationError(f"{where}.{key} must be >= 0")
    return float(value)


def _skills(obj: dict, key: str, where: str) -> frozenset[str]:
    value = _field(obj, key, where)
    if not isinstance(value, list) or not all(isinstance(s, str) for s in value):
        raise ValidationError(f"{where}.{key} must be a list of strings")
    if len(value) > MAX_SKILLS:
        raise ValidationError(f"{where}.{key} has more than {MAX_SKILLS} items")
    return frozenset(normalize(s) for s in value if s.strip())


def _object(value, where: str) -> dict:
    if not isinstance(value, dict):
        raise ValidationError(f"{where} must be an object")
    return value


def parse_candidate(value, where: str = "candidate") -> Candidate:
    obj = _object(value, where)
    return Candidate(
        id=_string(obj, "id", where),
        skills=_skills(obj, "skills", where),
        experience_years=_number(obj, "experience_years", where),
        location=normalize(_string(obj, "location", where)),
    )


def parse_offer(value, where: str = "offer") -> Offer:
    obj = _object(value, where)
    return Offer(
        id=_string(obj, "id", where),
        required_skills=_skills(obj, "required_skills", where),
        min_experience=_number(obj, "min_experience", where),
        location=normalize(_string(obj, "location", where)),
    )


def parse_match_request(body) -> tuple[Candidate, list[Offer]]:
    """Validate a ``POST /api/v2/match`` body."""
    body = _object(body, "body")
    candidate = parse_candidate(_field(body, "candidate", "body"))
    raw_offers = _field(body, "offers", "body")
    if not isinstance(raw_offers, list) or not raw_offers:
        raise ValidationError("body.offers must be a non-empty list")
    if len(raw_offers) > MAX_OFFERS:
        raise ValidationError(f"body.offers has more than {MAX_OFFERS} items")
    offers, seen = [], set()
    for i, raw in enumerate(raw_offers):
        offer = parse_offer(raw, f"offers[{i}]")
        if offer.id in seen:
            raise ValidationError(f"offers[{i}].id {offer.id!r} is duplicated")
        seen.add(offer.id)
        offers.append(offer)
    return candidate, offers


def parse_feedback(body) -> tuple[str, str, bool]:
    """Validate a ``POST /api/v2/feedback`` body -> (candidate_id, offer_id, correct)."""
    body = _object(body, "body")
    candidate_id = _string(body, "candidate_id", "body")
    offer_id = _string(body, "offer_id", "body")
    correct = _field(body, "correct", "body")
    if not isinstance(correct, bool):
        raise ValidationError("body.correct must be a boolean")
    return candidate_id, offer_id, correct
