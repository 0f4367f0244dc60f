"""Preflight of the app role, without containers: values rendered into the unit and its
files are checked in full, so a trailing newline (which ``$`` lets through) is refused.

Runs the role's preflight task file with ansible-playbook in check mode on a local
host (nothing is installed): each bad value must stop there, named in the message.
"""
import json
import sys

import pytest
from ansible_run import link_collection, run_check, run_preflight_cases

PLAYBOOK = """\
- name: Apply the preflight of the app role
  hosts: app
  gather_facts: false
  tasks:
    - name: App preflight
      ansible.builtin.include_role:
        name: supersmartmatch.platform.app
        tasks_from: preflight
"""


GOOD_KEY = "good-feedback-key-0123456789abcdef"  # 34 characters


@pytest.fixture(autouse=True, scope="module")
def collection_link():
    link_collection()


def run_preflight(tmp_path, **overrides):
    wheel = tmp_path / "supersmartmatch_service-2.0.0-py3-none-any.whl"
    wheel.write_bytes(b"not a real wheel: the preflight only checks that it exists")
    host = {"ansible_connection": "local", "ansible_python_interpreter": sys.executable}
    (tmp_path / "inventory.yml").write_text(json.dumps({"all": {"children": {"app": {"hosts": {"app1": host}}}}}),
                                            encoding="utf-8")
    (tmp_path / "play.yml").write_text(PLAYBOOK, encoding="utf-8")
    extra = dict({"app_version": "2.0.0", "app_slot": "green", "app_artifact_src": str(wheel),
                  "app_feedback_key": GOOD_KEY}, **overrides)
    # -e @file: the values reach the role exactly as written, newlines included
    (tmp_path / "vars.json").write_text(json.dumps(extra), encoding="utf-8")
    rc, out = run_check(tmp_path, tmp_path / "inventory.yml", tmp_path / "play.yml", "-e", "@%s" % (tmp_path / "vars.json"))
    return rc, " ".join(out.split())


def test_good_values_pass(tmp_path):
    rc, out = run_preflight(tmp_path)
    assert rc == 0, out


@pytest.mark.parametrize("overrides, named", [
    ({"app_version": "2.0.0\n"}, "app_version must be a canonical PEP 440 version"),
    ({"app_service": "supersmartmatch\n"}, "app_service must be a unit-name-safe word"),
    ({"app_database": {"host": "db1\n", "password": "x"}}, "app_database (keys"),
    ({"app_database": {"host": "db1", "name": "ssm\n", "password": "x"}}, "app_database (keys"),
    ({"app_cache": {"nodes": ["redis1:6379\n"]}}, "app_cache (keys"),
])
def test_a_trailing_newline_is_refused_by_name(tmp_path, overrides, named):
    rc, out = run_preflight(tmp_path, **overrides)
    assert rc != 0, out
    assert named in out, out


# app_feedback_key / app_feedback_verify_keys: refused by name, their values never shown. Every value
# below holds a LEAK marker that must appear nowhere in the output (task results included).
KEY_REFUSED = "app_feedback_key is required: the key signing the feedback tokens"
VERIFY_REFUSED = "app_feedback_verify_keys must be a list of keys"
KEY_CASES = [
    ({}, KEY_REFUSED),                                                   # missing
    ({"app_feedback_key": "short-LEAK1-0123456789abcdef"}, KEY_REFUSED),  # 28 characters
    ({"app_feedback_key": "x" * 40 + "LEAK2\n"}, KEY_REFUSED),           # a trailing newline
    ({"app_feedback_key": "x" * 20 + " LEAK3 " + "x" * 20}, KEY_REFUSED),  # a space
    ({"app_feedback_key": 12345678901234567890123456789012345}, KEY_REFUSED),  # not a string
    ({"app_feedback_key": GOOD_KEY, "app_feedback_verify_keys": ["LEAK4-too-short"]}, VERIFY_REFUSED),
    ({"app_feedback_key": GOOD_KEY, "app_feedback_verify_keys": "y" * 36 + "LEAK5"},
     "without spaces); not a list (values not shown)"),
]


@pytest.fixture(scope="module")
def key_refusals(tmp_path_factory):
    """Every KEY_CASES case in one ansible-playbook run, then a good key and a verify key beside them."""
    tmp_path = tmp_path_factory.mktemp("app-key-cases")
    wheel = tmp_path / "supersmartmatch_service-2.0.0-py3-none-any.whl"
    wheel.write_bytes(b"not a real wheel: the preflight only checks that it exists")
    base = {"app_version": "2.0.0", "app_slot": "green", "app_artifact_src": str(wheel)}
    cases = [{"app1": case} for case, _message in KEY_CASES]
    cases.append({"app1": {"app_feedback_key": GOOD_KEY, "app_feedback_verify_keys": ["v" * 32]}})
    return run_preflight_cases(tmp_path, "app", "ssm_preflight_case", cases, base_vars=base)


@pytest.mark.parametrize("index", range(len(KEY_CASES)), ids=[str(i) for i in range(len(KEY_CASES))])
def test_a_bad_feedback_key_is_refused_by_name_never_shown(key_refusals, index):
    results, out = key_refusals
    assert KEY_CASES[index][1] in results[index], (results[index], out[-3000:])


def test_no_feedback_key_value_is_ever_shown(key_refusals):
    _results, out = key_refusals
    assert "LEAK" not in out and "12345678901234567890" not in out


def test_a_good_feedback_key_beside_the_refused_ones_passes(key_refusals):
    results, out = key_refusals
    assert results[-1] == "", (results[-1], out[-3000:])
