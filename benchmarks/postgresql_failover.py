"""Benchmark: PostgreSQL failover time through the HAProxy read-write endpoint.

Uses the molecule scenario `postgresql_ha` (three containers pg-node1..3, each
with etcd, Patroni/PostgreSQL 15 and HAProxy). Every run:

    1. finds the leader (patronictl list) and a surviving node whose HAProxy
       (port 5000) is the client endpoint; checks that a write succeeds;
    2. stops the leader (`systemctl stop patroni` on it) and measures the time
       from that command to the first successful INSERT through the endpoint
       (psql over TLS as the application user, PGPASSWORD in the environment);
    3. restores: starts Patroni on the old leader and waits until it is a
       replica and the new leader has two streaming replicas.

Prints min/median/max and writes benchmarks/results/postgresql_failover.json.

    python benchmarks/postgresql_failover.py [--runs 5] [--reuse] [--keep]

--reuse skips `molecule create/converge` when the containers already run;
--keep leaves them running (else `molecule destroy` at the end). Traffic only
goes to the scenario's own containers (docker exec); every loop is bounded.
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

from labwait import poll  # noqa: E402

VENV = os.environ.get('VENV', os.path.join(ROOT, '.venv'))
SCENARIO = 'postgresql_ha'
NODES = ['pg-node1', 'pg-node2', 'pg-node3']
APP_PASSWORD = 'molecule-app-secret'  # the scenario's test-only secret
RW_PORT = 5000
TARGET_S = 30.0
WRITE_BOUND_S = 90.0
RESTORE_BOUND_S = 180.0
RESULT = os.path.join(ROOT, 'benchmarks', 'results', 'postgresql_failover.json')


def sh(cmd, timeout=60, env=None, check=False):
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env, check=check)


def molecule(action):
    env = dict(os.environ, PATH=os.path.join(VENV, 'bin') + os.pathsep + os.environ.get('PATH', ''))
    proc = subprocess.run([os.path.join(VENV, 'bin', 'molecule'), action, '-s', SCENARIO], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=1800, check=False)
    if proc.returncode != 0:
        raise SystemExit('molecule %s failed:\n%s' % (action, (proc.stdout + proc.stderr)[-4000:]))


def running(node):
    proc = sh(['docker', 'inspect', '-f', '{{.State.Running}}', node])
    return proc.returncode == 0 and proc.stdout.strip() == 'true'


def members(node):
    try:
        proc = sh(['docker', 'exec', node, 'patronictl', '-c', '/etc/patroni/config.yml', 'list', '-f', 'json'],
                  timeout=20)
    except subprocess.TimeoutExpired:
        return []
    if proc.returncode != 0:
        return []
    try:
        return json.loads(proc.stdout)
    except ValueError:
        return []


def leader(node):
    names = [m['Member'] for m in members(node) if m['Role'] == 'Leader' and m['State'] == 'running']
    return names[0] if len(names) == 1 else None


def streaming(node):
    proc = sh(['docker', 'exec', '-u', 'postgres', node, 'psql', '-XtAc',
               "SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming'"], timeout=20)
    return int(proc.stdout.strip()) if proc.returncode == 0 and proc.stdout.strip().isdigit() else -1


def write(client, note):
    """One INSERT through the rw endpoint of `client`'s HAProxy; True when committed."""
    conninfo = ('host=127.0.0.1 port=%d dbname=supersmartmatch user=supersmartmatch sslmode=require '
                'connect_timeout=2' % RW_PORT)
    sql = ("CREATE TABLE IF NOT EXISTS failover_bench (id bigserial PRIMARY KEY, note text NOT NULL, "
           "at timestamptz NOT NULL DEFAULT now()); INSERT INTO failover_bench (note) VALUES ('%s')" % note)
    env = dict(os.environ, PGPASSWORD=APP_PASSWORD)
    try:
        proc = sh(['docker', 'exec', '-e', 'PGPASSWORD', client, 'psql', conninfo, '-v', 'ON_ERROR_STOP=1', '-XtAqc',
                   sql], timeout=10, env=env)
    except subprocess.TimeoutExpired:
        return False
    return proc.returncode == 0


def healthy_cluster():
    """(leader, replicas) once there is a leader with two streaming replicas."""
    name = leader(NODES[0]) or leader(NODES[1])
    if not name:
        return None
    replicas = [m['Member'] for m in members(name) if m['Role'] == 'Replica' and m['State'] in ('running', 'streaming')]
    if len(replicas) == 2 and streaming(name) == 2:
        return name, replicas
    return None


def one_run(number):
    state = poll(healthy_cluster, RESTORE_BOUND_S, delay=2).value
    if not state:
        raise SystemExit('run %d: the cluster has no leader with two streaming replicas' % number)
    old_leader, replicas = state
    client = replicas[0]
    if not write(client, 'run-%d-before' % number):
        raise SystemExit('run %d: no write through %s:%d before the stop' % (number, client, RW_PORT))

    started = time.monotonic()
    stop = sh(['docker', 'exec', old_leader, 'systemctl', 'stop', 'patroni'], timeout=60)
    stop_s = time.monotonic() - started
    if stop.returncode != 0:
        raise SystemExit('run %d: systemctl stop patroni failed: %s' % (number, stop.stderr))
    attempts = 0

    def write_after():
        nonlocal attempts
        attempts += 1
        return write(client, 'run-%d-after' % number)
    wrote = poll(write_after, WRITE_BOUND_S - stop_s, delay=0.2).value  # WRITE_BOUND_S from the stop command
    first_write_s = time.monotonic() - started if wrote else None
    new_leader = leader(client)

    sh(['docker', 'exec', old_leader, 'systemctl', 'start', 'patroni'], timeout=60)
    restored_at = time.monotonic()

    def rejoined():
        roles = {m['Member']: m['Role'] for m in members(client)}
        return roles.get(old_leader) == 'Replica' and healthy_cluster()
    ok = poll(rejoined, RESTORE_BOUND_S, delay=2).value
    record = {'run': number, 'old_leader': old_leader, 'new_leader': new_leader, 'endpoint': '%s:%d' % (client, RW_PORT),
              'stop_command_s': round(stop_s, 2),
              'first_write_s': round(first_write_s, 2) if first_write_s is not None else None,
              'write_attempts': attempts, 'rejoin_s': round(time.monotonic() - restored_at, 1) if ok else None}
    print('run %d: leader %s stopped (%.1f s), new leader %s, first write after %s s (%d attempts), '
          'old leader back as replica after %s s' % (number, old_leader, stop_s, new_leader,
                                                     record['first_write_s'], attempts, record['rejoin_s']))
    if first_write_s is None:
        raise SystemExit('run %d: no write within %.0f s' % (number, WRITE_BOUND_S))
    if not ok:
        raise SystemExit('run %d: the old leader did not rejoin within %.0f s' % (number, RESTORE_BOUND_S))
    return record


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n', 1)[0])
    parser.add_argument('--runs', type=int, default=5, help='failovers to measure (>= 3)')
    parser.add_argument('--reuse', action='store_true', help='reuse running scenario containers')
    parser.add_argument('--keep', action='store_true', help='do not destroy the containers at the end')
    args = parser.parse_args()
    if args.runs < 3:
        parser.error('--runs must be at least 3')

    if not (args.reuse and all(running(node) for node in NODES)):
        molecule('destroy')
        molecule('create')
        molecule('converge')
    records = []
    try:
        for number in range(1, args.runs + 1):
            records.append(one_run(number))
    finally:
        if not args.keep:
            molecule('destroy')

    times = [r['first_write_s'] for r in records]
    summary = {'min_s': min(times), 'median_s': round(statistics.median(times), 2), 'max_s': max(times),
               'target_s': TARGET_S, 'all_under_target': max(times) < TARGET_S}
    print('failover to first write through the rw endpoint over %d runs: min %.2f s, median %.2f s, max %.2f s '
          '(target < %.0f s)' % (len(times), summary['min_s'], summary['median_s'], summary['max_s'], TARGET_S))
    os.makedirs(os.path.dirname(RESULT), exist_ok=True)
    with open(RESULT, 'w', encoding='utf-8') as handle:
        json.dump({'benchmark': 'postgresql_failover', 'date': datetime.datetime.now(datetime.timezone.utc).isoformat(),
                   'settings': {'ttl': 20, 'loop_wait': 5, 'retry_timeout': 5, 'haproxy_check_inter': '1s'},
                   'summary': summary, 'runs': records}, handle, indent=2)
    print('wrote %s' % os.path.relpath(RESULT, ROOT))
    return 0 if summary['all_under_target'] else 1


if __name__ == '__main__':
    sys.exit(main())
