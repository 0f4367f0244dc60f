"""The demo's tables and closing summary, read from the JSON files it produces.

scripts/demo never scrapes Ansible's output: each phase writes its JSON report
to the rollout report directory (``<run_id>.json``), and tools/trafficgen.py
writes its own with ``--report-json``. This tool reads them:

  demo_summary.py phase   --report-dir D --before LIST --phase P --release R --probe J --out F
      find the report the phase just wrote (the one not in LIST), print its
      verdict, split, gates and the shares observed by the probe, and keep
      the essentials in F (JSON)
  demo_summary.py summary --traffic J --out S PHASE_FILE...
      print the traffic table and the closing summary, write it to S and exit
      non-zero if the demo did not do what it promises
  demo_summary.py check S
      exit non-zero (naming every problem) unless S says the demo passed

What "passed" means (summarize()): every phase has its expected verdict
(passed, and promoted for full), zero failed requests in the background load
and in every probe, zero blocked ones (an answer 4xx: a WAF 403, a rate limit
429, a feedback refused with 401; every request of the labelled set is
legitimate), and the release's observed share within TOLERANCE_PP percentage
points of its phase's target (5, 25, 100).
"""

import argparse
import json
import os
import sys

PHASE_TARGETS = {'canary': 5.0, 'extended': 25.0, 'full': 100.0}
PHASE_VERDICTS = {'canary': 'passed', 'extended': 'passed', 'full': 'promoted'}
TOLERANCE_PP = 1.0


class DemoError(Exception):
    """A file the demo should have produced is missing or malformed."""


def load_json(path, what):
    try:
        with open(path, encoding='utf-8') as handle:
            data = json.load(handle)
    except OSError as exc:
        raise DemoError('%s: cannot read %s (%s)' % (what, path, exc.strerror or exc))
    except ValueError as exc:
        raise DemoError('%s: %s is not JSON (%s)' % (what, path, exc))
    if not isinstance(data, dict):
        raise DemoError('%s: %s does not hold a JSON object' % (what, path))
    return data


def new_report_name(names_before, names_now, phase, release, read):
    """The report a phase just wrote: a name in ``names_now`` not in
    ``names_before`` whose content (``read(name)``) is for this phase and
    release. Exactly one must match."""
    fresh = sorted(n for n in set(names_now) - set(names_before) if n.endswith('.json'))
    matching = []
    for name in fresh:
        report = read(name)
        if report.get('phase') == phase and str(report.get('release')) == str(release):
            matching.append(name)
    if len(matching) != 1:
        raise DemoError('expected one new %s report for %s, found %d (%s)'
                        % (phase, release, len(matching), ', '.join(matching) or 'none'))
    return matching[0]


def share_of(probe, version):
    """Share (percent) of ``version`` in a trafficgen report; 0 if it never answered."""
    versions = probe.get('versions') or {}
    entry = versions.get(version) or {}
    return float(entry.get('share_pct') or 0.0)


def phase_record(report, probe):
    """The essentials of one phase: verdict, split, gates, observed shares."""
    release = str(report.get('release'))
    hold = (report.get('gates') or {}).get('hold') or {}
    checks = {}
    for name, counts in sorted((hold.get('summary') or {}).items()):
        checks[name] = {key: counts.get(key) for key in
                        ('verdict', 'last_value', 'threshold', 'passed', 'failed', 'inconclusive', 'error', 'measurements')}
    return {
        'phase': report.get('phase'),
        'run_id': report.get('run_id'),
        'release': release,
        'verdict': report.get('verdict'),
        'split_before': report.get('split_before'),
        'split_after': report.get('split_after'),
        'failures': report.get('failures') or [],
        'gate_verdict': hold.get('verdict'),
        'gate_message': hold.get('message'),
        'checks': checks,
        'measurements': len(hold.get('measurements') or []),
        'duration_s': report.get('duration_s'),
        'hold_s': report.get('hold_s'),
        'observed': {v: float(d.get('share_pct') or 0.0) for v, d in sorted((probe.get('versions') or {}).items())},
        'release_share_pct': share_of(probe, release),
        'probe_requests': probe.get('total_requests'),
        'probe_failed_requests': probe.get('failed_requests'),
        'probe_blocked_requests': probe.get('client_errors'),
    }


def _pct(value):
    return '?' if value is None else '%s %%' % value


def format_phase(record):
    after = record.get('split_after') or {}
    before = record.get('split_before')
    before_pct = before.get('percent') if isinstance(before, dict) else before
    lines = [
        '    verdict: %s   (run %s)' % (record['verdict'], record['run_id']),
        '    split: %s -> %s of users on %s (%s)' % (
            _pct(before_pct), _pct(after.get('percent')), after.get('candidate_version') or record['release'],
            after.get('status') or '?'),
        '    time: %s s, of which hold %s s' % (record.get('duration_s'), record.get('hold_s')),
        '    gates: %s over %d measurements%s' % (record.get('gate_verdict'), record['measurements'],
                                                  (': ' + record['gate_message']) if record.get('gate_message') else ''),
    ]
    if record['checks']:
        lines.append('      %-14s %-12s %-12s %-14s %s' % ('check', 'verdict', 'last value', 'threshold', 'pass/fail/inc/err'))
        for name, c in record['checks'].items():
            value = c.get('last_value')
            lines.append('      %-14s %-12s %-12s %-14s %s/%s/%s/%s' % (
                name, c.get('verdict'), '-' if value is None else '%.4g' % value, c.get('threshold') or '',
                c.get('passed'), c.get('failed'), c.get('inconclusive'), c.get('error')))
    for failure in record['failures']:
        lines.append('    failure: %s' % json.dumps(failure, sort_keys=True))
    lines.append('    observed over %s users: %s' % (record.get('probe_requests'), ', '.join(
        '%s %.2f %%' % (v, s) for v, s in record['observed'].items()) or 'no answer'))
    return '\n'.join(lines)


CHECKS = ('pre_deployment_check', 'validate_deployment')  # run by canary.yml and full.yml


def summarize(phases, traffic, tolerance=TOLERANCE_PP, checks=None):
    """The closing summary and its verdict: a dict with ``passed`` and
    ``problems`` (one sentence each). ``checks``: name -> check report
    (pre_deployment_check.json, validate_deployment.json), each must pass."""
    problems = []
    verdicts = {}
    for name, report in sorted((checks or {}).items()):
        table = report.get('table') if isinstance(report.get('table'), list) else []
        verdicts[name] = table[-1] if table else None
        if report.get('passed') is not True:
            problems.append('%s: %s' % (name, verdicts[name] or 'no verdict'))
    seen = [p.get('phase') for p in phases]
    if seen != list(PHASE_TARGETS):
        problems.append('phases run: %s, expected %s' % (', '.join(map(str, seen)) or 'none', ', '.join(PHASE_TARGETS)))
    rows = []
    for p in phases:
        phase = p.get('phase')
        target = PHASE_TARGETS.get(phase)
        share = p.get('release_share_pct')
        within = target is not None and share is not None and abs(share - target) <= tolerance
        expected = PHASE_VERDICTS.get(phase)
        if p.get('verdict') != expected:
            problems.append('%s: verdict %s, expected %s' % (phase, p.get('verdict'), expected))
        if not within:
            problems.append('%s: %s observed on %s %% of users, expected %s %% +/- %s pp'
                            % (phase, p.get('release'), share, target, tolerance))
        if p.get('probe_failed_requests'):
            problems.append('%s: %s failed requests in the probe' % (phase, p.get('probe_failed_requests')))
        if p.get('probe_blocked_requests'):
            problems.append('%s: %s blocked requests (4xx) in the probe' % (phase, p.get('probe_blocked_requests')))
        rows.append({'phase': phase, 'verdict': p.get('verdict'), 'target_pct': target, 'release_share_pct': share,
                     'within_tolerance': within, 'duration_s': p.get('duration_s'), 'hold_s': p.get('hold_s')})
    failed, blocked = traffic.get('failed_requests'), traffic.get('client_errors')
    if failed != 0:
        problems.append('background traffic: %s failed requests of %s' % (failed, traffic.get('total_requests')))
    if blocked != 0:
        problems.append('background traffic: %s blocked requests (4xx) of %s' % (blocked, traffic.get('total_requests')))
    return {
        'passed': not problems,
        'problems': problems,
        'tolerance_pp': tolerance,
        'phases': rows,
        'checks': verdicts,
        'traffic': {
            'total_requests': traffic.get('total_requests'),
            'failed_requests': failed,
            'blocked_requests': blocked,
            'users_switched': traffic.get('users_switched'),
            'versions': {v: {'count': d.get('count'), 'share_pct': d.get('share_pct'), 'precision': d.get('precision'),
                             'p95_ms': (d.get('latency_ms') or {}).get('p95')}
                         for v, d in sorted((traffic.get('versions') or {}).items())},
        },
    }


def format_summary(summary):
    lines = ['    %-9s %-9s %8s %10s %9s' % ('phase', 'verdict', 'target', 'observed', 'time')]
    for row in summary['phases']:
        share = row['release_share_pct']
        lines.append('    %-9s %-9s %7s%% %9s%% %8ss%s' % (
            row['phase'], row['verdict'], row['target_pct'], '?' if share is None else '%.2f' % share,
            row['duration_s'], '' if row['within_tolerance'] else '  <- off target'))
    for name, verdict in sorted((summary.get('checks') or {}).items()):
        lines.append('    %s: %s' % (name, verdict))
    t = summary['traffic']
    lines.append('    background traffic: %s requests, %s failed, %s blocked (4xx)'
                 % (t['total_requests'], t['failed_requests'], t.get('blocked_requests')))
    for version, d in t['versions'].items():
        lines.append('      %s: %s matches, precision %s, p95 %s ms' % (
            version, d['count'], '-' if d['precision'] is None else '%.3f' % d['precision'],
            '-' if d['p95_ms'] is None else '%.1f' % d['p95_ms']))
    if summary['passed']:
        lines.append('    PASSED: every phase passed, 0 failed and 0 blocked requests, shares within %s pp of 5/25/100'
                     % summary['tolerance_pp'])
    else:
        lines.extend('    PROBLEM: %s' % problem for problem in summary['problems'])
    return '\n'.join(lines)


def check(summary):
    """Problems with a written summary (empty when it says the demo passed)."""
    problems = list(summary.get('problems') or [])
    missing = sorted(set(CHECKS) - set(summary.get('checks') or {}))
    if missing:
        problems.append('no %s table: the phases did not run it' % ', '.join(missing))
    if summary.get('passed') is not True and not problems:
        problems.append('the summary does not say the demo passed')
    if summary.get('passed') is True and problems:
        problems.append('the summary says passed but lists problems')
    return problems


def _write(path, data):
    directory = os.path.dirname(path)
    if directory:
        os.makedirs(directory, exist_ok=True)
    tmp = path + '.tmp'
    with open(tmp, 'w', encoding='utf-8') as handle:
        json.dump(data, handle, indent=2, sort_keys=True)
        handle.write('\n')
    os.replace(tmp, path)


def cmd_phase(args):
    with open(args.before, encoding='utf-8') as handle:
        before = handle.read().split()
    names = os.listdir(args.report_dir) if os.path.isdir(args.report_dir) else []
    name = new_report_name(before, names, args.phase, args.release,
                           lambda n: load_json(os.path.join(args.report_dir, n), 'phase report'))
    record = phase_record(load_json(os.path.join(args.report_dir, name), 'phase report'),
                          load_json(args.probe, 'probe report'))
    _write(args.out, record)
    print(format_phase(record))
    return 0


def cmd_table(args):
    report = load_json(args.report, 'check report')
    if not isinstance(report.get('table'), list) or not report['table']:
        raise DemoError('%s holds no table' % args.report)
    print('    %s:' % args.title)
    for line in report['table']:
        print('      %s' % line)
    return 0 if report.get('passed') is True else 1


def cmd_summary(args):
    phases = [load_json(path, 'phase record') for path in args.phase_files]
    checks = dict((os.path.basename(path)[:-len('.json')], load_json(path, 'check report'))
                  for path in args.check or [])
    summary = summarize(phases, load_json(args.traffic, 'traffic report'), checks=checks)
    _write(args.out, summary)
    print(format_summary(summary))
    return 0 if summary['passed'] else 1


def cmd_check(args):
    problems = check(load_json(args.summary, 'demo summary'))
    for problem in problems:
        print('demo: %s' % problem, file=sys.stderr)
    return 1 if problems else 0


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest='command', required=True)
    p = sub.add_parser('phase', help='one phase: find its report, print it, keep its essentials')
    p.add_argument('--report-dir', required=True)
    p.add_argument('--before', required=True, help='file listing the report names present before the phase')
    p.add_argument('--phase', required=True, choices=sorted(PHASE_TARGETS))
    p.add_argument('--release', required=True)
    p.add_argument('--probe', required=True, help='trafficgen probe --report-json file')
    p.add_argument('--out', required=True)
    p.set_defaults(func=cmd_phase)
    q = sub.add_parser('table', help='print the table of a check report (pre_deployment_check.json, '
                                     'validate_deployment.json)')
    q.add_argument('report')
    q.add_argument('--title', required=True)
    q.set_defaults(func=cmd_table)
    s = sub.add_parser('summary', help='the closing summary')
    s.add_argument('--traffic', required=True, help='trafficgen load --report-json file')
    s.add_argument('--out', required=True)
    s.add_argument('--check', action='append', help='a check report that must have passed (repeatable)')
    s.add_argument('phase_files', nargs='+')
    s.set_defaults(func=cmd_summary)
    c = sub.add_parser('check', help='exit non-zero unless a summary says passed')
    c.add_argument('summary')
    c.set_defaults(func=cmd_check)
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except DemoError as exc:
        print('demo: %s' % exc, file=sys.stderr)
        return 2


if __name__ == '__main__':
    sys.exit(main())
