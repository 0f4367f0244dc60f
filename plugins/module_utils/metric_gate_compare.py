# -*- coding: utf-8 -*-
# Copyright: SuperSmartMatch platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The ``kind: compare`` check of metric_gate: the candidate judged against the stable side.

Each round reads both series over the window since the gate's start
(``start_at``, else its first round) with Prometheus range queries at
``step`` (default: the gate's interval), and :func:`metric_gate_judge.judge`
compares them. The window grows with every round, so the latest judgement
stands for the check (see ``check_verdict``).

With ``source: histogram`` the two queries are histogram bucket selectors:
each round reads the answers each side gave over the window (one instant
query, ``sum by (le) (increase(<selector>[<window>s]))`` at its end) and
:func:`metric_gate_judge.judge_histogram` tests the candidate's ``quantile``
on them.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re

from ansible_collections.supersmartmatch.platform.plugins.module_utils.metric_gate_common import (
    GateError, ProviderError, fmt, fmt_bound, json_number, parse_bound)
from ansible_collections.supersmartmatch.platform.plugins.module_utils.metric_gate_judge import (
    DIRECTIONS, judge, judge_histogram, judge_paired, pair_up)

COMPARE_ONLY_KEYS = ('kind', 'confidence', 'direction', 'min_samples', 'step', 'lookback', 'pairing', 'source',
                     'quantile')
PAIRINGS = ('unpaired', 'paired')
SOURCES = ('points', 'histogram')
DEFAULT_QUANTILE = 0.95
# a metric name and optional label matchers, nothing else: the check wraps it in increase(...[Ns])
SELECTOR = re.compile(r'[a-zA-Z_:][a-zA-Z0-9_:]*(\{(\s*[a-zA-Z_][a-zA-Z0-9_]*\s*(=~|!~|!=|=)\s*'
                      r'"(?:[^"\\\n]|\\.)*"\s*,?)*\s*\})?\Z')
KINDS = ('threshold', 'compare')
DEFAULT_CONFIDENCE = 0.98
DEFAULT_MIN_SAMPLES = 10
MAX_POINTS = 240   # per side and round: 240 x 240 pairwise differences judge in ~0.1 s


def range_step(start, end, step):
    """The step of the range queries: ``step``, widened so that a side has at most MAX_POINTS points.

    A 6 h hold at 30 s would give 720 points a side (518 400 pairwise
    differences to sort each round); wider steps also make the points less
    correlated.
    """
    return max(float(step), (end - start) / (MAX_POINTS - 1)) if end > start else float(step)


def _whole(value, option, where, minimum):
    if isinstance(value, bool):
        raise GateError('%s: %s must be a whole number >= %d, got %r' % (where, option, minimum, value))
    try:
        number = int(value)
        exact = float(value) == number
    except (TypeError, ValueError, OverflowError):
        raise GateError('%s: %s must be a whole number >= %d, got %r' % (where, option, minimum, value))
    if not exact or number < minimum:
        raise GateError('%s: %s must be a whole number >= %d, got %r' % (where, option, minimum, value))
    return number


def normalize_compare(item, check, where):
    """Complete ``check`` (name, provider, query, baseline_query, url, baseline_url, on_no_data,
    initial_delay already set) with the judge's options; refuse what a compare check cannot use."""
    if check['provider'] != 'prometheus':
        raise GateError('%s: kind compare needs provider prometheus (range queries)' % where)
    if check.get('baseline_query') is None:
        raise GateError('%s: kind compare needs a baseline_query (the stable side)' % where)
    for key in ('min', 'max'):
        if item.get(key) is not None:
            raise GateError('%s: kind compare takes no %s (the tolerance is max_ratio or min_ratio)' % (where, key))
    direction = item.get('direction') or 'higher_is_worse'
    if direction not in DIRECTIONS:
        raise GateError('%s: direction must be one of %s, got %r' % (where, ', '.join(DIRECTIONS), direction))
    confidence = parse_bound(item.get('confidence', DEFAULT_CONFIDENCE), 'confidence', where)
    if not 0.5 <= confidence < 1:
        raise GateError('%s: confidence must be >= 0.5 and < 1, got %s' % (where, fmt_bound(confidence)))
    max_ratio = parse_bound(item.get('max_ratio'), 'max_ratio', where)
    min_ratio = parse_bound(item.get('min_ratio'), 'min_ratio', where)
    if direction == 'higher_is_worse':
        if max_ratio is None or max_ratio < 1 or min_ratio is not None:
            raise GateError('%s: direction higher_is_worse needs max_ratio >= 1 (the candidate may be at most '
                            'max_ratio x the stable side) and no min_ratio' % where)
    elif min_ratio is None or not 0 < min_ratio <= 1 or max_ratio is not None:
        raise GateError('%s: direction lower_is_worse needs 0 < min_ratio <= 1 (the candidate must be at least '
                        'min_ratio x the stable side) and no max_ratio' % where)
    step = item.get('step')
    if step is not None:
        step = parse_bound(step, 'step', where)
        if step <= 0:
            raise GateError('%s: step must be > 0 seconds, got %s' % (where, fmt_bound(step)))
    lookback = parse_bound(item.get('lookback', 0), 'lookback', where)
    if lookback is None or lookback < 0:
        raise GateError('%s: lookback must be >= 0 seconds, got %s' % (where, fmt_bound(lookback)))
    pairing = item.get('pairing') or 'unpaired'
    if pairing not in PAIRINGS:
        raise GateError('%s: pairing must be one of %s, got %r' % (where, ', '.join(PAIRINGS), pairing))
    source = item.get('source') or 'points'
    if source not in SOURCES:
        raise GateError('%s: source must be one of %s, got %r' % (where, ', '.join(SOURCES), source))
    quantile = item.get('quantile')
    if source == 'histogram':
        _histogram_options(check, direction, pairing, where)
        quantile = parse_bound(DEFAULT_QUANTILE if quantile is None else quantile, 'quantile', where)
        if not 0 < quantile < 1:
            raise GateError('%s: quantile must be > 0 and < 1, got %s' % (where, fmt_bound(quantile)))
    elif quantile is not None:
        raise GateError('%s: quantile applies to source histogram only' % where)
    check.update(kind='compare', direction=direction, confidence=confidence, max_ratio=max_ratio,
                 min_ratio=min_ratio, min=None, max=None, step=step, lookback=lookback, pairing=pairing,
                 source=source, quantile=quantile,
                 min_samples=_whole(item.get('min_samples', DEFAULT_MIN_SAMPLES), 'min_samples', where, 3))
    return check


def _histogram_options(check, direction, pairing, where):
    """Refuse what a histogram comparison cannot use: it judges a high quantile of durations."""
    if direction != 'higher_is_worse':
        raise GateError('%s: source histogram compares a quantile of durations: direction must be '
                        'higher_is_worse' % where)
    if pairing != 'unpaired':
        raise GateError('%s: source histogram compares the answers of the whole window: no pairing' % where)
    for key in ('query', 'baseline_query'):
        if not SELECTOR.match(check[key]):
            raise GateError('%s: with source histogram, %s must be a histogram bucket selector such as '
                            'x_bucket{version="1.2.0"}, got %r' % (where, key, check[key]))


def compare_threshold_text(check):
    """``candidate <= 1.1 x stable (Mann-Whitney, 98% confidence, >= 10 samples each)``, or with
    pairing ``(paired, Wilcoxon signed-rank, 98% confidence, >= 10 pairs)``."""
    if check['direction'] == 'higher_is_worse':
        bound = 'candidate <= %s x stable' % fmt_bound(check['max_ratio'])
    else:
        bound = 'candidate >= %s x stable' % fmt_bound(check['min_ratio'])
    if check.get('source') == 'histogram':
        return 'candidate p%s <= %s x stable (answers, binomial test, %s%% confidence, >= %d answers each)' % (
            fmt_bound(check['quantile'] * 100), fmt_bound(check['max_ratio']), fmt_bound(check['confidence'] * 100),
            check['min_samples'])
    if check.get('pairing') == 'paired':
        return '%s (paired, Wilcoxon signed-rank, %s%% confidence, >= %d pairs)' % (
            bound, fmt_bound(check['confidence'] * 100), check['min_samples'])
    return '%s (Mann-Whitney, %s%% confidence, >= %d samples each)' % (
        bound, fmt_bound(check['confidence'] * 100), check['min_samples'])


def _signed(value):
    text = fmt(value)
    return text if text.startswith('-') else '+' + text


def judgement_text(check, result):
    """The judge's finding in one phrase, naming the samples, the shift and the tolerance."""
    paired = result.get('paired')
    if result.get('histogram'):
        return _histogram_text(check, result)
    if result['outcome'] == 'inconclusive':
        if paired:
            return 'too few samples: %d instants with a value on both sides (min_samples %d)' % (
                result['n_candidate'], result['min_samples'])
        return 'too few samples: candidate %d, stable %d (min_samples %d)' % (
            result['n_candidate'], result['n_baseline'], result['min_samples'])
    bound = ('max_ratio %s' % fmt_bound(check['max_ratio']) if check['direction'] == 'higher_is_worse'
             else 'min_ratio %s' % fmt_bound(check['min_ratio']))
    ratio = ('candidate %s x stable' % fmt(result['ratio']) if result['ratio'] is not None
             else 'stable median 0')
    if paired:
        tolerance = check['max_ratio'] if check['direction'] == 'higher_is_worse' else check['min_ratio']
        stats = 'paired: candidate - %s x stable %s, %s%% CI [%s, %s], p=%s, %d pairs' % (
            fmt_bound(tolerance), _signed(result['shift']), fmt_bound(result['confidence'] * 100),
            _signed(result['ci'][0]), _signed(result['ci'][1]), fmt(result['p_value'], 2), result['n_candidate'])
    else:
        stats = 'shift %s, %s%% CI [%s, %s], p=%s, %d vs %d samples' % (
            _signed(result['shift']), fmt_bound(result['confidence'] * 100), _signed(result['ci'][0]),
            _signed(result['ci'][1]), fmt(result['p_value'], 2), result['n_candidate'], result['n_baseline'])
    if result['outcome'] == 'failed':
        op = '>' if check['direction'] == 'higher_is_worse' else '<'
        return '%s (%s) %s %s, significant' % (ratio, stats, op, bound)
    return '%s (%s) within %s' % (ratio, stats, bound)


def _histogram_text(check, result):
    """``candidate p95 1.21 x stable (0.0012 s vs 0.001 s; 19 of 120 answers above 1.1 x 0.00104 s,
    6 expected, p=0.0001) > max_ratio 1.1, significant``."""
    if result['outcome'] == 'inconclusive':
        return 'too few answers: candidate %d, stable %d (min_samples %d)' % (
            result['n_candidate'], result['n_baseline'], result['min_samples'])
    name = 'p%s' % fmt_bound(result['quantile'] * 100)
    ratio = ('candidate %s %s x stable' % (name, fmt(result['ratio'])) if result['ratio'] is not None
             else 'candidate %s, stable %s 0' % (name, name))
    stats = '%s s vs %s s; %d of %d answers above %s x %s s, %s expected, p=%s' % (
        fmt(result['candidate_quantile']), fmt(result['baseline_quantile']), result['exceeding'],
        result['n_candidate'], fmt_bound(check['max_ratio']), fmt(result['baseline_bound']),
        fmt(result['expected'], 3), fmt(result['p_value'], 2))
    if result['outcome'] == 'failed':
        return '%s (%s) > max_ratio %s, significant' % (ratio, stats, fmt_bound(check['max_ratio']))
    return '%s (%s) within max_ratio %s' % (ratio, stats, fmt_bound(check['max_ratio']))


def rounds_from(check):
    """Seconds after the gate's first round from which ``check`` takes part in the rounds.

    Its ``initial_delay``; for a compare check that delay counts from the
    opening of its window, the first round less its ``lookback`` (the judge's
    delay counts from the traffic shift), so it waits ``initial_delay -
    lookback`` after the first round, and not at all when the lookback covers
    the delay."""
    return max(0.0, float(check.get('initial_delay') or 0) - float(check.get('lookback') or 0))


def measure_compare(check, fetch_series, window):
    """One judgement of a compare check over ``window`` = (start, end, step); errors become ``error``."""
    start, end, step = window
    # the window may open before the gate's first round (lookback, e.g. at the traffic shift); a check
    # with an initial_delay leaves out what came before it (e.g. a release's cold caches)
    start = start + (check.get('initial_delay') or 0) - (check.get('lookback') or 0)
    step = range_step(start, end, step)
    item = dict(value=None, baseline=None, kind='compare')
    try:
        if fetch_series is None:
            raise ProviderError('no range query provider')
        shape = dict(histogram=True) if check.get('source') == 'histogram' else {}
        candidate = fetch_series(check['query'], check.get('url'), start, end, step, **shape)
        try:
            baseline = fetch_series(check['baseline_query'], check.get('baseline_url') or check.get('url'),
                                    start, end, step, **shape)
        except ProviderError as exc:
            raise ProviderError('baseline: %s' % exc)
    except ProviderError as exc:
        item.update(outcome='error', message=str(exc))
        return item
    if check.get('source') == 'histogram':
        try:
            result = judge_histogram(candidate, baseline, check['quantile'], check['max_ratio'],
                                     check['confidence'], check['min_samples'])
        except ValueError as exc:
            item.update(outcome='error', message='not a histogram: %s' % exc)
            return item
        item.update(outcome=result['outcome'], message=judgement_text(check, result),
                    value=json_number(result.get('ratio')), baseline=json_number(result.get('baseline_quantile')),
                    judge=dict((key, json_number(value) if isinstance(value, float) else value)
                               for key, value in result.items()))
        return item
    if check.get('pairing') == 'paired':
        result = judge_paired(pair_up(candidate, baseline), check['direction'],
                              check.get('max_ratio'), check.get('min_ratio'), check['confidence'],
                              check['min_samples'])
    else:
        result = judge([value for _at, value in candidate], [value for _at, value in baseline], check['direction'],
                       check.get('max_ratio'),
                       check.get('min_ratio'), check['confidence'], check['min_samples'])
    item.update(outcome=result['outcome'], message=judgement_text(check, result),
                value=json_number(result.get('ratio')), baseline=json_number(result.get('baseline_median')),
                judge=dict((key, json_number(value) if isinstance(value, float) else value)
                           for key, value in result.items() if key != 'ci'))
    if 'ci' in result:
        item['judge']['ci'] = [json_number(bound) for bound in result['ci']]
    return item
