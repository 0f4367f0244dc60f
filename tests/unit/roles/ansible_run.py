"""What the role tests share: the ansible-playbook of this venv, the collection link it loads the roles from,
and a check-mode run of a play."""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]


def ansible_playbook():
    local = Path(sys.executable).with_name("ansible-playbook")
    found = str(local) if local.exists() else shutil.which("ansible-playbook")
    if not found:
        pytest.fail("ansible-playbook not found (activate the project venv)")
    return found


def link_collection():
    link = ROOT / ".collections" / "ansible_collections" / "supersmartmatch" / "platform"
    if not link.exists():
        subprocess.run([str(ROOT / "scripts" / "link-collection")], check=True, capture_output=True)


def run_check(tmp_path, inventory, play, *args, env=None):
    """``ansible-playbook --check`` of ``play`` against ``inventory`` (files in ``tmp_path``, where it
    runs and keeps its temporary files), with this repository's settings and collection link; extra
    ``args`` follow, ``env`` replaces the process environment. Returns (rc, stdout + stderr)."""
    cmd = [ansible_playbook(), "-i", str(inventory), str(play), "--check"] + list(args)
    env = dict(os.environ if env is None else env, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"), ANSIBLE_COLLECTIONS_PATH=str(ROOT / ".collections"),
               ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0",
               ANSIBLE_LOCAL_TEMP=str(tmp_path / "tmp"), ANSIBLE_REMOTE_TEMP=str(tmp_path / "tmp"))
    proc = subprocess.run(cmd, cwd=str(tmp_path), env=env, capture_output=True, text=True, timeout=180, check=False)
    return proc.returncode, proc.stdout + proc.stderr


PREFLIGHT_CASES_PLAY = """\
- name: The preflight of the role, every case at once
  hosts: all
  gather_facts: false
  tasks:
    - name: Preflight
      ansible.builtin.include_role:
        name: supersmartmatch.platform.{role}
        tasks_from: preflight.yml
"""


def run_preflight_cases(tmp_path, role, group_var, cases, base_vars=None):
    """A table of preflight cases of ``role`` in ONE check-mode ansible-playbook run, where one run per
    case costs a second or two each. Case ``i`` (``cases[i]`` maps its host names to their variables) is
    its own inventory group ``case<i>``, and the role's group variable (``group_var``, e.g.
    ``vault_group``) points its hosts at that group, so that no case sees another's hosts. The preflight
    task file alone is not ``any_errors_fatal`` (the roles' main entry points are), so a refused case
    stops only its own hosts. ``base_vars`` go to every host, under each case's own variables (case
    variables are host variables here, not extra variables: tables must not set a role variable that
    the role's ``vars/`` would outrank).

    Returns (per case, the failure messages of its hosts, joined and flattened; "" when every host
    passed, the whole JSON output)."""
    hosts, groups = {}, {}
    for index, case in enumerate(cases):
        group = "case%d" % index
        groups[group] = {"hosts": {}}
        for name, host_vars in case.items():
            host = "%s-%s" % (group, name)
            groups[group]["hosts"][host] = None
            hosts[host] = dict({"ansible_connection": "local", "ansible_python_interpreter": sys.executable,
                                group_var: group}, **dict(base_vars or {}, **host_vars))
    inventory = {"all": {"hosts": hosts, "children": groups}}
    (tmp_path / "inventory.json").write_text(json.dumps(inventory), encoding="utf-8")
    (tmp_path / "play.yml").write_text(PREFLIGHT_CASES_PLAY.format(role=role), encoding="utf-8")
    env = dict(os.environ, ANSIBLE_STDOUT_CALLBACK="ansible.posix.json", ANSIBLE_CALLBACK_RESULT_FORMAT="json")
    rc, out = run_check(tmp_path, tmp_path / "inventory.json", tmp_path / "play.yml", "--forks", "20", env=env)
    try:  # the JSON report is stdout, which comes first in ``out``
        report = json.JSONDecoder().raw_decode(out[out.index("{"):])[0]
    except ValueError:
        pytest.fail("ansible-playbook (rc %d) gave no JSON report:\n%s" % (rc, out))
    failures = {host: [] for host in hosts}
    for play in report["plays"]:
        for task in play["tasks"]:
            for host, result in task["hosts"].items():
                if result.get("failed") or result.get("unreachable"):
                    failures[host].append(str(result.get("msg", result)))
    results = []
    for index, case in enumerate(cases):
        messages = [msg for name in case for msg in failures["case%d-%s" % (index, name)]]
        results.append(" ".join(" ".join(messages).split()))
    return results, out
