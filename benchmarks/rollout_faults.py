"""Benchmark: how fast the rollout engine reacts to the faults on-call meets, on the lab.

Under steady labelled load (loopback ports of the lab), ROUNDS times each:

* **abort**: a canary holds (long hold, gates every INTERVAL s); on-call runs
  rollback.yml. Measured: from rollback.yml starting to the hold ending
  ``aborted`` (its gate task returns; target: one gate interval + 5 s), to the
  phase playbook's exit (verdict, report, lease), and rollback.yml's own wall
  time. Failed requests through both balancers.
* **frozen**: a canary at 5 %, lb2 frozen (``docker pause``), rollback.yml.
  Measured: from rollback.yml starting to lb1 serving 0 % (target 10 s, read
  from lb1's state every 0.2 s), rollback.yml's wall time and exit code (must
  be non-zero, naming lb2). Failed requests through lb1 (the reachable one).
  Then lb2 is resumed and rollback.yml repairs it.

Writes benchmarks/results/rollout_faults.json and a section of
docs/benchmarks.md. Brings up a fresh lab (scripts/lab down/up).

    scripts/setup && python benchmarks/rollout_faults.py [--rounds 3] [--interval 5]

With --molecule DIR it runs instead on the converged `rollout` Molecule scenario
whose ephemeral directory is DIR (containers lb1, lb2, ports 18443/19443).
"""
import argparse
import datetime
import json
import os
import statistics
import subprocess
import threading
import time

from labtools import CLIENT, RESULTS, ROOT, TARGETS, VENV, fresh_lab, playbook, write_section

import trafficgen  # noqa: E402  (on the path set by labtools)
from labwait import READ_ERRORS, poll, wait_for  # noqa: E402  (on the path set by labtools)

BEGIN, END = '<!-- rollout_faults:begin -->', '<!-- rollout_faults:end -->'
STATE = '/var/lib/supersmartmatch/traffic/supersmartmatch.json'
LAB = {'prefix': 'ssm-', 'targets': TARGETS, 'client': CLIENT, 'inventory': None, 'where': 'the lab'}


def use_molecule(ephemeral):
    """Point the benchmark at the converged rollout scenario instead of the lab."""
    LAB.update(prefix='', targets=['https://127.0.0.1:18443', 'https://127.0.0.1:19443'],
               client=dict(CLIENT, cacert=os.path.join(ephemeral, 'work', 'pki', 'ca.crt')),
               inventory=os.path.join(ephemeral, 'inventory', 'ansible_inventory.yml'),
               where='the converged `rollout` Molecule scenario')


def inventory_args():
    return ['-i', LAB['inventory']] if LAB['inventory'] else []


def lb_state(lb):
    proc = subprocess.run(['docker', 'exec', LAB['prefix'] + lb, 'cat', STATE], capture_output=True, text=True,
                          check=True)
    return json.loads(proc.stdout)


def at_five(version, lbs=('lb1', 'lb2')):
    return lambda: all(lb_state(lb)['percent'] == 5 and lb_state(lb)['candidate']['version'] == version for lb in lbs)


def start_phase(name, version, hold, interval):
    extra = ['-e', 'release_version=%s' % version, '-e', '%s_duration=%d' % (name.split('.')[0], hold),
             '-e', 'rollout_gate_interval=%d' % interval, '-e', 'rollout_gate_warmup=%d' % interval]
    cmd = [os.path.join(VENV, 'bin', 'ansible-playbook')] + inventory_args() + ['playbooks/%s' % name] + extra
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, 'ansible.cfg'))
    return subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


class Load(object):
    def __init__(self, targets):
        self.runner = trafficgen.LoadRunner(targets, duration=1800, users=2000, concurrency=4, **LAB['client'])

    def __enter__(self):
        self.runner.start()
        time.sleep(1.0)
        return self

    def __exit__(self, *exc):
        time.sleep(1.0)
        self.report = self.runner.stop()


class Lines(object):
    """Reads a playbook's output as it comes, noting when each line arrived."""

    def __init__(self, proc):
        self.proc, self.lines = proc, []
        self.thread = threading.Thread(target=self._read)
        self.thread.start()

    def _read(self):
        for line in self.proc.stdout:
            self.lines.append((time.monotonic(), line))

    def first(self, text, after):
        return next((at for at, line in self.lines if at >= after and text in line), None)

    def wait(self, timeout):
        self.proc.wait(timeout=timeout)
        self.thread.join()
        return ''.join(line for _at, line in self.lines)


# The gate task returns (verdict aborted) and the hold is judged on the next task.
HOLD_ENDED = 'Hold | Judge the hold'


def abort_round(version, interval):
    with Load(LAB['targets']) as load:
        proc = start_phase('canary.yml', version, 600, interval)
        lines = Lines(proc)
        wait_for(at_five(version), 600, 'the canary of %s at 5 %%' % version, delay=0.2, ignore=READ_ERRORS,
                 error=SystemExit)
        time.sleep(interval + 1)   # the gate is between two rounds
        started = time.monotonic()
        rollback_s, _out = playbook('rollback.yml', *inventory_args())
        out = lines.wait(300)
        exit_s = time.monotonic() - started
    hold_ended = lines.first(HOLD_ENDED, started)
    if proc.returncode == 0 or 'ABORTED' not in out or hold_ended is None:
        raise SystemExit('the canary did not end aborted:\n%s' % out[-4000:])
    record = {'fault': 'rollback.yml during a hold', 'interval_s': interval, 'rollback_s': round(rollback_s, 2),
              'to_hold_aborted_s': round(hold_ended - started, 2), 'to_exit_s': round(exit_s, 2),
              'requests': load.report['total_requests'], 'failed': load.report['failed_requests']}
    print('abort: rollback.yml %.2f s, the hold ended aborted %.2f s and the playbook exited %.2f s after it started, '
          '%d/%d failed' % (rollback_s, record['to_hold_aborted_s'], exit_s, record['failed'], record['requests']))
    return record


def frozen_round(version, interval):
    proc = start_phase('canary.yml', version, 600, interval)
    wait_for(at_five(version), 600, 'the canary of %s at 5 %%' % version, delay=0.2, ignore=READ_ERRORS,
             error=SystemExit)
    subprocess.run(['docker', 'pause', LAB['prefix'] + 'lb2'], check=True)
    try:
        with Load(LAB['targets'][:1]) as load:
            seen = {}

            def watch():
                if poll(lambda: lb_state('lb1')['percent'] == 0, 120, delay=0.2,
                        ignore=(subprocess.CalledProcessError, ValueError)).value:
                    seen['lb1_zero_s'] = time.monotonic() - seen['started']
            seen['started'] = time.monotonic()
            watcher = threading.Thread(target=watch)
            watcher.start()
            rollback_s, out = playbook('rollback.yml', *inventory_args(), expect_rc=2)
            watcher.join()
    finally:
        subprocess.run(['docker', 'unpause', LAB['prefix'] + 'lb2'], check=True)
    named = 'split UNKNOWN on lb2' in out
    proc.communicate(timeout=600)
    playbook('rollback.yml', *inventory_args())   # repairs lb2 and gives the lease back
    record = {'fault': 'rollback.yml with lb2 frozen', 'rollback_s': round(rollback_s, 2),
              'lb1_at_zero_s': round(seen.get('lb1_zero_s', -1), 2), 'lb2_named': named,
              'requests': load.report['total_requests'], 'failed': load.report['failed_requests']}
    print('frozen: rollback.yml %.2f s, lb1 at 0 %% after %.2f s, lb2 named: %s, %d/%d failed'
          % (rollback_s, record['lb1_at_zero_s'], named, record['failed'], record['requests']))
    return record


def spread(values):
    return '%.1f / %.1f / %.1f' % (min(values), statistics.median(values), max(values))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n', maxsplit=1)[0])
    parser.add_argument('--rounds', type=int, default=3)
    parser.add_argument('--interval', type=int, default=5)
    parser.add_argument('--no-fresh-lab', action='store_true', help='reuse the running, provisioned lab')
    parser.add_argument('--molecule', metavar='DIR', help='the ephemeral directory of a converged rollout scenario')
    args = parser.parse_args()
    versions = ['5.%d.0' % i for i in range(2 * args.rounds)]
    if args.molecule:
        use_molecule(args.molecule)
    if args.no_fresh_lab or args.molecule:
        from labtools import build_wheels
        build_wheels('1.0.0', *versions)
    else:
        fresh_lab(*versions)
    aborts, frozens = [], []
    for i in range(args.rounds):
        aborts.append(abort_round(versions[2 * i], args.interval))
        frozens.append(frozen_round(versions[2 * i + 1], args.interval))
    os.makedirs(RESULTS, exist_ok=True)
    with open(os.path.join(RESULTS, 'rollout_faults.json'), 'w') as handle:
        json.dump({'abort': aborts, 'frozen': frozens}, handle, indent=2)
    ok_abort = max(r['to_hold_aborted_s'] for r in aborts) <= args.interval + 5
    ok_frozen = max(r['lb1_at_zero_s'] for r in frozens) <= 10 and all(r['lb2_named'] for r in frozens)
    lines = [
        'Measured %s on %s (2 balancers, 2 application hosts, docker connection), %d rounds, gate interval %d s,'
        % (datetime.date.today().isoformat(), LAB['where'], args.rounds, args.interval),
        'under steady labelled load. min / median / max:',
        '',
        '| fault | measured | result | target | failed requests |',
        '|---|---|---|---|---|',
        '| rollback.yml during a canary hold | rollback.yml starting -> the hold ended `aborted` | %s s | <= %d s (interval + 5) %s | %d |'
        % (spread([r['to_hold_aborted_s'] for r in aborts]), args.interval + 5, 'met' if ok_abort else '**missed**',
           sum(r['failed'] for r in aborts)),
        '| (same) | rollback.yml starting -> the phase playbook exited (verdict, report, lease back) | %s s | | |'
        % spread([r['to_exit_s'] for r in aborts]),
        '| (same) | rollback.yml wall time | %s s | | |' % spread([r['rollback_s'] for r in aborts]),
        '| rollback.yml with lb2 frozen (`docker pause`) | rollback.yml starting -> lb1 at 0 %% | %s s | <= 10 s %s | %d (through lb1) |'
        % (spread([r['lb1_at_zero_s'] for r in frozens]), 'met' if ok_frozen else '**missed**',
           sum(r['failed'] for r in frozens)),
        '| (same) | rollback.yml wall time, exit non-zero naming lb2 | %s s | named in %d of %d | |'
        % (spread([r['rollback_s'] for r in frozens]), sum(r['lb2_named'] for r in frozens), len(frozens)),
    ]
    write_section(BEGIN, END, ['## Rollout faults (benchmarks/rollout_faults.py)', ''] + lines)
    print('\n'.join(lines))


if __name__ == '__main__':
    main()
