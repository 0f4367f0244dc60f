"""Render the monitoring role's real templates and run the real Debian tools on them (the rendering
helpers take any role: the minio role's template tests use them too).

The templates are rendered with Ansible's own templar from the role's
defaults and vars (plus per-test overrides), exactly as the template module
renders them; `promtool` (Debian prometheus) and `amtool` (Debian
prometheus-alertmanager) are installed by scripts/setup. Nothing is installed,
started or changed outside pytest's temporary directories.
"""
import shutil
import subprocess
from pathlib import Path

import pytest
from ansible.parsing.dataloader import DataLoader
from ansible.template import Templar, trust_as_template

ROLE = Path(__file__).resolve().parents[3] / "roles" / "monitoring"
# What the template module adds, and the inventory the defaults refer to.
CONTEXT = {
    "ansible_managed": "Ansible managed (unit test)",
    "inventory_hostname": "mon1",
    "groups": {"app": ["app1", "app2"], "lb": ["lb1"], "monitoring": ["mon1"]},
}


def role_variables(role, context, overrides):
    """(loader, variables) of the role directory ``role``: its defaults and vars, ``context``, ``overrides``."""
    loader = DataLoader()
    variables = {}
    for name in ("defaults", "vars"):
        variables.update(loader.load_from_file(str(Path(role) / name / "main.yml"), trusted_as_template=True) or {})
    variables.update(context)
    variables.update(overrides)
    return loader, variables


def render_role_template(role, template, context, overrides):
    """Text of ``<role>/templates/<template>`` rendered as the template module does (any role)."""
    loader, variables = role_variables(role, context, overrides)
    source = (Path(role) / "templates" / template).read_text()
    return Templar(loader=loader, variables=variables).template(trust_as_template(source))


def role_vars(**overrides):
    return role_variables(ROLE, CONTEXT, overrides)


def render(template, **overrides):
    """Text of roles/monitoring/templates/<template> with the role defaults and ``overrides``."""
    return render_role_template(ROLE, template, CONTEXT, overrides)


def evaluate(expression, **overrides):
    """Value of a Jinja expression (such as a role variable) with the role defaults and ``overrides``."""
    loader, variables = role_vars(**overrides)
    return Templar(loader=loader, variables=variables).template(trust_as_template("{{ %s }}" % expression))


def tool(name, package):
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} not found: scripts/setup installs the Debian package {package}")
    return path


def run(argv, cwd):
    return subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=120, check=False)
