"""Scoring, ranking and request validation (supersmartmatch_service.matching)."""
import pytest

from supersmartmatch_service import matching as m


def cand(skills=("python", "sql"), exp=5, loc="paris"):
    return m.parse_candidate({"id": "c1", "skills": list(skills), "experience_years": exp, "location": loc})


def offer(oid="o1", skills=("python", "sql"), min_exp=5, loc="paris"):
    return m.parse_offer({"id": oid, "required_skills": list(skills), "min_experience": min_exp, "location": loc})


@pytest.mark.parametrize("candidate, off, expected", [
    (cand(), offer(), 1.0),                                        # perfect
    (cand(), offer(skills=("python", "go")), 0.7),                 # half the skills: 0.3 + 0.25 + 0.15
    (cand(), offer(skills=("go", "rust")), 0.4),                   # no skill
    (cand(), offer(skills=()), 1.0),                               # nothing required
    (cand(exp=2), offer(min_exp=8), 0.8125),                       # 0.6 + 0.25*0.25 + 0.15
    (cand(exp=20), offer(min_exp=8), 1.0),                         # experience capped at 1
    (cand(exp=0), offer(min_exp=0), 1.0),                          # no minimum
    (cand(), offer(loc="lyon"), 0.85),                             # wrong city
    (cand(), offer(loc="Remote"), 1.0),                            # remote matches anywhere
    (cand(skills=(" Python ", "SQL"), loc="PARIS"), offer(), 1.0),  # normalisation
    (cand(skills=(), exp=0), offer(skills=("go",), min_exp=10, loc="lyon"), 0.0),  # nothing fits
])
def test_score(candidate, off, expected):
    assert m.score(candidate, off) == pytest.approx(expected)


def test_rank_best_first_with_id_tie_break():
    offers = [offer("b", skills=("go",)), offer("z"), offer("a"), offer("c", loc="lyon")]
    ranked = m.rank(cand(), offers)
    assert [r["offer_id"] for r in ranked] == ["a", "z", "c", "b"]
    assert [r["score"] for r in ranked] == [1.0, 1.0, 0.85, 0.4]


def test_rank_degraded_is_reversed():
    offers = [offer("b", skills=("go",)), offer("a"), offer("c", loc="lyon")]
    assert m.rank(cand(), offers, degraded=True) == list(reversed(m.rank(cand(), offers)))


GOOD = {"candidate": {"id": "c", "skills": ["x"], "experience_years": 1, "location": "p"},
        "offers": [{"id": "o", "required_skills": ["x"], "min_experience": 0, "location": "p"}]}


def mutate(path, value):
    import copy
    body = copy.deepcopy(GOOD)
    *parents, last = path
    node = body
    for key in parents:
        node = node[key]
    if value is KeyError:
        del node[last]
    else:
        node[last] = value
    return body


@pytest.mark.parametrize("body, message", [
    ([], "body must be an object"),
    (mutate(["candidate"], KeyError), "body.candidate is required"),
    (mutate(["candidate"], "x"), "candidate must be an object"),
    (mutate(["candidate", "id"], ""), "candidate.id must be a non-empty string"),
    (mutate(["candidate", "skills"], "python"), "candidate.skills must be a list of strings"),
    (mutate(["candidate", "skills"], [1]), "candidate.skills must be a list of strings"),
    (mutate(["candidate", "experience_years"], True), "candidate.experience_years must be a number"),
    (mutate(["candidate", "experience_years"], -1), "candidate.experience_years must be >= 0"),
    (mutate(["candidate", "location"], KeyError), "candidate.location is required"),
    (mutate(["offers"], []), "body.offers must be a non-empty list"),
    (mutate(["offers", 0, "min_experience"], "3"), "offers[0].min_experience must be a number"),
    (mutate(["offers", 0, "required_skills"], KeyError), "offers[0].required_skills is required"),
    ({**GOOD, "offers": GOOD["offers"] * 2}, "offers[1].id 'o' is duplicated"),
])
def test_parse_match_request_errors(body, message):
    with pytest.raises(m.ValidationError) as err:
        m.parse_match_request(body)
    assert str(err.value) == message


def test_parse_match_request_ok():
    candidate, offers = m.parse_match_request(GOOD)
    assert candidate.id == "c" and [o.id for o in offers] == ["o"]


@pytest.mark.parametrize("body, message", [
    ({"offer_id": "o", "correct": True}, "body.candidate_id is required"),
    ({"candidate_id": "c", "offer_id": 3, "correct": True}, "body.offer_id must be a non-empty string"),
    ({"candidate_id": "c", "offer_id": "o", "correct": 1}, "body.correct must be a boolean"),
])
def test_parse_feedback_errors(body, message):
    with pytest.raises(m.ValidationError, match=message.replace("[", r"\[")):
        m.parse_feedback(body)


def test_parse_feedback_ok():
    assert m.parse_feedback({"candidate_id": "c", "offer_id": "o", "correct": False}) == ("c", "o", False)
