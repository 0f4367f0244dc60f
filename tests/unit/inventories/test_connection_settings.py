"""The lab connects to its hosts exactly as inventories/production.example does (SSH)."""
import os

import pytest
import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
LAB = os.path.join(ROOT, 'inventories', 'lab', 'group_vars', 'supersmartmatch.yml')
PRODUCTION = os.path.join(ROOT, 'inventories', 'production.example', 'group_vars', 'supersmartmatch.yml')
# What may differ: who connects, with which key, against which known_hosts.
OWN = {'ansible_user', 'ansible_ssh_private_key_file', 'ansible_ssh_common_args'}


def _load(path):
    with open(path) as handle:
        return yaml.safe_load(handle)


@pytest.mark.parametrize('key', sorted(set(_load(LAB)) | set(_load(PRODUCTION))))
def test_lab_and_production_connect_alike(key):
    lab, production = _load(LAB), _load(PRODUCTION)
    if key in OWN:
        assert key in lab
        return
    assert lab.get(key) == production.get(key), key


@pytest.mark.parametrize('key, expected', [
    ('ansible_connection', 'ansible.builtin.ssh'),
    ('ansible_become', True),
    ('ansible_ssh_pipelining', True),
    ('ansible_ssh_host_key_checking', True),
])
def test_ssh_settings(key, expected):
    assert _load(LAB)[key] == expected


def test_a_frozen_host_is_detected_within_seconds():
    args = _load(LAB)['ansible_ssh_args'].split()
    options = dict(a.split('=', 1) for a in args if '=' in a)
    assert options['ControlPersist'] and options['ControlMaster'] == 'auto'
    assert int(options['ServerAliveInterval']) * int(options['ServerAliveCountMax']) <= 6
    assert _load(LAB)['ansible_ssh_timeout'] <= 5


def test_the_lab_trusts_only_its_own_known_hosts():
    common = _load(LAB)['ansible_ssh_common_args']
    assert '-o StrictHostKeyChecking=yes' in common
    assert '-o UserKnownHostsFile={{ lab_ssh_dir }}/known_hosts' in common
    assert '.ssh' not in common + _load(LAB)['ansible_ssh_private_key_file']
