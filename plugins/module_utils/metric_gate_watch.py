# -*- coding: utf-8 -*-
# Copyright: SuperSmartMatch platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The watched state of metric_gate: a JSON file whose field must keep the value the gate started with.

The rollout role points it at the ``traffic_split`` state of the balancer
(field ``generation``): when a ``rollback`` or another operator moves the
split during a hold, the gate stops at once with the verdict ``aborted``
instead of judging a split it no longer holds.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os

from ansible_collections.supersmartmatch.platform.plugins.module_utils.metric_gate_common import GateError

WATCH_KEYS = ('path', 'field', 'expected')
MAX_WATCH_BYTES = 4 * 1024 * 1024
DETAIL_KEYS = ('updated_by', 'updated_at', 'phase', 'status')


def normalize_watch(watch):
    """Validate the ``watch`` option; None stays None."""
    if watch is None:
        return None
    if not isinstance(watch, dict):
        raise GateError('watch must be a dict with path, field and expected, got %r' % (watch,))
    unknown = sorted(set(watch) - set(WATCH_KEYS))
    if unknown:
        raise GateError('watch: unknown key(s) %s (allowed: %s)' % (', '.join(unknown), ', '.join(WATCH_KEYS)))
    path = watch.get('path')
    if not isinstance(path, str) or not path.strip() or not os.path.isabs(path.strip()) or '\x00' in path:
        raise GateError('watch: path must be an absolute path to a JSON file, got %r' % (path,))
    field = watch.get('field')
    field = 'generation' if field is None else field
    if not isinstance(field, str) or not field.strip():
        raise GateError('watch: field must be a non-empty string, got %r' % (field,))
    if 'expected' not in watch:
        raise GateError('watch: expected is required (the value of %s when the gate started)' % field)
    return dict(path=path.strip(), field=field.strip(), expected=watch['expected'])


def same_value(found, expected):
    """True when ``found`` (from JSON) is ``expected`` (from the task), ``8`` and ``"8"`` alike."""
    if found == expected and type(found) is type(expected):
        return True
    if isinstance(found, bool) or isinstance(expected, bool):
        return found is expected
    if isinstance(found, (int, float)) and isinstance(expected, (int, float)):
        return found == expected
    if isinstance(found, str) != isinstance(expected, str):
        text, other = (found, expected) if isinstance(found, str) else (expected, found)
        return text.strip() == json.dumps(other)
    return False


def read_document(path):
    """The JSON object in ``path``, or raise ValueError/OSError with the reason."""
    with open(path, 'rb') as handle:
        raw = handle.read(MAX_WATCH_BYTES + 1)
    if len(raw) > MAX_WATCH_BYTES:
        raise ValueError('larger than %d bytes' % MAX_WATCH_BYTES)
    doc = json.loads(raw.decode('utf-8'))
    if not isinstance(doc, dict):
        raise ValueError('not a JSON object')
    return doc


def check_watch(watch, read=read_document):
    """None while the watched field still holds ``expected``; else what moved it.

    The news is ``dict(changed=True, value, updated_by, updated_at, phase,
    status, operation)``, ``operation`` from the last entry of the document's
    ``history``; a file that is gone or unreadable counts as moved, with
    ``value`` None and ``problem`` saying why.
    """
    try:
        doc = read(watch['path'])
    except (OSError, ValueError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        news = dict(changed=True, value=None, operation=None, problem='%s: %s' % (watch['path'], reason))
        news.update((key, None) for key in DETAIL_KEYS)
        return news
    value = doc.get(watch['field'])
    if same_value(value, watch['expected']):
        return None
    news = dict(changed=True, value=value)
    news.update((key, doc.get(key)) for key in DETAIL_KEYS)
    history = doc.get('history')
    last = history[-1] if isinstance(history, list) and history and isinstance(history[-1], dict) else {}
    news['operation'] = last.get('operation')
    return news


def make_watch(watch, read=read_document):
    """The callable the loop polls: None while unchanged, else the news (see :func:`check_watch`)."""
    if watch is None:
        return None
    return lambda: check_watch(watch, read)


def unchanged(watch):
    """The ``watch`` result of a gate that the watched state did not stop."""
    if watch is None:
        return None
    return dict(changed=False, value=watch['expected'])


def moved_text(news, field='generation'):
    """``the watched state moved to generation 9 (rollback by bob@ctl at <time>)``."""
    if news.get('problem'):
        return 'the watched state is gone or unreadable (%s)' % news['problem']
    who = []
    if news.get('operation'):
        who.append(str(news['operation']))
    if news.get('updated_by'):
        who.append('by %s' % news['updated_by'])
    if news.get('updated_at'):
        who.append('at %s' % news['updated_at'])
    return 'the watched state moved to %s %s%s' % (
        field, json.dumps(news.get('value')), (' (%s)' % ' '.join(who)) if who else '')
