# -*- coding: utf-8 -*-
# Copyright: SuperSmartMatch platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The per-service state of traffic_split: its document, history and generation.

Every change increments the state's integer ``generation`` (absent in states
written before generations existed: 0). ``check_expected_generation`` is the
compare-and-set: a caller that says which generation it planned from is
refused, naming who moved the state, when and how, if it has moved on.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import datetime
import json

from ansible_collections.supersmartmatch.platform.plugins.module_utils.traffic_split_validate import (
    DEFAULT_KEEPALIVE, DEFAULT_SERVER_OPTIONS, SplitError, format_percent)

STATE_VERSION = 1
TRAFFIC_KEYS = ('percent', 'phase', 'status', 'salt', 'sticky_key', 'sticky_fallback', 'server_options', 'keepalive')
MOVED_KEYS = ('generation', 'by', 'at', 'operation', 'phase', 'status', 'run_id')


def utc_now():
    return datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0).isoformat()


def read_json(path):
    """Return the JSON document at ``path`` or None if there is none."""
    try:
        with open(path, 'r') as handle:
            return json.load(handle)
    except IOError as exc:
        if getattr(exc, 'errno', None) == 2:
            return None
        raise SplitError('cannot read %s: %s' % (path, exc))
    except ValueError as exc:
        raise SplitError('%s is not valid JSON (%s); fix or move it aside, nothing was changed' % (path, exc))


def check_sides(state, operation):
    """Refuse a state without its two sides (a hand edit, a truncated file) with a message, not a KeyError."""
    missing = [side for side in ('stable', 'candidate') if not isinstance(state.get(side), dict)]
    if missing:
        raise SplitError('the state of %s has no %s side (a hand edit or a damaged file): cannot %s from it; '
                         'fix or move it aside, nothing was changed'
                         % (state.get('service'), ' or '.join(missing), operation))


def dump_state(state):
    """Serialise a state for its file."""
    return json.dumps(state, indent=2, sort_keys=True) + '\n'


def generation_of(state):
    """The generation of a state (0 for none, or one written before generations)."""
    if not state:
        return 0
    value = state.get('generation', 0)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise SplitError('the state of %s has an invalid generation %r; fix or move it aside, nothing was changed'
                         % (state.get('service'), value))
    return value


def split_summary(state):
    """The part of a state that describes where traffic goes."""
    if not state:
        return None
    return {
        'generation': generation_of(state),
        'percent': state.get('percent'),
        'phase': state.get('phase'),
        'status': state.get('status'),
        'stable': dict(state.get('stable') or {}),
        'candidate': dict(state.get('candidate') or {}),
        'salt': state.get('salt', ''),
        'updated_at': state.get('updated_at'),
        'updated_by': state.get('updated_by'),
    }


def traffic_fields(state):
    """Fields whose change means a new configuration or a new record."""
    if not state:
        return None
    result = dict((k, state.get(k)) for k in TRAFFIC_KEYS)
    # states written before the options were kept had the defaults
    if result['server_options'] is None:
        result['server_options'] = DEFAULT_SERVER_OPTIONS
    if result['keepalive'] is None:
        result['keepalive'] = DEFAULT_KEEPALIVE
    for side in ('stable', 'candidate'):
        part = state.get(side) or {}
        result[side] = (tuple(part.get('backends') or ()), part.get('version'), part.get('color'))
    return result


def snapshot(state):
    """The part of a state that ``restore`` can go back to (no history)."""
    if not state:
        return None
    keys = TRAFFIC_KEYS + ('stable', 'candidate', 'run_id', 'updated_at', 'updated_by', 'generation')
    return dict((k, state.get(k)) for k in keys)


def new_state(previous, split, run_by, run_id, history_limit=100, now=None):
    """Build the state to store after applying ``split`` over ``previous``.

    Its generation is the previous one plus 1; the history entry records it.
    """
    now = now or utc_now()
    generation = generation_of(previous) + 1
    history = list((previous or {}).get('history') or [])
    history.append({
        'generation': generation,
        'time': now,
        'operation': split.get('operation', 'set'),
        'phase': split['phase'],
        'status': split.get('status'),
        'percent': split['percent'],
        'stable_version': split['stable'].get('version'),
        'candidate_version': split['candidate'].get('version'),
        'by': run_by,
        'run_id': run_id,
    })
    if history_limit and len(history) > history_limit:
        history = history[-history_limit:]
    state = dict((k, split.get(k)) for k in TRAFFIC_KEYS)
    state.update({
        'format': STATE_VERSION,
        'generation': generation,
        'service': split['service'],
        'salt': split.get('salt', ''),
        'stable': dict(split['stable']),
        'candidate': dict(split['candidate']),
        'updated_at': now,
        'updated_by': run_by,
        'run_id': run_id,
        # a restore cannot itself be restored: a second restore is a no-op
        'previous': None if split.get('operation') == 'restore' else snapshot(previous),
        'history': history,
    })
    return state


def trimmed(state, keep=10):
    """A copy of ``state`` with only the last ``keep`` history entries."""
    if not state:
        return state
    result = dict(state)
    result['history'] = list(state.get('history') or [])[-keep:] if keep > 0 else []
    return result


def last_move(state):
    """Who made the state's last change, when and how (its last history entry)."""
    if not state:
        return None
    history = state.get('history') or [{}]
    entry = history[-1]
    return {
        'generation': entry.get('generation', generation_of(state)),
        'by': entry.get('by', state.get('updated_by')),
        'at': entry.get('time', state.get('updated_at')),
        'operation': entry.get('operation'),
        'phase': entry.get('phase', state.get('phase')),
        'status': entry.get('status', state.get('status')),
        'run_id': entry.get('run_id', state.get('run_id')),
    }


def check_expected_generation(state, expected):
    """Compare-and-set: refuse unless the state is at generation ``expected``.

    ``expected`` None means the caller did not ask (no check). The refusal
    carries ``conflict``, ``generation`` and ``moved`` for ``fail_json``.
    """
    if expected is None:
        return
    current = generation_of(state)
    if expected == current:
        return
    if not state:
        raise SplitError('compare-and-set refused: expected generation %d but there is no state on this host '
                         '(generation 0); nothing was changed' % expected,
                         conflict=True, generation=current, moved=None)
    moved = last_move(state)
    entry = (state.get('history') or [{}])[-1]
    percent = entry.get('percent', state.get('percent'))
    raise SplitError(
        'compare-and-set refused: expected generation %d but the state is at generation %d, moved by %s at %s '
        '(%s, phase %s, %s %% on the candidate); nothing was changed'
        % (expected, current, moved['by'], moved['at'], moved['operation'] or 'change', moved['phase'],
           '?' if percent is None else format_percent(float(percent))),
        conflict=True, generation=current, moved=moved)
