"""The lab's topology as a parameter: N load balancers and M application hosts.

    python tools/lab_topology.py --lbs 8 --apps 2 [--no-data]

Writes:

- ``.work/lab/topology.yml``: ``lab_topology`` for playbooks/lab.yml (``-e @...``);
- ``.work/inventory/hosts.yml``: the inventory, with the same SSH connection
  settings as inventories/lab/hosts.yml, and ``.work/inventory/group_vars``, a
  link to inventories/lab/group_vars (the lab's settings). The directory is two
  levels under the repository, like inventories/lab, so those settings find
  .work/ the same way.

``scripts/lab up --lbs N --apps M`` runs it; the default lab (2 and 2) is
inventories/lab itself. Addresses in the lab subnet: balancers .101-.150,
application hosts .201-.250, mon1 .31, data1-3 .41-.43. Balancer i publishes
HTTPS on 127.0.0.1:(8443 + 1000 (i - 1)) and HTTP on 127.0.0.1:(8080 + 1000 (i - 1)),
so lb1 and lb2 keep the default lab's ports.
"""
import argparse
import os
import sys

import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LAB_INVENTORY = os.path.join(ROOT, 'inventories', 'lab')
INVENTORY = os.path.join(ROOT, '.work', 'inventory')
TOPOLOGY = os.path.join(ROOT, '.work', 'lab', 'topology.yml')
MAX_LBS = 50
MAX_APPS = 50


def lab_settings():
    """The default lab's settings (inventories/lab/group_vars/all.yml): lab_topology, lab_subnet, ..."""
    with open(os.path.join(LAB_INVENTORY, 'group_vars', 'all.yml')) as handle:
        return yaml.safe_load(handle)


def subnet_prefix():
    """'172.30.90.' from the lab's lab_subnet (a /24)."""
    subnet = lab_settings()['lab_subnet']
    if not subnet.endswith('.0/24'):
        raise SystemExit('lab_topology: lab_subnet must be a /24 ending in .0/24, got %r' % subnet)
    return subnet[:-len('0/24')]


def https_port(index):
    return 8443 + 1000 * (index - 1)


def topology(lbs, apps, data=True, prefix='172.30.90.'):
    """lab_topology: a list of hosts with name, address, groups and published ports."""
    hosts = []
    for index in range(1, lbs + 1):
        hosts.append({'name': 'lb%d' % index, 'address': '%s%d' % (prefix, 100 + index),
                      'groups': ['supersmartmatch', 'lb'],
                      'published': [
                          {'name': 'https', 'host_ip': '127.0.0.1', 'host_port': https_port(index), 'container_port': 443},
                          {'name': 'http', 'host_ip': '127.0.0.1', 'host_port': 8080 + 1000 * (index - 1),
                           'container_port': 80}]})
    for index in range(1, apps + 1):
        hosts.append({'name': 'app%d' % index, 'address': '%s%d' % (prefix, 200 + index),
                      'groups': ['supersmartmatch', 'app'], 'published': []})
    hosts.append({'name': 'mon1', 'address': '%s31' % prefix, 'groups': ['supersmartmatch', 'monitoring'],
                  'monitoring': True,
                  'published': [{'name': 'prometheus', 'host_ip': '127.0.0.1', 'host_port': 9090,
                                 'container_port': 9090}]})
    if data:
        for index in range(1, 4):
            hosts.append({'name': 'data%d' % index, 'address': '%s%d' % (prefix, 40 + index),
                          'groups': ['supersmartmatch', 'postgresql', 'redis'], 'published': []})
    return hosts


def inventory(hosts):
    """The inventory of ``hosts``: the default lab's connection settings, its groups."""
    with open(os.path.join(LAB_INVENTORY, 'hosts.yml')) as handle:
        lab = yaml.safe_load(handle)
    group_vars = lab['all']['children']['supersmartmatch']['vars']
    children = {}
    for host in hosts:
        for group in host['groups']:
            if group != 'supersmartmatch':
                children.setdefault(group, {'hosts': {}})['hosts'][host['name']] = {'ansible_host': host['address']}
    return {'all': {'children': {'supersmartmatch': {'vars': group_vars, 'children': children}}}}


def write(lbs, apps, data, out=INVENTORY, topology_file=TOPOLOGY):
    hosts = topology(lbs, apps, data, subnet_prefix())
    os.makedirs(out, exist_ok=True)
    os.makedirs(os.path.dirname(topology_file), exist_ok=True)
    with open(topology_file, 'w') as handle:
        handle.write('# written by tools/lab_topology.py --lbs %d --apps %d%s\n' % (lbs, apps, '' if data else ' --no-data'))
        yaml.safe_dump({'lab_topology': hosts}, handle, sort_keys=False)
    with open(os.path.join(out, 'hosts.yml'), 'w') as handle:
        handle.write('---\n# written by tools/lab_topology.py: the lab with %d load balancer(s) and %d application '
                     'host(s); remove it with scripts/lab down\n' % (lbs, apps))
        yaml.safe_dump(inventory(hosts), handle, sort_keys=False)
    link = os.path.join(out, 'group_vars')
    target = os.path.relpath(os.path.join(LAB_INVENTORY, 'group_vars'), out)
    if os.path.islink(link) and os.readlink(link) != target:
        os.unlink(link)
    if not os.path.lexists(link):
        os.symlink(target, link)
    return hosts


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--lbs', type=int, default=2, help='load balancers (1-%d, default 2)' % MAX_LBS)
    parser.add_argument('--apps', type=int, default=2, help='application hosts (1-%d, default 2)' % MAX_APPS)
    parser.add_argument('--no-data', action='store_true', help='no data tier (data1-3: PostgreSQL HA, Redis)')
    args = parser.parse_args(argv)
    if not 1 <= args.lbs <= MAX_LBS:
        parser.error('--lbs must be between 1 and %d, got %d' % (MAX_LBS, args.lbs))
    if not 1 <= args.apps <= MAX_APPS:
        parser.error('--apps must be between 1 and %d, got %d' % (MAX_APPS, args.apps))
    hosts = write(args.lbs, args.apps, not args.no_data)
    print('%s: %d host(s); %s' % (os.path.relpath(INVENTORY, ROOT), len(hosts), os.path.relpath(TOPOLOGY, ROOT)))
    return 0


if __name__ == '__main__':
    sys.exit(main())
