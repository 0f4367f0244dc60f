"""Run a role (or one of its task files, or a playbook) with ansible-playbook against local-connection hosts.

Nothing is installed: the preflights are the first tasks of the roles, and the template plays write into tmp_path.
"""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]

PLAY_MAIN = """\
- name: Apply the role
  hosts: {group}
  gather_facts: false
  roles:
    - role: supersmartmatch.platform.{role}
"""
PLAY_TASKS = """\
- name: Apply one task file of the role
  hosts: {group}
  gather_facts: false
  tasks:
    - name: One task file
      ansible.builtin.include_role:
        name: supersmartmatch.platform.{role}
        tasks_from: {tasks_from}
"""


def ansible_playbook():
    local = Path(sys.executable).with_name("ansible-playbook")
    found = str(local) if local.exists() else shutil.which("ansible-playbook")
    if not found:
        pytest.fail("ansible-playbook not found (activate the project venv)")
    return found


def inventory(groups, host_vars=None):
    """groups: {group: [hosts]} -> inventory dict with local connections."""
    children = {}
    for group, hosts in groups.items():
        children[group] = {"hosts": {name: dict({"ansible_connection": "local", "ansible_python_interpreter": sys.executable},
                                                **(host_vars or {}).get(name, {})) for name in hosts}}
    return {"all": {"children": children}}


def run_playbook(tmp_path, play, groups, extra_vars=None, host_vars=None, check=True):
    """Run `play` (YAML text); return (rc, output)."""
    (tmp_path / "inventory.yml").write_text(json.dumps(inventory(groups, host_vars)), encoding="utf-8")
    (tmp_path / "play.yml").write_text(play, encoding="utf-8")
    cmd = [ansible_playbook(), "-i", str(tmp_path / "inventory.yml"), str(tmp_path / "play.yml")]
    if check:
        cmd.append("--check")
    if extra_vars is not None:
        (tmp_path / "vars.json").write_text(json.dumps(extra_vars), encoding="utf-8")
        cmd += ["-e", "@%s" % (tmp_path / "vars.json")]
    env = dict(os.environ,
               ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"),
               ANSIBLE_COLLECTIONS_PATH=str(ROOT / ".collections"),
               ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0",
               ANSIBLE_LOCAL_TEMP=str(tmp_path / "tmp"), ANSIBLE_REMOTE_TEMP=str(tmp_path / "tmp"))
    proc = subprocess.run(cmd, cwd=str(tmp_path), env=env, capture_output=True, text=True, timeout=300, check=False)
    return proc.returncode, proc.stdout + proc.stderr


def run_role(tmp_path, role, groups, group, extra_vars=None, tasks_from=None, host_vars=None):
    play = (PLAY_TASKS if tasks_from else PLAY_MAIN).format(role=role, group=group, tasks_from=tasks_from)
    return run_playbook(tmp_path, play, groups, extra_vars=extra_vars, host_vars=host_vars)


def flat(text):
    """Output with line wrapping and indentation removed (messages are wrapped by the callback)."""
    return " ".join(text.split())


def ensure_collection_link():
    link = ROOT / ".collections" / "ansible_collections" / "supersmartmatch" / "platform"
    if not link.exists():
        subprocess.run([str(ROOT / "scripts" / "link-collection")], check=True, capture_output=True)


def render_templates(tmp_path, role, groups, host, templates, extra_vars):
    """Render role templates for `host` into tmp_path/out; return {template: text}."""
    tasks = "".join(
        "    - name: Render {t}\n      ansible.builtin.template:\n        src: {src}\n        dest: {dest}\n        mode: '0600'\n"
        .format(t=t, src=ROOT / "roles" / role / "templates" / t, dest=tmp_path / "out" / t) for t in templates)
    play = ("- name: Render templates\n  hosts: {host}\n  gather_facts: false\n  vars_files:\n"
            "    - {root}/roles/{role}/defaults/main.yml\n    - {root}/roles/{role}/vars/main.yml\n  tasks:\n"
            "    - name: Output directory\n      ansible.builtin.file:\n        path: {out}\n        state: directory\n"
            "        mode: '0700'\n").format(host=host, root=ROOT, role=role, out=tmp_path / "out") + tasks
    rc, out = run_playbook(tmp_path, play, groups, extra_vars=extra_vars, check=False)
    assert rc == 0, out
    return {t: (tmp_path / "out" / t).read_text() for t in templates}
