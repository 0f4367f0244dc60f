"""What the role tests share: the ansible-playbook of this venv, and the collection link it loads the roles from."""
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
