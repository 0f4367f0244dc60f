"""Benchmark: a Redis Cluster primary frozen under load, and what it costs the service.

Starts a throw-away PostgreSQL 15 and a 6-node Redis Cluster on loopback
(tools/datatier_lab.py, cluster-node-timeout 2000 ms, no persistence), the service
(``python -m supersmartmatch_service``, a subprocess) with both, and, for each run:

    1. a cache writer (redis-py cluster client, 250 ms timeouts) SETs unique keys and
       records every acknowledged SET; the service answers match requests in a loop,
       each answer compared with the answer of a service without data tier;
    2. one primary is frozen (SIGSTOP to its redis-server, the equivalent of
       ``docker pause``) for ``--hold`` seconds, then resumed (SIGCONT);
    3. the run waits (bounded) until the cluster has 3 primaries and 3 replicas again,
       on its own, then reads back every acknowledged key.

Reports per run: match answers (all must be correct), the slowest match, acknowledged
cache writes lost (Redis replicates asynchronously: a cache may lose them, by design;
for the service they only cost a recomputation), time to the first write in the frozen
primary's slots, time until 3 primaries + 3 replicas. Writes
benchmarks/results/redis_freeze.json.

    python benchmarks/redis_freeze.py [--runs 3] [--hold 6]

Traffic only to 127.0.0.1; the processes signalled are the ones this script started
(by pid). Every loop is bounded.
"""
import argparse
import datetime
import json
import logging
import os
import signal
import statistics
import sys
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, 'tools'))
sys.path.insert(0, os.path.join(ROOT, 'benchmarks'))

from datatier_lab import LocalPostgres, LocalRedisCluster  # noqa: E402
from labwait import wait_for  # noqa: E402
from service_data_tier import Service, body  # noqa: E402

RESULT = os.path.join(ROOT, 'benchmarks', 'results', 'redis_freeze.json')
LAYOUT_BOUND_S = 60.0


def layout(redis):
    """(primaries, replicas) that are connected and not failing, from the first node that answers."""
    for port in redis.ports:
        proc = redis.cli(port, 'CLUSTER', 'NODES')
        if proc.returncode != 0 or not proc.stdout.strip():
            continue
        primaries, replicas = [], []
        for line in proc.stdout.strip().splitlines():
            fields = line.split()
            flags, link = fields[2].split(','), fields[7]
            if 'fail' in flags or 'fail?' in flags or link != 'connected':
                continue
            address = fields[1].split('@')[0]
            (primaries if 'master' in flags else replicas).append(address)
        return sorted(primaries), sorted(replicas)
    return [], []


class CacheWriter:
    """SETs unique keys through a cluster client; records the acknowledged ones with their time."""

    def __init__(self, redis, run):
        from redis.cluster import ClusterNode, RedisCluster
        self.client = RedisCluster(startup_nodes=[ClusterNode('127.0.0.1', p) for p in redis.ports],
                                   password=redis.password, socket_timeout=0.25, socket_connect_timeout=0.25,
                                   cluster_error_retry_attempts=1)
        self.run = run
        self.acked = {}
        self.errors = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self):
        number = 0
        while not self._stop.is_set():
            number += 1
            key = 'freeze:%s:%d' % (self.run, number)
            try:
                if self.client.set(key, 'v', ex=600):
                    self.acked[key] = time.monotonic()
            except Exception:  # any client error: not acknowledged
                self.errors += 1
                self._stop.wait(0.05)
            self._stop.wait(0.01)

    def start(self):
        self._thread.start()

    def stop(self):
        self._stop.set()
        self._thread.join(30)

    def missing(self):
        return [key for key in self.acked if self.client.get(key) is None]


def one_run(number, redis, service, payloads, expected, hold):
    primaries, replicas = layout(redis)
    if len(primaries) != 3 or len(replicas) != 3:
        raise SystemExit('run %d: cluster not at 3 primaries + 3 replicas: %s %s' % (number, primaries, replicas))
    victim = primaries[number % 3]
    proc = redis.procs[redis.ports.index(int(victim.rsplit(':', 1)[1]))]
    writer = CacheWriter(redis, 'r%d-%d' % (number, time.time_ns()))
    answers = {'ok': 0, 'wrong': 0, 'errors': 0, 'slowest_s': 0.0}
    stop = threading.Event()

    def matches():
        i = 0
        while not stop.is_set():
            payload = payloads[i % len(payloads)]
            try:
                status, elapsed, answer = service.call('POST', '/api/v2/match', payload)
            except OSError:
                answers['errors'] += 1
                continue
            answers['slowest_s'] = max(answers['slowest_s'], elapsed)
            if status == 200 and answer == expected[i % len(payloads)]:
                answers['ok'] += 1
            else:
                answers['wrong'] += 1
            i += 1
    reader = threading.Thread(target=matches, daemon=True)
    writer.start()
    reader.start()
    time.sleep(2)
    frozen = time.monotonic()
    os.kill(proc.pid, signal.SIGSTOP)
    try:
        time.sleep(hold)
    finally:
        os.kill(proc.pid, signal.SIGCONT)
    resumed = time.monotonic()
    ok = wait_for(lambda: (lambda p, r: len(p) == 3 and len(r) == 3)(*layout(redis)), LAYOUT_BOUND_S,
                  '3 primaries + 3 replicas', delay=0.25)
    healed = time.monotonic()
    time.sleep(2)
    stop.set()
    writer.stop()
    reader.join(30)
    missing = writer.missing()
    after = sorted(t for t in writer.acked.values() if t > frozen)
    gaps = [b - a for a, b in zip([frozen] + after, after)] or [0.0]
    record = {'run': number, 'frozen_primary': victim, 'hold_s': hold,
              'layout_restored_after_resume_s': round(healed - resumed, 2) if ok else None,
              'primaries_after': layout(redis)[0],
              'cache_sets_acknowledged': len(writer.acked), 'cache_sets_lost': len(missing),
              'cache_set_errors': writer.errors, 'longest_cache_write_gap_s': round(max(gaps), 2),
              'match_answers_ok': answers['ok'], 'match_answers_wrong': answers['wrong'],
              'match_errors': answers['errors'], 'slowest_match_s': round(answers['slowest_s'], 3)}
    print('run %d: froze %s for %d s; cache SETs acked %d, lost %d, longest gap %.2f s; matches ok %d, wrong %d, '
          'errors %d, slowest %.3f s; 3+3 again %s s after the resume' % (
              number, victim, hold, len(writer.acked), len(missing), max(gaps), answers['ok'], answers['wrong'],
              answers['errors'], answers['slowest_s'], record['layout_restored_after_resume_s']))
    return record


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n', maxsplit=1)[0])
    parser.add_argument('--runs', type=int, default=3)
    parser.add_argument('--hold', type=int, default=6, help='seconds the primary stays frozen (> node timeout 2 s)')
    args = parser.parse_args(argv)
    if not 1 <= args.runs <= 10 or not 1 <= args.hold <= 60:
        parser.error('--runs must be 1..10 and --hold 1..60')
    payloads = [body(10, seed) for seed in range(20)]
    # redis-py logs every timeout of the frozen node with its traceback: the counts below say it all.
    logging.getLogger('redis').setLevel(logging.CRITICAL)
    plain = Service({})
    try:
        expected = [plain.call('POST', '/api/v2/match', p)[2] for p in payloads]
    finally:
        plain.stop()
    pg = LocalPostgres()
    redis = service = None
    records = []
    try:
        redis = LocalRedisCluster()
        service = Service({**pg.env(), **redis.env()})
        for number in range(1, args.runs + 1):
            records.append(one_run(number, redis, service, payloads, expected, args.hold))
    finally:
        if service is not None:
            service.stop()
        if redis is not None:
            redis.destroy()
        pg.destroy()
    result = {'benchmark': 'redis_freeze', 'date': datetime.datetime.now(datetime.timezone.utc).isoformat(),
              'settings': {'cluster_node_timeout_ms': 2000, 'hold_s': args.hold, 'persistence': 'none'},
              'summary': {
                  'match_answers_wrong': sum(r['match_answers_wrong'] for r in records),
                  'match_answers_ok': sum(r['match_answers_ok'] for r in records),
                  'cache_sets_lost': [r['cache_sets_lost'] for r in records],
                  'layout_restored_s': [r['layout_restored_after_resume_s'] for r in records],
                  'longest_cache_write_gap_s_median': round(statistics.median(
                      r['longest_cache_write_gap_s'] for r in records), 2)},
              'runs': records}
    os.makedirs(os.path.dirname(RESULT), exist_ok=True)
    with open(RESULT, 'w', encoding='utf-8') as handle:
        json.dump(result, handle, indent=2)
    print('wrote %s' % os.path.relpath(RESULT, ROOT))
    bad = result['summary']['match_answers_wrong'] or any(r['layout_restored_after_resume_s'] is None for r in records)
    return 1 if bad else 0


if __name__ == '__main__':
    sys.exit(main())
