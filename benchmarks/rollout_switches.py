"""Benchmark: rollback time and failed requests during every switch, on the lab.

Under steady labelled load through both load balancers (loopback ports of the
lab), runs ROUNDS of:

    canary -> rollback.yml                      (rollback during a canary)
    canary -> extended -> full -> rollback.yml  (rollback after promotion)

and records, for every playbook run, its wall time and the requests that
failed while it ran. Then, in the same run, the cost of starting a canary
with the app role before and after its round-trip cut (--app-before, a git
revision): ROUNDS times, a canary of a new release with each role (the order
alternating), each followed by rollback.yml; the canary's time beyond its
hold. Writes benchmarks/results/rollout_switches.json and the tables in
docs/benchmarks.md (between the markers).

    scripts/setup && python benchmarks/rollout_switches.py [--rounds 3] [-- scripts/lab up options]

It brings up a fresh lab (scripts/lab down/up, over SSH; its options or LAB_*
variables choose its prefix, network and ports) and provisions it. Traffic
goes only to 127.0.0.1 (the lab's published ports); every loop is bounded.
"""
import argparse
import datetime
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

from labtools import CLIENT, RESULTS, ROOT, build_wheels, fresh_lab, lb_targets, machine, playbook, write_section

import trafficgen  # noqa: E402  (on the path set by labtools)

# Short holds on health checks alone: this measures the switches, not the gates.
HOLD = ['-e', 'canary_duration=2', '-e', 'extended_duration=2', '-e', 'full_duration=2',
        '-e', 'rollout_gate_interval=1', '-e', '{"rollout_metric_checks": []}']
BEGIN, END = '<!-- rollout_switches:begin -->', '<!-- rollout_switches:end -->'
APP_BEGIN, APP_END = '<!-- canary_start:begin -->', '<!-- canary_start:end -->'
# The last revision with the app role before its round-trip cut (issue 11, item 5).
APP_BEFORE = 'fb08997'
CANARY_HOLD = 2


def collection_with_app_role(revision, where):
    """A collection tree at ``where``: this working tree, but roles/app as it was at ``revision``."""
    platform = os.path.join(where, 'ansible_collections', 'supersmartmatch', 'platform')
    os.makedirs(os.path.join(platform, 'roles'))
    for entry in os.listdir(ROOT):
        if entry not in ('roles', '.collections', '.git'):
            os.symlink(os.path.join(ROOT, entry), os.path.join(platform, entry))
    for role in os.listdir(os.path.join(ROOT, 'roles')):
        if role != 'app':
            os.symlink(os.path.join(ROOT, 'roles', role), os.path.join(platform, 'roles', role))
    archive = subprocess.run(['git', 'archive', revision, 'roles/app'], cwd=ROOT, capture_output=True, check=True)
    subprocess.run(['tar', '-x', '-C', platform], input=archive.stdout, check=True)
    return where


def canary_start(rounds, before_revision):
    """Canaries of fresh releases with the app role before and after; their time beyond the hold."""
    records = []
    with tempfile.TemporaryDirectory(prefix='ssm-app-before-') as tmp:
        before = {'ANSIBLE_COLLECTIONS_PATH': collection_with_app_role(before_revision, tmp)}
        for index in range(1, rounds + 1):
            roles = [('before', before), ('after', None)]
            for role, env in (roles if index % 2 else roles[::-1]):
                version = '2.%d.%d' % (1 if role == 'before' else 2, index)
                build_wheels(version)
                record = switch('canary 0->5 %% (%s) %s' % (role, version), 'canary.yml',
                                '-e', 'release_version=%s' % version, *HOLD, env=env)
                record.update(round=index, role=role, beyond_hold_s=round(record['wall_s'] - CANARY_HOLD, 2))
                records.append(record)
                rollback = switch('rollback from canary', 'rollback.yml')
                rollback.update(round=index, role=role)
                records.append(rollback)
    return records


def switch(label, name, *extra, env=None):
    """Run one playbook under steady load through every balancer; return its record."""
    runner = trafficgen.LoadRunner(lb_targets(), duration=1800, users=2000, concurrency=4, **CLIENT).start()
    time.sleep(1.0)
    try:
        elapsed, _output = playbook(name, *extra, env=env)
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
    if not result['records']:
        return write_canary_start(result)
    lines = ['Measured %s on %s, lab of %d load balancers and %d application hosts reached over SSH, '
             '%d rounds, steady load of 4 concurrent clients (2000 users) through every balancer.' % (
                 result['date'], result['machine'], result['lbs'], result['apps'], result['rounds']),
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
    return write_canary_start(result)


def write_canary_start(result):
    if not result['canary_start']:
        return None
    c = result['canary_start_summary']
    lines = ['Measured %s on %s, lab of 2 balancers and 2 application hosts over SSH: %d round(s) of canaries of a new release '
             '(a fresh virtualenv on both application hosts, %d s hold, health-only gates) with the app role '
             'as it was at `%s` (before) and as it is now (after), the order alternating, each followed by '
             '`rollback.yml`. Time beyond the hold = wall time - hold; it includes starting ansible-playbook.' % (
                 result['date'], result['machine'], result['rounds'], CANARY_HOLD, result['app_before']),
             '',
             '| app role | canary beyond the hold, min / median / max | target |',
             '|---|---|---|',
             '| before | %.1f / %.1f / %.1f s | |' % tuple(c['before'][k] for k in ('min', 'median', 'max')),
             '| after | %.1f / %.1f / %.1f s | <= 30 s |' % tuple(c['after'][k] for k in ('min', 'median', 'max')),
             '| after / before (medians) | %.2f | |' % c['ratio'],
             '',
             '| round | app role | release | canary wall time (s) | beyond the hold (s) | requests | failed |',
             '|---|---|---|---|---|---|---|']
    for r in result['canary_start']:
        if r['playbook'] == 'canary.yml':
            lines.append('| %d | %s | %s | %.2f | %.2f | %d | %d |' % (
                r['round'], r['role'], r['switch'].split()[-1], r['wall_s'], r['beyond_hold_s'], r['requests'],
                r['failed']))
    write_section(APP_BEGIN, APP_END, lines)
    return None


def summarize_canary_start(records):
    spans = {}
    for role in ('before', 'after'):
        values = [r['beyond_hold_s'] for r in records if r['playbook'] == 'canary.yml' and r['role'] == role]
        spans[role] = {'min': min(values), 'median': statistics.median(values), 'max': max(values)}
    spans['ratio'] = round(spans['after']['median'] / spans['before']['median'], 3)
    return spans


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--rounds', type=int, default=3)
    parser.add_argument('--app-before', default=APP_BEFORE,
                        help='git revision of the app role to compare with (default %(default)s); "" to skip')
    parser.add_argument('--no-setup', action='store_true', help='use the lab as it is (provisioned, 1.0.0 stable)')
    parser.add_argument('--canary-start-only', action='store_true',
                        help='only the before/after canaries (the switches section of the doc is left as it is)')
    parser.add_argument('lab_args', nargs='*', help='options of scripts/lab up (after --)')
    args = parser.parse_args()
    if not args.no_setup:
        fresh_lab('2.0.0', lab_args=args.lab_args)
    records = []
    for index in range(1, 0 if args.canary_start_only else args.rounds + 1):
        for label, name in (('canary 0->5 %', 'canary.yml'), ('rollback from canary', 'rollback.yml'),
                            ('canary 0->5 %', 'canary.yml'), ('extended 5->25 %', 'extended.yml'),
                            ('full 25->100 % + promote', 'full.yml'), ('rollback after full', 'rollback.yml')):
            extra = [] if name == 'rollback.yml' else ['-e', 'release_version=2.0.0'] + HOLD
            record = switch(label, name, *extra)
            record['round'] = index
            records.append(record)
    canary_records = canary_start(args.rounds, args.app_before) if args.app_before else []
    lab = __import__('labtools').topology()
    result = {'date': datetime.date.today().isoformat(), 'machine': machine(), 'rounds': args.rounds,
              'lbs': len(lb_targets(lab)), 'apps': sum('app' in h['groups'] for h in lab['hosts']),
              'records': records, 'canary_start': canary_records, 'app_before': args.app_before}
    result['summary'] = summarize(records + canary_records)
    if not records:
        result['summary']['rollback_note'] = 'rollbacks after the before/after canaries only'

    if canary_records:
        result['canary_start_summary'] = summarize_canary_start(canary_records)
    os.makedirs(RESULTS, exist_ok=True)
    with open(os.path.join(RESULTS, 'rollout_switches.json'), 'w') as handle:
        json.dump(result, handle, indent=2)
    write_doc(result)
    print(json.dumps({k: v for k, v in result.items() if k.endswith('summary')}, indent=2))
    ok = result['summary']['failed_requests'] == 0 and result['summary']['rollback_wall_s']['max'] < 10
    if canary_records:
        ok = ok and result['canary_start_summary']['after']['median'] <= 30
    return 0 if ok else 1


if __name__ == '__main__':
    sys.exit(main())
