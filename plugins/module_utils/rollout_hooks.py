# -*- coding: utf-8 -*-
# Copyright: SuperSmartMatch platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Rollout hooks (Flagger's webhooks), as plain functions.

A hook is inventory data: ``{name, type, url, timeout, metadata, headers}``.
The rollout role POSTs one JSON event to each hook of a type, from the
controller (``ansible.builtin.uri``, ``no_log``: URLs and headers may carry
credentials), and these functions check the hooks, build the events and
judge the calls:

* ``pre_rollout``: before the shift of every phase; a failure (an answer
  other than 2xx, a timeout, no answer) refuses the phase, nothing moved;
* ``rollout``: once when the hold starts (a load test to start, say); a
  failure is reported and does not fail the gate, which judges the
  candidate on its own evidence (no traffic is no data, never a pass);
* ``post_rollout``: after a phase passed (or was promoted); reported only;
* ``rollback``: after any rollback (a phase rolled back, rollback.yml);
  reported only.

Nothing here prints or returns a hook's URL or headers.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import re

HOOK_TYPES = ('pre_rollout', 'rollout', 'post_rollout', 'rollback')
HOOK_KEYS = ('name', 'type', 'url', 'timeout', 'metadata', 'headers')
NAME_RE = re.compile(r'[A-Za-z0-9][A-Za-z0-9._-]{0,63}\Z')
# scheme, a host part (user:token@ allowed), then anything but white space
URL_RE = re.compile(r'https?://[^\s/?#]+([/?#]\S*)?\Z')
HEADER_NAME_RE = re.compile(r'[A-Za-z0-9][A-Za-z0-9-]{0,63}\Z')
HEADER_VALUE_RE = re.compile(r'[^\x00-\x1f\x7f]{0,2048}\Z')
SECONDS_RE = re.compile(r'[0-9]{1,6}\Z')
MAX_HOOKS = 20
MAX_METADATA_BYTES = 4096
MAX_TIMEOUT = 300


def url_problem(url, what):
    """Why ``url`` is not an http(s) URL we may call, or None. The URL itself is never quoted (it may hold a token)."""
    if not isinstance(url, str) or not URL_RE.match(url) or any(ord(c) < 32 or ord(c) == 127 for c in url):
        return ('%s must be an http:// or https:// URL without spaces or control characters '
                '(the value is not shown: it may hold a token)' % what)
    return None


def seconds(value, what, minimum=1, maximum=MAX_TIMEOUT):
    """``value`` as whole seconds in [minimum, maximum]; ValueError naming ``what`` otherwise."""
    if isinstance(value, bool) or not (isinstance(value, int) or (isinstance(value, str) and SECONDS_RE.match(value))):
        raise ValueError('%s must be a whole number of seconds, got %r' % (what, value))
    number = int(value)
    if not minimum <= number <= maximum:
        raise ValueError('%s must be between %d and %d seconds, got %d' % (what, minimum, maximum, number))
    return number


def _hook_problem(hook, where):
    if not isinstance(hook, dict):
        return '%s must be a dict with name, type and url, got %r' % (where, hook)
    unknown = sorted(str(k) for k in hook if k not in HOOK_KEYS)
    if unknown:
        return '%s: unknown key(s) %s (allowed: %s)' % (where, ', '.join(unknown), ', '.join(HOOK_KEYS))
    name = hook.get('name')
    if not isinstance(name, str) or not NAME_RE.match(name):
        return '%s: name must be 1 to 64 of A-Z a-z 0-9 . _ -, starting with a letter or digit, got %r' % (where, name)
    where = '%s (%s)' % (where, name)
    if hook.get('type') not in HOOK_TYPES:
        return '%s: type must be one of %s, got %r' % (where, ', '.join(HOOK_TYPES), hook.get('type'))
    problem = url_problem(hook.get('url'), '%s: url' % where)
    if problem:
        return problem
    if hook.get('timeout') is not None:
        try:
            seconds(hook['timeout'], '%s: timeout' % where)
        except ValueError as exc:
            return str(exc)
    metadata = hook.get('metadata')
    if metadata is not None:
        if not isinstance(metadata, dict) or any(not isinstance(k, str) for k in metadata):
            return '%s: metadata must be a dict with string keys' % where
        try:
            size = len(json.dumps(metadata, sort_keys=True))
        except (TypeError, ValueError):
            return '%s: metadata must hold JSON values only (strings, numbers, lists, dicts)' % where
        if size > MAX_METADATA_BYTES:
            return '%s: metadata must be at most %d bytes as JSON, got %d' % (where, MAX_METADATA_BYTES, size)
    headers = hook.get('headers')
    if headers is not None:
        if not isinstance(headers, dict):
            return '%s: headers must be a dict of header name to value' % where
        for key, value in headers.items():
            if not isinstance(key, str) or not HEADER_NAME_RE.match(key):
                return '%s: header name %r must be 1 to 64 of A-Z a-z 0-9 -' % (where, key)
            if not isinstance(value, str) or not HEADER_VALUE_RE.match(value):
                return ('%s: header %s must be a string without control characters (the value is not shown)'
                        % (where, key))
    return None


def check_hooks(hooks):
    """Why ``rollout_hooks`` is not a valid list of hooks, as a sentence; None when it is."""
    if hooks is None or hooks == '':
        return None
    if not isinstance(hooks, list):
        return 'rollout_hooks must be a list of hooks ({name, type, url, timeout, metadata, headers}), got %s' % (
            type(hooks).__name__)
    if len(hooks) > MAX_HOOKS:
        return 'rollout_hooks: at most %d hooks, got %d' % (MAX_HOOKS, len(hooks))
    seen = set()
    for index, hook in enumerate(hooks):
        problem = _hook_problem(hook, 'rollout_hooks[%d]' % index)
        if problem:
            return problem
        if hook['name'] in seen:
            return 'rollout_hooks: hook names must be unique, %r appears twice' % hook['name']
        seen.add(hook['name'])
    return None


def hooks_of(hooks, kind, default_timeout=10):
    """The hooks of type ``kind``, in inventory order, each with its timeout; [] when there are none.

    Raises ValueError (naming the problem) on a bad list, so a bad inventory never calls anything.
    """
    if kind not in HOOK_TYPES:
        raise ValueError('hook type must be one of %s, got %r' % (', '.join(HOOK_TYPES), kind))
    problem = check_hooks(hooks)
    if problem:
        raise ValueError(problem)
    fallback = seconds(default_timeout, 'rollout_hook_timeout')
    out = []
    for hook in hooks or []:
        if hook['type'] == kind:
            out.append({'name': hook['name'], 'type': kind, 'url': hook['url'],
                        'timeout': seconds(hook['timeout'], 'timeout') if hook.get('timeout') is not None else fallback,
                        'metadata': dict(hook.get('metadata') or {}), 'headers': dict(hook.get('headers') or {})})
    return out


def hook_event(hook, kind, ctx, service, extra=None):
    """The JSON event POSTed to a hook: what happens, to which release, in which run."""
    ctx = ctx or {}
    event = {
        'event': kind,
        'hook': hook.get('name'),
        'service': service,
        'phase': ctx.get('phase'),
        'release': ctx.get('release'),
        'run_id': ctx.get('run_id'),
        'by': ctx.get('holder'),
        'metadata': dict(hook.get('metadata') or {}),
    }
    if extra:
        event['details'] = dict(extra)
    return event


def call_outcome(result, hook=None):
    """``(ok, why)`` of one hook call from its ``ansible.builtin.uri`` result (``failed_when: false``)."""
    result = result or {}
    hook = hook or result.get('item') or {}
    if result.get('skipped'):
        return False, 'not called'
    status = result.get('status')
    try:
        status = int(status)
    except (TypeError, ValueError):
        status = -1
    if 200 <= status <= 299:
        return True, 'HTTP %d' % status
    if status > 0:
        return False, 'answered HTTP %d' % status
    text = ' '.join(str(result.get('msg') or '').split())
    url = hook.get('url')
    if url:
        text = text.replace(url, '<url>')
    if 'timed out' in text.lower():
        return False, 'timed out after %s s' % hook.get('timeout', '?')
    reason = text.split('Request failed:', 1)[-1].split('Connection failure:', 1)[-1].strip()
    return False, 'no answer (%s)' % (reason[:200] or 'unreachable')


def judge_calls(kind, registered, host='localhost'):
    """Judge the calls of the hooks of one type (the registered loop of ``ansible.builtin.uri``).

    Returns ``{'type', 'ok', 'calls': [{name, type, ok, outcome}], 'failures', 'text'}``;
    ``failures`` are the run's failures (step ``pre_rollout``) only for a
    failing ``pre_rollout`` hook, which refuses the phase.
    """
    registered = registered or {}
    results = registered.get('results') if isinstance(registered, dict) else None
    calls = []
    for result in results or []:
        hook = (result or {}).get('item') or {}
        ok, why = call_outcome(result, hook)
        calls.append({'name': hook.get('name'), 'type': kind, 'ok': ok, 'outcome': why})
    bad = [c for c in calls if not c['ok']]
    failures = []
    if kind == 'pre_rollout' and bad:
        failures.append({'host': host, 'step': 'pre_rollout', 'msg': '%s: the phase is refused, nothing was moved' % (
            '; '.join("the pre_rollout hook '%s' failed (%s)" % (c['name'], c['outcome']) for c in bad))})
    if not calls:
        text = 'no %s hook called' % kind
    elif bad:
        consequence = {'pre_rollout': 'the phase is refused, nothing was moved',
                       'rollout': 'the hold goes on: the gate judges the candidate on its own evidence'}.get(
                           kind, 'the rollout itself is not affected')
        failed = '; '.join("'%s' %s" % (c['name'], c['outcome']) for c in bad)
        text = '%s hook(s) failed: %s; %s' % (kind, failed, consequence)
    else:
        text = '%s hook(s) answered: %s' % (kind, ', '.join("'%s' %s" % (c['name'], c['outcome']) for c in calls))
    return {'type': kind, 'ok': not bad, 'calls': calls, 'failures': failures, 'text': text}


def hook_after(report):
    """The hook type a finished phase calls: post_rollout after it passed, rollback after it rolled back, else ''."""
    verdict = (report or {}).get('verdict')
    if verdict in ('passed', 'promoted'):
        return 'post_rollout'
    if verdict == 'rolled_back':
        return 'rollback'
    return ''
