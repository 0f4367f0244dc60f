"""Benchmark: rollback time and failed requests during every switch, on the lab.

Under steady labelled load through both load balancers (loopback ports of the
lab), runs ROUNDS of:

    canary -> rollback.yml                      (rollback during a canary)
    canary -> extended -> full -> rollback.yml  (rollback after promotion)

and records, for every playbook run, its wall time and the requests that
failed while it ran. Writes benchmarks/results/rollout_switches.json and the
table in docs/benchmarks.md (between the markers).

    scripts/setup && python benchmarks/rollout_switches.py [--rounds 3]

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

from labtools import CLIENT, RESULTS, TARGETS, fresh_lab, playbook, write_section

import trafficgen  # noqa: E402  (on the path set by labtools)

# Short holds on health checks alone: this measures the switches, not the gates.
HOLD = ['-e', 'canary_duration=2', '-e', 'extended_duration=2', '-e', 'full_duration=2',
        '-e', 'rollout_gate_interval=1', '-e', '{"rollout_metric_checks": []}']
BEGIN, END = '<!-- rollout_switches:begin -->', '<!-- rollout_switches:end -->'


def switch(label, name, *extra):
    """Run one playbook under steady load; return its record."""
    runner = trafficgen.LoadRunner(TARGETS, duration=1800, users=2000, concurrency=4, **CLIENT).start()
    time.sleep(1.0)
    try:
        elapsed, _output = playbook(name, *extra)
    finally:
        time.sleep(1.0)
        report = runner.stop()
    record = {'switch': label, 'playbook': name, 'wall_s': round(elapsed, 2),
              'requests': report['total_requests'], 'failed': report['failed_requests'],
              'errors': report['errors']}
    print('%-28s %7.2f s  %6d requests  %d failed' % (label, elapsed, record['requests'], record['failed']))
    return record


def summarize(records):
    rollbacks = [r['wall_s'] for r in records if r['playbook'] == 'rollback.yml']
    return {
        'rollback_runs': len(rollbacks),
        'rollback_wall_s': {'min': min(rollbacks), 'median': statistics.median(rollbacks), 'max': max(rollbacks)},
        'switches': len(records),
        'requests': sum(r['requests'] for r in records),
        'failed_requests': sum(r['failed'] for r in records),
    }


def write_doc(result):
    s = result['summary']
    lines = ['Measured %s on %s (%d cores), lab of 2 load balancers and 2 application hosts, '
             '%d rounds, steady load of 4 concurrent clients (2000 users) through both balancers.' % (
                 result['date'], result['machine'], os.cpu_count() or 0, result['rounds']),
             '',
             '| | result | target |',
             '|---|---|---|',
             '| `rollback.yml` wall time (min / median / max over %d runs) | %.1f / %.1f / %.1f s | < 10 s |' % (
                 s['rollback_runs'], s['rollback_wall_s']['min'], s['rollback_wall_s']['median'],
                 s['rollback_wall_s']['max']),
             '| failed requests during switches (%d switches, %d requests) | %d | 0 |' % (
                 s['switches'], s['requests'], s['failed_requests']),
             '',
             '| round | switch | wall time (s) | requests | failed |',
             '|---|---|---|---|---|']
    for r in result['records']:
        lines.append('| %d | %s | %.2f | %d | %d |' % (r['round'], r['switch'], r['wall_s'], r['requests'], r['failed']))
    write_section(BEGIN, END, lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--rounds', type=int, default=3)
    parser.add_argument('--no-setup', action='store_true', help='use the lab as it is (provisioned, 1.0.0 stable)')
    args = parser.parse_args()
    if not args.no_setup:
        fresh_lab('2.0.0')
    records = []
    for index in range(1, args.rounds + 1):
        for label, name in (('canary 0->5 %', 'canary.yml'), ('rollback from canary', 'rollback.yml'),
                            ('canary 0->5 %', 'canary.yml'), ('extended 5->25 %', 'extended.yml'),
                            ('full 25->100 % + promote', 'full.yml'), ('rollback after full', 'rollback.yml')):
            extra = [] if name == 'rollback.yml' else ['-e', 'release_version=2.0.0'] + HOLD
            record = switch(label, name, *extra)
            record['round'] = index
            records.append(record)
    result = {'date': datetime.date.today().isoformat(), 'machine': os.uname().nodename, 'rounds': args.rounds,
              'records': records}
    result['summary'] = summarize(records)
    os.makedirs(RESULTS, exist_ok=True)
    with open(os.path.join(RESULTS, 'rollout_switches.json'), 'w') as handle:
        json.dump(result, handle, indent=2)
    write_doc(result)
    print(json.dumps(result['summary'], indent=2))
    ok = result['summary']['failed_requests'] == 0 and result['summary']['rollback_wall_s']['max'] < 10
    return 0 if ok else 1


if __name__ == '__main__':
    sys.exit(main())
