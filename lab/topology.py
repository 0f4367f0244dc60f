"""Write the lab topology (JSON) for scripts/lab up, from the inventory plugin's build_topology.

    python lab/topology.py --lbs N --apps M [--no-data] [--no-monitoring] [--prefix ssm-] ... --out FILE

One function makes the topology that the containers (playbooks/lab.yml) and the inventory
(plugins/inventory/lab.py) both read. A bad request exits 2 with the problem named.
"""
import importlib.util
import json
import os
import sys

_PLUGIN = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), 'plugins', 'inventory', 'lab.py')
_SPEC = importlib.util.spec_from_file_location('ssm_lab_inventory', _PLUGIN)
LAB = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(LAB)


def _parse_args(argv):
    import argparse
    parser = argparse.ArgumentParser(description='Write the lab topology (JSON) for scripts/lab up.')
    parser.add_argument('--lbs', type=int, default=LAB.DEFAULTS['lbs'])
    parser.add_argument('--apps', type=int, default=LAB.DEFAULTS['apps'])
    parser.add_argument('--no-data', dest='data', action='store_false', help='no data tier (data1-3)')
    parser.add_argument('--no-monitoring', dest='monitoring', action='store_false', help='no mon1 (Prometheus)')
    parser.add_argument('--prefix', default=LAB.DEFAULTS['prefix'])
    parser.add_argument('--network', default=LAB.DEFAULTS['network'])
    parser.add_argument('--subnet', default=LAB.DEFAULTS['subnet'])
    parser.add_argument('--https-port', type=int, default=LAB.DEFAULTS['https_port'])
    parser.add_argument('--http-port', type=int, default=LAB.DEFAULTS['http_port'])
    parser.add_argument('--port-step', type=int, default=LAB.DEFAULTS['port_step'])
    parser.add_argument('--prometheus-port', type=int, default=LAB.DEFAULTS['prometheus_port'])
    parser.add_argument('--ssh-user', default=LAB.DEFAULTS['ssh_user'])
    parser.add_argument('--out', required=True, help='topology file to write')
    return parser.parse_args(argv)


def main(argv=None):
    args = _parse_args(argv)
    request = vars(args).copy()
    out = request.pop('out')
    try:
        topology = LAB.build_topology(**request)
    except LAB.TopologyError as exc:
        sys.stderr.write('lab: %s\n' % exc)
        return 2
    tmp = out + '.tmp'
    with open(tmp, 'w') as handle:
        json.dump(topology, handle, indent=1)
        handle.write('\n')
    os.replace(tmp, out)
    return 0


if __name__ == '__main__':
    sys.exit(main())
