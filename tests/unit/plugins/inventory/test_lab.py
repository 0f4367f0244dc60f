"""The lab topology (scripts/lab up) and the inventory plugin that reads it."""
import copy
import json
import os

import subprocess
import sys

import pytest
import yaml

from ansible_collections.supersmartmatch.platform.plugins.inventory import lab

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))))


def _names(topology, group):
    return [h['name'] for h in topology['hosts'] if group in h['groups']]


@pytest.mark.parametrize('request_, lbs, apps, mon, data, first_https, last_https, last_address', [
    ({}, ['lb1', 'lb2'], ['app1', 'app2'], ['mon1'], ['data1', 'data2', 'data3'], 8443, 9443, '172.30.90.18'),
    ({'lbs': 16, 'data': False, 'monitoring': False, 'port_step': 1, 'https_port': 28443, 'http_port': 28080,
      'subnet': '172.30.96.0/24'},
     ['lb%d' % i for i in range(1, 17)], ['app1', 'app2'], [], [], 28443, 28458, '172.30.96.28'),
    ({'lbs': 1, 'apps': 3, 'data': False}, ['lb1'], ['app1', 'app2', 'app3'], ['mon1'], [], 8443, 8443,
     '172.30.90.15'),
])
def test_build_topology(request_, lbs, apps, mon, data, first_https, last_https, last_address):
    topology = lab.build_topology(**request_)
    assert _names(topology, 'lb') == lbs
    assert _names(topology, 'app') == apps
    assert _names(topology, 'monitoring') == mon
    assert _names(topology, 'postgresql') == data == _names(topology, 'redis')
    https = [p['host_port'] for h in topology['hosts'] for p in h['published'] if p['name'] == 'https']
    assert (https[0], https[-1]) == (first_https, last_https)
    assert topology['hosts'][-1]['address'] == last_address
    assert all(p['host_ip'] == '127.0.0.1' for h in topology['hosts'] for p in h['published'])


def test_default_topology_is_the_documented_lab():
    variables = lab.inventory_vars(lab.build_topology())
    assert variables['ssm_lb_published_ports'] == {'lb1': {'https': 8443, 'http': 8080},
                                                   'lb2': {'https': 9443, 'http': 9080}}
    assert (variables['lab_container_prefix'], variables['lab_network'], variables['lab_subnet']) == (
        'ssm-', 'ssm-lab', '172.30.90.0/24')
    assert [p['host_port'] for p in variables['lab_topology'][4]['published']] == [9090]


@pytest.mark.parametrize('request_, message', [
    ({'lbs': 0}, 'lbs must be an integer >= 1'),
    ({'apps': 0}, 'apps must be an integer >= 1'),
    ({'lbs': True}, 'lbs must be an integer'),
    ({'prefix': 'ssm lab-'}, 'prefix must match'),
    ({'prefix': 'ssm-\n'}, 'prefix must match'),
    ({'network': 'Lab;rm'}, 'network must match'),
    ({'ssh_user': 'root\n'}, 'ssh_user must match'),
    ({'subnet': '172.30.90.0/33'}, 'subnet must be an IPv4 network'),
    ({'subnet': '172.30.90.1/24'}, 'subnet must be an IPv4 network'),
    ({'subnet': '172.30.90.0/28'}, 'too small'),
    ({'lbs': 60}, 'hosts must be a list of 1..64'),
    ({'https_port': 65000, 'lbs': 2}, 'must be a port number'),
    ({'https_port': 8080}, 'published twice'),
    ({'prometheus_port': 9443}, 'published twice'),
])
def test_build_topology_refuses(request_, message):
    with pytest.raises(lab.TopologyError, match=message):
        lab.build_topology(**request_)


def _mutate(path, value):
    def apply(topology):
        target = topology
        for key in path[:-1]:
            target = target[key]
        if value is KeyError:
            del target[path[-1]]
        else:
            target[path[-1]] = value
        return topology
    return apply


@pytest.mark.parametrize('change, message', [
    (_mutate(['format'], 2), 'format must be 1'),
    (_mutate(['extra'], 1), 'unknown topology keys: extra'),
    (_mutate(['hosts'], []), 'hosts must be a list'),
    (_mutate(['hosts', 0, 'name'], 'lb1\n'), 'host names must be unique'),
    (_mutate(['hosts', 1, 'name'], 'lb1'), 'host names must be unique'),
    (_mutate(['hosts', 0, 'groups'], ['lb']), 'including supersmartmatch'),
    (_mutate(['hosts', 0, 'groups'], ['supersmartmatch', 'lb', 'web']), 'groups must be distinct'),
    (_mutate(['hosts', 0, 'address'], '10.0.0.5'), 'must be a free host address'),
    (_mutate(['hosts', 0, 'address'], '172.30.90.1'), 'other than the gateway'),
    (_mutate(['hosts', 1, 'address'], '172.30.90.11'), 'must be a free host address'),
    (_mutate(['hosts', 0, 'address'], 'lb1'), 'address must be an IPv4 address'),
    (_mutate(['hosts', 0, 'published', 0, 'host_ip'], '0.0.0.0'), '127.0.0.1 only'),
    (_mutate(['hosts', 0, 'published', 0, 'host_port'], '8443'), 'must be a port number'),
    (_mutate(['hosts', 0, 'extra'], 1), 'exactly name, groups, address and published'),
    (_mutate(['hosts', 2, 'groups'], ['supersmartmatch', 'lb']), None),
])
def test_validate_topology(change, message):
    topology = change(copy.deepcopy(lab.build_topology(data=False, monitoring=False, apps=1)))
    if message is None:  # app1 turned into a balancer: no application host left
        message = 'at least one host in the group app'
    with pytest.raises(lab.TopologyError, match=message):
        lab.validate_topology(topology)


def _inventory(tmp_path, topology):
    """ansible-inventory --list on an inventory naming the plugin, as Ansible runs it."""
    (tmp_path / 'inv').mkdir()
    (tmp_path / 'inv' / 'lab.yml').write_text(yaml.safe_dump({
        'plugin': 'supersmartmatch.platform.lab', 'topology_file': '../topology.json'}))
    if topology is not None:
        (tmp_path / 'topology.json').write_text(json.dumps(topology))
    (tmp_path / 'ansible.cfg').write_text('[defaults]\n')
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=os.path.join(ROOT, '.collections'),
               ANSIBLE_CONFIG=str(tmp_path / 'ansible.cfg'))
    binary = os.path.join(os.path.dirname(sys.executable), 'ansible-inventory')
    proc = subprocess.run([binary, '-i', str(tmp_path / 'inv' / 'lab.yml'), '--list'],
                          capture_output=True, text=True, env=env, check=False)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout, object_hook=_plain), proc.stderr


def _plain(value):
    # ansible-inventory marks strings from inventory plugins as untrusted: {"__ansible_unsafe": "..."}
    return value['__ansible_unsafe'] if list(value) == ['__ansible_unsafe'] else value


def test_inventory_from_the_topology(tmp_path):
    topology = lab.build_topology(lbs=3, apps=2, data=True, monitoring=False, prefix='ssmh-',
                                  network='ssmh-lab', subnet='172.30.95.0/24')
    listing, _stderr = _inventory(tmp_path, topology)
    assert listing['lb']['hosts'] == ['lb1', 'lb2', 'lb3']
    assert listing['postgresql']['hosts'] == ['data1', 'data2', 'data3']
    assert 'monitoring' not in listing or not listing['monitoring'].get('hosts')
    assert set(listing['supersmartmatch']['children']) >= {'lb', 'app', 'postgresql', 'redis'}
    hostvars = listing['_meta']['hostvars']
    assert hostvars['lb1']['ansible_host'] == '172.30.95.11'
    assert hostvars['data3']['ansible_host'] == '172.30.95.18'
    all_vars = hostvars['lb1']
    assert all_vars['lab_container_prefix'] == 'ssmh-'
    assert all_vars['ssm_lb_published_ports']['lb3'] == {'https': 10443, 'http': 10080}


@pytest.mark.parametrize('topology, message', [
    (None, 'no lab topology at'),
    ({'format': 1, 'prefix': 'ssm-'}, 'unknown topology keys|network must match|subnet'),
    (dict(lab.build_topology(), prefix='ssm-;x'), 'prefix must match'),
])
def test_inventory_without_a_good_topology_has_no_hosts(tmp_path, topology, message):
    # no file: no lab (never a guessed default that could be someone else's containers);
    # a bad file: refused in full, with the problem named
    listing, stderr = _inventory(tmp_path, topology)
    assert listing['_meta']['hostvars'] == {}
    assert 'Traceback' not in stderr
    assert __import__('re').search(message, stderr), stderr


@pytest.mark.parametrize('args, rc, message', [
    (['--lbs', '16', '--no-data', '--no-monitoring', '--port-step', '1'], 0, ''),
    (['--lbs', '0'], 2, 'lab: lbs must be an integer >= 1, got 0'),
    (['--prefix', 'a b'], 2, 'lab: prefix must match'),
    (['--https-port', '65535'], 2, 'must be a port number in 1..65535'),
])
def test_scripts_lab_topology_cli(tmp_path, args, rc, message):
    out = tmp_path / 'topology.json'
    proc = subprocess.run([sys.executable, os.path.join(ROOT, 'lab', 'topology.py')] + args + ['--out', str(out)],
                          capture_output=True, text=True, check=False)
    assert proc.returncode == rc, proc.stderr
    assert message in proc.stderr and 'Traceback' not in proc.stderr
    if rc == 0:
        assert len(lab.validate_topology(json.loads(out.read_text()))['hosts']) == 18
    else:
        assert not out.exists()
