"""Benchmark: the judge (candidate against stable, Kayenta-style), on the lab.

With ``rollout_judge`` on, under steady labelled load through both load
balancers:

1. decision time: ``canary.yml`` of a release 40 % slower than the stable
   release at the p95 (its fault: 0.4 x the p95 of 1.0.0 measured on
   Prometheus just before, far under the 200 ms threshold), ``--slow`` times.
   The time runs from its first answer seen by the traffic generator to its
   last one (all traffic back on stable), against the threshold gates'
   detection target, interval x (failure_limit + 1) + 10 s; the check that
   caught it must be the judge's;
2. false alarms: ``--good`` canaries (default 20) of a good release (no
   fault). Each must pass; ``rollback.yml`` then puts everybody back on 1.0.0
   for the next one. Target: 0 false rollbacks.

    scripts/setup && python benchmarks/judge.py [--good 20] [--slow 2] [--pairing paired]
        [--source points|histogram] [--quantile 0.5] [--no-setup]

It brings up a fresh lab (scripts/lab down/up; Prometheus scraping and
evaluating every 2 s) unless --no-setup. Writes benchmarks/results/judge.json
and its section of docs/benchmarks.md. Traffic goes only to 127.0.0.1;
every loop is bounded.
"""
import argparse
import datetime
import json
import os
import statistics
import sys
import time

from labtools import CLIENT, RESULTS, TARGETS, playbook, prepare_lab, write_section

import labprom  # noqa: E402  (on the path set by labtools)
import trafficgen  # noqa: E402  (on the path set by labtools)
from labwait import wait_for  # noqa: E402

BEGIN, END = '<!-- judge:begin -->', '<!-- judge:end -->'


def prometheus_value(query):
    """One series' value on Prometheus on the lab's ssm-mon1, or None."""
    return labprom.prometheus_value('ssm-mon1', query)


def steady_load(duration):
    """The lab's steady load (trafficgen.LAB_STEADY_RATE), started."""
    return trafficgen.LoadRunner(TARGETS, duration=duration, users=2000, concurrency=4,
                                 rate=trafficgen.LAB_STEADY_RATE, **CLIENT).start()


def canary(version, settings, faults, expect_rc):
    """canary.yml of ``version`` under steady load; (seconds, output, traffic report, the version's part)."""
    runner = steady_load(1800)
    time.sleep(2.0)
    try:
        elapsed, output = playbook('canary.yml', '-e', 'release_version=%s' % version,
                                   '-e', json.dumps(dict(settings, rollout_app_faults=faults)), expect_rc=expect_rc)
    finally:
        time.sleep(1.0)
        report = runner.stop()
    return elapsed, output, report, report['versions'].get(version) or {}


def stable_p95(resolution):
    """The p95 of the answers 1.0.0 computed (what the judge compares: the median of its recorded values
    over a minute of the same steady load)."""
    def value():
        return prometheus_value('quantile_over_time(0.5, ssm:latency_p95_computed:seconds{version="1.0.0"}[1m])')

    def steady():  # the last 2 minutes had a computed p95 of 1.0.0 at nearly every evaluation
        return (prometheus_value('count_over_time((ssm:latency_p95_computed:seconds{version="1.0.0"} > 0)[2m:%gs])'
                                 % resolution) or 0) >= 0.9 * 120 / resolution
    runner = steady_load(1500)
    try:
        # the cache entries of 1.0.0 were made together when the lab came up; with their TTL jitter
        # their expiries (so the answers 1.0.0 computes) spread out within one TTL
        wait_for(steady, 1200, 'a steady stream of computed answers of 1.0.0 on Prometheus', delay=5)
        return value()
    finally:
        runner.stop()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--good', type=int, default=20, help='canaries of a good release (false alarms)')
    parser.add_argument('--slow', type=int, default=2, help='canaries of the 40 %% slower release (decision time)')
    parser.add_argument('--interval', type=int, default=15, help='rollout_gate_interval (seconds)')
    parser.add_argument('--hold', type=int, default=45, help='canary_duration of the good canaries (seconds)')
    parser.add_argument('--resolution', type=int, default=1,
                        help='Prometheus scrape and evaluation interval for the run, and rollout_judge_step (s)')
    parser.add_argument('--warmup', type=int, default=17, help='rollout_gate_warmup (seconds)')
    parser.add_argument('--judge-window', type=int, default=10,
                        help='monitoring_judge_window: seconds each point of the judge covers')
    parser.add_argument('--delay', type=int, default=6,
                        help='rollout_judge_delay (seconds): at least the judge window, so that no point reaches '
                             'back before the shift, into the candidate\'s deploy')
    parser.add_argument('--statistic', choices=('p95', 'mean'), default='p95',
                        help='rollout_judge_latency_statistic: the latency statistic the judge compares')
    parser.add_argument('--pairing', choices=('unpaired', 'paired'), default='unpaired',
                        help='rollout_judge_pairing: two samples (Mann-Whitney) or the same instants (signed-rank)')
    parser.add_argument('--source', choices=('points', 'histogram'), default='histogram',
                        help='rollout_judge_latency_source (the role\'s default: histogram): recorded points, or the '
                             'answers (histograms)')
    parser.add_argument('--quantile', type=float, default=0.5,
                        help='rollout_judge_latency_quantile: the quantile judged with --source histogram')
    parser.add_argument('--no-setup', action='store_true', help='use the lab as it is (provisioned, 1.0.0 stable)')
    args = parser.parse_args()
    slow_versions = ['8.9.%d' % k for k in range(1, args.slow + 1)]
    versions = slow_versions + ['8.8.0']
    prepare_lab(versions, reuse=args.no_setup)
    resolution = '%ds' % args.resolution
    playbook('site.yml', '--limit', 'localhost:monitoring', '-e', 'ssm_initial_version=1.0.0',
             '-e', 'monitoring_scrape_interval=%s monitoring_evaluation_interval=%s monitoring_judge_window=%ds' % (
                 resolution, resolution, args.judge_window))
    base = {'rollout_judge': True, 'rollout_judge_step': args.resolution, 'rollout_gate_interval': args.interval,
            'rollout_gate_warmup': args.warmup, 'rollout_judge_delay': args.delay,
            'rollout_judge_latency_statistic': args.statistic, 'rollout_judge_pairing': args.pairing,
            'rollout_judge_latency_source': args.source, 'rollout_judge_latency_quantile': args.quantile}
    histogram = args.source == 'histogram'
    check = 'latency_%s_vs_stable' % ('p%g' % (args.quantile * 100) if histogram else args.statistic)
    method = ('the answers\' histograms (p%g), binomial test' % (args.quantile * 100) if histogram
              else '%s of the points' % args.pairing)
    target = args.interval + 10

    p95 = stable_p95(args.resolution)
    faults = {'latency_ms': round(0.4 * p95 * 1000, 2)}
    print('p95 of 1.0.0: %.4f s; the slow release sleeps %.2f ms more per match' % (p95, faults['latency_ms']))
    slow = []
    for version in slow_versions:
        elapsed, output, report, seen = canary(version, dict(base, canary_duration=600), faults, expect_rc=2)
        if seen.get('first_seen') is None:
            raise SystemExit('%s never answered a request: %s' % (version, output[-3000:]))
        verdict = output.split('FAILED and was rolled back', 1)[-1]
        record = {'release': version, 'detection_s': round(seen['last_seen'] - seen['first_seen'], 1),
                  'playbook_s': round(elapsed, 1), 'rolled_back': 'FAILED and was rolled back' in output,
                  'by_judge': check in verdict, 'requests': report['total_requests'],
                  'failed': report['failed_requests']}
        slow.append(record)
        print('slow %s: %.1f s (target %d s), rolled back %s by the judge %s, %d failed' % (
            version, record['detection_s'], target, record['rolled_back'], record['by_judge'], record['failed']))

    good = []
    for index in range(1, args.good + 1):
        elapsed, output, report, seen = canary('8.8.0', dict(base, canary_duration=args.hold), {}, expect_rc=None)
        passed = 'canary of 8.8.0: PASSED' in ' '.join(output.split())
        record = {'run': index, 'passed': passed, 'false_rollback': 'FAILED and was rolled back' in output,
                  'playbook_s': round(elapsed, 1), 'requests_to_it': seen.get('count', 0),
                  'failed': report['failed_requests']}
        good.append(record)
        print('good canary %d: passed %s, false rollback %s, %.1f s, %d failed' % (
            index, passed, record['false_rollback'], elapsed, record['failed']))
        playbook('rollback.yml')

    detections = [r['detection_s'] for r in slow]
    summary = {
        'stable_p95_s': p95, 'slow_fault_ms': faults['latency_ms'], 'target_s': target, 'interval_s': args.interval,
        'resolution_s': args.resolution, 'warmup_s': args.warmup, 'statistic': args.statistic,
        'pairing': args.pairing, 'source': args.source, 'quantile': args.quantile if histogram else None,
        'judge_window_s': args.judge_window, 'delay_s': args.delay, 'hold_s': args.hold,
        'detection_s': {'min': min(detections), 'median': statistics.median(detections), 'max': max(detections)}
        if detections else None,
        'slow_all_rolled_back_by_the_judge': all(r['rolled_back'] and r['by_judge'] for r in slow),
        'good_runs': len(good), 'good_passed': sum(r['passed'] for r in good),
        'false_rollbacks': sum(r['false_rollback'] for r in good),
        'failed_requests': sum(r['failed'] for r in slow + good)}
    result = {'date': datetime.date.today().isoformat(), 'machine': os.uname().nodename, 'summary': summary,
              'slow': slow, 'good': good}
    os.makedirs(RESULTS, exist_ok=True)
    with open(os.path.join(RESULTS, 'judge.json'), 'w') as handle:
        json.dump(result, handle, indent=2)
    d = summary['detection_s'] or {'min': 0, 'median': 0, 'max': 0}
    lines = ['Measured %s on %s (%d cores): the lab (Prometheus scraping and evaluating every %d s for this run; '
             'cache TTL 60 s), `rollout_gate_warmup` %d s, `rollout_gate_interval` %d s, `rollout_judge: true` (the '
             '%s of computed answers at most 1.1 x stable, error rate at most 1.5 x stable, %s, 98 %% confidence, >= 10 '
             'points or answers a side, `rollout_judge_step` %d s, `monitoring_judge_window` %d s, `rollout_judge_delay` %d s); '
             'the lab\'s steady load (%g requests/s) through both balancers. The stable release\'s p95 of computed '
             'answers was %.2f ms; the slow release sleeps %.2f ms more per match (40 %% of that p95, far under the '
             '200 ms threshold).' % (
                 result['date'], result['machine'], os.cpu_count() or 0, args.resolution, args.warmup, args.interval,
                 check[len('latency_'):-len('_vs_stable')], method, args.resolution, args.judge_window, args.delay, 2 * trafficgen.LAB_STEADY_RATE, p95 * 1000,
                 faults['latency_ms']),
             '',
             '| | result | target |',
             '|---|---|---|',
             '| decision time of the judge, slow release takes traffic → all traffic on stable (min / median / max '
             'over %d runs) | %.1f / %.1f / %.1f s | ≤ %d s (the threshold gates\' target) |' % (
                 len(slow), d['min'], d['median'], d['max'], target),
             '| slow release rolled back by the judge (`%s`) | %s | every run |' % (
                 check, 'every run' if summary['slow_all_rolled_back_by_the_judge'] else 'NOT every run'),
             '| false rollbacks over %d canaries of a good release (%d s holds) | %d (%d passed) | 0 |' % (
                 len(good), args.hold, summary['false_rollbacks'], summary['good_passed']),
             '| failed requests | %d | 0 |' % summary['failed_requests'],
             '',
             '| run | release | outcome | canary.yml (s) | requests to it | failed |',
             '|---|---|---|---|---|---|']
    for r in slow:
        lines.append('| slow | %s | %s, decided in %.1f s | %.1f | - | %d |' % (
            r['release'], 'rolled back by the judge' if r['by_judge'] else 'NOT caught by the judge',
            r['detection_s'], r['playbook_s'], r['failed']))
    for r in good:
        lines.append('| good %d | 8.8.0 | %s | %.1f | %d | %d |' % (
            r['run'], 'passed' if r['passed'] else ('FALSE ROLLBACK' if r['false_rollback'] else 'not passed'),
            r['playbook_s'], r['requests_to_it'], r['failed']))
    write_section(BEGIN, END, lines)
    print(json.dumps(summary, indent=2))
    ok = (d['max'] <= target and summary['slow_all_rolled_back_by_the_judge'] and summary['false_rollbacks'] == 0
          and summary['good_passed'] == len(good) and summary['failed_requests'] == 0)
    return 0 if ok else 1


if __name__ == '__main__':
    sys.exit(main())
