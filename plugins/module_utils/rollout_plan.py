# -*- coding: utf-8 -*-
# Copyright: SuperSmartMatch platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The decisions of a rollout phase before anything moves, as plain functions.

The rollout role's YAML only gathers facts and carries out what these
functions decide; the unit tests call them directly with tables of cases.

A *view* is what one load balancer told ``traffic_split_info`` (or why it
told nothing): ``{'host': 'lb1', 'status': 'ok' | 'unreachable' | 'failed'
| 'lost', 'msg': ..., 'info': <traffic_split_info result>}``.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import re

from ansible_collections.supersmartmatch.platform.plugins.module_utils.metric_gate_compare import rounds_from

RELEASE_RE = re.compile(r'[A-Za-z0-9][A-Za-z0-9._+-]{0,63}\Z')
PHASE_ORDER = ('canary', 'extended', 'full')
IN_FLIGHT = ('canary', 'extended', 'full')


class PhaseError(Exception):
    """The inputs of a decision are malformed (a bug or a bad inventory)."""


def fmt_pct(value):
    """``5.0`` -> ``'5'``; ``None`` -> ``'?'``."""
    if value is None:
        return '?'
    number = float(value)
    return ('%d' % number) if number.is_integer() else ('%.2f' % number).rstrip('0').rstrip('.')


def listed(hosts):
    return ', '.join(hosts)


# --------------------------------------------------------------------------
# The request
# --------------------------------------------------------------------------

def check_request(phase, release, phases, hold, interval, warmup, metric_checks, prometheus_url,
                  on_no_data, error_limit, failure_limit):
    """Return the problem with a phase request as a sentence, or None."""
    if phase not in (phases or {}):
        return 'unknown phase %r: one of %s' % (phase, ', '.join(sorted(phases or {})))
    release = '' if release is None else str(release)
    if not RELEASE_RE.match(release):
        return ('give the release to roll out with -e release_version=X.Y.Z (letters, digits and . _ + -, '
                'at most 64, starting with a letter or digit); got %r' % (release or 'nothing'))
    for name, value, minimum in (('%s_duration' % phase, hold, 0), ('rollout_gate_interval', interval, 1),
                                 ('rollout_gate_warmup', warmup, 0), ('rollout_gate_error_limit', error_limit, 1),
                                 ('rollout_gate_failure_limit', failure_limit, 0)):
        if not re.match(r'[0-9]{1,9}\Z', str(value)) or int(value) < minimum:
            return '%s must be a whole number of seconds or times >= %d, got %r' % (name, minimum, value)
    if not isinstance(metric_checks, list) or any(not isinstance(c, dict) or not c.get('name') for c in metric_checks):
        return 'rollout_metric_checks and rollout_metric_checks_extra must be lists of checks, each with a name'
    if metric_checks and not prometheus_url:
        return ('the metric checks (%s) need Prometheus: set rollout_prometheus_url or put a host in the '
                'monitoring group; to hold on health checks alone, set rollout_metric_checks to [] (and '
                'rollout_metric_checks_extra)' % ', '.join(c['name'] for c in metric_checks))
    if metric_checks and int(hold) < int(warmup):
        return ('the %s hold (%s s) is shorter than the metric checks\' warm-up (rollout_gate_warmup %s s): '
                'hold at least %s s or lower rollout_gate_warmup' % (phase, hold, warmup, warmup))
    if on_no_data not in ('fail', 'pass', 'inconclusive'):
        return 'rollout_gate_on_no_data must be fail, pass or inconclusive, got %r' % (on_no_data,)
    return _delay_problem(phase, int(hold), int(interval), int(warmup), metric_checks)


def without_delays(checks):
    """The checks without their ``initial_delay``: for a gate that measures a candidate already live (the
    preflight round, the wait for approval), where a delay has nothing to wait for."""
    return [dict((key, value) for key, value in check.items() if key != 'initial_delay') for check in checks or []]


def _delay_problem(phase, hold, interval, warmup, metric_checks):
    """A check whose initial_delay (e.g. the judge's delay) leaves it no round of the hold, as a sentence."""
    if not metric_checks:
        return None
    last = (hold - warmup) // interval * interval  # the last round, seconds after the first
    for check in metric_checks:
        delay = check.get('initial_delay')
        if delay is None or delay == '':
            continue
        try:
            delay = float(delay)
        except (TypeError, ValueError):
            delay = float('nan')
        if not 0 <= delay < float('inf'):
            return 'check %s: initial_delay must be a number of seconds >= 0, got %r' % (
                check['name'], check.get('initial_delay'))
        try:
            lookback = float(check.get('lookback') or 0)
        except (TypeError, ValueError):
            lookback = 0.0  # refused by metric_gate when the hold starts, with its own message
        if rounds_from(dict(initial_delay=delay, lookback=lookback)) > last:
            return ('check %s: initial_delay %g s leaves it no gate round in the %s hold (%d s, rounds from %d s '
                    'after the shift, the last %d s after the first): hold at least %g s, or lower the delay '
                    '(rollout_judge_delay for the judge)' % (check['name'], delay, phase, hold, warmup, last,
                                                             warmup + rounds_from(dict(initial_delay=delay,
                                                                                       lookback=lookback))))
    return None


# --------------------------------------------------------------------------
# Views of the balancers
# --------------------------------------------------------------------------

def no_answer(result):
    """True when a task result says the host never ran the module (connection
    lost, host frozen): what it holds now is unknown, not refused."""
    result = result or {}
    return bool(result.get('unreachable') or 'module_stderr' in result
                or str(result.get('msg') or '').startswith('MODULE FAILURE'))


def view_of(host, result, active):
    """Turn one registered ``traffic_split_info`` result into a view.

    ``active`` is False when the host already dropped out of the play.
    """
    if not active:
        return {'host': host, 'status': 'lost', 'msg': 'dropped out of the run (unreachable or failed earlier)'}
    result = result or {}
    if no_answer(result):
        return {'host': host, 'status': 'unreachable', 'msg': short(result.get('msg') or 'unreachable')}
    if result.get('failed') or result.get('skipped') or 'exists' not in result:
        return {'host': host, 'status': 'failed', 'msg': short(result.get('msg') or 'no answer')}
    return {'host': host, 'status': 'ok', 'info': result}


def views_of(hosts, results, active_hosts):
    """One view per balancer of ``hosts``, from ``results`` (host -> registered result)."""
    return [view_of(h, (results or {}).get(h), h in (active_hosts or [])) for h in hosts]


def short(text, limit=300):
    text = ' '.join(str(text).split())
    return text if len(text) <= limit else text[:limit - 3] + '...'


def unknown_hosts(views):
    """Balancers whose split nobody can tell now."""
    return [v['host'] for v in views if v['status'] in ('unreachable', 'lost', 'failed')]


def describe_split(state):
    """``5 % on 2.0.0 (green), 95 % on 1.0.0 (blue); canary, in_progress``."""
    if not state:
        return 'no state'
    cand, stab = state.get('candidate') or {}, state.get('stable') or {}
    pct = float(state.get('percent') or 0)
    return '%s %% on %s (%s), %s %% on %s (%s); %s, %s' % (
        fmt_pct(pct), cand.get('version') or '-', cand.get('color') or '-', fmt_pct(100 - pct),
        stab.get('version') or '-', stab.get('color') or '-', state.get('phase'), state.get('status') or 'no status')


def traffic_key(state):
    """What two balancers must share to agree on where traffic goes.

    A side that takes no traffic does not count (at 0 % the candidate left
    behind by a failed shift may differ from one balancer to the next), nor
    does the salt then (it only splits users between two sides).
    """
    pct = float(state.get('percent') or 0)
    live = ('stable',) if pct <= 0 else ('candidate',) if pct >= 100 else ('stable', 'candidate')
    sides = dict((side, dict((k, (state.get(side) or {}).get(k)) for k in ('backends', 'version', 'color')))
                 for side in live)
    head = [pct, state.get('phase'), state.get('status'), state.get('salt') if len(live) == 2 else None]
    return json.dumps([head, sides], sort_keys=True)


# --------------------------------------------------------------------------
# The plan
# --------------------------------------------------------------------------

def _lease_refusal(service, lease, run_id, force):
    if not lease or lease.get('expired') or force:
        return None
    if lease.get('run_id') == run_id:
        return None
    return ('the rollout lease of %s is held by %s (run %s, phase %s) until %s. If that run is still going, '
            'wait for it; if it died (killed, lost controller), run playbooks/rollback.yml, which repairs the '
            'split and gives the lease back, or break the lease with -e rollout_lock_force=true'
            % (service, lease.get('holder') or 'unknown', lease.get('run_id') or '?', lease.get('phase') or '?',
               lease.get('expires_at') or '?'))


def _prerequisite_refusal(phase, release, state, phases):
    stable = state.get('stable') or {}
    candidate = state.get('candidate') or {}
    status = state.get('status') or ''
    in_flight = state.get('phase') in IN_FLIGHT and status != 'rolled_back'
    needs = (phases.get(phase) or {}).get('requires')
    cand_version = '' if candidate.get('version') is None else str(candidate.get('version'))
    if stable.get('version') is not None and str(stable.get('version')) == release and not in_flight:
        return 'release %s already serves all traffic on the %s slot' % (release, stable.get('color'))
    if needs is None:
        if in_flight and cand_version != release:
            return ('release %s is in phase %s (%s): finish it (extended.yml, full.yml) or run rollback.yml first'
                    % (cand_version, state.get('phase'), status))
        if in_flight and state.get('phase') != phase:
            return 'release %s is already in phase %s' % (release, state.get('phase'))
        return None
    done_before = state.get('phase') == needs and status == 'completed'
    repeating = state.get('phase') == phase and in_flight
    if not (cand_version == release and (done_before or repeating)):
        return ('%s needs a completed %s of %s, but the service is in phase %s (%s) of release %s'
                % (phase, needs, release, state.get('phase'), status or 'no status', cand_version or '-'))
    return None


def plan_phase(service, phase, release, views, phases, slot_ports, run_id, force_lease=False):
    """Decide whether ``phase`` of ``release`` may start now, and with which slots.

    Returns ``{'refused': None | sentence, 'plan': None | dict}``. The plan
    holds the percent, the slots and ports, the split before, and the
    generation each balancer is at (every later write is compare-and-set on it).
    """
    release = str(release)
    if phase not in phases:
        raise PhaseError('unknown phase %r' % (phase,))

    def refuse(text):
        return {'refused': text, 'plan': None}

    if not views:
        return refuse('the inventory has no load balancer')
    unknown = [v for v in views if v['status'] != 'ok']
    if unknown:
        return refuse('every load balancer must answer before a phase starts; nothing was changed. %s'
                      % '; '.join('%s is %s (%s): its split is unknown' % (v['host'], v['status'], v.get('msg'))
                                  for v in unknown))
    missing = [v['host'] for v in views if not v['info'].get('exists')]
    if missing:
        return refuse('%s %s no traffic state for %s: provision first with playbooks/site.yml'
                      % (listed(missing), 'has' if len(missing) == 1 else 'have', service))
    drifted = [v for v in views if v['info'].get('drift')]
    if drifted:
        return refuse('drift: %s. The live NGINX split and the recorded state disagree (a crash between two '
                      'writes, or a hand edit); run playbooks/rollback.yml to repair it, then start again'
                      % '; '.join('%s: %s' % (v['host'], v['info'].get('drift_reason') or 'differs') for v in drifted))
    keys = [traffic_key(v['info']['state']) for v in views]
    if len(set(keys)) > 1:
        return refuse('the load balancers disagree on where traffic goes: %s. Run playbooks/rollback.yml to bring '
                      'them together, then start again'
                      % '; '.join('%s: %s' % (v['host'], describe_split(v['info']['state'])) for v in views))
    for v in views:
        problem = _lease_refusal(service, v['info'].get('lease'), run_id, force_lease)
        if problem:
            return refuse(problem)
    state = views[0]['info']['state']
    stable = state.get('stable') or {}
    if stable.get('color') not in slot_ports:
        return refuse('the stable slot %r is not one of %s' % (stable.get('color'), ', '.join(sorted(slot_ports))))
    problem = _prerequisite_refusal(phase, release, state, phases)
    if problem:
        return refuse(problem)
    candidate_color = [c for c in sorted(slot_ports) if c != stable['color']][0]
    plan = {
        'phase': phase,
        'percent': phases[phase]['percent'],
        'release': release,
        'stable_color': stable['color'],
        'candidate_color': candidate_color,
        'stable_version': stable.get('version'),
        'stable_port': int(slot_ports[stable['color']]),
        'candidate_port': int(slot_ports[candidate_color]),
        'before': {'percent': state.get('percent'), 'phase': state.get('phase'), 'status': state.get('status'),
                   'stable_version': stable.get('version'),
                   'candidate_version': (state.get('candidate') or {}).get('version')},
        'generations': dict((v['host'], int(v['info'].get('generation') or 0)) for v in views),
    }
    return {'refused': None, 'plan': plan}


# --------------------------------------------------------------------------
# A balancer that joins the fleet (site.yml, the nginx role)
# --------------------------------------------------------------------------

JOIN_KEYS = ('percent', 'phase', 'status', 'salt', 'sticky_key', 'sticky_fallback', 'server_options', 'keepalive')


def fleet_split(service, views):
    """Where the balancers without a traffic state start, and whether the fleet is new.

    ``views``: one per balancer of the inventory group (``views_of``).
    Returns ``{'fresh', 'members', 'joining', 'split', 'refused'}``:

    - ``fresh``: True when every balancer answered and none has a state (a new
      fleet: each starts in the bootstrap state, and the application hosts get
      the initial release); False when one has a state; None when that cannot
      be told (a balancer did not answer), and ``refused`` says why.
    - ``split``: for the ``joining`` balancers of a running fleet, the split the
      ``members`` agree on (sides with their backends, share, phase, status,
      salt, sticky keys, options), for ``traffic_split operation=join``.
    - ``refused``: why the joining balancers cannot start now (nothing is
      changed): a balancer that does not answer, drift, members that disagree,
      or a rollout holding the lease.
    """
    unknown = [v for v in views if v['status'] != 'ok']
    members = [v for v in views if v['status'] == 'ok' and v['info'].get('exists')]
    joining = [v['host'] for v in views if v['status'] == 'ok' and not v['info'].get('exists')]
    result = {'fresh': not unknown and not members, 'members': [v['host'] for v in members], 'joining': joining,
              'split': None, 'refused': None}
    if unknown:
        if not members:
            result['fresh'] = None
        result['refused'] = ('cannot tell where the fleet sends traffic for %s: %s. A balancer joins only the split '
                             'every other one agrees on; nothing was changed'
                             % (service, '; '.join('%s is %s (%s)' % (v['host'], v['status'], v.get('msg'))
                                                   for v in unknown)))
        return result
    if not members or not joining:
        return result
    drifted = [v for v in members if v['info'].get('drift')]
    keys = set(traffic_key(v['info']['state']) for v in members)
    leases = [v for v in members if v['info'].get('lease') and not v['info']['lease'].get('expired')]
    if drifted:
        drift = '; '.join('%s (%s)' % (v['host'], v['info'].get('drift_reason')) for v in drifted)
        result['refused'] = ('%s cannot join: drift on %s. Run playbooks/rollback.yml to repair it, then add the '
                             'balancer' % (listed(joining), drift))
    elif len(keys) > 1:
        splits = '; '.join('%s: %s' % (v['host'], describe_split(v['info']['state'])) for v in members)
        result['refused'] = ('%s cannot join: the load balancers disagree on where traffic goes: %s. Run '
                             'playbooks/rollback.yml to bring them together, then add the balancer'
                             % (listed(joining), splits))
    elif leases:
        lease = leases[0]['info']['lease']
        result['refused'] = ('%s cannot join while a rollout runs: %s holds the rollout lease of %s (run %s, phase %s) '
                             'until %s. Add the balancer once that phase has ended'
                             % (listed(joining), lease.get('holder') or 'unknown', service, lease.get('run_id') or '?',
                                lease.get('phase') or '?', lease.get('expires_at') or '?'))
    else:
        state = members[0]['info']['state']
        split = dict((k, state.get(k)) for k in JOIN_KEYS)
        for side in ('stable', 'candidate'):
            part = state.get(side) or {}
            split[side] = dict((k, part.get(k)) for k in ('backends', 'version', 'color'))
        result['split'] = split
    return result


# --------------------------------------------------------------------------
# The gate of the hold
# --------------------------------------------------------------------------

def gate_settings(plan, hold, interval, warmup, metric_checks, prometheus_url, app_hosts, candidate_backends,
                  shifted_at):
    """The checks, number of rounds and first round of the hold's gate.

    Health of the candidate slot on every application host (no data fails),
    plus the metric checks on Prometheus. The first round comes ``warmup``
    seconds after the shift when there are metric checks (their series need
    a few scrapes), and the last one at the end of the hold.
    """
    hold, interval, warmup = int(hold), int(interval), int(warmup)
    if interval <= 0:
        raise PhaseError('the gate interval must be > 0')
    if len(app_hosts) != len(candidate_backends):
        raise PhaseError('one candidate backend per application host is needed')
    checks = []
    for host, backend in zip(app_hosts, candidate_backends):
        url = 'http://%s/health' % backend
        checks.append({'name': 'health of %s' % host, 'url': url, 'provider': 'http_json', 'on_no_data': 'fail',
                       'query': 'up', 'min': 1})
        checks.append({'name': 'version on %s' % host, 'url': url, 'provider': 'http_json', 'on_no_data': 'fail',
                       'query': "version == '%s'" % plan['release'], 'min': 1})
    for check in metric_checks:
        item = {'provider': 'prometheus', 'url': prometheus_url}
        item.update(check)
        checks.append(item)
    warm = warmup if metric_checks else 0
    warm = min(warm, hold)
    return {
        'checks': checks,
        'count': (hold - warm) // interval + 1,
        'start_at': float(shifted_at) + warm,
        'warmup': warm,
        'end_at': float(shifted_at) + hold,
    }


# --------------------------------------------------------------------------
# The shift
# --------------------------------------------------------------------------

def shift_outcome(hosts, results, active_hosts):
    """Judge a shift on every balancer: all moved, or which failed and which moved.

    ``results`` maps host -> the registered ``traffic_split`` result (absent
    for a host that dropped out). A shift is good only when every balancer
    answered and none failed; otherwise the balancers that moved go back.
    """
    failures, moved, unknown = [], [], []
    for host in hosts:
        result = (results or {}).get(host)
        if host not in (active_hosts or []) or result is None:
            unknown.append(host)
            failures.append({'host': host, 'step': 'switch',
                             'msg': '%s dropped out of the run: its split is unknown' % host})
        elif no_answer(result):
            unknown.append(host)
            failures.append({'host': host, 'step': 'switch',
                             'msg': '%s is unreachable: its split is unknown (%s)' % (host, short(result.get('msg') or ''))})
        elif result.get('failed'):
            failures.append({'host': host, 'step': 'switch', 'msg': short(result.get('msg') or 'traffic switch failed', 1000)})
        elif result.get('skipped'):
            continue
        else:
            moved.append(host)
    restore = moved if failures else []
    return {'ok': not failures, 'failures': failures, 'restore': restore, 'unknown': unknown,
            'generations': dict((h, int(results[h].get('generation') or 0)) for h in moved)}
