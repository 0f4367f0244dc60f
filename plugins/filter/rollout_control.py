# -*- coding: utf-8 -*-
# Copyright: SuperSmartMatch platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters through which the rollout role asks the decisions of operator control: approval and hooks.

The decisions are plain functions in ``module_utils/rollout_wait.py``,
``rollout_approval.py`` and ``rollout_hooks.py`` (table-tested); these
filters only gather their inputs. Each filter is documented in the ``.yml``
file of the same name.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import functools

from ansible.errors import AnsibleFilterError

from ansible_collections.supersmartmatch.platform.plugins.module_utils import gate_progress as gp
from ansible_collections.supersmartmatch.platform.plugins.module_utils import rollout_hooks as rk
from ansible_collections.supersmartmatch.platform.plugins.module_utils import rollout_wait as rw


def _plain(value):
    """Ansible's lazy containers as plain dicts and lists."""
    if isinstance(value, dict) or hasattr(value, 'keys'):
        return dict((k, _plain(value[k])) for k in value.keys())
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    return value


def _results(hosts, hostvars, name):
    out = {}
    for host in hosts or []:
        try:
            value = hostvars[host].get(name)
        except (KeyError, AttributeError):
            continue
        if isinstance(value, dict) or hasattr(value, 'keys'):
            out[host] = _plain(value)
    return out


def _guard(function):
    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        try:
            return function(*args, **kwargs)
        except (KeyError, TypeError, ValueError) as exc:
            raise AnsibleFilterError('%s: %s' % (function.__name__, exc))
    return wrapper


@_guard
def rollout_hooks_problem(hooks, hook_timeout):
    problem = rk.check_hooks(_plain(hooks))
    if not problem:
        try:
            rk.seconds(hook_timeout, 'rollout_hook_timeout')
        except ValueError as exc:
            problem = str(exc)
    return problem or ''


@_guard
def rollout_control_problem(require_approval, approval_timeout, approval_url, hooks, interval, hook_timeout):
    return (rw.check_settings(require_approval, approval_timeout, approval_url, interval)
            or rollout_hooks_problem(hooks, hook_timeout))


@_guard
def rollout_approval_settings(require_approval, approval_timeout):
    return rw.settings(require_approval, approval_timeout)


@_guard
def rollout_approval_gate(gate, timeout, interval, started_at):
    return rw.wait_gate(_plain(gate), timeout, interval, started_at)


@_guard
def rollout_wait_failure(result, host, ctx, timeout):
    return rw.wait_failure(host, _plain(result or {}), _plain(ctx or {}), timeout)


@_guard
def rollout_hold_rollback(failures):
    return rw.hold_rolls_back(_plain(failures or []))


@_guard
def rollout_approve_problem(release, decision, phase, comment, by):
    return rw.approve_problem(release, decision, phase, comment, by) or ''


@_guard
def rollout_approve_summary(hosts, hostvars, active_hosts, decision, name='rollout_approval_decided'):
    return rw.approve_summary(list(hosts), _results(hosts, hostvars, name), list(active_hosts or []), decision)


@_guard
def rollout_hooks_of(hooks, kind, default_timeout=10):
    return rk.hooks_of(_plain(hooks or []), kind, default_timeout)


@_guard
def rollout_hook_event(hook, kind, ctx, service, extra=None):
    return rk.hook_event(_plain(hook), kind, _plain(ctx or {}), service, _plain(extra) if extra else None)


@_guard
def rollout_hook_outcome(registered, kind):
    return rk.judge_calls(kind, _plain(registered or {}))


@_guard
def rollout_hook_after(report):
    return rk.hook_after(_plain(report or {}))


@_guard
def rollout_gate_progress(result, host, every, notified=0):
    return gp.progress_event(host, _plain(result or {}), every, notified)


@_guard
def rollout_gate_batches(count, every):
    return gp.progress_batches(count, every)


class FilterModule(object):
    def filters(self):
        return dict((f.__name__, f) for f in (
            rollout_control_problem, rollout_hooks_problem, rollout_approval_settings, rollout_approval_gate, rollout_wait_failure,
            rollout_hold_rollback, rollout_approve_problem, rollout_approve_summary, rollout_hooks_of,
            rollout_hook_event, rollout_hook_outcome, rollout_hook_after, rollout_gate_progress, rollout_gate_batches))
