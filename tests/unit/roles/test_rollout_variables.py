"""Every variable of the rollout role's defaults is described in meta/argument_specs.yml (read-only helpers aside)."""
import os

import pytest
import yaml

ROLE = os.path.join(os.path.dirname(__file__), '..', '..', '..', 'roles', 'rollout')
# computed helpers, never set by an inventory
HELPERS = {'rollout_ctx', 'rollout_failures', 'rollout_run_plan', 'rollout_rollback_by', 'rollout_rollback_run_id'}


def load(*parts):
    with open(os.path.join(ROLE, *parts)) as handle:
        return yaml.safe_load(handle)


DEFAULTS = load('defaults', 'main.yml')
SPECS = load('meta', 'argument_specs.yml')['argument_specs']


def described():
    out = {}
    for entry in SPECS.values():
        for name, option in entry['options'].items():
            out.setdefault(name, []).append(option)
    return out


@pytest.mark.parametrize('name', sorted(set(DEFAULTS) - HELPERS))
def test_every_default_is_described(name):
    options = described().get(name)
    assert options, '%s is in defaults/main.yml but in no entry point of meta/argument_specs.yml' % name
    assert all(option.get('description') for option in options)


@pytest.mark.parametrize('name, entries', [
    ('rollout_require_approval', ['init', 'hold']),
    ('rollout_approval_timeout', ['init', 'hold']),
    ('rollout_approval_url', ['init', 'hold']),
    ('rollout_approval_by', ['approve']),
    ('rollout_hooks', ['init', 'shift', 'hold', 'verdict', 'report', 'rollback', 'hooks']),
    ('rollout_hook_timeout', ['init', 'shift', 'hold', 'verdict', 'report', 'rollback', 'hooks']),
])
def test_approval_and_hook_variables_are_specified_where_they_are_used(name, entries):
    for entry in entries:
        assert name in SPECS[entry]['options'], (name, entry)
    if name == 'rollout_approval_url':
        assert all(SPECS[e]['options'][name].get('no_log') for e in entries)
