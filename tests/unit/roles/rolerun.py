"""Run one entry point or task file of a role with ansible-playbook against local-connection hosts."""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]

PLAY = """\
- name: Apply one task file of the role
  hosts: {hosts}
  gather_facts: false
  tasks:
    - name: Role
      ansible.builtin.include_role:
        name: supersmartmatch.platform.{role}
        tasks_from: {tasks_from}
{extra}"""


def ansible_playbook():
    local = Path(sys.executable).with_name("ansible-playbook")
    found = str(local) if local.exists() else shutil.which("ansible-playbook")
    if not found:
        pytest.fail("ansible-playbook not found (activate the project venv)")
    return found


def run_tasks(tmp_path, role, groups, tasks_from, hosts="all", extra_vars=None, host_vars=None, extra_tasks="",
              json_output=False):
    """Apply roles/<role>/tasks/<tasks_from> in check mode; return (rc, output).

    ``groups`` maps group names to host names; every host is a local connection.
    """
    inventory = {"all": {"children": {}}}
    for group, members in groups.items():
        inventory["all"]["children"][group] = {"hosts": {
            name: dict({"ansible_connection": "local", "ansible_python_interpreter": sys.executable},
                       **(host_vars or {}).get(name, {})) for name in members}}
    (tmp_path / "inventory.yml").write_text(json.dumps(inventory), encoding="utf-8")
    (tmp_path / "play.yml").write_text(PLAY.format(hosts=hosts, role=role, tasks_from=tasks_from, extra=extra_tasks),
                                       encoding="utf-8")
    (tmp_path / "vars.json").write_text(json.dumps(extra_vars or {}), encoding="utf-8")
    cmd = [ansible_playbook(), "-i", str(tmp_path / "inventory.yml"), str(tmp_path / "play.yml"), "--check",
           "-e", "@%s" % (tmp_path / "vars.json")]
    env = dict(os.environ,
               ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"),
               ANSIBLE_COLLECTIONS_PATH=str(ROOT / ".collections"),
               ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0",
               ANSIBLE_LOCAL_TEMP=str(tmp_path / "tmp"), ANSIBLE_REMOTE_TEMP=str(tmp_path / "tmp"))
    if json_output:
        env["ANSIBLE_STDOUT_CALLBACK"] = "ansible.builtin.json"
    proc = subprocess.run(cmd, cwd=str(tmp_path), env=env, capture_output=True, text=True, timeout=300, check=False)
    return proc.returncode, proc.stdout + proc.stderr


def flat(text):
    """Output with line wrapping and indentation removed (messages are wrapped by the callback)."""
    return " ".join(text.split())


def link_collection():
    link = ROOT / ".collections" / "ansible_collections" / "supersmartmatch" / "platform"
    if not link.exists():
        subprocess.run([str(ROOT / "scripts" / "link-collection")], check=True, capture_output=True)
