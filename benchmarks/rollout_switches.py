"""Benchmark: phase overhead, rollback time and failed requests during every switch, on the lab.

Under labelled load through both load balancers (loopback ports of the lab),
runs ROUNDS of:

    canary -> rollback.yml                      (rollback during a canary)
    canary -> extended -> full -> rollback.yml  (rollback after promotion)

once under each LOAD and over each CONNECTION:

- ``steady``: the lab's steady rate (trafficgen.LAB_STEADY_RATE cases/s, a
  match and its feedback each), what the rollout scenario and the demo send;
- ``saturating``: 4 clients as fast as they can, which on a 2-core machine
  takes the CPUs the balancers, the services and Ansible share;

and the connections:

- ``ssh``: the lab's inventory, over SSH as production hosts are reached (the
  deploy user with sudo, pipelining, ControlPersist);
- ``docker``: the same hosts through ``docker exec`` as root, how the lab was
  reached until 2026-12-01 (an extra inventory, .work/lab/docker-exec.yml,
  overrides the connection), so that both are measured in the same run;

and the deployments (``--deploys``):

- ``release``: as the rollout deploys (``app_provision: false``: the host's
  packages, user and directories were provisioned by site.yml);
- ``provision``: ``-e app_provision=true``, the deployment as it was until
  2026-12-01 (provisioning checked again on every canary), so that the change
  is measured before and after in the same run.

Every canary deploys a release never installed before (2.<n>.0), so a canary's
time includes a full deployment. Every playbook run is timed end to end
(process start to exit, as on-call sees it) with the requests that failed
while it ran; a phase's overhead is its wall time minus its 2 s hold. Writes
benchmarks/results/rollout_switches.json and the tables in docs/benchmarks.md
(between the markers).

    scripts/setup && python benchmarks/rollout_switches.py [--rounds 3] [--loads steady,saturating]
        [--connections ssh,docker] [--deploys release,provision]

It brings up a fresh lab (scripts/lab down/up) and provisions it. Traffic goes
only to 127.0.0.1 (the lab's published ports); every loop is bounded.
"""
import argparse
import datetime
import json
import os
import statistics
import sys
import time

import yaml

from labtools import CLIENT, RESULTS, ROOT, TARGETS, playbook, prepare_lab, write_section

import lab_topology  # noqa: E402  (tools/, on the path set by labtools)
import trafficgen  # noqa: E402

HOLD_S = 2
# Short holds on health checks alone: this measures the switches, not the gates.
HOLD = ['-e', 'canary_duration=%d' % HOLD_S, '-e', 'extended_duration=%d' % HOLD_S, '-e', 'full_duration=%d' % HOLD_S,
        '-e', 'rollout_gate_interval=1', '-e', '{"rollout_metric_checks": []}']
BEGIN, END = '<!-- rollout_switches:begin -->', '<!-- rollout_switches:end -->'
LOADS = {'steady': trafficgen.LAB_STEADY_RATE, 'saturating': None}
CONNECTIONS = {'ssh': 'SSH', 'docker': 'docker exec'}
# the extra options of each deployment, and its column's suffix
DEPLOYS = {'release': ([], ''), 'provision': (['-e', 'app_provision=true'], ', provisioning again')}
DOCKER_INVENTORY = os.path.join(ROOT, '.work', 'lab', 'docker-exec.yml')
SEQUENCE = (('canary 0->5 %', 'canary.yml'), ('rollback from canary', 'rollback.yml'),
            ('canary 0->5 %', 'canary.yml'), ('extended 5->25 %', 'extended.yml'),
            ('full 25->100 % + promote', 'full.yml'), ('rollback after full', 'rollback.yml'))
# Issue 11's targets: overhead beyond the hold, seconds.
TARGETS_S = {'canary.yml': 30, 'extended.yml': 15, 'full.yml': 15, 'rollback.yml': 10}


def load_label(load):
    rate = LOADS[load]
    return ('steady, %g cases/s (%g requests/s)' % (rate, 2 * rate) if rate
            else 'saturating, 4 clients unbounded')


def column(load, connection, deploy='release'):
    return '%s, %s%s' % (load, CONNECTIONS[connection], DEPLOYS[deploy][1])


def connection_args(connection):
    """ansible-playbook's inventory options for ``connection``."""
    return [] if connection == 'ssh' else ['-i', 'inventories/lab', '-i', DOCKER_INVENTORY]


def write_docker_inventory():
    """The lab's hosts through docker exec as root (overrides the SSH settings of inventories/lab)."""
    topology = lab_topology.lab_settings()['lab_topology']
    inventory = {'all': {'children': {'supersmartmatch': {
        'vars': {'ansible_connection': 'community.docker.docker', 'ansible_user': 'root', 'ansible_become': False},
        'hosts': dict((h['name'], {'ansible_host': 'ssm-%s' % h['name']}) for h in topology)}}}}
    os.makedirs(os.path.dirname(DOCKER_INVENTORY), exist_ok=True)
    with open(DOCKER_INVENTORY, 'w') as handle:
        yaml.safe_dump(inventory, handle)


def switch(label, name, load, connection, deploy, *extra):
    """Run one playbook under ``load`` over ``connection`` with the ``deploy`` options; return its record."""
    runner = trafficgen.LoadRunner(TARGETS, duration=1800, users=2000, concurrency=4, rate=LOADS[load],
                                   **CLIENT).start()
    time.sleep(1.0)
    try:
        elapsed, _output = playbook(name, *(connection_args(connection) + DEPLOYS[deploy][0] + list(extra)))
    finally:
        time.sleep(1.0)
        report = runner.stop()
    hold = 0 if name == 'rollback.yml' else HOLD_S
    record = {'switch': label, 'playbook': name, 'load': load, 'connection': connection, 'deploy': deploy,
              'column': column(load, connection, deploy), 'wall_s': round(elapsed, 2),
              'overhead_s': round(elapsed - hold, 2), 'requests': report['total_requests'],
              'failed': report['failed_requests'], 'errors': report['errors']}
    print('%-24s %-26s %7.2f s  %6d requests  %d failed' % (
        record['column'], label, elapsed, record['requests'], record['failed']))
    return record


def spread(values):
    return {'min': min(values), 'median': statistics.median(values), 'max': max(values), 'runs': len(values)}


def summarize(records):
    summary = {'switches': len(records), 'requests': sum(r['requests'] for r in records),
               'failed_requests': sum(r['failed'] for r in records), 'loads': {}}
    for key in sorted(set(r['column'] for r in records)):
        summary['loads'][key] = dict(
            (name, spread([r['overhead_s'] for r in records if r['column'] == key and r['playbook'] == name]))
            for name in TARGETS_S)
    return summary


def met(summary):
    """Every target met over SSH (the production connection), deploying as the rollout does, under every
    load that was run, and no request failed."""
    return summary['failed_requests'] == 0 and all(
        s['max'] <= TARGETS_S[name] for key, per in summary['loads'].items() if key.endswith(CONNECTIONS['ssh'])
        for name, s in per.items())


def write_doc(result):
    s = result['summary']
    loads = list(s['loads'])
    lines = ['Measured %s on %s (%d cores), lab of 2 load balancers and 2 application hosts, %d rounds per load '
             'and connection; every canary deploys a release never installed before. Loads: %s. Connections: %s.%s' % (
                 result['date'], result['machine'], os.cpu_count() or 0, result['rounds'],
                 '; '.join('%s' % load_label(load) for load in result['load_names']),
                 '; '.join(CONNECTIONS[c] for c in result['connections']),
                 '' if result.get('deploys', ['release']) == ['release'] else
                 ' "Provisioning again": `-e app_provision=true`, each canary also checks the host\'s packages, '
                 'user and directories, as every canary did until 2026-12-01.'),
             '',
             '| overhead beyond the hold (min / median / max) | %s | target |' % ' | '.join(loads),
             '|---|%s---|' % ('---|' * len(loads))]
    for name in TARGETS_S:
        what = '`rollback.yml` wall time' if name == 'rollback.yml' else '`%s`' % name
        cells = ['%.1f / %.1f / %.1f s' % (s['loads'][load][name]['min'], s['loads'][load][name]['median'],
                                           s['loads'][load][name]['max']) for load in loads]
        lines.append('| %s | %s | <= %d s |' % (what, ' | '.join(cells), TARGETS_S[name]))
    for (over, under, what) in ((column('saturating', 'ssh'), column('steady', 'ssh'), 'Saturating over steady (SSH)'),
                                (column('steady', 'docker'), column('steady', 'ssh'), 'docker exec over SSH (steady)'),
                                (column('steady', 'ssh', 'provision'), column('steady', 'ssh'),
                                 'Provisioning again over not (steady, SSH)')):
        if over in loads and under in loads:
            ratios = ['%s %.1f x' % (name, s['loads'][over][name]['median'] / s['loads'][under][name]['median'])
                      for name in TARGETS_S if s['loads'][under][name]['median'] > 0]
            lines += ['', '%s, medians of the same run: %s.' % (what, ', '.join(ratios))]
    lines += ['', 'Failed requests during the %d switches (%d requests): **%d** (target 0).' % (
        s['switches'], s['requests'], s['failed_requests']),
        '',
        '| round | load, connection | switch | wall time (s) | requests | failed |',
        '|---|---|---|---|---|---|']
    for r in result['records']:
        lines.append('| %d | %s | %s | %.2f | %d | %d |' % (r['round'], r['column'], r['switch'], r['wall_s'],
                                                            r['requests'], r['failed']))
    write_section(BEGIN, END, lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--rounds', type=int, default=3)
    parser.add_argument('--loads', default='steady,saturating',
                        help='comma-separated, among: %s' % ', '.join(LOADS))
    parser.add_argument('--connections', default='ssh', help='comma-separated, among: %s' % ', '.join(CONNECTIONS))
    parser.add_argument('--deploys', default='release', help='comma-separated, among: %s' % ', '.join(DEPLOYS))
    parser.add_argument('--no-setup', action='store_true', help='use the lab as it is (provisioned, 1.0.0 stable)')
    args = parser.parse_args()
    loads = [load.strip() for load in args.loads.split(',') if load.strip()]
    connections = [c.strip() for c in args.connections.split(',') if c.strip()]
    deploys = [d.strip() for d in args.deploys.split(',') if d.strip()]
    unknown = ([load for load in loads if load not in LOADS] + [c for c in connections if c not in CONNECTIONS]
               + [d for d in deploys if d not in DEPLOYS])
    if unknown or not loads or not connections or not deploys or args.rounds < 1:
        parser.error('--loads takes %s (got %r), --connections %s (got %r), --deploys %s (got %r); '
                     '--rounds must be >= 1' % (', '.join(LOADS), args.loads, ', '.join(CONNECTIONS),
                                                args.connections, ', '.join(DEPLOYS), args.deploys))
    write_docker_inventory()
    # one release per canary, never installed before: 2.1.0, 2.2.0, ...
    versions = ['2.%d.0' % n for n in range(1, 2 * args.rounds * len(loads) * len(connections) * len(deploys) + 1)]
    prepare_lab(versions, reuse=args.no_setup)
    records, fresh = [], iter(versions)
    for index in range(1, args.rounds + 1):
        for connection in connections:
            for load in loads:
                for deploy in deploys:
                    release = None
                    for label, name in SEQUENCE:
                        if name == 'canary.yml':
                            release = next(fresh)
                        extra = [] if name == 'rollback.yml' else ['-e', 'release_version=%s' % release] + HOLD
                        record = switch(label, name, load, connection, deploy, *extra)
                        record['round'] = index
                        records.append(record)
    result = {'date': datetime.date.today().isoformat(), 'machine': os.uname().nodename, 'rounds': args.rounds,
              'loads': dict((load, load_label(load)) for load in loads), 'load_names': loads,
              'connections': connections, 'deploys': deploys, 'records': records}
    result['summary'] = summarize(records)
    os.makedirs(RESULTS, exist_ok=True)
    with open(os.path.join(RESULTS, 'rollout_switches.json'), 'w') as handle:
        json.dump(result, handle, indent=2)
    write_doc(result)
    print(json.dumps(result['summary'], indent=2))
    return 0 if met(result['summary']) else 1


if __name__ == '__main__':
    sys.exit(main())
