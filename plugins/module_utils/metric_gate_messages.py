# -*- coding: utf-8 -*-
# Copyright: SuperSmartMatch platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The words of metric_gate: why a check failed, was inconclusive or errored, and the one-line verdict."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.supersmartmatch.platform.plugins.module_utils.metric_gate_common import GOOD_OUTCOMES, MAX_LISTED_VALUES, fmt, fmt_bound, no_data
from ansible_collections.supersmartmatch.platform.plugins.module_utils.metric_gate_evaluate import violation
from ansible_collections.supersmartmatch.platform.plugins.module_utils.metric_gate_watch import moved_text


def _listed(values):
    if len(values) > MAX_LISTED_VALUES:
        return ', '.join(values[:MAX_LISTED_VALUES]) + ', ... (%d more)' % (len(values) - MAX_LISTED_VALUES)
    return ', '.join(values)


def failure_message(check, measurements, on_no_data='inconclusive'):
    """``precision 0.912, 0.93 < min 0.94 in 2 of 3 measurements``.

    Lists the failing values (4 significant digits) per broken bound, in the
    order measured; ``N of M`` counts failed among good measurements.
    """
    mine = [m for m in measurements if m['check'] == check['name'] and m['outcome'] in GOOD_OUTCOMES]
    failed = [m for m in mine if m['outcome'] == 'failed']
    groups = []
    by_kind = {}
    for m in failed:
        value = m.get('value')
        if m.get('_raw') is not None:
            value = m['_raw']
        if no_data(value) and 'no data' in m.get('message', ''):
            key = ('no_data', None)
            shown = None
        else:
            broken = violation(check, value if value is not None else float('nan'), m.get('baseline'))
            if broken is None:
                key, shown = ('other', None), m.get('message', '')
            else:
                key, shown = (broken[0], broken[2]), fmt(broken[1], against=broken[2])
        if key not in by_kind:
            by_kind[key] = []
            groups.append(key)
        by_kind[key].append(shown)
    parts = []
    for key in groups:
        kind, bound = key
        values = by_kind[kind, bound]
        if kind == 'no_data':
            parts.append('no data x%d (on_no_data=%s)' % (len(values), on_no_data))
        elif kind == 'other':
            parts.append(_listed(values))
        else:
            op = '<' if kind.startswith('min') else '>'
            prefix = 'ratio ' if kind.endswith('ratio') else ''
            parts.append('%s%s %s %s %s' % (prefix, _listed(values), op, kind, fmt_bound(bound)))
    return '%s %s in %d of %d measurements' % (check['name'], ' and '.join(parts), len(failed), len(mine))


def inconclusive_message(check, measurements):
    mine = [m for m in measurements if m['check'] == check['name'] and m['outcome'] in GOOD_OUTCOMES]
    if not mine:
        return '%s was never measured' % check['name']
    odd = [m for m in mine if m['outcome'] == 'inconclusive']
    reasons = []
    for m in odd:
        if m['message'] not in reasons:
            reasons.append(m['message'])
    return '%s inconclusive in %d of %d measurements (%s)' % (check['name'], len(odd), len(mine), '; '.join(reasons))


def error_message(check, counts, consecutive_error_limit):
    return '%s: %d consecutive errors (consecutive_error_limit %d), last: %s' % (
        check['name'], counts['consecutive_errors'], consecutive_error_limit, counts.get('last_error', ''))


def gate_title(name=None, labels=None):
    title = 'metric gate'
    if name:
        title += ' %r' % name
    if labels:
        title += ' (%s)' % ', '.join('%s=%s' % (key, labels[key]) for key in sorted(labels))
    return title


def compare_message(check, measurements):
    """A compare check judges its whole window each round: its latest judgement says why."""
    mine = [m for m in measurements if m['check'] == check['name'] and m['outcome'] in GOOD_OUTCOMES]
    if not mine:
        return '%s was never measured' % check['name']
    return '%s: %s' % (check['name'], mine[-1]['message'])


def gate_message(result, checks, name=None, labels=None, failure_limit=0, consecutive_error_limit=4,
                 on_no_data='inconclusive', allow_inconclusive=False, watch_field='generation', step=False):
    """One line for the task: the verdict and, for each check at fault, why."""
    verdict = result['verdict']
    summary = result['summary']
    measurements = result['measurements']
    title = gate_title(name, labels)
    if verdict == 'aborted':
        return '%s: aborted, %s' % (title, moved_text(result.get('watch') or {}, watch_field))
    details = []
    for check in checks:
        counts = summary[check['name']]
        if verdict == 'error' and counts['verdict'] == 'error':
            details.append(error_message(check, counts, consecutive_error_limit))
        elif check.get('kind') == 'compare' and verdict == counts['verdict'] and verdict != 'passed':
            details.append(compare_message(check, measurements))
        elif verdict == 'failed' and counts['verdict'] == 'failed':
            details.append(failure_message(check, measurements, check.get('on_no_data') or on_no_data))
        elif verdict == 'inconclusive' and counts['verdict'] == 'inconclusive':
            details.append(inconclusive_message(check, measurements))
    if verdict == 'passed':
        good = sum(counts['measurements'] for counts in summary.values())
        text = '%s passed: %d check(s), %d measurement(s) within thresholds' % (title, len(checks), good)
        tolerated = ['%s failed %d (failure_limit %d)' % (c['name'], summary[c['name']]['failed'], failure_limit)
                     for c in checks if summary[c['name']]['failed']]
        if tolerated:
            text += ' (tolerated: %s)' % '; '.join(tolerated)
        return text
    text = '%s %s: %s' % (title, verdict, '; '.join(details))
    if verdict == 'inconclusive' and not step:
        text += ' (allowed)' if allow_inconclusive else ' (set allow_inconclusive to accept)'
    return text


def duration_text(seconds):
    """``1h 05m``, ``4m 10s``, ``12s``."""
    seconds = int(round(max(seconds, 0)))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return '%dh %02dm' % (hours, minutes)
    if minutes:
        return '%dm %02ds' % (minutes, secs)
    return '%ds' % secs


def round_message(title, index, total, results, remaining, retry=False):
    """``metric gate 'canary': round 3 of 240: precision 0.97 passed (value >= 0.94); 1h 58m left``."""
    parts = []
    for item in results:
        value = fmt(item['value'])
        if item['outcome'] == 'no_data':
            parts.append('%s no data, counted %s (%s)' % (item['name'], item.get('counted_as'), item['threshold']))
        elif item['outcome'] == 'error':
            parts.append('%s error (%s)' % (item['name'], item['message']))
        elif item.get('kind') == 'compare':
            parts.append('%s %s (%s)' % (item['name'], item['outcome'], item['message']))
        else:
            parts.append('%s %s %s (%s)' % (item['name'], value, item['outcome'], item['threshold']))
    return '%s: round %d of %d%s: %s; %s left' % (title, index, total, ' (retry)' if retry else '',
                                                  '; '.join(parts) or 'no check due yet', duration_text(remaining))


def public_measurements(measurements):
    """Measurements without the private keys (``_raw``), ready for JSON."""
    return [dict((key, value) for key, value in m.items() if not key.startswith('_')) for m in measurements]
