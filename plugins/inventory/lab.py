# -*- coding: utf-8 -*-
# Copyright: contributors to supersmartmatch.platform
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The Docker lab's inventory, read from the topology that ``scripts/lab up`` writes.

The same file also makes that topology (build_topology, called by lab/topology.py for scripts/lab up),
so the containers and the inventory come from one function.
"""
from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
name: lab
short_description: The Docker lab's hosts, groups and addresses, from the topology of C(scripts/lab up)
version_added: 0.1.0
description:
  - Reads the lab topology that C(scripts/lab up --lbs N --apps M) writes (JSON, by default
    C(.work/lab/topology.json) at the repository root) and makes one host per container, in the groups
    C(supersmartmatch), C(lb), C(app), C(monitoring), C(postgresql) and C(redis).
  - Every host's C(ansible_host) is its fixed address on the lab's Docker network; the connection
    settings (SSH as a non-root user with become) are in the inventory's C(group_vars).
  - The lab settings (C(lab_topology), C(lab_container_prefix), C(lab_network), C(lab_subnet),
    C(lab_ssh_user), C(ssm_lb_published_ports)) are set on the group C(all), for C(playbooks/lab.yml).
  - Without a topology file there is no lab, and the inventory is refused (run C(scripts/lab up)); a
    guess could aim the lab playbook at another lab's containers.
  - The file is validated in full; a bad one is refused with a message naming the problem.
options:
  plugin:
    description: The name of this plugin.
    required: true
    type: str
    choices: [supersmartmatch.platform.lab]
  topology_file:
    description:
      - The topology written by C(scripts/lab up); a relative path is relative to the inventory file's
        directory.
    type: str
    default: ../../.work/lab/topology.json
'''

EXAMPLES = r'''
# inventories/lab/lab.yml
plugin: supersmartmatch.platform.lab
topology_file: ../../.work/lab/topology.json
'''

import ipaddress
import json
import os
import re

try:
    from ansible.errors import AnsibleParserError
    from ansible.plugins.inventory import BaseInventoryPlugin
except ImportError:  # pragma: no cover - lab/topology.py uses this file without Ansible too
    AnsibleParserError = ValueError
    BaseInventoryPlugin = object

FORMAT = 1
NAME_RE = re.compile(r'[a-z0-9][a-z0-9_.-]{0,40}\Z')
PREFIX_RE = re.compile(r'[a-z0-9][a-z0-9_.-]{0,20}\Z')
USER_RE = re.compile(r'[a-z_][a-z0-9_-]{0,30}\Z')
GROUPS = ('supersmartmatch', 'lb', 'app', 'monitoring', 'postgresql', 'redis')
MAX_HOSTS = 64
FIRST_HOST_INDEX = 10  # addresses .11, .12, ... of the subnet (the gateway is .1)
DATA_NODES = 3

DEFAULTS = dict(lbs=2, apps=2, data=True, monitoring=True, prefix='ssm-', network='ssm-lab',
                subnet='172.30.90.0/24', https_port=8443, http_port=8080, port_step=1000,
                prometheus_port=9090, ssh_user='ssm')


class TopologyError(ValueError):
    """A topology request or file that cannot be used; the message names the problem."""


def _port(name, value):
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 65535:
        raise TopologyError('%s must be a port number in 1..65535, got %r' % (name, value))
    return value


def build_topology(lbs=2, apps=2, data=True, monitoring=True, prefix='ssm-', network='ssm-lab',
                   subnet='172.30.90.0/24', https_port=8443, http_port=8080, port_step=1000,
                   prometheus_port=9090, ssh_user='ssm'):
    """The lab topology for ``lbs`` balancers and ``apps`` application hosts (a dict, see validate_topology).

    Balancer i publishes HTTPS on https_port + (i-1)*port_step and HTTP on http_port + (i-1)*port_step,
    on 127.0.0.1; the monitoring host publishes Prometheus on prometheus_port. Hosts get fixed addresses
    .11, .12, ... of the subnet in the order lb*, app*, mon1, data*.
    """
    for name, value, low in (('lbs', lbs, 1), ('apps', apps, 1), ('port_step', port_step, 1)):
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise TopologyError('%s must be an integer >= %d, got %r' % (name, low, value))
    hosts = []
    for index in range(1, lbs + 1):
        offset = (index - 1) * port_step
        hosts.append({'name': 'lb%d' % index, 'groups': ['supersmartmatch', 'lb'], 'published': [
            {'name': 'https', 'host_ip': '127.0.0.1', 'host_port': https_port + offset, 'container_port': 443},
            {'name': 'http', 'host_ip': '127.0.0.1', 'host_port': http_port + offset, 'container_port': 80}]})
    for index in range(1, apps + 1):
        hosts.append({'name': 'app%d' % index, 'groups': ['supersmartmatch', 'app'], 'published': []})
    if monitoring:
        hosts.append({'name': 'mon1', 'groups': ['supersmartmatch', 'monitoring'], 'published': [
            {'name': 'prometheus', 'host_ip': '127.0.0.1', 'host_port': prometheus_port, 'container_port': 9090}]})
    if data:
        for index in range(1, DATA_NODES + 1):
            hosts.append({'name': 'data%d' % index, 'groups': ['supersmartmatch', 'postgresql', 'redis'],
                          'published': []})
    try:
        net = ipaddress.IPv4Network(subnet) if isinstance(subnet, str) else None
    except ValueError:
        net = None
    if net is None:
        raise TopologyError('subnet must be an IPv4 network such as 172.30.90.0/24, got %r' % (subnet,))
    if net.num_addresses - 2 < FIRST_HOST_INDEX + len(hosts):
        raise TopologyError('subnet %s is too small for %d hosts (addresses from .%d on)' % (
            subnet, len(hosts), FIRST_HOST_INDEX + 1))
    for index, host in enumerate(hosts):
        host['address'] = str(net.network_address + FIRST_HOST_INDEX + 1 + index)
    topology = {'format': FORMAT, 'prefix': prefix, 'network': network, 'subnet': subnet, 'ssh_user': ssh_user,
                'hosts': hosts}
    return validate_topology(topology)


def validate_topology(topology):
    """Check a whole topology (as written to the topology file); return it or raise TopologyError."""
    if not isinstance(topology, dict):
        raise TopologyError('the topology must be a mapping, got %s' % type(topology).__name__)
    unknown = sorted(set(topology) - {'format', 'prefix', 'network', 'subnet', 'ssh_user', 'hosts'})
    if unknown:
        raise TopologyError('unknown topology keys: %s' % ', '.join(map(str, unknown)))
    if topology.get('format') != FORMAT:
        raise TopologyError('topology format must be %d, got %r' % (FORMAT, topology.get('format')))
    for key, regex, example in (('prefix', PREFIX_RE, 'ssm-'), ('network', NAME_RE, 'ssm-lab'),
                                ('ssh_user', USER_RE, 'ssm')):
        value = topology.get(key)
        if not isinstance(value, str) or not regex.match(value):
            raise TopologyError('%s must match %s (such as %r), got %r' % (key, regex.pattern, example, value))
    try:
        net = ipaddress.IPv4Network(topology.get('subnet'))
    except (ValueError, TypeError):
        raise TopologyError('subnet must be an IPv4 network such as 172.30.90.0/24, got %r' % (topology.get('subnet'),))
    hosts = topology.get('hosts')
    if not isinstance(hosts, list) or not 1 <= len(hosts) <= MAX_HOSTS:
        raise TopologyError('hosts must be a list of 1..%d hosts' % MAX_HOSTS)
    names, addresses, ports = set(), set(), set()
    for host in hosts:
        if not isinstance(host, dict) or sorted(host) != ['address', 'groups', 'name', 'published']:
            raise TopologyError('every host needs exactly name, groups, address and published, got %r' % (host,))
        name = host['name']
        if not isinstance(name, str) or not NAME_RE.match(name) or name in names:
            raise TopologyError('host names must be unique and match %s, got %r' % (NAME_RE.pattern, name))
        names.add(name)
        groups = host['groups']
        if not isinstance(groups, list) or not groups or any(g not in GROUPS for g in groups) or \
                'supersmartmatch' not in groups or len(set(groups)) != len(groups):
            raise TopologyError('%s: groups must be distinct, among %s, including supersmartmatch, got %r' % (
                name, ', '.join(GROUPS), groups))
        try:
            address = ipaddress.IPv4Address(host['address'])
        except (ValueError, TypeError):
            raise TopologyError('%s: address must be an IPv4 address, got %r' % (name, host['address']))
        if address not in net or address in (net.network_address, net.broadcast_address, net.network_address + 1) \
                or address in addresses:
            raise TopologyError('%s: address %s must be a free host address of %s other than the gateway' % (
                name, address, net))
        addresses.add(address)
        published = host['published']
        if not isinstance(published, list):
            raise TopologyError('%s: published must be a list' % name)
        for entry in published:
            if not isinstance(entry, dict) or sorted(entry) != ['container_port', 'host_ip', 'host_port', 'name'] or \
                    not isinstance(entry['name'], str) or not NAME_RE.match(entry['name']) or \
                    entry['host_ip'] != '127.0.0.1':
                raise TopologyError('%s: every published port needs name, host_ip (127.0.0.1 only), host_port and '
                                    'container_port, got %r' % (name, entry))
            _port('%s %s host_port' % (name, entry['name']), entry['host_port'])
            _port('%s %s container_port' % (name, entry['name']), entry['container_port'])
            if entry['host_port'] in ports:
                raise TopologyError('%s: host port %d is published twice' % (name, entry['host_port']))
            ports.add(entry['host_port'])
    for group in ('lb', 'app'):
        if not any(group in host['groups'] for host in hosts):
            raise TopologyError('the topology needs at least one host in the group %s' % group)
    return topology


def inventory_vars(topology):
    """The lab settings set on the group ``all``."""
    return {
        'lab_container_prefix': topology['prefix'],
        'lab_network': topology['network'],
        'lab_subnet': topology['subnet'],
        'lab_ssh_user': topology['ssh_user'],
        'lab_topology': topology['hosts'],
        'ssm_lb_published_ports': {
            host['name']: {entry['name']: entry['host_port'] for entry in host['published']}
            for host in topology['hosts'] if 'lb' in host['groups']},
    }


def load_topology(path):
    """The topology in ``path``; there is no lab without one."""
    if not os.path.exists(path):
        raise TopologyError('no lab topology at %s: run scripts/lab up' % path)
    try:
        with open(path) as handle:
            topology = json.load(handle)
    except (OSError, ValueError) as exc:
        raise TopologyError('cannot read the lab topology %s: %s' % (path, exc))
    return validate_topology(topology)


class InventoryModule(BaseInventoryPlugin):
    NAME = 'supersmartmatch.platform.lab'

    def verify_file(self, path):
        return super(InventoryModule, self).verify_file(path) and \
            os.path.basename(path) in ('lab.yml', 'lab.yaml')

    def parse(self, inventory, loader, path, cache=True):
        super(InventoryModule, self).parse(inventory, loader, path, cache)
        self._read_config_data(path)
        topology_file = self.get_option('topology_file')
        if not os.path.isabs(topology_file):
            topology_file = os.path.normpath(os.path.join(os.path.dirname(path), topology_file))
        try:
            topology = load_topology(topology_file)
        except TopologyError as exc:
            raise AnsibleParserError('lab inventory: %s' % exc)
        for group in GROUPS:
            self.inventory.add_group(group)
            if group != 'supersmartmatch':
                self.inventory.add_child('supersmartmatch', group)
        for host in topology['hosts']:
            for group in host['groups']:
                self.inventory.add_host(host['name'], group=group)
            self.inventory.set_variable(host['name'], 'ansible_host', host['address'])
        for key, value in inventory_vars(topology).items():
            self.inventory.set_variable('all', key, value)
