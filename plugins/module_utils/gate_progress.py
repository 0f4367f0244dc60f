# -*- coding: utf-8 -*-
# Copyright: SuperSmartMatch platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""One line per gate round, for the operator's terminal (the ``rollout`` callback)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

MARKS = {'passed': 'ok', 'failed': 'FAILED', 'error': 'ERROR', 'inconclusive': 'inconclusive', 'no_data': 'no data'}


def _value(value):
    if value is None:
        return '-'
    if isinstance(value, float):
        return '%.4g' % value
    return str(value)


def format_round(host, result):
    """``[lb1] gate round 3/7, 20 s left: precision 0.97 (value >= 0.94) ok; ... -> running``."""
    rnd = result.get('round') or {}
    parts = []
    for item in rnd.get('results') or []:
        threshold = item.get('threshold')
        parts.append('%s %s%s %s' % (item.get('name'), _value(item.get('value')),
                                     ' (%s)' % threshold if threshold else '',
                                     MARKS.get(item.get('outcome'), item.get('outcome') or '?')))
    left = result.get('remaining_s')
    head = '[%s] gate round %s/%s%s' % (host, rnd.get('index', '?'), result.get('rounds_total', '?'),
                                        ', %d s left' % int(left) if isinstance(left, (int, float)) and left >= 0 else '')
    verdict = result.get('verdict') or 'running'
    confirm = result.get('confirm')
    if isinstance(confirm, dict) and not confirm.get('decided'):
        problem = ' (%s)' % confirm['problem'] if confirm.get('problem') else ''
        if verdict == 'running':
            verdict = 'running, waiting for approval%s' % problem
        elif verdict in ('passed', 'inconclusive'):
            verdict = '%s, but nobody approved in time%s' % (verdict, problem)
    return '%s: %s -> %s' % (head, '; '.join(parts) if parts else 'nothing measured', verdict)


def format_decision(host, result):
    """``[lb1] approval: approved by alice@ctl at <time> (approve.yml)``, or None without a decision."""
    confirm = result.get('confirm')
    if not isinstance(confirm, dict) or not confirm.get('decided'):
        return None
    return '[%s] approval: %s by %s at %s (%s)%s' % (
        host, confirm.get('decision'), confirm.get('by'), confirm.get('at'), confirm.get('source'),
        ': %s' % confirm['comment'] if confirm.get('comment') else '')


def progress_batches(count, every):
    """How many batches of rounds the hold runs: one without progress messages, else one per
    ``every`` rounds of the ``count``, and a spare (the batch that ends with the last round)."""
    count, every = int(count), int(every)
    if count < 1:
        raise ValueError('the gate needs at least one round, got %d' % count)
    if every < 0:
        raise ValueError('rollout_webhook_progress_rounds must be >= 0, got %d' % every)
    return 1 if every == 0 else count // every + 2


def progress_event(host, result, every, notified=0):
    """The progress message due after a gate call, or ``{}``.

    Due when progress messages are on (``every`` > 0), the gate is still
    running, the call measured a new round (not a retry after an error) whose
    number is a multiple of ``every``, and that round was not announced yet
    (``notified`` is the last round announced). The finished gate is told
    by the phase's verdict instead.
    """
    every = int(every or 0)
    result = result if isinstance(result, dict) else {}
    rnd = result.get('round')
    if every <= 0 or result.get('finished', True) or not isinstance(rnd, dict) or rnd.get('retry'):
        return {}
    index = rnd.get('index')
    if not isinstance(index, int) or isinstance(index, bool) or index <= int(notified or 0) or index % every:
        return {}
    return {'round': index, 'text': format_round(host, result),
            'details': {'round': index, 'rounds_total': result.get('rounds_total'),
                        'remaining_s': result.get('remaining_s'), 'current': result.get('current'),
                        'checks': [dict((k, item.get(k)) for k in ('name', 'value', 'outcome', 'threshold'))
                                   for item in rnd.get('results') or []]}}
