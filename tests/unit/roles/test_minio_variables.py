"""Every variable of the minio role's defaults is in meta/argument_specs.yml, with the same default,
and the README documents every one of them."""
import os

import pytest
import yaml

ROLE = os.path.join(os.path.dirname(__file__), '..', '..', '..', 'roles', 'minio')


def load(*parts):
    with open(os.path.join(ROLE, *parts), encoding='utf-8') as handle:
        return yaml.safe_load(handle)


DEFAULTS = load('defaults', 'main.yml')
OPTIONS = load('meta', 'argument_specs.yml')['argument_specs']['main']['options']
with open(os.path.join(ROLE, 'README.md'), encoding='utf-8') as _readme:
    README = _readme.read()


@pytest.mark.parametrize('name', sorted(DEFAULTS))
def test_every_default_is_specified_with_the_same_default(name):
    assert name in OPTIONS, '%s is in defaults/main.yml but not in meta/argument_specs.yml' % name
    assert OPTIONS[name].get('description')
    assert OPTIONS[name].get('default') == DEFAULTS[name], name


@pytest.mark.parametrize('name', sorted(OPTIONS))
def test_every_option_has_a_default_and_is_documented(name):
    assert name in DEFAULTS, '%s is specified but has no default in defaults/main.yml' % name
    assert '`%s`' % name in README, '%s is not documented in roles/minio/README.md' % name


def test_secret_options_are_no_log():
    for name in ('minio_vault_token', 'minio_vault_secret_id'):
        assert OPTIONS[name].get('no_log') is True, name
