# -*- coding: utf-8 -*-
# Copyright: SuperSmartMatch platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The decisions of a rollout phase after the hold, and of rollback.yml.

Plain functions called by the rollout role through the ``rollout_*`` filters
and by the unit tests with tables of cases: what the verdict play must do,
the verdict itself, the report and its summary, and what an emergency
rollback achieved on each balancer.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import datetime

from ansible_collections.supersmartmatch.platform.plugins.module_utils.rollout_plan import (
    describe_split, fmt_pct, listed, no_answer, short)

VERDICTS = ('passed', 'promoted', 'rolled_back', 'aborted', 'refused', 'inconclusive', 'approval_timeout', 'failed')
# failure steps that refuse a phase before anything moved, and those that roll it back
REFUSING_STEPS = ('plan', 'pre_rollout')
ROLLBACK_STEPS = ('deploy', 'hold', 'rejected')


FAILURE_FACTS = ('rollout_failed_plan', 'rollout_failed_deploy', 'rollout_failed_pre_rollout', 'rollout_failed_shift',
                 'rollout_failed_hold', 'rollout_failed_approval', 'rollout_failed_verdict')


def collect_failures(per_host):
    """Every failure recorded so far, in step order, each once.

    ``per_host`` maps host -> {fact name: list of failures}; a run_once fact
    sits on every host of its play, hence the de-duplication.
    """
    out = []
    for fact in FAILURE_FACTS:
        for host in per_host:
            for failure in (per_host[host] or {}).get(fact) or []:
                if failure and failure not in out:
                    out.append(dict(failure))
    return out


def steps_of(failures):
    return sorted(set(f.get('step') for f in failures or []))


# --------------------------------------------------------------------------
# The hold's outcome
# --------------------------------------------------------------------------

def hold_failure(host, result, during='the hold'):
    """The failure a finished hold records, or None when its gate passed.

    ``result`` is the last result of the gate (step mode), or the result of
    a hold that could not run (unreachable gate host, bad input).
    """
    result = result or {}
    if no_answer(result):
        return {'host': host, 'step': 'hold',
                'msg': 'the gate host %s became unreachable during %s: the gate cannot decide, so the '
                       'release fails closed (%s)' % (host, during, short(result.get('msg') or ''))}
    verdict = result.get('verdict')
    if verdict == 'passed':
        return None
    if verdict == 'aborted':
        watch = result.get('watch') or {}
        return {'host': host, 'step': 'aborted', 'msg': aborted_message(watch, during)}
    if verdict == 'inconclusive':
        return {'host': host, 'step': 'gate_inconclusive', 'msg': result.get('message') or result.get('msg')
                or 'the gate found no evidence either way'}
    return {'host': host, 'step': 'hold',
            'msg': result.get('message') or result.get('msg') or 'the gate %s' % (verdict or 'failed')}


def aborted_message(watch, during='the hold'):
    """``rolled back by bob@ctl at <time> during the hold``."""
    operation = watch.get('operation') or 'changed'
    verb = 'rolled back' if operation == 'rollback' else 'split %s' % operation
    return '%s by %s at %s during %s (generation %s)' % (
        verb, watch.get('updated_by') or 'someone', watch.get('updated_at') or 'an unknown time', during,
        watch.get('value') if watch.get('value') is not None else '?')


# --------------------------------------------------------------------------
# The verdict play: what to do
# --------------------------------------------------------------------------

def verdict_action(release, failures, shift_generations, views, rolled_back=None):
    """Decide what the verdict play does on the balancers.

    ``rolled_back`` maps the balancers the hold's failed gate already rolled
    back to the generation that rollback wrote: they are this run's, done.

    Returns ``{'action': 'complete' | 'rollback' | 'none', 'hosts': [...],
    'expected': {host: generation}, 'failures': [new failures]}``.

    * Nothing failed: every balancer must answer, show no drift, and still be
      at the generation this run's shift wrote; then the phase is marked
      completed there (compare-and-set on that generation).
    * A deployment or a gate failed and the split is still this run's: roll
      back, compare-and-set on this run's generation, so that a stale run
      never rolls back a newer change.
    * Otherwise (refused, also by a pre_rollout hook; inconclusive; not
      approved in time; aborted; or the split moved on): leave the split as it is.
    """
    failures = list(failures or [])
    shift_generations = shift_generations or {}
    rolled_back = rolled_back or {}     # host -> generation the hold's own rollback wrote
    new = []
    ours = {}
    for view in views:
        host = view['host']
        if view['status'] != 'ok':
            new.append({'host': host, 'step': 'unreachable',
                        'msg': '%s is %s after the hold (%s): its split is unknown' % (host, view['status'], view.get('msg'))})
            continue
        info = view['info']
        gen = int(info.get('generation') or 0)
        if info.get('drift'):
            new.append({'host': host, 'step': 'verdict',
                        'msg': 'drift on %s after the hold: %s' % (host, info.get('drift_reason') or 'differs')})
        elif host in rolled_back and gen == int(rolled_back[host]):
            continue                    # this run's gate already rolled it back
        elif host in shift_generations and gen == int(shift_generations[host]):
            ours[host] = gen
        elif host in shift_generations:
            state = info.get('state') or {}
            new.append({'host': host, 'step': 'moved',
                        'msg': 'the split on %s moved on during the phase (generation %d, this run wrote %d; last '
                               'change by %s at %s): %s' % (
                                   host, gen, int(shift_generations[host]), state.get('updated_by'),
                                   state.get('updated_at'), describe_split(state))})
    steps = steps_of(failures)
    if 'aborted' in steps or set(steps) & set(REFUSING_STEPS):
        return {'action': 'none', 'hosts': [], 'expected': {}, 'failures': [f for f in new if f['step'] == 'unreachable']}
    if not failures and not new:
        return {'action': 'complete', 'hosts': sorted(ours), 'expected': ours, 'failures': []}
    if set(steps) & set(ROLLBACK_STEPS) and ours:
        return {'action': 'rollback', 'hosts': sorted(ours), 'expected': ours, 'failures': new}
    return {'action': 'none', 'hosts': [], 'expected': {}, 'failures': new}


def step_results(hosts, results, active_hosts, step):
    """Failures of a per-balancer step (complete, promote, rollback) that must succeed everywhere it ran."""
    failures = []
    for host in hosts:
        result = (results or {}).get(host)
        if host not in (active_hosts or []) or result is None:
            failures.append({'host': host, 'step': step, 'msg': '%s dropped out of the run: its split is unknown' % host})
        elif no_answer(result):
            failures.append({'host': host, 'step': step, 'msg': '%s is unreachable: its split is unknown' % host})
        elif result.get('failed'):
            failures.append({'host': host, 'step': step, 'msg': short(result.get('msg') or '%s failed' % step, 1000)})
    return failures


# --------------------------------------------------------------------------
# The verdict
# --------------------------------------------------------------------------

def classify(phase, failures, rolled_back):
    """The phase's verdict: one of VERDICTS."""
    steps = steps_of(failures)
    if 'aborted' in steps:
        return 'aborted'
    if not failures:
        return 'promoted' if phase == 'full' else 'passed'
    if rolled_back:
        return 'rolled_back'
    if set(steps) <= set(REFUSING_STEPS):
        return 'refused'
    if steps == ['gate_inconclusive']:
        return 'inconclusive'
    if steps == ['approval_timeout']:
        return 'approval_timeout'
    return 'failed'


def unknown_of(failures):
    return sorted(set(f['host'] for f in failures or [] if 'split is unknown' in (f.get('msg') or '')))


def advice(phase, release, verdict, failures, after_state):
    """What the operator should do next, in one sentence (or '')."""
    unknown = unknown_of(failures)
    if verdict in ('inconclusive', 'approval_timeout'):
        pct = fmt_pct((after_state or {}).get('percent', 0))
        return ('Traffic is left as it is (%s %% on %s): run %s.yml again to hold %s, or rollback.yml'
                % (pct, release, phase, 'longer' if verdict == 'inconclusive' else 'and wait for approval again'))
    if verdict == 'aborted':
        return ('The hold stopped and the lease was given back: the split is what the rollback made it; '
                'a new canary can start now')
    if unknown:
        return ('The split of %s is unknown: check %s, then run rollback.yml (it repairs every balancer it reaches)'
                % (listed(unknown), 'it' if len(unknown) == 1 else 'them'))
    if verdict == 'rolled_back':
        return 'All traffic is back on the stable release'
    if verdict == 'failed' and 'moved' in steps_of(failures):
        return 'Somebody else changed the split during the phase; this run left it alone'
    return ''


# --------------------------------------------------------------------------
# The report
# --------------------------------------------------------------------------

def _split_after(views):
    for view in views or []:
        if view['status'] == 'ok' and view['info'].get('state'):
            state = view['info']['state']
            return {'percent': state.get('percent'), 'phase': state.get('phase'), 'status': state.get('status'),
                    'stable_version': (state.get('stable') or {}).get('version'),
                    'candidate_version': (state.get('candidate') or {}).get('version'),
                    'generation': view['info'].get('generation')}
    return {'percent': None, 'phase': None, 'status': None, 'stable_version': None, 'candidate_version': None,
            'generation': None}


def balancers(views):
    out = {}
    for view in views or []:
        if view['status'] != 'ok':
            out[view['host']] = {'status': 'unknown', 'reason': view.get('msg')}
            continue
        info = view['info']
        state = info.get('state') or {}
        out[view['host']] = {'status': 'ok', 'percent': state.get('percent'), 'phase': state.get('phase'),
                             'split_status': state.get('status'), 'generation': info.get('generation'),
                             'drift': bool(info.get('drift'))}
    return out


def gates_of(hold_result, gate_checks=None):
    if not hold_result or hold_result.get('skipped'):
        return {}
    checks = [dict((k, c.get(k)) for k in ('name', 'min', 'max', 'min_ratio', 'max_ratio') if c.get(k) is not None)
              for c in gate_checks or []]
    return {'hold': {'verdict': hold_result.get('verdict'),
                     'message': hold_result.get('message') or hold_result.get('msg'),
                     'summary': hold_result.get('summary') or {},
                     'checks': checks,
                     'measurements': hold_result.get('measurements') or []}}


def iso(epoch):
    return datetime.datetime.fromtimestamp(float(epoch), datetime.timezone.utc).strftime('%Y-%m-%dT%H:%M:%SZ')


def timeline(ctx, plan, shifted_at, finished_at, verdict, after):
    """The candidate's share over the phase: start, shift, end."""
    events = [{'time': ctx['started'], 'percent': ((plan or {}).get('before') or {}).get('percent'), 'event': 'start'}]
    if shifted_at and plan:
        events.append({'time': iso(shifted_at), 'percent': plan.get('percent'), 'event': 'shift'})
    events.append({'time': finished_at, 'percent': after.get('percent'), 'event': verdict})
    return events


def build_report(ctx, service, plan, failures, rolled_back, views_after, hold_result, finished_at, finished_epoch,
                 shifted_at=None, gate_checks=None, wait_result=None, approval=None, hooks=None):
    """The phase's JSON report (also what its summary and notification say).

    ``wait_result`` is the last result of the gate that ran while the phase
    waited for approval, ``approval`` what the wait decided, ``hooks`` the
    hook calls judged so far (name, type, ok, outcome).
    """
    phase, release = ctx['phase'], str(ctx['release'])
    verdict = classify(phase, failures, rolled_back)
    after = _split_after(views_after)
    report = {
        'service': service,
        'run_id': ctx['run_id'],
        'phase': phase,
        'release': release,
        'verdict': verdict,
        'by': ctx['holder'],
        'started_at': ctx['started'],
        'finished_at': finished_at,
        'duration_s': int(finished_epoch) - int(ctx['started_epoch']),
        'hold_s': int(ctx['hold']),
        'stable_version': (plan or {}).get('stable_version'),
        'split_before': (plan or {}).get('before'),
        'split_after': after,
        'balancers': balancers(views_after),
        'unknown_hosts': unknown_of(failures),
        'failures': list(failures or []),
        'gates': gates_of(hold_result, gate_checks),
        'approval': approval or {'required': False},
        'hooks': list(hooks or []),
    }
    if wait_result and not wait_result.get('skipped'):
        report['gates']['approval_wait'] = gates_of(wait_result, gate_checks)['hold']
    report['timeline'] = timeline(ctx, plan, shifted_at, finished_at, verdict, after)
    report['advice'] = advice(phase, release, verdict, failures, after)
    return report


def _split_text(split):
    if not split or split.get('percent') is None:
        return 'unknown'
    pct = float(split['percent'])
    return '%s %% on %s (stable), %s %% on %s (candidate); %s%s' % (
        fmt_pct(100 - pct), split.get('stable_version') or '-', fmt_pct(pct), split.get('candidate_version') or '-',
        split.get('phase'), ', ' + split['status'] if split.get('status') else '')


def _value(value):
    if value is None:
        return '-'
    try:
        return '%.4g' % float(value)
    except (TypeError, ValueError):
        return str(value)


def summary_lines(report, report_path=None):
    """The summary printed at the end of a phase (first line: the notification)."""
    r = report
    head = '%s of %s: %s in %s s (hold %s s)' % (r['phase'], r['release'], r['verdict'].upper(), r['duration_s'],
                                                 r['hold_s'])
    lines = [head, 'before: %s' % _split_text(r.get('split_before')), 'after: %s' % _split_text(r.get('split_after'))]
    for host, b in sorted((r.get('balancers') or {}).items()):
        if b['status'] != 'ok':
            lines.append('  %s: UNKNOWN (%s)' % (host, b.get('reason')))
    for f in r.get('failures') or []:
        lines.append('failure: [%s %s] %s' % (f.get('host'), f.get('step'), f.get('msg')))
    approval = r.get('approval') or {}
    if approval.get('required'):
        decided = ('%s by %s at %s (%s)' % (approval.get('decision'), approval.get('by'), approval.get('at'),
                                            approval.get('source')) if approval.get('by') else approval.get('decision'))
        lines.append('approval: %s' % decided)
    for call in r.get('hooks') or []:
        lines.append('hook: %s %s %s' % (call.get('type'), call.get('name'), call.get('outcome')))
    if r.get('advice'):
        lines.append('next: %s' % r['advice'])
    lines.append('run: %s by %s' % (r['run_id'], r['by']))
    if report_path:
        lines.append('report: %s' % report_path)
    hold = (r.get('gates') or {}).get('hold')
    if hold:
        lines.append('gate: %s' % hold.get('verdict'))
        for name, c in sorted((hold.get('summary') or {}).items()):
            lines.append('  %s: %s, %s measurement(s), last %s (%s)%s' % (
                name, c.get('verdict'), c.get('measurements'), _value(c.get('last_value')), c.get('threshold'),
                ', %s error(s)' % c['error'] if c.get('error') else ''))
    return lines


def fail_message(report):
    """The message of the task that fails a phase that did not pass (None if it passed)."""
    if report['verdict'] in ('passed', 'promoted'):
        return None
    words = {'rolled_back': 'FAILED and was rolled back', 'approval_timeout': 'was NOT APPROVED in time'}
    text = '%s of %s %s' % (report['phase'], report['release'],
                            words.get(report['verdict'], report['verdict'].upper()))
    details = '; '.join('[%s %s] %s' % (f.get('host'), f.get('step'), f.get('msg')) for f in report['failures'])
    return '%s: %s%s' % (text, details, ('. ' + report['advice']) if report.get('advice') else '')


# --------------------------------------------------------------------------
# rollback.yml
# --------------------------------------------------------------------------

def rollback_summary(hosts, results, active_hosts):
    """What an emergency rollback achieved on each balancer.

    ``ok`` only when every balancer answered and is at 0 % on its stable
    side. Any other balancer is named: ``unknown`` (unreachable, dropped out:
    it may still send users to the candidate) or ``failed`` (it answered but
    could not move).
    """
    moved, already, unknown, failed = [], [], [], []
    stable = None
    for host in hosts:
        result = (results or {}).get(host)
        if host not in (active_hosts or []) or result is None:
            unknown.append({'host': host, 'reason': 'dropped out of the run'})
        elif no_answer(result):
            unknown.append({'host': host, 'reason': 'unreachable: %s' % short(result.get('msg') or '', 200)})
        elif result.get('failed'):
            failed.append({'host': host, 'reason': short(result.get('msg') or 'failed', 500)})
        else:
            (moved if result.get('changed') else already).append(host)
            side = ((result.get('split') or {}).get('stable') or {})
            stable = stable or side
    back = moved + already
    stable_text = '%s (%s slot)' % ((stable or {}).get('version') or '-', (stable or {}).get('color') or '-')
    ok = not unknown and not failed
    if ok:
        text = 'rollback.yml: 100 %% back on %s on all %d load balancer(s)%s' % (
            stable_text, len(hosts), '' if moved else ', already there')
    else:
        parts = []
        if back:
            parts.append('100 %% back on %s on %s' % (stable_text, listed(back)))
        if unknown:
            parts.append('split UNKNOWN on %s (%s): it may still send users to the candidate; run rollback.yml '
                         'again as soon as it answers' % (listed(u['host'] for u in unknown),
                                                          '; '.join('%s %s' % (u['host'], u['reason']) for u in unknown)))
        if failed:
            parts.append('FAILED on %s (%s)' % (listed(u['host'] for u in failed),
                                                '; '.join('%s: %s' % (u['host'], u['reason']) for u in failed)))
        text = 'rollback.yml INCOMPLETE: ' + '; '.join(parts)
    return {'ok': ok, 'moved': moved, 'already': already, 'unknown': [u['host'] for u in unknown],
            'failed': [u['host'] for u in failed], 'stable': stable, 'text': text}
