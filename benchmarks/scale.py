"""Benchmark: adding and removing an application host under load (playbooks/scale.yml), on the lab.

The lab gets a spare container, app3, that the lab inventory does not name;
an extra inventory (.work/scale/inventory.yml) adds it to the app group. With
a canary in flight (5 % on the candidate, so a new host needs both slots),
under the lab's steady load through both balancers, it runs ROUNDS of:

    scale.yml                      add app3 (deploy both slots, health, resize every balancer)
    scale.yml -e scale_remove=app3 drain app3 out of every upstream, then stop its slots

Each run is timed end to end, with the requests that failed while it ran.
Around each run, a probe of 10 000 users checks that the candidate's share is
unchanged (within 1 pp) and that every user stays on the same side. Writes
benchmarks/results/scale.json and the table in docs/benchmarks.md (between
the markers); exits non-zero when a request failed or a user moved.

    scripts/setup && python benchmarks/scale.py [--rounds 2] [--no-setup]

It brings up a fresh lab with the spare host (scripts/lab down/up) and
provisions it, unless --no-setup (the lab as it is, provisioned with 1.0.0 as
stable; the spare container is started if missing). Traffic goes only to
127.0.0.1 (the lab's published ports); every loop is bounded.
"""
import argparse
import datetime
import json
import os
import statistics
import sys

import yaml

from labtools import CLIENT, RESULTS, ROOT, TARGETS, build_wheels, playbook, run, write_section

import lab_topology  # noqa: E402  (tools/, on the path set by labtools)
import trafficgen  # noqa: E402

BEGIN, END = '<!-- scale:begin -->', '<!-- scale:end -->'
SPARE = 'app3'
SPARE_ADDRESS = '172.30.90.23'  # in the lab's subnet, after app1 and app2
WORK = os.path.join(ROOT, '.work', 'scale')
TOPOLOGY = os.path.join(WORK, 'topology.yml')
INVENTORY = os.path.join(WORK, 'inventory.yml')
# both inventories: the lab's, and the one that puts the spare host in the app group
WITH_SPARE = ['-i', 'inventories/lab', '-i', INVENTORY]
HOLD = ['-e', 'canary_duration=2', '-e', 'rollout_gate_interval=1', '-e', '{"rollout_metric_checks": []}',
        '-e', 'skip_pre_checks=true']
# the lab has two app hosts: a fleet of 2 or 3 is within these bounds
BOUNDS = ['-e', 'scale_min_hosts=2', '-e', 'scale_max_hosts=3']


def write_lab_files():
    """The lab topology with the spare container, and the inventory that adds it to the app group."""
    os.makedirs(WORK, exist_ok=True)
    topology = lab_topology.lab_settings()['lab_topology']
    spare = {'name': SPARE, 'address': SPARE_ADDRESS, 'groups': ['supersmartmatch', 'app'], 'published': []}
    with open(TOPOLOGY, 'w') as handle:
        yaml.safe_dump({'lab_topology': topology + [spare]}, handle)
    # the lab's group variables (SSH as the deploy user, sudo) apply to the spare as to the others
    inventory = {'all': {'children': {'supersmartmatch': {
        'children': {'app': {'hosts': {SPARE: {'ansible_host': SPARE_ADDRESS}}}}}}}}
    with open(INVENTORY, 'w') as handle:
        yaml.safe_dump(inventory, handle)


def lab(*steps):
    for step in steps:
        proc = run(step, timeout=900)
        if proc.returncode != 0:
            raise SystemExit('%s failed:\n%s' % (' '.join(step), proc.stdout[-3000:] + proc.stderr[-3000:]))


def probe():
    return trafficgen.run_probe(TARGETS, users=10000, **CLIENT)


def share(report, version):
    return report['versions'].get(version, {}).get('share_pct', 0.0)


def timed(label, *extra):
    """One scale.yml run under the steady load, with the probes around it."""
    before = probe()
    runner = trafficgen.LoadRunner(TARGETS, duration=1800, users=2000, concurrency=4,
                                   rate=trafficgen.LAB_STEADY_RATE, **CLIENT).start()
    try:
        elapsed, _output = playbook('scale.yml', *(WITH_SPARE + BOUNDS + list(extra)))
    finally:
        report = runner.stop()
    after = probe()
    moved = sum(1 for user, version in before['user_versions'].items()
                if after['user_versions'].get(user) != version)
    record = {'step': label, 'wall_s': round(elapsed, 2), 'requests': report['total_requests'],
              'failed': report['failed_requests'], 'errors': report['errors'],
              'candidate_share_before': round(share(before, '2.0.0'), 2),
              'candidate_share_after': round(share(after, '2.0.0'), 2), 'users_moved': moved}
    print('%-8s %7.2f s  %6d requests  %d failed  share %.2f -> %.2f %%  %d users moved' % (
        label, elapsed, record['requests'], record['failed'], record['candidate_share_before'],
        record['candidate_share_after'], moved))
    return record


def write_doc(result):
    records = result['records']
    adds = [r['wall_s'] for r in records if r['step'] == 'add']
    removes = [r['wall_s'] for r in records if r['step'] == 'remove']
    lines = ['Measured %s on %s (%d cores): lab of 2 load balancers, 2 application hosts and a spare (%s), '
             'a canary at 5 %% in flight (a new host runs both slots), the steady load (%g cases/s) through '
             'both balancers, %d rounds.' % (result['date'], result['machine'], os.cpu_count() or 0, SPARE,
                                             trafficgen.LAB_STEADY_RATE, result['rounds']),
             '',
             '| step | wall time (min / median / max) | failed requests (target 0) | users who changed side |',
             '|---|---|---|---|',
             '| add one host (deploy 2 slots, health, every balancer resized) | %.1f / %.1f / %.1f s | %d of %d | %d |'
             % (min(adds), statistics.median(adds), max(adds),
                sum(r['failed'] for r in records if r['step'] == 'add'),
                sum(r['requests'] for r in records if r['step'] == 'add'),
                sum(r['users_moved'] for r in records if r['step'] == 'add')),
             '| remove one host (drain, stop) | %.1f / %.1f / %.1f s | %d of %d | %d |'
             % (min(removes), statistics.median(removes), max(removes),
                sum(r['failed'] for r in records if r['step'] == 'remove'),
                sum(r['requests'] for r in records if r['step'] == 'remove'),
                sum(r['users_moved'] for r in records if r['step'] == 'remove')),
             '',
             'Adding over removing, medians of the same run: %.1f x.' % (
                 statistics.median(adds) / statistics.median(removes)),
             '',
             '| round | step | wall time (s) | requests | failed | candidate share before / after |',
             '|---|---|---|---|---|---|']
    for r in records:
        lines.append('| %d | %s | %.2f | %d | %d | %.2f / %.2f %% |' % (
            r['round'], r['step'], r['wall_s'], r['requests'], r['failed'], r['candidate_share_before'],
            r['candidate_share_after']))
    write_section(BEGIN, END, lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--rounds', type=int, default=2)
    parser.add_argument('--no-setup', action='store_true', help='use the lab as it is (provisioned, 1.0.0 stable)')
    args = parser.parse_args()
    if args.rounds < 1:
        parser.error('--rounds must be >= 1')
    write_lab_files()
    up = ['scripts/lab', 'up', '-e', '@' + TOPOLOGY] + WITH_SPARE
    if args.no_setup:
        lab(up)
        build_wheels('1.0.0', '2.0.0')
    else:
        lab(['scripts/lab', 'down'], up)
        build_wheels('1.0.0', '2.0.0')
        playbook('site.yml', '-e', 'ssm_initial_version=1.0.0')
    # the spare out of the upstreams (a run cut short may have left it in), then a canary in
    # flight: the new host needs the stable and the candidate slot
    playbook('scale.yml', *(WITH_SPARE + BOUNDS + ['-e', 'scale_remove=%s' % SPARE]))
    playbook('canary.yml', '-e', 'release_version=2.0.0', *HOLD)
    records = []
    try:
        for index in range(1, args.rounds + 1):
            for label, extra in (('add', []), ('remove', ['-e', 'scale_remove=%s' % SPARE])):
                record = timed(label, *extra)
                record['round'] = index
                records.append(record)
    finally:
        playbook('rollback.yml', expect_rc=None)
    result = {'date': datetime.date.today().isoformat(), 'machine': os.uname().nodename, 'rounds': args.rounds,
              'records': records}
    os.makedirs(RESULTS, exist_ok=True)
    with open(os.path.join(RESULTS, 'scale.json'), 'w') as handle:
        json.dump(result, handle, indent=2)
    write_doc(result)
    bad = [r for r in records if r['failed'] or r['users_moved']
           or abs(r['candidate_share_after'] - r['candidate_share_before']) > 1]
    return 1 if bad else 0


if __name__ == '__main__':
    sys.exit(main())
