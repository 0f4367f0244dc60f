# -*- coding: utf-8 -*-
# Copyright: SuperSmartMatch platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters through which the rollout role asks the phase decisions.

The decisions themselves are plain functions in
``module_utils/rollout_plan.py`` and ``module_utils/rollout_verdict.py``
(table-tested); these filters only gather their inputs from ``hostvars``.
Each filter is documented in the ``.yml`` file of the same name.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import base64
import json
import os

from ansible.errors import AnsibleFilterError

from ansible_collections.supersmartmatch.platform.plugins.module_utils import rollout_plan as rp
from ansible_collections.supersmartmatch.platform.plugins.module_utils import rollout_html as rh
from ansible_collections.supersmartmatch.platform.plugins.module_utils import rollout_status as rs
from ansible_collections.supersmartmatch.platform.plugins.module_utils import rollout_verdict as rv
from ansible_collections.supersmartmatch.platform.plugins.module_utils import rollout_wait as rw


def _slurped_json(result):
    """The JSON document of a registered ``slurp`` result, or None (missing, unreadable, not JSON)."""
    try:
        return json.loads(base64.b64decode(result.get('content') or '').decode('utf-8'))
    except (ValueError, TypeError, AttributeError):
        return None


def _results(hosts, hostvars, name):
    out = {}
    for host in hosts or []:
        try:
            variables = hostvars[host]
        except KeyError:
            continue
        value = variables.get(name) if hasattr(variables, 'get') else None
        if isinstance(value, dict) or hasattr(value, 'keys'):
            out[host] = dict(value)
        elif isinstance(value, (list, tuple)):
            out[host] = [dict(item) for item in value if item]
    return out


def _guard(function):
    def wrapper(*args, **kwargs):
        try:
            return function(*args, **kwargs)
        except (rp.PhaseError, KeyError, TypeError, ValueError) as exc:
            raise AnsibleFilterError('%s: %s' % (function.__name__, exc))
    wrapper.__name__ = function.__name__
    return wrapper


@_guard
def rollout_request_problem(ctx, phases, interval, warmup, metric_checks, prometheus_url, on_no_data, error_limit,
                            failure_limit):
    return rp.check_request(ctx.get('phase'), ctx.get('release'), phases, ctx.get('hold'), interval, warmup,
                            metric_checks, prometheus_url, on_no_data, error_limit, failure_limit) or ''


@_guard
def rollout_plan(hosts, hostvars, active_hosts, service, ctx, phases, slot_ports, force=False):
    views = rp.views_of(list(hosts), _results(hosts, hostvars, 'rollout_info'), list(active_hosts or []))
    return rp.plan_phase(service, ctx['phase'], ctx['release'], views, phases, slot_ports, ctx['run_id'],
                         force_lease=bool(force))


@_guard
def rollout_fleet(hosts, reads, service):
    """``reads``: the registered loop of traffic_split_info delegated to each balancer (``item`` is the host)."""
    items = reads.get('results', []) if hasattr(reads, 'get') else list(reads or [])
    results = dict((str(r.get('item')), dict(r)) for r in items if hasattr(r, 'get'))
    return rp.fleet_split(service, rp.views_of(list(hosts), results, list(hosts)))


@_guard
def rollout_gate(plan, hold, interval, warmup, metric_checks, prometheus_url, app_hosts, candidate_backends,
                 shifted_at):
    return rp.gate_settings(plan, hold, interval, warmup, metric_checks, prometheus_url, list(app_hosts),
                            list(candidate_backends), shifted_at)


@_guard
def rollout_preflight_checks(metric_checks):
    return rp.without_delays(list(metric_checks or []))


@_guard
def rollout_shift(hosts, hostvars, active_hosts, name='rollout_shift'):
    return rp.shift_outcome(list(hosts), _results(hosts, hostvars, name), list(active_hosts or []))


@_guard
def rollout_hold_failure(result, host):
    failure = rv.hold_failure(host, dict(result or {}))
    return [failure] if failure else []


@_guard
def rollout_verdict_action(hosts, hostvars, active_hosts, release, failures, shift_generations):
    views = rp.views_of(list(hosts), _results(hosts, hostvars, 'rollout_info_after'), list(active_hosts or []))
    hold_rollbacks = _results(hosts, hostvars, 'rollout_rollback_hold')
    rolled = dict((h, r['generation']) for h, r in hold_rollbacks.items()
                  if not r.get('failed') and not r.get('skipped') and not rp.no_answer(r) and 'generation' in r)
    # balancers the failed shift already put back (restore) are this run's too, done
    for h, r in _results(hosts, hostvars, 'rollout_restore').items():
        if not r.get('failed') and not r.get('skipped') and not rp.no_answer(r) and 'generation' in r:
            rolled.setdefault(h, r['generation'])
    action = rv.verdict_action(release, list(failures or []), dict(shift_generations or {}), views, rolled)
    failed = [h for h in hold_rollbacks if h not in rolled and not hold_rollbacks[h].get('skipped')]
    action['failures'] = action['failures'] + rv.step_results(failed, hold_rollbacks, list(active_hosts or []), 'rollback')
    return action


@_guard
def rollout_step_failures(hosts, hostvars, active_hosts, name, step):
    return rv.step_results(list(hosts), _results(hosts, hostvars, name), list(active_hosts or []), step)


@_guard
def rollout_report(ctx, hosts, hostvars, active_hosts, service, plan, failures, hold_result, views_fact,
                   finished_at, finished_epoch, shifted_at=None, gate_checks=None, wait_result=None, hook_calls=None):
    views = rp.views_of(list(hosts), _results(hosts, hostvars, views_fact), list(active_hosts or []))
    rolled_back = any(r.get('changed') and not r.get('failed') and not r.get('unreachable')
                      for name in ('rollout_rollback_hold', 'rollout_rollback')
                      for r in _results(hosts, hostvars, name).values())
    wait_result = dict(wait_result) if wait_result else None
    wanted = dict(ctx.get('approval') or {})
    approval = rw.report_section(bool(wanted.get('required')), wanted.get('timeout'), wait_result)
    return rv.build_report(ctx, service, plan, list(failures or []), rolled_back, views, hold_result,
                           finished_at, finished_epoch, shifted_at=shifted_at, gate_checks=gate_checks,
                           wait_result=wait_result, approval=approval,
                           hooks=[dict(c) for c in hook_calls or []])


@_guard
def rollout_report_html(report):
    return rh.render(dict(report))


@_guard
def rollout_summary(report, report_path=None):
    return rv.summary_lines(report, report_path)


@_guard
def rollout_fail_message(report):
    return rv.fail_message(report) or ''


@_guard
def rollout_rollback_summary(hosts, hostvars, active_hosts, name='rollout_rollback'):
    return rv.rollback_summary(list(hosts), _results(hosts, hostvars, name), list(active_hosts or []))


@_guard
def rollout_failures(hosts, hostvars):
    per_host = {}
    for fact in rv.FAILURE_FACTS:
        for host, value in _results(hosts, hostvars, fact).items():
            per_host.setdefault(host, {})[fact] = value
    return rv.collect_failures(dict((h, per_host.get(h, {})) for h in hosts))


@_guard
def rollout_status(hosts, hostvars, active_hosts, gate=None, gate_source=None, output='table'):
    views = rp.views_of(list(hosts), _results(hosts, hostvars, 'rollout_info'), list(active_hosts or []))
    approvals = dict((h, _slurped_json(r)) for h, r in _results(hosts, hostvars, 'rollout_status_approval').items())
    doc = rs.status(views, dict(gate) if gate else None, gate_source, approvals)
    return rs.table(doc) if output == 'table' else doc


@_guard
def rollout_last_report(report_dir):
    """The newest phase report (JSON) in ``report_dir`` on the controller, or None."""
    if not report_dir or not os.path.isdir(report_dir):
        return None
    paths = [os.path.join(report_dir, name) for name in os.listdir(report_dir) if name.endswith('.json')]
    for path in sorted(paths, key=os.path.getmtime, reverse=True):
        try:
            with open(path) as handle:
                return json.load(handle)
        except (IOError, OSError, ValueError):
            continue
    return None


class FilterModule(object):
    def filters(self):
        return dict((f.__name__, f) for f in (
            rollout_request_problem, rollout_plan, rollout_fleet, rollout_gate, rollout_preflight_checks, rollout_shift, rollout_hold_failure,
            rollout_verdict_action, rollout_step_failures, rollout_report, rollout_summary, rollout_fail_message,
            rollout_rollback_summary, rollout_failures, rollout_report_html,
            rollout_status, rollout_last_report))
