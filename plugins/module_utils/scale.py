# -*- coding: utf-8 -*-
# Copyright: SuperSmartMatch platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Scaling the application fleet behind the balancers (playbooks/scale.yml).

Pure decisions, table-tested: which hosts join or leave the upstreams, the
bounds on the fleet's size, which slots a new host needs, and the advice
read from CPU and memory (the guide's HPA: 70 % CPU, 80 % memory).
The playbook reads every balancer's split (traffic_split_info) and the
inventory, and the module ``scale_plan`` calls ``plan`` with them.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import math
import re

HOST_RE = re.compile(r'[A-Za-z0-9][A-Za-z0-9_.-]{0,252}\Z')
# Phases whose candidate side must also run on a new host: traffic may be on
# it (a phase in flight), or a rollback may send traffic back to it (after a
# promotion, the candidate side is the release that was stable before).
CANDIDATE_PHASES = ('canary', 'extended', 'full', 'promoted')


class ScaleError(Exception):
    """A request that cannot be met; nothing was changed."""


def _hosts(value, name):
    if value is None:
        return []
    if isinstance(value, str):
        value = [part.strip() for part in value.split(',') if part.strip()]
    if not isinstance(value, (list, tuple)):
        raise ScaleError('%s must be a list of inventory host names, got %r' % (name, value))
    hosts = []
    for item in value:
        if not isinstance(item, str) or not HOST_RE.match(item):
            raise ScaleError('%s: %r is not an inventory host name' % (name, item))
        if item not in hosts:
            hosts.append(item)
    return hosts


def _bound(value, name):
    if isinstance(value, bool):
        raise ScaleError('%s must be a whole number, got %r' % (name, value))
    try:
        number = int(str(value).strip()) if isinstance(value, str) else int(value)
    except (TypeError, ValueError):
        raise ScaleError('%s must be a whole number, got %r' % (name, value))
    if isinstance(value, float) and value != number:
        raise ScaleError('%s must be a whole number, got %r' % (name, value))
    if number < 1:
        raise ScaleError('%s must be at least 1, got %d' % (name, number))
    return number


def bounds(min_hosts, max_hosts):
    low, high = _bound(min_hosts, 'min_hosts'), _bound(max_hosts, 'max_hosts')
    if low > high:
        raise ScaleError('min_hosts (%d) is above max_hosts (%d)' % (low, high))
    return low, high


def bounds_problem(before, after, low, high):
    """Why a fleet of ``before`` hosts may not become ``after``, or None.

    A size outside [low, high] is refused, unless the change moves toward the
    range without crossing it (a fleet below its minimum may still grow).
    """
    if low <= after <= high or after == before:
        return None
    if after < low and before < after:
        return None
    if after > high and before > after:
        return None
    if after < low:
        return ('the fleet would have %d app host(s), below the minimum of %d (scale_min_hosts)'
                % (after, low))
    return ('the fleet would have %d app host(s), above the maximum of %d (scale_max_hosts)'
            % (after, high))


def _side(state, name):
    side = (state or {}).get(name) or {}
    return {'backends': list(side.get('backends') or []), 'color': side.get('color'),
            'version': side.get('version')}


def fleet_state(states, run_id=None):
    """The split every balancer agrees on, from traffic_split_info results.

    ``states`` maps a balancer to its info result. Raises ScaleError naming the
    balancers that cannot be read, have no state, drift, or disagree, or whose
    rollout lease another run holds (``run_id``: the lease scale.yml took).
    """
    if not states:
        raise ScaleError('no balancer was read: the lb group is empty or every balancer was skipped')
    problems, shapes = [], {}
    for lb in sorted(states):
        info = states[lb] or {}
        if info.get('failed') or info.get('unreachable'):
            problems.append('%s could not be read (%s)' % (lb, info.get('msg') or 'no answer'))
        elif not info.get('exists'):
            problems.append('%s has no traffic state (run playbooks/site.yml first)' % lb)
        elif info.get('drift'):
            problems.append('%s drifts: %s' % (lb, info.get('drift_reason')))
        elif (info.get('lease_taken') or {}).get('failed'):
            problems.append('%s: the rollout lease could not be taken (%s)'
                            % (lb, info['lease_taken'].get('msg') or 'no answer'))
        else:
            state = info['state']
            lease = info.get('lease')
            if lease and not lease.get('expired') and (run_id is None or lease.get('run_id') != run_id):
                problems.append('%s: a rollout holds the lease (%s, phase %s); scale after it ends'
                                % (lb, lease.get('holder') or 'unknown', lease.get('phase') or '-'))
            shape = (tuple(sorted(_side(state, 'stable')['backends'])),
                     tuple(sorted(_side(state, 'candidate')['backends'])),
                     _side(state, 'stable')['color'], _side(state, 'stable')['version'],
                     _side(state, 'candidate')['color'], _side(state, 'candidate')['version'],
                     state.get('phase'), float(state.get('percent') or 0))
            shapes.setdefault(shape, []).append(lb)
    if problems:
        raise ScaleError('cannot scale: ' + '; '.join(problems) + '. Nothing was changed')
    if len(shapes) > 1:
        views = ['%s: %s %% on %s, stable %s on %d backend(s)'
                 % (', '.join(lbs), shape[7], shape[5] or '-', shape[3] or '-', len(shape[0]))
                 for shape, lbs in sorted(shapes.items(), key=lambda kv: kv[1])]
        raise ScaleError('cannot scale: the balancers disagree (%s); bring them together first '
                         '(playbooks/rollback.yml sends every one to its stable side). Nothing was changed'
                         % '; '.join(views))
    first = states[sorted(states)[0]]['state']
    return {'stable': _side(first, 'stable'), 'candidate': _side(first, 'candidate'),
            'phase': first.get('phase'), 'percent': float(first.get('percent') or 0),
            'generations': dict((lb, int(states[lb].get('generation') or 0)) for lb in states)}


def upstream_addresses(state):
    """The host addresses a split state's upstreams name, both sides (``host:port`` less the port)."""
    return set(backend.rsplit(':', 1)[0] for side in ('stable', 'candidate')
               for backend in (((state or {}).get(side) or {}).get('backends') or []))


def slots_for_new_hosts(state, slot_ports):
    """[{'color', 'version', 'port'}] that a host joining the fleet must run."""
    slots = []
    sides = [('stable', True), ('candidate', state.get('phase') in CANDIDATE_PHASES)]
    for name, wanted in sides:
        side = state[name]
        if not wanted:
            continue
        if not side.get('version'):
            raise ScaleError('the %s side has no recorded version: a new host would not know what to run'
                             % name)
        if side.get('color') not in slot_ports:
            raise ScaleError('the %s side runs on slot %r, which has no port in slot_ports (%s)'
                             % (name, side.get('color'), ', '.join(sorted(slot_ports))))
        slots.append({'color': side['color'], 'version': side['version'],
                      'port': int(slot_ports[side['color']])})
    return slots


def plan(inventory, states, remove=None, min_hosts=3, max_hosts=10, slot_ports=None, only_add=None, run_id=None):
    """Which app hosts join and leave every balancer's upstreams.

    ``inventory``: ordered [(host, address)] of the app group, as the
    ``backends`` filter names them. ``states``: balancer -> traffic_split_info
    result. ``remove``: hosts to drain and stop. ``only_add``: when not None,
    only these inventory hosts may join (scale_auto picks them); the other
    hosts outside the upstreams stay out.
    """
    slot_ports = dict(slot_ports or {'blue': 5062, 'green': 5070})
    low, high = bounds(min_hosts, max_hosts)
    remove = _hosts(remove, 'scale_remove')
    names = [pair[0] for pair in inventory]
    address = dict(inventory)
    unknown = [host for host in remove if host not in address]
    if unknown:
        raise ScaleError('scale_remove names %s, not in the app group; nothing was changed'
                         % ', '.join(unknown))
    state = fleet_state(states, run_id)
    members = upstream_addresses(state)
    by_address = dict((addr, host) for host, addr in inventory)
    strangers = sorted(addr for addr in members if addr not in by_address)
    if strangers:
        raise ScaleError('the upstreams hold %s, which no app host of the inventory names; put the host back '
                         'in the inventory and drain it with -e scale_remove=<host>. Nothing was changed'
                         % ', '.join(strangers))
    current = [host for host in names if address[host] in members]
    outside = [host for host in names if address[host] not in members and host not in remove]
    if only_add is not None:
        only_add = _hosts(only_add, 'only_add')
    add = outside if only_add is None else [host for host in outside if host in only_add]
    leaving = [host for host in current if host in remove]
    final = [host for host in names if (host in current or host in add) and host not in remove]
    if not final:
        raise ScaleError('no app host would be left behind the balancers; nothing was changed')
    problem = bounds_problem(len(current), len(final), low, high)
    if problem:
        raise ScaleError(problem + '; nothing was changed')
    ports = {'stable': slot_ports.get(state['stable']['color']),
             'candidate': slot_ports.get(state['candidate']['color'])}
    for name, port in ports.items():
        if port is None:
            raise ScaleError('the %s side runs on slot %r, which has no port in slot_ports'
                             % (name, state[name]['color']))
    return {
        'changed': bool(add or leaving),
        'current': current,
        'add': add,
        'remove': leaving,
        'stop': remove,
        'members': final,
        'size_before': len(current),
        'size_after': len(final),
        'min_hosts': low,
        'max_hosts': high,
        'stable_backends': ['%s:%d' % (address[h], int(ports['stable'])) for h in final],
        'candidate_backends': ['%s:%d' % (address[h], int(ports['candidate'])) for h in final],
        'deploy': slots_for_new_hosts(state, slot_ports) if add else [],
        'generations': state['generations'],
        'phase': state['phase'],
        'percent': state['percent'],
        'msg': summary(len(current), len(final), add, leaving),
    }


def summary(before, after, add, leaving):
    if not add and not leaving:
        return 'the fleet has %d app host(s) behind the balancers, as the inventory says: nothing to do' % before
    parts = []
    if add:
        parts.append('add %s' % ', '.join(add))
    if leaving:
        parts.append('drain and remove %s' % ', '.join(leaving))
    return '%s: %d -> %d app host(s)' % (' and '.join(parts), before, after)


# --------------------------------------------------------------------------
# Advice (scale_auto): the HPA's rule on CPU and memory
# --------------------------------------------------------------------------

def _fraction(value, name):
    if value is None:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ScaleError('%s must be a number, got %r' % (name, value))
    if math.isnan(number) or number < 0:
        raise ScaleError('%s must be a number of 0 or more, got %r' % (name, value))
    return number


def advise(current, cpu, memory, cpu_target=0.70, memory_target=0.80, min_hosts=3, max_hosts=10,
           tolerance=0.1):
    """How many app hosts the fleet should have, as Kubernetes' HPA decides.

    ``cpu`` and ``memory`` are the fleet's mean utilisations (0-1), or None
    when Prometheus had no value. desired = ceil(current x utilisation /
    target) for each metric, the larger wins; within ``tolerance`` of the
    target nothing changes; the result is kept within the bounds. Fails
    closed: with neither metric known, it advises no change and says why.
    """
    low, high = bounds(min_hosts, max_hosts)
    if isinstance(current, bool) or not isinstance(current, int) or current < 1:
        raise ScaleError('the fleet must have at least one app host to advise on, got %r' % (current,))
    readings = []
    for name, value, target in (('cpu', cpu, cpu_target), ('memory', memory, memory_target)):
        value = _fraction(value, name)
        target = _fraction(target, name + '_target')
        if not target:
            raise ScaleError('%s_target must be above 0' % name)
        if value is not None:
            readings.append((name, value, target, value / target))
    if not readings:
        return {'desired': current, 'delta': 0, 'reason': 'no CPU or memory reading from Prometheus: '
                'no advice (nothing changes)', 'readings': []}
    name, value, target, ratio = max(readings, key=lambda r: r[3])
    if abs(ratio - 1.0) <= tolerance:
        desired = current
    else:
        desired = int(math.ceil(round(current * ratio, 6)))
    desired = max(low, min(high, desired))
    views = ['%s %.0f %% (target %.0f %%)' % (n, v * 100, t * 100) for n, v, t, _ratio in readings]
    delta = desired - current
    if delta > 0:
        verdict = 'add %d app host(s)' % delta
    elif delta < 0:
        verdict = 'remove %d app host(s)' % -delta
    else:
        verdict = 'keep the fleet as it is'
    return {'desired': desired, 'delta': delta, 'readings': [r[0] for r in readings],
            'reason': '%s: %s; %d -> %d within %d-%d (led by %s)'
                      % (verdict, ', '.join(views), current, desired, low, high, name)}


def auto_pick(inventory, current, delta):
    """The hosts scale_auto acts on: spare inventory hosts to add (in inventory
    order), or the last members to remove. Never more than exist."""
    names = [pair[0] for pair in inventory]
    if delta > 0:
        return {'add': [h for h in names if h not in current][:delta], 'remove': []}
    if delta < 0:
        members = [h for h in names if h in current]
        return {'add': [], 'remove': members[len(members) + delta:] if -delta < len(members) else members[1:]}
    return {'add': [], 'remove': []}


def plan_auto(inventory, states, cpu, memory, cpu_target=0.70, memory_target=0.80, min_hosts=3, max_hosts=10,
              slot_ports=None, run_id=None):
    """scale_auto: the advice, then the plan that follows it with inventory hosts only."""
    members = plan(inventory, states, remove=None, min_hosts=min_hosts, max_hosts=max_hosts,
                   slot_ports=slot_ports, only_add=[], run_id=run_id)['current']
    advice = advise(len(members), cpu, memory, cpu_target, memory_target, min_hosts, max_hosts)
    picked = auto_pick(inventory, members, advice['delta'])
    result = plan(inventory, states, remove=picked['remove'], min_hosts=min_hosts, max_hosts=max_hosts,
                  slot_ports=slot_ports, only_add=picked['add'], run_id=run_id)
    short = advice['delta'] - (len(result['add']) - len(result['remove']))
    if short > 0:
        advice['reason'] += ('; only %d spare app host(s) in the inventory: add %d more to the app group'
                             % (len(result['add']), short))
    result['advice'] = advice
    return result
