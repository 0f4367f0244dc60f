"""Benchmark: how a phase and rollback.yml grow with the number of load balancers, over SSH.

For each fleet size (2, 4, 8, 16 NGINX load balancers, 2 application hosts, no data tier, no
monitoring: health-only gates), a fresh lab of its own (scripts/lab up --lbs N ...; container prefix
ssmf-, network ssmf-lab 172.30.98.0/24, HTTPS ports from 24443), provisioned with 1.0.0, then under steady labelled
load through every balancer's published port (loopback only):

    canary -> extended -> full -> rollback.yml -> canary -> rollback.yml

with forks >= the fleet size. Measured: rollback.yml wall time, each phase's time beyond its hold,
failed requests. Targets (issue 11): rollback.yml <= 3 s with 2 balancers and <= 4 s with 16; extended
and full <= 15 s beyond the hold at 16 balancers; 0 failed requests. Writes
benchmarks/results/fleet_scale.json and a section of docs/benchmarks.md; removes its lab at the end.

    python benchmarks/fleet_scale.py [--sizes 2 4 8 16] [--hold 10]
"""
import argparse
import datetime
import json
import os
import statistics
import sys
import time

from labtools import CLIENT, RESULTS, VENV, container, fresh_lab, lb_targets, machine, playbook, run, write_section

import trafficgen  # noqa: E402  (on the path set by labtools)

BEGIN, END = '<!-- fleet_scale:begin -->', '<!-- fleet_scale:end -->'
LAB = ['--apps', '2', '--no-data', '--no-monitoring', '--prefix', 'ssmf-', '--network', 'ssmf-lab',
       '--subnet', '172.30.98.0/24', '--https-port', '24443', '--http-port', '24080', '--port-step', '1']
TARGET_ROLLBACK = {2: 3.0, 16: 4.0}
TARGET_PHASE = 15.0


def phase_args(hold, forks):
    return ['-f', str(forks), '-e', 'canary_duration=2', '-e', 'extended_duration=%d' % hold,
            '-e', 'full_duration=%d' % hold, '-e', 'rollout_gate_interval=1', '-e', '{"rollout_metric_checks": []}']


def one_size(lbs, hold):
    forks = max(lbs + 2, 10)
    timings = fresh_lab('2.0.0', lab_args=['--lbs', str(lbs)] + LAB, site_args=['-f', str(forks)])
    targets = lb_targets()
    assert len(targets) == lbs, targets
    records = []
    runner = trafficgen.LoadRunner(targets, duration=3600, users=2000, concurrency=4, **CLIENT).start()
    time.sleep(1.0)
    try:
        for step, name, held in (('canary', 'canary.yml', 2), ('extended', 'extended.yml', hold),
                                 ('full', 'full.yml', hold), ('rollback after full', 'rollback.yml', 0),
                                 ('canary', 'canary.yml', 2), ('rollback from canary', 'rollback.yml', 0)):
            before = runner.report()['failed_requests']
            extra = ['-f', str(forks)] if name == 'rollback.yml' else ['-e', 'release_version=2.0.0'] + phase_args(hold, forks)
            elapsed, _output = playbook(name, *extra)
            failed = runner.report()['failed_requests'] - before
            records.append({'step': step, 'playbook': name, 'wall_s': round(elapsed, 2),
                            'beyond_hold_s': round(elapsed - held, 2), 'failed': failed})
            print('%2d lbs  %-22s %7.2f s (%.2f beyond the hold)  %d failed' % (
                lbs, step, elapsed, elapsed - held, failed), flush=True)
    finally:
        time.sleep(1.0)
        report = runner.stop()
    rollbacks = [r['wall_s'] for r in records if r['playbook'] == 'rollback.yml']
    return {'lbs': lbs, 'frozen_host': frozen_host(), 'forks': forks, 'lab_up_s': round(timings['up'], 1), 'site_s': round(timings['site'], 1),
            'records': records, 'requests': report['total_requests'], 'failed_requests': report['failed_requests'],
            'errors': report['errors'], 'rollback_wall_s': {'min': min(rollbacks), 'max': max(rollbacks),
                                                            'median': statistics.median(rollbacks)},
            'beyond_hold_s': {step: max(r['beyond_hold_s'] for r in records if r['step'] == step)
                              for step in ('canary', 'extended', 'full')}}


def ping(host):
    """An ad-hoc ping of one lab host over SSH: (seconds, unreachable)."""
    started = time.monotonic()
    proc = run([os.path.join(VENV, 'bin', 'ansible'), host, '-m', 'ansible.builtin.ping'], timeout=300)
    return round(time.monotonic() - started, 2), 'UNREACHABLE' in proc.stdout + proc.stderr or proc.returncode == 4


def frozen_host():
    """How long until a frozen balancer (docker pause) is unreachable, next to a healthy ping."""
    healthy, _unreachable = ping('lb2')
    run(['docker', 'pause', container('lb2')], check=True)
    try:
        frozen, unreachable = ping('lb2')
    finally:
        run(['docker', 'unpause', container('lb2')], check=True)
    return {'healthy_ping_s': healthy, 'frozen_ping_s': frozen, 'unreachable': unreachable}


def verdicts(sizes):
    """Each target with its measured value and whether it is met."""
    found = []
    for lbs, limit in sorted(TARGET_ROLLBACK.items()):
        if lbs in sizes:
            worst = sizes[lbs]['rollback_wall_s']['max']
            found.append(('rollback.yml <= %.0f s with %d balancers' % (limit, lbs), '%.2f s' % worst, worst <= limit))
    biggest = max(sizes)
    for step in ('extended', 'full'):
        value = sizes[biggest]['beyond_hold_s'][step]
        found.append(('%s <= %.0f s beyond the hold with %d balancers' % (step, TARGET_PHASE, biggest),
                      '%.2f s' % value, value <= TARGET_PHASE))
    frozen = [s['frozen_host'] for s in sizes.values()]
    found.append(('a frozen balancer unreachable (ad-hoc ping)', 'max %.1f s' % max(f['frozen_ping_s'] for f in frozen),
                  all(f['unreachable'] for f in frozen)))
    failed = sum(s['failed_requests'] for s in sizes.values())
    found.append(('0 failed requests', '%d of %d' % (failed, sum(s['requests'] for s in sizes.values())), failed == 0))
    return found


def write_doc(result):
    sizes = {s['lbs']: s for s in result['sizes']}
    lines = ['Measured %s on %s. Per fleet size a fresh lab of its own over SSH (N NGINX balancers, 2 '
             'application hosts, no data tier, no monitoring: health-only gates), forks = max(N + 2, 10), steady '
             'load of 4 concurrent clients (2000 users) through every balancer; holds of %d s (extended, full) '
             'and 2 s (canary). "Beyond the hold" = wall time - hold, and includes starting ansible-playbook.' % (
                 result['date'], result['machine'], result['hold']),
             '',
             '| balancers | rollback.yml min / median / max (s) | canary beyond the hold (s) | extended beyond the hold (s) '
             '| full beyond the hold (s) | requests | failed | lab up (s) | site.yml (s) |',
             '|---|---|---|---|---|---|---|---|---|']
    for lbs in sorted(sizes):
        s = sizes[lbs]
        lines.append('| %d | %.2f / %.2f / %.2f | %.1f | %.1f | %.1f | %d | %d | %.0f | %.0f |' % (
            lbs, s['rollback_wall_s']['min'], s['rollback_wall_s']['median'], s['rollback_wall_s']['max'],
            s['beyond_hold_s']['canary'], s['beyond_hold_s']['extended'], s['beyond_hold_s']['full'],
            s['requests'], s['failed_requests'], s['lab_up_s'], s['site_s']))
    lines += ['', 'A frozen balancer (`docker pause`): an ad-hoc `ansible lb2 -m ping` over SSH reports it UNREACHABLE '
              'after %s s, against %s s for the same ping of the healthy balancer just before (same run; '
              'ConnectTimeout 5 s, ServerAliveInterval 2 s x 2).' % (
                  ' / '.join('%.1f' % sizes[n]['frozen_host']['frozen_ping_s'] for n in sorted(sizes)),
                  ' / '.join('%.1f' % sizes[n]['frozen_host']['healthy_ping_s'] for n in sorted(sizes))),
              '', '| target | measured (worst) | met |', '|---|---|---|']
    lines += ['| %s | %s | %s |' % (name, value, 'yes' if ok else '**no**') for name, value, ok in result['verdicts']]
    write_section(BEGIN, END, lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--sizes', type=int, nargs='+', default=[2, 4, 8, 16])
    parser.add_argument('--hold', type=int, default=10)
    parser.add_argument('--keep', action='store_true', help='leave the last lab up')
    parser.add_argument('--report-only', action='store_true',
                        help='write the doc from the sizes measured so far (benchmarks/results/fleet_scale.partial.json)')
    args = parser.parse_args()
    sizes = []
    os.makedirs(RESULTS, exist_ok=True)
    partial = os.path.join(RESULTS, 'fleet_scale.partial.json')
    if args.report_only:
        with open(partial) as handle:
            sizes = json.load(handle)
    try:
        for lbs in [] if args.report_only else args.sizes:
            sizes.append(one_size(lbs, args.hold))
            with open(partial, 'w') as handle:
                json.dump(sizes, handle, indent=2)
    finally:
        if not args.keep and not args.report_only:
            run(['scripts/lab', 'down'], timeout=1800)
    result = {'date': datetime.date.today().isoformat(), 'machine': machine(), 'hold': args.hold, 'sizes': sizes}
    result['verdicts'] = verdicts({s['lbs']: s for s in sizes})
    os.makedirs(RESULTS, exist_ok=True)
    with open(os.path.join(RESULTS, 'fleet_scale.json'), 'w') as handle:
        json.dump(result, handle, indent=2)
    write_doc(result)
    for name, value, ok in result['verdicts']:
        print('%-55s %-16s %s' % (name, value, 'met' if ok else 'MISSED'))
    return 0 if all(ok for _name, _value, ok in result['verdicts']) else 1


if __name__ == '__main__':
    sys.exit(main())
