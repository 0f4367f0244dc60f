# -*- coding: utf-8 -*-
# Copyright: SuperSmartMatch platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Step mode of metric_gate: one round per module call, the gate resumed from a file.

The rollout role loops on the module (``until: result.finished``) so each
round reaches the operator's terminal as it happens. Between calls the gate's
state is kept in ``resume_file`` (0600, written atomically). A finished gate
stays in the file, marked finished: a repeat call with the same ``run_key``
returns the same final result without measuring again; another ``run_key``
starts a new gate.

With ``confirm`` (a manual gate, Flagger's confirm-promotion) a call
first asks the poller, then again every second while it waits with the
watch: once a decision is there (approved or rejected) the call returns at
once, without measuring, with ``finished`` false and the decision in
``confirm``; the caller stops looping and decides. The gate itself is not
finished by it, nor is its verdict changed.

Times are wall-clock (epoch) seconds here, since the state outlives the
process that measured it.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import hashlib
import json
import os
import time

from ansible_collections.supersmartmatch.platform.plugins.module_utils.metric_gate_common import GateError, iso_utc
from ansible_collections.supersmartmatch.platform.plugins.module_utils.metric_gate_evaluate import verdict_of
from ansible_collections.supersmartmatch.platform.plugins.module_utils.metric_gate_loop import (
    TIMING_KEYS, abort, attempt, new_run, result_of, wait_until_due)
from ansible_collections.supersmartmatch.platform.plugins.module_utils.metric_gate_messages import (
    gate_message, public_measurements, round_message)
from ansible_collections.supersmartmatch.platform.plugins.module_utils.nginx import write_atomic

STATE_FORMAT = 1
MAX_STATE_BYTES = 64 * 1024 * 1024


def fingerprint(settings):
    """A digest of what defines the gate: its checks and timing (not the URL or headers, which may hold secrets)."""
    public = dict((key, settings.get(key)) for key in TIMING_KEYS + ('provider', 'checks'))
    text = json.dumps(public, sort_keys=True, default=str)
    return hashlib.sha256(text.encode('utf-8')).hexdigest()


def read_state(path):
    """The saved gate in ``path``, or None when there is none. A damaged file is bad input."""
    try:
        with open(path, 'rb') as handle:
            raw = handle.read(MAX_STATE_BYTES + 1)
    except (IOError, OSError) as exc:
        if getattr(exc, 'errno', None) == 2:
            return None
        raise GateError('resume_file %s cannot be read: %s' % (path, exc.strerror or exc))
    try:
        doc = json.loads(raw.decode('utf-8'))
    except ValueError as exc:
        raise GateError('resume_file %s is not a metric_gate state (%s); remove it to start a new gate' % (path, exc))
    if not isinstance(doc, dict) or doc.get('format') != STATE_FORMAT or not isinstance(doc.get('state'), dict):
        raise GateError('resume_file %s is not a metric_gate state; remove it to start a new gate' % path)
    return doc


def save_state(path, doc):
    directory = os.path.dirname(path) or '.'
    if not os.path.isdir(directory):
        raise GateError('resume_file %s: directory %s does not exist' % (path, directory))
    write_atomic(path, json.dumps(doc, sort_keys=True), mode=0o600)


def remaining(state, settings, now):
    """Seconds of the hold left: until ``start_at`` (else the first round) + (count - 1) x interval."""
    if state['finished']:
        return 0.0
    anchor = state['anchor'] if settings.get('start_at') is None else settings['start_at']
    return round(max(anchor + settings['interval'] * (settings['count'] - 1) - now(), 0.0), 1)


def round_results(new, checks, summary):
    """The measurements of this call, as the round's results: no data is shown as ``no_data``."""
    by_name = dict((check['name'], check) for check in checks)
    results = []
    for item in new:
        outcome = 'no_data' if item.get('_no_data') else item['outcome']
        entry = dict(name=item['check'], value=item.get('value'), outcome=outcome,
                     threshold=summary[item['check']]['threshold'],
                     message=item['message'])
        if outcome == 'no_data':
            entry['counted_as'] = item['outcome']
        if by_name[item['check']].get('kind') == 'compare':
            entry['kind'] = 'compare'
        results.append(entry)
    return results


def signals(watch, confirm, decided):
    """One callable for the wait: the watch's news first (abort), then the confirm poller's decision.

    A decision is also put in ``decided`` (a dict), so the caller can tell it from a watch that moved.
    """
    if watch is None and confirm is None:
        return None

    def poll():
        moved = watch() if watch is not None else None
        if moved:
            return moved
        decision = confirm() if confirm is not None else None
        if decision:
            decided.update(decision)
        return decision
    return poll


def run_step(checks, settings, fetch_value, resume_file, run_key, title='metric gate',
             message_options=None, sleep=time.sleep, clock=time.time, now=time.time, watch=None,
             fetch_series=None, confirm=None):
    """Run one round of the gate saved in ``resume_file`` (or of a new one) and return the step result.

    ``settings`` are the validated options (``validate_params``); ``message_options``
    the keyword arguments of ``gate_message`` for the final message; ``confirm``
    a poller (``rollout_approval.ConfirmPoller``): None while waiting, else the decision.
    """
    message_options = dict(message_options or {})
    digest = fingerprint(settings)
    doc = read_state(resume_file)
    if doc is not None and doc.get('run_key') == run_key:
        if doc.get('fingerprint') != digest:
            raise GateError('resume_file %s holds the gate %r with other checks or timing; give this gate another '
                            'run_key or remove the file' % (resume_file, run_key))
        if doc['state'].get('finished') and isinstance(doc.get('final'), dict):
            return dict(doc['final'], repeated=True)
        state = doc['state']
    else:
        state = new_run(checks, settings, clock, now)
        save_state(resume_file, dict(format=STATE_FORMAT, run_key=run_key, fingerprint=digest, state=state))
    new = []
    retry = state['pending'] is not None
    decided = {}
    moved = wait_until_due(state, settings, sleep, clock, signals(watch, confirm, decided))
    round_time = now()
    if decided:
        moved = None
    elif moved:
        abort(state, moved)
    else:
        new = attempt(state, checks, fetch_value, settings, clock, now, fetch_series)
    result = result_of(state, settings['failure_limit'])
    finished = state['finished']
    left = remaining(state, settings, now)
    results = round_results(new, checks, state['summary'])
    if finished:
        message = gate_message(result, checks, step=True, **message_options)
    elif decided:
        message = '%s: %s by %s at %s, after %d of %d rounds' % (
            title, decided.get('decision'), decided.get('by'), decided.get('at'), state['sample'], settings['count'])
    else:
        message = round_message(title, state['sample'], settings['count'], results, left, retry)
    output = dict(
        finished=finished,
        verdict=result['verdict'] if finished else 'running',
        current=verdict_of(state['summary'], settings['failure_limit']) if not state.get('aborted') else 'aborted',
        round=dict(index=state['sample'], time=iso_utc(round_time), retry=retry,
                   results=results) if not (moved or decided) else None,
        rounds_total=settings['count'],
        remaining_s=left,
        summary=result['summary'],
        measurements=public_measurements(result['measurements']),
        samples=result['samples'],
        stopped_early=result['stopped_early'],
        message=message,
        repeated=False,
    )
    if state.get('aborted'):
        output['watch'] = state['aborted']
    if confirm is not None:
        output['confirm'] = confirm.status()
    saved = dict(format=STATE_FORMAT, run_key=run_key, fingerprint=digest, state=state)
    if finished:
        saved['final'] = output
    save_state(resume_file, saved)
    return output
