"""Preflight of the app role, without containers: values rendered into the unit and its
files are checked in full, so a trailing newline (which ``$`` lets through) is refused.

Runs the role's preflight task file with ansible-playbook in check mode on a local
host (nothing is installed): each bad value must stop there, named in the message.
"""
import json
import sys

import pytest
from ansible_run import link_collection, run_check

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
    extra = dict({"app_version": "2.0.0", "app_slot": "green", "app_artifact_src": str(wheel)}, **overrides)
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
