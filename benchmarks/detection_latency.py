"""Benchmark: detection latency of the metric gates, on the lab.

Under steady labelled load through both load balancers, rolls out bad
releases with canary.yml (one with degraded matching: precision under 94 %,
one slow: p95 over 200 ms, per round) and measures, for each, the time from
the moment the bad release takes traffic (its first answer seen by the
traffic generator) until all traffic is back on stable (its last answer),
against the target interval x (failure_limit + 1) + 10 s. Also checks that
the canary was rolled back by the expected gate and that no request failed.

    scripts/setup && python benchmarks/detection_latency.py [--rounds 2] [--interval 15]

It brings up a fresh lab (scripts/lab down/up, Prometheus on mon1 scraping
every 2 s, first gate measurement 10 s after the shift) and provisions it. Writes benchmarks/results/detection_latency.json
and its section of docs/benchmarks.md. Traffic goes only to 127.0.0.1; every
loop is bounded.
"""
import argparse
import datetime
import json
import os
import statistics
import sys
import time

from labtools import CLIENT, RESULTS, TARGETS, playbook, prepare_lab, write_section

import trafficgen  # noqa: E402  (on the path set by labtools)

BEGIN, END = '<!-- detection_latency:begin -->', '<!-- detection_latency:end -->'
FAULTS = (
    ('degraded matching', {'degraded': True}, 'precision'),
    ('slow (+400 ms)', {'latency_ms': 400}, 'latency_p95'),
)


def bad_canary(version, faults, settings):
    runner = trafficgen.LoadRunner(TARGETS, duration=1800, users=2000, concurrency=4, **CLIENT).start()
    time.sleep(2.0)
    try:
        elapsed, output = playbook('canary.yml', '-e', 'release_version=%s' % version,
                                   '-e', json.dumps(dict(settings, rollout_app_faults=faults)), expect_rc=2)
    finally:
        time.sleep(1.0)
        report = runner.stop()
    seen = report['versions'].get(version)
    if not seen or seen['first_seen'] is None:
        raise SystemExit('%s never answered a request: %s' % (version, output[-3000:]))
    return elapsed, output, report, seen


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--rounds', type=int, default=2)
    parser.add_argument('--interval', type=int, default=15, help='rollout_gate_interval (seconds)')
    parser.add_argument('--failure-limit', type=int, default=0)
    parser.add_argument('--no-setup', action='store_true', help='use the lab as it is (provisioned, 1.0.0 stable)')
    args = parser.parse_args()
    versions = ['9.%d.%d' % (r, k) for r in range(1, args.rounds + 1) for k in range(1, len(FAULTS) + 1)]
    prepare_lab(versions, reuse=args.no_setup)
    settings = {'canary_duration': 600, 'rollout_gate_interval': args.interval,
                'rollout_gate_failure_limit': args.failure_limit}
    target = args.interval * (args.failure_limit + 1) + 10
    records = []
    for index in range(1, args.rounds + 1):
        for position, (label, faults, check) in enumerate(FAULTS, start=1):
            version = '9.%d.%d' % (index, position)
            elapsed, output, report, seen = bad_canary(version, faults, settings)
            latency = seen['last_seen'] - seen['first_seen']
            record = {'round': index, 'release': version, 'fault': label, 'check': check,
                      'detection_s': round(latency, 1), 'playbook_s': round(elapsed, 1),
                      'rolled_back': 'FAILED and was rolled back' in output,
                      'caught_by_check': ("%s " % check) in output.split('FAILED and was rolled back', 1)[-1],
                      'bad_requests': seen['count'], 'requests': report['total_requests'],
                      'failed': report['failed_requests']}
            records.append(record)
            print('%-18s %s: %5.1f s (target %d s), rolled back %s by %s, %d requests, %d failed' % (
                label, version, latency, target, record['rolled_back'], check if record['caught_by_check'] else '?',
                record['requests'], record['failed']))
    latencies = [r['detection_s'] for r in records]
    summary = {'runs': len(records), 'target_s': target, 'interval_s': args.interval,
               'failure_limit': args.failure_limit,
               'detection_s': {'min': min(latencies), 'median': statistics.median(latencies), 'max': max(latencies)},
               'all_rolled_back_by_the_right_gate': all(r['rolled_back'] and r['caught_by_check'] for r in records),
               'failed_requests': sum(r['failed'] for r in records)}
    result = {'date': datetime.date.today().isoformat(), 'machine': os.uname().nodename, 'records': records,
              'summary': summary}
    os.makedirs(RESULTS, exist_ok=True)
    with open(os.path.join(RESULTS, 'detection_latency.json'), 'w') as handle:
        json.dump(result, handle, indent=2)
    d = summary['detection_s']
    lines = ['Measured %s on %s (%d cores): the lab (Prometheus scraping and evaluating every 2 s, '
             '`rollout_gate_warmup` 10 s), `rollout_gate_interval` %d s, `rollout_gate_failure_limit` %d; steady '
             'load of 4 concurrent clients (2000 users) through both balancers.' % (
                 result['date'], result['machine'], os.cpu_count() or 0, args.interval, args.failure_limit),
             '',
             '| | result | target |',
             '|---|---|---|',
             '| detection latency, bad release takes traffic → all traffic on stable (min / median / max over %d '
             'runs) | %.1f / %.1f / %.1f s | ≤ %d s |' % (len(records), d['min'], d['median'], d['max'], target),
             '| rolled back by the expected gate | %s | every run |' % (
                 'every run' if summary['all_rolled_back_by_the_right_gate'] else 'NOT every run'),
             '| failed requests | %d | 0 |' % summary['failed_requests'],
             '',
             '| round | release | fault | gate | detection (s) | canary.yml (s) | requests to it | failed |',
             '|---|---|---|---|---|---|---|---|']
    for r in records:
        lines.append('| %d | %s | %s | %s | %.1f | %.1f | %d | %d |' % (
            r['round'], r['release'], r['fault'], r['check'], r['detection_s'], r['playbook_s'], r['bad_requests'],
            r['failed']))
    write_section(BEGIN, END, lines)
    print(json.dumps(summary, indent=2))
    ok = d['max'] <= target and summary['all_rolled_back_by_the_right_gate'] and summary['failed_requests'] == 0
    return 0 if ok else 1


if __name__ == '__main__':
    sys.exit(main())
