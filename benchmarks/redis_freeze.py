"""Benchmark: a Redis Cluster primary frozen under load, and what it costs the service.

Starts a throw-away PostgreSQL 15 and a 6-node Redis Cluster on loopback
(tools/datatier_lab.py, cluster-node-timeout 2000 ms, no persistence), the service
(``python -m supersmartmatch_service``, a subprocess) with both, and, for each run,
``tools/redis_faults.freeze_primary`` (the same run the integration test asserts):

    1. a cache writer (redis-py cluster client, 250 ms timeouts) SETs unique keys and
       records every acknowledged SET; the service answers match requests in a loop,
       each answer compared with the answer of a service without data tier;
    2. one primary is frozen (SIGSTOP to its redis-server, the equivalent of
       ``docker pause``) for ``--hold`` seconds, then resumed (SIGCONT);
    3. the run waits (bounded) until every node reports 3 primaries and 3 replicas
       again, on its own, then reads back every acknowledged key.

Reports per run: match answers (all must be correct), the slowest match, acknowledged
cache writes lost (Redis replicates asynchronously: a cache may lose them, by design;
for the service they only cost a recomputation), when the frozen primary's replica was
seen promoted, time to the first write in the frozen primary's slots, time until
3 primaries + 3 replicas. Writes benchmarks/results/redis_freeze.json.

    python benchmarks/redis_freeze.py [--runs 3] [--hold 6]

Traffic only to 127.0.0.1; the processes signalled are the ones this script started
(by pid). Every loop is bounded.
"""
import argparse
import datetime
import json
import logging
import os
import statistics
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, 'tools'))
sys.path.insert(0, os.path.join(ROOT, 'benchmarks'))

from datatier_lab import LocalPostgres, LocalRedisCluster  # noqa: E402
from redis_faults import freeze_primary, summary_line  # noqa: E402
from service_data_tier import Service, body  # noqa: E402

RESULT = os.path.join(ROOT, 'benchmarks', 'results', 'redis_freeze.json')
LAYOUT_BOUND_S = 60.0


def one_run(number, redis, service, payloads, expected, hold):
    def ask(payload):
        status, _elapsed, answer = service.call('POST', '/api/v2/match', payload)
        return status, answer
    try:
        record = freeze_primary(redis, ask, payloads, expected, hold=hold, victim=number, run='r%d' % number,
                                heal_bound=LAYOUT_BOUND_S)
    except RuntimeError as exc:
        raise SystemExit('run %d: %s' % (number, exc))
    print('run %d: %s' % (number, summary_line(record)))
    return {'run': number, **record}


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
                  'match_errors': sum(r['match_errors'] for r in records),
                  'cache_sets_lost': [r['cache_sets_lost'] for r in records],
                  'layout_restored_s': [r['layout_restored_after_resume_s'] for r in records],
                  'replica_promoted_s': [r['replica_promoted_after_s'] for r in records],
                  'first_cache_write_in_frozen_slots_s': [r['first_cache_write_in_frozen_slots_s'] for r in records],
                  'longest_cache_write_gap_s_median': round(statistics.median(
                      r['longest_cache_write_gap_s'] for r in records), 2)},
              'runs': records}
    os.makedirs(os.path.dirname(RESULT), exist_ok=True)
    with open(RESULT, 'w', encoding='utf-8') as handle:
        json.dump(result, handle, indent=2)
    print('wrote %s' % os.path.relpath(RESULT, ROOT))
    # the service answers every match, cache or not: a wrong answer or no answer is a failure
    summary = result['summary']
    bad = (summary['match_answers_wrong'] or summary['match_errors']
           or any(r['layout_restored_after_resume_s'] is None for r in records))
    return 1 if bad else 0


if __name__ == '__main__':
    sys.exit(main())
