"""Benchmark: PostgreSQL under crash faults, through the HAProxy read-write endpoint.

Uses the molecule scenario `postgresql_ha` (three containers pg-node1..3, each with
etcd, Patroni/PostgreSQL 15 and HAProxy). For a fault type (tools/pg_faults.py: stop,
freeze-short, freeze-long, kill, partition, etcd-quorum, freeze-sync-standby) every run:

    1. waits for a healthy cluster (one leader, every other member streaming);
    2. starts the write checker (tools/write_checker.py: clients inserting unique ids
       through HAProxy port 5000 of the untouched nodes, TLS + scram);
    3. injects the fault, holds it, heals it, waits until the cluster is healthy;
    4. reads the final leader: acknowledged writes lost, time to the first acknowledged
       write after the fault, longest write gap, time to healthy after the heal.

Prints min/median/max per fault type and writes benchmarks/results/postgresql_failover.json
(one entry per fault type, merged with the entries of earlier invocations).

    python benchmarks/postgresql_failover.py [--fault freeze-long ...] [--runs 3] [--reuse] [--keep]

--reuse skips `molecule create/converge` when the containers already run; --keep leaves
them running (else `molecule destroy` at the end). Traffic only goes to the scenario's own
containers; every loop is bounded.
"""
import argparse
import datetime
import json
import os
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, 'tools'))

import pg_faults  # noqa: E402  (path set just above)
from labtools import write_section  # noqa: E402  (benchmarks/ is the script's directory)

VENV = os.environ.get('VENV', os.path.join(ROOT, '.venv'))
SCENARIO = 'postgresql_ha'
APP_PASSWORD = 'molecule-app-secret'  # the scenario's test-only secret
SETTINGS = {'ttl': 20, 'loop_wait': 5, 'retry_timeout': 5, 'synchronous_mode': 'quorum', 'haproxy_check_inter': '1s',
            'patroni': '4.1.5'}
TARGET_S = SETTINGS['ttl'] + SETTINGS['loop_wait'] + 5
RESULT = os.path.join(ROOT, 'benchmarks', 'results', 'postgresql_failover.json')


def molecule(action):
    env = dict(os.environ, PATH=os.path.join(VENV, 'bin') + os.pathsep + os.environ.get('PATH', ''))
    proc = subprocess.run([os.path.join(VENV, 'bin', 'molecule'), action, '-s', SCENARIO], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=1800, check=False)
    if proc.returncode != 0:
        raise SystemExit('molecule %s failed:\n%s' % (action, (proc.stdout + proc.stderr)[-4000:]))


def running(node):
    proc = pg_faults.sh(['docker', 'inspect', '-f', '{{.State.Running}}', node])
    return proc.returncode == 0 and proc.stdout.strip() == 'true'


def stop_case():
    """The graceful fault of the earlier benchmark: `systemctl stop patroni` on the leader, then start."""
    def stop(state):
        pg_faults.dexec(state['leader'], 'systemctl', 'stop', 'patroni', timeout=60)

    def start(state):
        pg_faults.dexec(state['leader'], 'systemctl', 'start', 'patroni', timeout=60)
    return pg_faults.Case('stop', stop, start, 10, 'leader', 'Patroni stopped on the leader (graceful), 10 s')


def all_cases():
    cases = dict(pg_faults.cases(ttl=SETTINGS['ttl']))
    cases['stop'] = stop_case()
    return cases


def summary(values):
    values = [v for v in values if v is not None]
    if not values:
        return None
    return {'min': min(values), 'median': round(statistics.median(values), 2), 'max': max(values)}


BEGIN, END = '<!-- postgresql_failover:begin -->', '<!-- postgresql_failover:end -->'
# the faults that take the leader away without a clean release of its key
LEADER_FAULTS = ('freeze-long', 'kill', 'partition')


def spread(values):
    return '%s / %s / %s' % (values['min'], values['median'], values['max']) if values else 'none'


def write_doc(faults):
    """The docs/benchmarks.md section: one row per fault type measured so far."""
    lines = ['Measured %s on %s (%d cores), the `postgresql_ha` Molecule scenario, settings %s; min / median / max over '
             'the runs; target for a frozen, killed or cut-off leader: writes back (the longest time without an '
             'acknowledged write) within ttl + loop_wait + 5 = %d s.'
             % (datetime.date.today().isoformat(), os.uname().nodename, os.cpu_count(),
                ', '.join('%s %s' % item for item in SETTINGS.items()), TARGET_S),
             '',
             '| fault | runs | longest time without an acknowledged write (s) | target | first acknowledged write '
             'after the fault (s; commits in flight count) | every member streaming, after the heal (s) '
             '| acknowledged / lost |',
             '|---|---|---|---|---|---|---|']
    for name, result in faults.items():
        gap = result['longest_gap_s']
        target = ''
        if name in LEADER_FAULTS:
            target = '<= %d %s' % (TARGET_S, 'met' if gap and gap['max'] <= TARGET_S else '**missed**')
        lines.append('| %s: %s | %d | %s | %s | %s | %s | %d / **%d** |' % (
            name, result['description'], len(result['runs']), spread(gap), target, spread(result['first_write_s']),
            spread(result['healthy_after_heal_s']), result['acknowledged'], result['acknowledged_lost']))
    write_section(BEGIN, END, lines)


def main():
    cases = all_cases()
    parser = argparse.ArgumentParser(description=__doc__.split('\n', 1)[0])
    parser.add_argument('--fault', action='append', choices=sorted(cases), help='fault type (repeatable; default all)')
    parser.add_argument('--runs', type=int, default=3, help='runs per fault type (>= 1)')
    parser.add_argument('--reuse', action='store_true', help='reuse running scenario containers')
    parser.add_argument('--keep', action='store_true', help='do not destroy the containers at the end')
    args = parser.parse_args()
    if args.runs < 1:
        parser.error('--runs must be at least 1')
    faults = args.fault or ['stop', 'freeze-short', 'freeze-long', 'kill', 'partition', 'etcd-quorum',
                            'freeze-sync-standby']

    if not (args.reuse and all(running(node) for node in pg_faults.NODES)):
        molecule('destroy')
        molecule('create')
        molecule('converge')
    results = {}
    try:
        for fault in faults:
            runs = []
            for number in range(1, args.runs + 1):
                started = time.monotonic()
                report = pg_faults.run_case(cases[fault], APP_PASSWORD, log=lambda _: None)
                report['run'] = number
                report['wall_s'] = round(time.monotonic() - started, 1)
                runs.append(report)
                print('%s run %d: first write after %s s, %s acknowledged, %s lost, longest gap %s s, '
                      'healthy %s s after the heal, leader %s -> %s' % (
                          fault, number, report['first_write_after_fault_s'], report.get('acknowledged'),
                          report.get('acknowledged_missing'), report.get('longest_gap_s'),
                          report['healthy_after_heal_s'], report['leader_before'], report['leader_after']))
            results[fault] = {
                'description': cases[fault].description,
                'first_write_s': summary([r['first_write_after_fault_s'] for r in runs]),
                'longest_gap_s': summary([r.get('longest_gap_s') for r in runs]),
                'healthy_after_heal_s': summary([r['healthy_after_heal_s'] for r in runs]),
                'acknowledged': sum(r.get('acknowledged', 0) for r in runs),
                'acknowledged_lost': sum(r.get('acknowledged_missing', 0) for r in runs),
                'unacknowledged_present': sum(r.get('unacknowledged_present', 0) for r in runs),
                'runs': runs,
            }
    finally:
        if not args.keep:
            molecule('destroy')

    previous = {}
    if os.path.exists(RESULT):
        with open(RESULT, encoding='utf-8') as handle:
            previous = json.load(handle).get('faults', {})
    previous.update(results)
    os.makedirs(os.path.dirname(RESULT), exist_ok=True)
    with open(RESULT, 'w', encoding='utf-8') as handle:
        json.dump({'benchmark': 'postgresql_failover', 'date': datetime.datetime.now(datetime.timezone.utc).isoformat(),
                   'settings': SETTINGS, 'target_first_write_s': TARGET_S, 'faults': previous}, handle, indent=2)
    print('wrote %s' % os.path.relpath(RESULT, ROOT))
    write_doc(previous)
    lost = sum(r['acknowledged_lost'] for r in results.values())
    return 1 if lost else 0


if __name__ == '__main__':
    sys.exit(main())
