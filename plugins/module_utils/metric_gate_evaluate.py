# -*- coding: utf-8 -*-
# Copyright: SuperSmartMatch platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Judging measurements for metric_gate: thresholds, violations, outcomes and verdicts."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import math

from ansible_collections.supersmartmatch.platform.plugins.module_utils.metric_gate_compare import compare_threshold_text
from ansible_collections.supersmartmatch.platform.plugins.module_utils.metric_gate_common import RATIO_TOLERANCE, VERDICT_RANK, fmt, fmt_bound, is_nan, no_data


def _range_text(lo, hi, subject):
    """``0.94 <= value <= 1``, ``value >= 0.94``, ``value <= 1`` or None."""
    if lo is not None and hi is not None:
        return '%s <= %s <= %s' % (fmt_bound(lo), subject, fmt_bound(hi))
    if lo is not None:
        return '%s >= %s' % (subject, fmt_bound(lo))
    if hi is not None:
        return '%s <= %s' % (subject, fmt_bound(hi))
    return None


def threshold_text(check):
    """``0.94 <= value <= 1``, ``value <= 0.5 and value/baseline <= 1.2``..."""
    if check.get('kind') == 'compare':
        return compare_threshold_text(check)
    parts = [_range_text(check.get('min'), check.get('max'), 'value'),
             _range_text(check.get('min_ratio'), check.get('max_ratio'), 'value/baseline')]
    return ' and '.join(part for part in parts if part)


def violation(check, value, baseline=None):
    """The first bound that ``value`` breaks, as ``(kind, shown, bound)``, else None.

    ``kind`` is ``min``/``max`` (value) or ``min_ratio``/``max_ratio``
    (value / baseline). Bounds are inclusive: a value equal to a bound
    passes; a ratio within a relative 1e-9 of its bound counts as equal
    (``0.09 / 0.1`` is ``0.8999999999999999``). The ratio is only looked at with a usable baseline (not None,
    NaN or 0). ``value`` must not be None or NaN.
    """
    if check.get('min') is not None and value < check['min']:
        return ('min', value, check['min'])
    if check.get('max') is not None and value > check['max']:
        return ('max', value, check['max'])
    if check.get('baseline_query') and not no_data(baseline) and baseline != 0:
        ratio = value / baseline
        lo, hi = check.get('min_ratio'), check.get('max_ratio')
        if lo is not None and ratio < lo and not math.isclose(ratio, lo, rel_tol=RATIO_TOLERANCE):
            return ('min_ratio', ratio, lo)
        if hi is not None and ratio > hi and not math.isclose(ratio, hi, rel_tol=RATIO_TOLERANCE):
            return ('max_ratio', ratio, hi)
    return None


def _violation_text(kind, shown, bound):
    op = '<' if kind.startswith('min') else '>'
    prefix = 'ratio ' if kind.endswith('ratio') else ''
    return '%s%s %s %s %s' % (prefix, fmt(shown, against=bound), op, kind, fmt_bound(bound))


def evaluate_value(check, value, baseline=None, on_no_data='inconclusive'):
    """Return ``(outcome, message)`` for one measurement of ``check``.

    * no data (``value`` None or NaN): ``on_no_data`` decides:
      fail -> failed, pass -> passed, inconclusive -> inconclusive;
    * ``value < min`` or ``value > max`` -> failed (bounds inclusive);
    * with a baseline_query: a baseline that is None, NaN or 0 gives
      inconclusive (the ratio is undefined), otherwise ``value / baseline``
      is held to ``min_ratio <= ratio <= max_ratio`` (inclusive);
    * otherwise passed.
    """
    if no_data(value):
        reason = 'value is NaN' if is_nan(value) else 'query returned no value'
        outcome = {'fail': 'failed', 'pass': 'passed'}.get(on_no_data, 'inconclusive')
        return outcome, 'no data (%s), on_no_data=%s' % (reason, on_no_data)
    broken = violation(check, value, baseline)
    if broken:
        return 'failed', _violation_text(*broken)
    if check.get('baseline_query'):
        if no_data(baseline):
            return 'inconclusive', 'baseline has no data (%s): ratio undefined' % (
                'NaN' if is_nan(baseline) else 'no value')
        if baseline == 0:
            return 'inconclusive', 'baseline is 0: ratio undefined'
        return 'passed', '%s (ratio %s) within %s' % (fmt(value), fmt(value / baseline), threshold_text(check))
    return 'passed', '%s within %s' % (fmt(value), threshold_text(check))


def verdict_of(summary, failure_limit=0):
    """The gate verdict from the per-check counts, worst first.

    error: a check reached consecutive_error_limit; failed: a check has
    more failed measurements than ``failure_limit``; inconclusive: a check
    has any inconclusive measurement; passed otherwise.
    """
    verdicts = [check_verdict(counts, failure_limit) for counts in summary.values()]
    if not verdicts:
        return 'inconclusive'
    return max(verdicts, key=VERDICT_RANK.get)


def check_verdict(counts, failure_limit=0):
    """One check's verdict from its counts.

    A ``kind: compare`` check judges a window that grows with every round, so
    its latest good measurement stands for all the earlier ones (the first
    rounds, with too few samples, are inconclusive and then superseded).
    """
    if counts.get('error_limit_reached'):
        return 'error'
    if counts.get('failed', 0) > failure_limit:
        return 'failed'
    if counts.get('kind') == 'compare':
        return 'passed' if counts.get('last_outcome') == 'passed' else 'inconclusive'
    if counts.get('inconclusive', 0) > 0 or not counts.get('measurements', 0):
        # never measured (the gate stopped first): no evidence, never a pass
        return 'inconclusive'
    return 'passed'


def new_summary(check):
    counts = dict(passed=0, failed=0, inconclusive=0, error=0, measurements=0, consecutive_errors=0,
                  error_limit_reached=False, last_value=None, threshold=threshold_text(check), verdict='passed')
    if check.get('kind') == 'compare':
        counts['kind'] = 'compare'
    return counts


def task_failed(verdict, allow_inconclusive=False):
    """Classic mode: the task fails for failed, error and aborted, and for inconclusive unless allowed."""
    if verdict in ('failed', 'error', 'aborted'):
        return True
    return verdict == 'inconclusive' and not allow_inconclusive
