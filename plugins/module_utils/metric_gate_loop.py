# -*- coding: utf-8 -*-
# Copyright: SuperSmartMatch platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The sampling loop of metric_gate, as a state that advances one attempt at a time.

A gate is a plain, JSON-serialisable ``state`` dict: :func:`new_run` makes it,
:func:`wait_until_due` waits for the next attempt (watching the ``watch``
callable at least every second when one is given), :func:`attempt` measures
one round (or the retry of the checks that errored in it). Classic mode
(:func:`run_gate`) loops over these in one process; step mode
(``metric_gate_step``) runs one attempt per module call and saves the state
between calls.

Nothing here does I/O by itself: ``fetch_value``, ``sleep``, ``clock`` and
``now`` are given, so unit tests run instantly with fakes.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import time

from ansible_collections.supersmartmatch.platform.plugins.module_utils.metric_gate_common import (
    ProviderError, is_nan, iso_utc, json_number, no_data)
from ansible_collections.supersmartmatch.platform.plugins.module_utils.metric_gate_compare import (
    measure_compare, rounds_from)
from ansible_collections.supersmartmatch.platform.plugins.module_utils.metric_gate_evaluate import (
    check_verdict, evaluate_value, new_summary, verdict_of)

WATCH_PERIOD = 1.0
TIMING_KEYS = ('count', 'interval', 'initial_delay', 'failure_limit', 'consecutive_error_limit',
               'error_retry_interval', 'on_no_data', 'start_at')


def measure(check, fetch_value, on_no_data, timestamp, fetch_series=None, window=None):
    """Take one measurement of ``check``; errors become an ``error`` measurement.

    A ``kind: compare`` check is judged by ``metric_gate_compare`` on the
    series that ``fetch_series`` reads over ``window`` (start, end, step).
    """
    if check.get('kind') == 'compare':
        item = measure_compare(check, fetch_series, window)
        item.update(check=check['name'], time=iso_utc(timestamp))
        return item
    item = dict(check=check['name'], time=iso_utc(timestamp), value=None)
    if check.get('baseline_query'):
        item['baseline'] = None
    value = baseline = None
    try:
        value = fetch_value(check['query'], check.get('url'), check.get('provider'))
        if check.get('baseline_query') and not no_data(value):
            try:
                baseline = fetch_value(check['baseline_query'], check.get('baseline_url') or check.get('url'),
                                       check.get('provider'))
            except ProviderError as exc:
                raise ProviderError('baseline: %s' % exc)
    except ProviderError as exc:
        item.update(value=json_number(value), outcome='error', message=str(exc))
        return item
    outcome, message = evaluate_value(check, value, baseline, check.get('on_no_data') or on_no_data)
    item.update(value=json_number(value), outcome=outcome, message=message)
    if no_data(value):
        item['_no_data'] = True
    if value is not None and item['value'] is None and not is_nan(value):
        item['_raw'] = value  # +/-Inf: null in the result, kept for failure_message
    if check.get('baseline_query'):
        item['baseline'] = json_number(baseline)
    return item


def new_run(checks, settings, clock, now):
    """The state of a gate that has not measured yet.

    ``start_at`` (epoch seconds) anchors the first round to an event, however
    late the gate itself started; with ``initial_delay`` the later wait wins.
    """
    start_at = settings.get('start_at')
    delay = max(settings.get('initial_delay') or 0.0, (start_at - now()) if start_at is not None else 0.0, 0.0)
    return dict(
        next_at=clock() + delay,
        anchor=now() + delay,           # epoch of the first round (the compare window starts there)
        started=None,                   # clock() when the first round started
        sample=0,                       # rounds started
        pending=None,                   # names of the checks to retry in the current round
        summary=dict((check['name'], new_summary(check)) for check in checks),
        measurements=[],
        decided=None,
        stopped_early=False,
        finished=False,
        aborted=None,
    )


def wait_seconds(state, clock, interval):
    wait = state['next_at'] - clock()
    if state['sample'] and state['pending'] is None:
        wait = min(wait, interval)
    return max(wait, 0.0)


def wait_until_due(state, settings, sleep, clock, watch=None):
    """Sleep until the next attempt is due; return the watch's news if it moved, else None.

    Without ``watch`` this is one sleep. With it, the watched file is read
    before the attempt and at least every WATCH_PERIOD seconds while waiting.
    """
    if watch is None:
        wait = wait_seconds(state, clock, settings['interval'])
        if wait > 0:
            sleep(wait)
        return None
    while True:
        moved = watch()
        if moved:
            return moved
        wait = wait_seconds(state, clock, settings['interval'])
        if wait <= 0:
            return None
        sleep(min(wait, WATCH_PERIOD))


def abort(state, moved):
    """Stop the gate at once: the watched state moved under it."""
    state.update(aborted=moved, finished=True, pending=None, stopped_early=True)
    return state


def attempt(state, checks, fetch_value, settings, clock, now, fetch_series=None):
    """Measure one round, or retry the checks that errored in it; return the new measurements.

    A check whose measurement errors is retried after ``error_retry_interval``
    within the same round (the error does not use a sample slot). The next
    round is due ``interval`` seconds after the start of the last attempt of
    the round, so request time does not stretch the cadence. A check with an
    ``initial_delay`` is left out of the rounds that start less than that
    many seconds after the first round (Argo's per-metric ``initialDelay``);
    a compare check's delay counts from the opening of its window (see
    ``rounds_from``).

    The gate is decided early when a check reaches ``consecutive_error_limit``
    errors in a row (error) or has more than ``failure_limit`` failed
    measurements (failed).
    """
    by_name = dict((check['name'], check) for check in checks)
    if state['pending'] is None:
        state['sample'] += 1
        if state['started'] is None:
            state['started'] = clock()
        elapsed = clock() - state['started']
        pending = [check for check in checks if rounds_from(check) <= elapsed]
    else:
        pending = [by_name[name] for name in state['pending']]
    attempt_start = clock()
    window = None
    if any(check.get('kind') == 'compare' for check in pending):
        window = (settings['start_at'] if settings.get('start_at') is not None else state['anchor'], now())
    retry = []
    new = []
    decided = None
    position = 0
    for position, check in enumerate(pending):
        counts = state['summary'][check['name']]
        item = measure(check, fetch_value, settings['on_no_data'], now(), fetch_series,
                       None if window is None else window + (check.get('step') or settings['interval'],))
        item['sample'] = state['sample']
        state['measurements'].append(item)
        new.append(item)
        if item['outcome'] == 'error':
            counts['error'] += 1
            counts['consecutive_errors'] += 1
            counts['last_error'] = item['message']
            if counts['consecutive_errors'] >= settings['consecutive_error_limit']:
                counts['error_limit_reached'] = True
                decided = 'error'
                break
            retry.append(check['name'])
            continue
        counts[item['outcome']] += 1
        counts['measurements'] += 1
        counts['consecutive_errors'] = 0
        counts['last_value'] = item['value']
        counts['last_outcome'] = item['outcome']
        if 'baseline' in item:
            counts['last_baseline'] = item['baseline']
        if counts['failed'] > settings['failure_limit']:
            decided = 'failed'
            break
    for name, counts in state['summary'].items():
        counts['verdict'] = check_verdict(counts, settings['failure_limit'])
    if decided:
        state.update(decided=decided, finished=True, pending=None,
                     stopped_early=bool(retry) or position < len(pending) - 1 or state['sample'] < settings['count'])
    elif retry:
        state.update(pending=retry, next_at=clock() + settings['error_retry_interval'])
    else:
        state['pending'] = None
        if state['sample'] >= settings['count']:
            state['finished'] = True
        else:
            state['next_at'] = attempt_start + settings['interval']
    return new


def verdict_of_run(state, failure_limit=0):
    """``aborted`` when the watch stopped the gate, else the worst verdict of its checks."""
    if state.get('aborted'):
        return 'aborted'
    return verdict_of(state['summary'], failure_limit)


def result_of(state, failure_limit=0):
    return dict(verdict=verdict_of_run(state, failure_limit), measurements=state['measurements'],
                summary=state['summary'], samples=state['sample'], stopped_early=state['stopped_early'],
                watch=state.get('aborted'))


def run_gate(checks, fetch_value, count=1, interval=60.0, initial_delay=0.0, failure_limit=0,
             consecutive_error_limit=4, error_retry_interval=10.0, on_no_data='inconclusive',
             sleep=time.sleep, clock=time.monotonic, now=time.time, start_at=None, watch=None,
             fetch_series=None):
    """Measure ``checks`` ``count`` times in this process and return the verdict (classic mode).

    Timing: wait until the first round is due (``initial_delay``, ``start_at``),
    then take sample rounds (see :func:`attempt`). Total ~ initial_delay +
    interval x (count - 1) + retries x error_retry_interval. ``watch`` (a
    callable returning None while the watched state has not moved) is read
    before every attempt and every second while waiting; when it moves the
    gate stops with the verdict ``aborted``.

    Returns ``dict(verdict, measurements, summary, samples, stopped_early, watch)``
    (``stopped_early``: measurements were skipped because the verdict was decided;
    ``watch``: what the watch reported, when it stopped the gate).
    """
    settings = dict(count=count, interval=interval, initial_delay=initial_delay, failure_limit=failure_limit,
                    consecutive_error_limit=consecutive_error_limit, error_retry_interval=error_retry_interval,
                    on_no_data=on_no_data, start_at=start_at)
    state = new_run(checks, settings, clock, now)
    while not state['finished']:
        moved = wait_until_due(state, settings, sleep, clock, watch)
        if moved:
            abort(state, moved)
            break
        attempt(state, checks, fetch_value, settings, clock, now, fetch_series)
    return result_of(state, failure_limit)
