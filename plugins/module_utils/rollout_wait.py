# -*- coding: utf-8 -*-
# Copyright: SuperSmartMatch platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The decisions of the wait for approval, as plain functions (the rollout role's filters call them).

With ``rollout_require_approval: true`` a phase whose hold passed opens the
wait (the approval record on every balancer), then runs a second gate, round
by round, every ``rollout_gate_interval`` seconds for at most
``rollout_approval_timeout`` seconds, until a decision:

==========================================  ======================  ===================================
what happened                               failure step            verdict, split
==========================================  ======================  ===================================
approved (approve.yml, or the webhook 2xx)  none                    passed / promoted; completed
rejected (approve.yml -e decision=reject)   ``rejected``            rolled_back: "rejected by <who>"
a gate round failed or errored              ``hold``                rolled_back, as in the hold
the split moved (rollback.yml)              ``aborted``             aborted; left as the mover made it
no decision before the timeout              ``approval_timeout``    approval_timeout; left as it is
==========================================  ======================  ===================================
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.supersmartmatch.platform.plugins.module_utils.rollout_approval import (
    COMMENT_RE, confirm_text)
from ansible_collections.supersmartmatch.platform.plugins.module_utils.rollout_hooks import seconds, url_problem
from ansible_collections.supersmartmatch.platform.plugins.module_utils.rollout_plan import (
    RELEASE_RE, listed, no_answer, short, without_delays)
from ansible_collections.supersmartmatch.platform.plugins.module_utils.rollout_verdict import hold_failure

MAX_WAIT = 7 * 86400
TRUE_WORDS = ('true', 'yes', 'on', '1')
FALSE_WORDS = ('false', 'no', 'off', '0', '')
DECISION_WORDS = {'approve': 'approved', 'reject': 'rejected'}
HOLD_ROLLBACK_STEPS = ('hold', 'rejected')


def as_bool(value, option):
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in TRUE_WORDS + FALSE_WORDS:
        return value.strip().lower() in TRUE_WORDS
    raise ValueError('%s must be true or false, got %r' % (option, value))


def check_settings(require, timeout, url, interval):
    """Why the approval settings are wrong, as a sentence, or None."""
    try:
        required = as_bool(require, 'rollout_require_approval')
    except ValueError as exc:
        return str(exc)
    if url not in (None, ''):
        problem = url_problem(url, 'rollout_approval_url')
        if problem:
            return problem
    if not required:
        return None
    try:
        interval = seconds(interval, 'rollout_gate_interval', maximum=MAX_WAIT)
        seconds(timeout, 'rollout_approval_timeout', minimum=interval, maximum=MAX_WAIT)
    except ValueError as exc:
        return '%s (at least one gate interval, at most 7 days)' % exc
    return None


def settings(require, timeout):
    """``{'required': bool, 'timeout': seconds}`` (timeout 0 when no approval is required); checked first."""
    required = as_bool(require, 'rollout_require_approval')
    return {'required': required, 'timeout': seconds(timeout, 'rollout_approval_timeout', maximum=MAX_WAIT)
            if required else 0}


def wait_gate(gate, timeout, interval, started_at):
    """The gate that runs while the phase waits: the hold's checks, one round per interval, until the timeout.

    The first round comes one interval after the wait opened (the hold just
    measured), the last one at the timeout or just after it, so an approval
    recorded before the deadline is always seen. Per-check ``initial_delay``
    is dropped: the candidate has been live for the whole hold.
    """
    interval = seconds(interval, 'rollout_gate_interval', maximum=MAX_WAIT)
    timeout = seconds(timeout, 'rollout_approval_timeout', minimum=interval, maximum=MAX_WAIT)
    checks = without_delays((gate or {}).get('checks'))
    count = -(-timeout // interval)
    start_at = float(started_at) + interval
    return {'checks': checks, 'rounds': count, 'start_at': start_at, 'deadline': float(started_at) + timeout,
            'end_at': start_at + interval * (count - 1)}


def wait_failure(host, result, ctx, timeout):
    """The failures a finished wait records ([] when it was approved, or did not run)."""
    result = result or {}
    if result.get('skipped'):
        return []
    phase_text = '%s of %s' % (ctx.get('phase'), ctx.get('release'))
    if no_answer(result):
        return [{'host': host, 'step': 'hold',
                 'msg': 'the gate host %s became unreachable during the wait for approval: the wait cannot decide, '
                        'so the release fails closed (%s)' % (host, short(result.get('msg') or ''))}]
    confirm = result.get('confirm') or {}
    if result.get('finished'):
        failure = hold_failure(host, result, during='the wait for approval')
        if failure and failure['step'] != 'gate_inconclusive':
            if failure['step'] == 'hold':
                failure['msg'] = 'during the wait for approval: %s' % failure['msg']
            return [failure]
    elif confirm.get('decided'):
        if confirm.get('decision') == 'approved':
            return []
        return [{'host': host, 'step': 'rejected',
                 'msg': 'the %s was rejected by %s at %s (%s)%s' % (
                     phase_text, confirm.get('by'), confirm.get('at'), confirm.get('source'),
                     (': %s' % confirm['comment']) if confirm.get('comment') else '')}]
    elif result.get('failed'):
        return [{'host': host, 'step': 'hold', 'msg': 'the wait for approval could not run: %s'
                 % short(result.get('msg') or result.get('message') or 'failed', 1000)}]
    return [{'host': host, 'step': 'approval_timeout',
             'msg': 'nobody approved the %s within rollout_approval_timeout = %s s (approve with '
                    'playbooks/approve.yml -e release_version=%s, or a 2xx from rollout_approval_url): the split '
                    'is left as it is' % (phase_text, timeout, ctx.get('release'))}]


def hold_rolls_back(failures):
    """Whether the hold (or the wait for approval) must roll every balancer back now."""
    return any((f or {}).get('step') in HOLD_ROLLBACK_STEPS for f in failures or [])


def report_section(required, timeout, result):
    """The ``approval`` part of the phase report."""
    if not required:
        return {'required': False}
    result = result or {}
    confirm = result.get('confirm') or {}
    out = {'required': True, 'timeout_s': timeout, 'decision': 'not asked', 'by': None, 'at': None,
           'source': None, 'comment': None}
    if confirm.get('decided'):
        out.update((k, confirm.get(k)) for k in ('decision', 'by', 'at', 'source', 'comment'))
    elif result and not result.get('skipped'):
        out['decision'] = 'none'
        out['text'] = confirm_text(confirm) if confirm else None
    return out


# --------------------------------------------------------------------------
# playbooks/approve.yml
# --------------------------------------------------------------------------

def approve_problem(release, decision, phase, comment, by):
    """Why an approve.yml request is wrong, as a sentence, or None (checked before any balancer is touched)."""
    release = '' if release is None else str(release)
    if not RELEASE_RE.match(release):
        return ('give the release waiting for approval with -e release_version=X.Y.Z (letters, digits and . _ + -, '
                'at most 64); got %r' % (release or 'nothing'))
    if decision not in DECISION_WORDS:
        return 'decision must be approve or reject (-e decision=reject), got %r' % (decision,)
    if phase not in (None, '') and phase not in ('canary', 'extended', 'full'):
        return 'phase must be canary, extended or full (or left out), got %r' % (phase,)
    if comment not in (None, '') and not (isinstance(comment, str) and COMMENT_RE.match(comment)):
        return ('comment must be at most 200 of letters, digits, spaces and . _ , : ; ! ? ( ) @ + / # = %% -, got %r'
                % (comment,))
    if not isinstance(by, str) or not by.strip():
        return 'rollout_approval_by (who decides) must not be empty'
    return None


def approve_summary(hosts, results, active_hosts, decision):
    """What approve.yml achieved on each balancer: ``{'ok', 'recorded', 'already', 'refused', 'unknown', 'text'}``.

    ``ok`` only when every balancer answered and holds the decision now. A
    balancer that refused keeps its record as it was (compare-and-set).
    """
    word = DECISION_WORDS.get(decision, decision)
    recorded, already, refused, unknown = [], [], [], []
    texts = {}
    what = ''
    for host in hosts:
        result = (results or {}).get(host)
        if host not in (active_hosts or []) or result is None:
            unknown.append(host)
            texts[host] = 'dropped out of the run'
        elif no_answer(result):
            unknown.append(host)
            texts[host] = 'unreachable: %s' % short(result.get('msg') or '', 200)
        elif result.get('failed'):
            refused.append(host)
            texts[host] = short(result.get('msg') or 'refused', 500)
        else:
            (recorded if result.get('changed') else already).append(host)
            what = what or result.get('msg') or ''
    ok = not refused and not unknown and bool(recorded or already)
    if ok:
        then = ('it completes at its next check (within a second)' if word == 'approved'
                else 'it rolls back at its next check (within a second), then ends rolled_back')
        text = 'approve.yml: %s on %s; %s' % (what or word, listed(recorded + already), then)
    elif refused and not recorded and not already and not unknown:
        # every balancer refused: nothing changed anywhere (their reasons may differ by a time)
        if len(set(texts[h] for h in refused)) == 1:
            text = 'approve.yml refused: %s' % texts[refused[0]]
        else:
            text = 'approve.yml refused: %s' % '; '.join('%s: %s' % (h, texts[h]) for h in refused)
    else:
        parts = []
        if recorded or already:
            parts.append('%s on %s' % (word, listed(recorded + already)))
        if refused:
            parts.append('refused on %s (%s)' % (listed(refused), '; '.join('%s: %s' % (h, texts[h]) for h in refused)))
        if unknown:
            unreached = '; '.join('%s %s' % (h, texts[h]) for h in unknown)
            parts.append('NOT recorded on %s (%s): run approve.yml again as soon as it answers (the waiting phase '
                         'reads the first balancer)' % (listed(unknown), unreached))
        text = 'approve.yml INCOMPLETE: ' + '; '.join(parts)
    return {'ok': ok, 'recorded': recorded, 'already': already, 'refused': refused, 'unknown': unknown, 'text': text}
