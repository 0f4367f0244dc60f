"""Benchmark: the write-latency cost of synchronous replication (Patroni synchronous_mode).

Uses the molecule scenario `postgresql_ha` (converged and running; --reuse as in
postgresql_failover.py, else it is created, converged and destroyed). Alternates blocks
of single-row INSERTs (autocommit, one connection through HAProxy port 5000 of a replica
node, TLS + scram) with `synchronous_mode` quorum (ANY 1 of the replicas) and false (patronictl edit-config), in
the same run, so that both modes see the same machine load. Reports commit latency
p50/p95 per mode and their ratio; leaves `synchronous_mode: quorum` (the role's default).

    python benchmarks/postgresql_sync_latency.py [--blocks 4] [--writes 300] [--reuse] [--keep]

Writes benchmarks/results/postgresql_sync_latency.json. Traffic only goes to the
scenario's own containers; every loop is bounded.
"""
import argparse
import datetime
import json
import os
import statistics
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, 'tools'))
sys.path.insert(0, os.path.join(ROOT, 'benchmarks'))

import pg_faults  # noqa: E402  (paths set just above)
from labwait import poll  # noqa: E402
from labtools import write_section  # noqa: E402  (benchmarks/ is the script's directory)
from postgresql_failover import APP_PASSWORD, molecule, running  # noqa: E402

RESULT = os.path.join(ROOT, 'benchmarks', 'results', 'postgresql_sync_latency.json')
MODE_BOUND_S = 60.0


def set_mode(synchronous):
    value = 'quorum' if synchronous else 'false'
    proc = pg_faults.dexec(pg_faults.NODES[0], *pg_faults.PATRONICTL, 'edit-config', '--force', '--quiet',
                           '--set', 'synchronous_mode=%s' % value, timeout=60)
    if proc.returncode != 0:
        raise SystemExit('patronictl edit-config synchronous_mode=%s failed: %s' % (value, proc.stderr))

    def in_force():
        state = pg_faults.healthy()
        if state:
            names = pg_faults.dexec(state['leader'], 'runuser', '-u', 'postgres', '--', 'psql', '-XtAc',
                                    'SHOW synchronous_standby_names').stdout.strip()
            if bool(names) == synchronous and bool(state['sync']) == synchronous:
                return state
        return None
    state = poll(in_force, MODE_BOUND_S, 'synchronous_mode=%s' % value, delay=1).value
    if not state:
        raise SystemExit('synchronous_mode=%s not in force after %.0f s\n%s'
                         % (value, MODE_BOUND_S, pg_faults.diagnostics()))
    return state


def block(endpoint, writes):
    import psycopg2
    conn = psycopg2.connect(host=endpoint, port=pg_faults.RW_PORT, user='supersmartmatch', dbname='supersmartmatch',
                            password=APP_PASSWORD, sslmode='require', connect_timeout=5)
    conn.autocommit = True
    latencies = []
    try:
        with conn.cursor() as cur:
            cur.execute('CREATE TABLE IF NOT EXISTS latency_bench (id bigserial PRIMARY KEY, payload text NOT NULL)')
            for _write in range(writes):
                started = time.perf_counter()
                cur.execute("INSERT INTO latency_bench (payload) VALUES ('x')")
                latencies.append((time.perf_counter() - started) * 1000.0)
    finally:
        conn.close()
    return latencies


def percentile(values, fraction):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(fraction * (len(ordered) - 1))))]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n', 1)[0])
    parser.add_argument('--blocks', type=int, default=4, help='blocks per mode, alternated (>= 1)')
    parser.add_argument('--writes', type=int, default=300, help='INSERTs per block (>= 50)')
    parser.add_argument('--reuse', action='store_true', help='reuse running scenario containers')
    parser.add_argument('--keep', action='store_true', help='do not destroy the containers at the end')
    args = parser.parse_args()
    if args.blocks < 1 or args.writes < 50:
        parser.error('--blocks must be >= 1 and --writes >= 50')
    if not (args.reuse and all(running(node) for node in pg_faults.NODES)):
        molecule('destroy')
        molecule('create')
        molecule('converge')
    samples = {'sync': [], 'async': []}
    try:
        for number in range(args.blocks):
            for mode in ('sync', 'async') if number % 2 == 0 else ('async', 'sync'):
                state = set_mode(mode == 'sync')
                endpoint = pg_faults.address(state['streaming'][0])
                samples[mode].extend(block(endpoint, args.writes))
                print('block %d %s: p50 %.2f ms' % (number + 1, mode, statistics.median(samples[mode][-args.writes:])))
    finally:
        set_mode(True)
        if not args.keep:
            molecule('destroy')
    result = {mode: {'writes': len(values), 'p50_ms': round(percentile(values, 0.50), 3),
                     'p95_ms': round(percentile(values, 0.95), 3)} for mode, values in samples.items()}
    result['ratio_p50'] = round(result['sync']['p50_ms'] / result['async']['p50_ms'], 2)
    result['ratio_p95'] = round(result['sync']['p95_ms'] / result['async']['p95_ms'], 2)
    print('commit latency: sync p50 %.2f / p95 %.2f ms, async p50 %.2f / p95 %.2f ms, ratio p50 %.2f, p95 %.2f' % (
        result['sync']['p50_ms'], result['sync']['p95_ms'], result['async']['p50_ms'], result['async']['p95_ms'],
        result['ratio_p50'], result['ratio_p95']))
    os.makedirs(os.path.dirname(RESULT), exist_ok=True)
    with open(RESULT, 'w', encoding='utf-8') as handle:
        json.dump({'benchmark': 'postgresql_sync_latency', 'date': datetime.datetime.now(datetime.timezone.utc).isoformat(),
                   'blocks': args.blocks, 'writes_per_block': args.writes, 'result': result}, handle, indent=2)
    print('wrote %s' % os.path.relpath(RESULT, ROOT))
    write_section('<!-- postgresql_sync_latency:begin -->', '<!-- postgresql_sync_latency:end -->', [
        'Measured %s on %s (%d cores), %d blocks of %d INSERTs per mode, alternated in the same run:'
        % (datetime.date.today().isoformat(), os.uname().nodename, os.cpu_count(), args.blocks, args.writes),
        '',
        '| mode | commits | p50 (ms) | p95 (ms) |',
        '|---|---|---|---|',
        '| synchronous quorum commit (`quorum`, the default) | %d | %s | %s |'
        % (result['sync']['writes'], result['sync']['p50_ms'], result['sync']['p95_ms']),
        '| asynchronous (`false`) | %d | %s | %s |'
        % (result['async']['writes'], result['async']['p50_ms'], result['async']['p95_ms']),
        '| ratio, synchronous / asynchronous | | **%.2f** | **%.2f** |' % (result['ratio_p50'], result['ratio_p95']),
    ])
    return 0


if __name__ == '__main__':
    sys.exit(main())
