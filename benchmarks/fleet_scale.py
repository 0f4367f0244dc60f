"""Benchmark: how a phase and rollback.yml grow with the number of load balancers, over SSH.

For each fleet size N (--sizes, default 2,4,8,16, increasing), a fresh lab of
N load balancers (NGINX-only containers), 2 application hosts and mon1, with
no data tier (``scripts/lab down``, ``scripts/lab up --lbs N --apps 2 --no-data``),
reached over SSH as the deploy user with sudo, pipelining and ControlPersist,
as production hosts are, and provisioned by site.yml. (A lab grown in place
would not do: a balancer that site.yml adds to a fleet that has run a release
starts from the bootstrap state, and the next phase refuses a fleet that
disagrees.) Then, under the lab's steady load spread over all N balancers,
ROUNDS of:

    canary.yml -> extended.yml -> full.yml (promote) -> rollback.yml

each timed end to end (process start to exit) with the requests that failed
while it ran. Holds are 2 s on health checks alone, so a phase's wall time
beyond its hold is Ansible's own work. Every run uses release 2.0.0 (after a
rollback it is still installed on its slot: the canary's deployment is quick
and is not what this measures).

Issue 11's targets: rollback.yml <= 3 s with 2 balancers and <= 4 s with 16
(flat in the fleet size); extended/full overhead <= 15 s at 16; 0 failed
requests. Writes benchmarks/results/fleet_scale.json and the tables in
docs/benchmarks.md (between the markers); exits non-zero when a target is missed.

    scripts/setup && python benchmarks/fleet_scale.py [--sizes 2,4,8,16] [--rounds 2]

The lab of the largest size is left up (scripts/lab down removes it). Traffic
goes only to 127.0.0.1 (the lab's published ports); every loop is bounded.
"""
import argparse
import datetime
import json
import os
import statistics
import sys
import time

from labtools import CLIENT, RESULTS, ROOT, build_wheels, playbook, run, write_section

import lab_topology  # noqa: E402  (tools/, on the path set by labtools)
import trafficgen  # noqa: E402

BEGIN, END = '<!-- fleet_scale:begin -->', '<!-- fleet_scale:end -->'
INVENTORY = ['-i', os.path.relpath(lab_topology.INVENTORY, ROOT)]
HOLD_S = 2
HOLD = ['-e', 'canary_duration=%d' % HOLD_S, '-e', 'extended_duration=%d' % HOLD_S, '-e', 'full_duration=%d' % HOLD_S,
        '-e', 'rollout_gate_interval=1', '-e', '{"rollout_metric_checks": []}', '-e', 'skip_pre_checks=true',
        '-e', 'release_version=2.0.0']
SEQUENCE = ('canary.yml', 'extended.yml', 'full.yml', 'rollback.yml')
# issue 11: rollback.yml wall time at 2 and at 16 balancers; phase overhead beyond the hold
ROLLBACK_TARGET_S = {2: 3.0, 16: 4.0}
PHASE_TARGET_S = 15.0


def fresh_lab(size):
    for step in (['scripts/lab', 'down'], ['scripts/lab', 'up', '--lbs', str(size), '--apps', '2', '--no-data']):
        proc = run(step, timeout=1800)
        if proc.returncode != 0:
            raise SystemExit('%s failed:\n%s' % (' '.join(step), proc.stdout[-3000:] + proc.stderr[-3000:]))


def targets(size):
    return ['https://127.0.0.1:%d' % lab_topology.https_port(index) for index in range(1, size + 1)]


def timed(size, name):
    """One playbook run under the steady load through all ``size`` balancers; its record."""
    runner = trafficgen.LoadRunner(targets(size), duration=1800, users=2000, concurrency=4,
                                   rate=trafficgen.LAB_STEADY_RATE, **CLIENT).start()
    time.sleep(1.0)
    try:
        elapsed, _output = playbook(name, *(INVENTORY + ([] if name == 'rollback.yml' else HOLD)))
    finally:
        time.sleep(1.0)
        report = runner.stop()
    hold = 0 if name == 'rollback.yml' else HOLD_S
    record = {'lbs': size, 'playbook': name, 'wall_s': round(elapsed, 2), 'overhead_s': round(elapsed - hold, 2),
              'requests': report['total_requests'], 'failed': report['failed_requests'], 'errors': report['errors']}
    print('%2d lbs  %-13s %7.2f s  %6d requests  %d failed' % (size, name, elapsed, record['requests'],
                                                               record['failed']))
    return record


def summarize(records, sizes):
    summary = {}
    for size in sizes:
        mine = [r for r in records if r['lbs'] == size]
        entry = {'failed': sum(r['failed'] for r in mine), 'requests': sum(r['requests'] for r in mine)}
        for name in SEQUENCE:
            values = [r['overhead_s'] for r in mine if r['playbook'] == name]
            entry[name] = {'min': min(values), 'median': statistics.median(values), 'max': max(values)}
        summary[size] = entry
    return summary


def misses(summary):
    """The targets missed, in words (empty: all met)."""
    missed = []
    for size, limit in ROLLBACK_TARGET_S.items():
        if size in summary and summary[size]['rollback.yml']['median'] > limit:
            missed.append('rollback.yml with %d balancers: %.1f s > %.0f s' % (
                size, summary[size]['rollback.yml']['median'], limit))
    largest = max(summary)
    for name in ('extended.yml', 'full.yml'):
        if summary[largest][name]['median'] > PHASE_TARGET_S:
            missed.append('%s overhead with %d balancers: %.1f s > %.0f s' % (
                name, largest, summary[largest][name]['median'], PHASE_TARGET_S))
    failed = sum(entry['failed'] for entry in summary.values())
    if failed:
        missed.append('%d failed request(s)' % failed)
    return missed


def write_doc(result):
    summary, sizes = result['summary'], result['sizes']
    lines = ['Measured %s on %s (%d cores, %s): the lab over SSH (deploy user, sudo, pipelining, ControlPersist), '
             '2 application hosts, mon1, no data tier; %d round(s) per size of canary -> extended -> full -> '
             'rollback.yml, holds %d s on health checks alone, release 2.0.0 already on its slot; the steady load '
             '(%g cases/s) spread over every balancer; forks %s.' % (
                 result['date'], result['machine'], os.cpu_count() or 0, result['memory'], result['rounds'], HOLD_S,
                 trafficgen.LAB_STEADY_RATE, result['forks']),
             '',
             '| balancers | rollback.yml wall time | extended.yml beyond its hold | full.yml beyond its hold | '
             'canary.yml beyond its hold | failed requests |',
             '|---|---|---|---|---|---|']
    for size in sizes:
        entry = summary[size]
        cells = ['%.1f / %.1f / %.1f s' % (entry[n]['min'], entry[n]['median'], entry[n]['max'])
                 for n in ('rollback.yml', 'extended.yml', 'full.yml', 'canary.yml')]
        lines.append('| %d | %s | %d of %d |' % (size, ' | '.join(cells), entry['failed'], entry['requests']))
    first, last = sizes[0], sizes[-1]
    lines += ['',
              '(min / median / max.) From %d to %d balancers, medians of the same run: rollback.yml %.2f x, '
              'extended.yml %.2f x, full.yml %.2f x.' % (
                  first, last,
                  summary[last]['rollback.yml']['median'] / summary[first]['rollback.yml']['median'],
                  summary[last]['extended.yml']['median'] / summary[first]['extended.yml']['median'],
                  summary[last]['full.yml']['median'] / summary[first]['full.yml']['median']),
              '',
              'Targets (issue 11): rollback.yml <= 3 s with 2 balancers and <= 4 s with 16; extended and full '
              '<= 15 s beyond the hold at 16; 0 failed requests. %s' % (
                  'All met.' if not result['missed'] else 'Missed: %s.' % '; '.join(result['missed']))]
    write_section(BEGIN, END, lines)


def memory():
    with open('/proc/meminfo') as handle:
        kib = int(handle.readline().split()[1])
    return '%d GiB' % round(kib / 1024 / 1024)


def forks():
    proc = run([os.path.join(os.environ.get('VENV', os.path.join(ROOT, '.venv')), 'bin', 'ansible-config'), 'dump',
                '--only-changed'])
    found = [line.split('=', 1)[1].strip() for line in proc.stdout.splitlines() if line.startswith('DEFAULT_FORKS(')]
    return found[0] if found else '5 (Ansible default)'


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--sizes', default='2,4,8,16', help='fleet sizes, increasing (default 2,4,8,16)')
    parser.add_argument('--rounds', type=int, default=2)
    args = parser.parse_args()
    try:
        sizes = [int(part) for part in args.sizes.split(',')]
    except ValueError:
        parser.error('--sizes takes increasing numbers separated by commas, got %r' % args.sizes)
    if (not sizes or sizes != sorted(set(sizes)) or sizes[0] < 1 or sizes[-1] > lab_topology.MAX_LBS
            or args.rounds < 1):
        parser.error('--sizes takes increasing numbers from 1 to %d (got %r); --rounds must be >= 1' % (
            lab_topology.MAX_LBS, args.sizes))
    build_wheels('1.0.0', '2.0.0')
    records = []
    for size in sizes:
        fresh_lab(size)
        playbook('site.yml', *(INVENTORY + ['-e', 'ssm_initial_version=1.0.0']))
        for index in range(1, args.rounds + 1):
            for name in SEQUENCE:
                record = timed(size, name)
                record['round'] = index
                records.append(record)
    result = {'date': datetime.date.today().isoformat(), 'machine': os.uname().nodename, 'memory': memory(),
              'forks': forks(), 'sizes': sizes, 'rounds': args.rounds, 'records': records}
    result['summary'] = summarize(records, sizes)
    result['missed'] = misses(result['summary'])
    os.makedirs(RESULTS, exist_ok=True)
    with open(os.path.join(RESULTS, 'fleet_scale.json'), 'w') as handle:
        json.dump(result, handle, indent=2)
    write_doc(result)
    print(json.dumps({'summary': result['summary'], 'missed': result['missed']}, indent=2))
    return 1 if result['missed'] else 0


if __name__ == '__main__':
    sys.exit(main())
