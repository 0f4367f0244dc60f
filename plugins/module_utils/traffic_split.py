# -*- coding: utf-8 -*-
# Copyright: SuperSmartMatch platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What the traffic_split module does, as plain Python.

``plan_split`` turns the module's parameters and the stored state into the
split to apply; ``execute`` runs one call: compare-and-set, drift check,
plan, render, NGINX, state. The pieces live beside this file:
``traffic_split_validate`` (input), ``traffic_split_render`` (the NGINX file,
its parsing and drift) and ``traffic_split_state`` (the state document).

Write order: the NGINX file first (validated, swapped in, reloaded), the
state last. The file records the generation it was written for, one ahead
of the stored state until the state is written, so a crash at any point
leaves either nothing changed or a file whose generation differs from the
state's: the next call sees drift (``set``, ``restore``, ``complete`` and
``promote`` refuse; ``rollback`` repairs).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import getpass
import os
import uuid

from ansible_collections.supersmartmatch.platform.plugins.module_utils.locking import file_lock, lease_path, read_lease
from ansible_collections.supersmartmatch.platform.plugins.module_utils.nginx import (
    NginxError, read_text, write_atomic)
from ansible_collections.supersmartmatch.platform.plugins.module_utils.traffic_split_render import (
    body, drift_reason, names, parse_live, render_config)
from ansible_collections.supersmartmatch.platform.plugins.module_utils.traffic_split_state import (
    check_expected_generation, check_sides, dump_state, generation_of, new_state, read_json, split_summary, traffic_fields, trimmed)
from ansible_collections.supersmartmatch.platform.plugins.module_utils.traffic_split_validate import (
    DEFAULT_KEEPALIVE, SplitError, format_percent, parse_backends, parse_percent, parse_server_options,
    validate_generation, validate_keepalive, validate_label, validate_nginx_variable, validate_salt,
    validate_service, validate_sides)

PHASES = ('bootstrap', 'canary', 'extended', 'full', 'promoted', 'rollback', 'manual')
STATUSES = ('steady', 'in_progress', 'completed', 'rolled_back')
OPERATIONS = ('set', 'rollback', 'promote', 'complete', 'restore', 'resize', 'join')
# what the caller may not give with operation=join: the split comes whole from fleet_split
JOIN_EXCLUDES = ('stable', 'candidate', 'percent', 'stable_version', 'candidate_version', 'stable_color',
                 'candidate_color', 'sticky_key', 'sticky_fallback')
LIVE_KEYS = ('percent', 'stable_backends', 'candidate_backends', 'stable_version', 'candidate_version')


def paths(params):
    """(config_path, state_path) of a service, its name validated first."""
    service = validate_service(params.get('service'))
    return (os.path.join(params['config_dir'], '%s.conf' % service),
            os.path.join(params['state_dir'], '%s.json' % service))


def options_from(params, stored, operation):
    """server_options and keepalive: given with ``set``, else those stored."""
    given = dict((k, params.get(k)) for k in ('server_options', 'keepalive') if params.get(k) is not None)
    if given and operation != 'set':
        raise SplitError('%s cannot be given with operation=%s: it re-renders the options stored in the state'
                         % (' and '.join(sorted(given)), operation))
    stored = stored or {}
    server_options = given.get('server_options', stored.get('server_options'))
    keepalive = given.get('keepalive', stored.get('keepalive'))
    return {
        'server_options': parse_server_options(server_options),
        'keepalive': validate_keepalive(DEFAULT_KEEPALIVE if keepalive is None else keepalive),
    }


def plan_restore(service, params, previous, sticky_key, sticky_fallback):
    """Undo the last change if the run ``params['run_id']`` made it.

    Used to keep load balancers together: when one fails to move, those that
    moved in the same run go back. Returns None when there is nothing to undo
    (no state, or the last change belongs to another run).
    """
    run_id = params.get('run_id')
    if not run_id:
        raise SplitError('operation=restore needs run_id: only the run that made a change may undo it')
    options_from(params, None, 'restore')
    if not previous or previous.get('run_id') != run_id or not previous.get('previous'):
        return None
    before = previous['previous']
    check_sides(before, 'restore')
    split = {
        'service': service, 'operation': 'restore', 'percent': float(before['percent']),
        'phase': before['phase'], 'status': before.get('status'), 'salt': before.get('salt', ''),
        'sticky_key': before.get('sticky_key') or sticky_key,
        'sticky_fallback': before.get('sticky_fallback') or sticky_fallback,
        'stable': dict(before['stable']), 'candidate': dict(before['candidate']),
    }
    split.update(options_from({}, before, 'restore'))
    return split


def plan_join(service, params, previous):
    """A balancer added to a running fleet takes, whole, the split its peers agree on.

    ``params['fleet_split']`` is that split (the ``state`` traffic_split_info
    returns on a peer; site.yml decides it with the ``rollout_fleet`` filter):
    the same sides and backends, share, phase, status, salt and sticky keys,
    so every user lands on the same side whichever balancer answers. Only a
    balancer without a state joins: one with a state is already a member.
    """
    if previous:
        raise SplitError('service %r already has a traffic state on this host (generation %d): operation=join is '
                         'for a balancer that has none; nothing was changed' % (service, generation_of(previous)))
    given = [k for k in JOIN_EXCLUDES if params.get(k) is not None]
    if given:
        raise SplitError('%s cannot be given with operation=join: the split comes whole from fleet_split'
                         % ', '.join(given))
    fleet = params.get('fleet_split')
    if not isinstance(fleet, dict) or not fleet:
        raise SplitError('operation=join needs fleet_split: the split the other balancers agree on '
                         '(the state traffic_split_info returns)')
    check_sides(dict(fleet, service=service), 'join')
    sides = {}
    for side in ('stable', 'candidate'):
        part = fleet[side]
        sides[side] = {'backends': parse_backends(part.get('backends'), 'fleet_split.%s.backends' % side),
                       'version': validate_label(part.get('version'), 'fleet_split.%s.version' % side),
                       'color': validate_label(part.get('color'), 'fleet_split.%s.color' % side)}
    validate_sides(sides['stable']['backends'], sides['candidate']['backends'])
    phase, status = fleet.get('phase'), fleet.get('status')
    if phase not in PHASES:
        raise SplitError('fleet_split.phase must be one of %s, got %r' % (', '.join(PHASES), phase))
    if status not in STATUSES:
        raise SplitError('fleet_split.status must be one of %s, got %r' % (', '.join(STATUSES), status))
    split = {
        'service': service, 'operation': 'join', 'percent': parse_percent(fleet.get('percent')),
        'phase': phase, 'status': status, 'salt': validate_salt(fleet.get('salt')),
        'sticky_key': validate_nginx_variable(fleet.get('sticky_key') or '$cookie_ssm_uid', 'fleet_split.sticky_key'),
        'sticky_fallback': validate_nginx_variable(fleet.get('sticky_fallback') or '$remote_addr',
                                                   'fleet_split.sticky_fallback'),
        'stable': sides['stable'], 'candidate': sides['candidate'],
    }
    split.update(options_from(params, fleet, 'join'))
    return split


def plan_split(params, previous):
    """Turn module parameters and the previous state into the split to apply.

    ``params['operation']`` is ``set`` (the caller gives sides and percent),
    ``rollback`` (all traffic back to the stable side named in the state; after
    a promotion, back to the side that was stable before it) or ``promote``
    (the candidate, which must already hold 100 %, becomes the stable side) or
    ``complete`` (the current phase passed its hold; traffic does not move)
    or ``resize`` (new backend lists for both sides, all else kept: scale.yml)
    or ``restore`` (see ``plan_restore``) or ``join`` (see ``plan_join``).
    Raises SplitError, naming the problem, when the request cannot be met.
    """
    service = validate_service(params.get('service'))
    operation = params.get('operation') or 'set'
    sticky_key = validate_nginx_variable(
        params.get('sticky_key') or (previous or {}).get('sticky_key') or '$cookie_ssm_uid', 'sticky_key')
    sticky_fallback = validate_nginx_variable(
        params.get('sticky_fallback') or (previous or {}).get('sticky_fallback') or '$remote_addr',
        'sticky_fallback')

    if operation == 'restore':
        return plan_restore(service, params, previous, sticky_key, sticky_fallback)
    if operation == 'join':
        return plan_join(service, params, previous)
    if operation in ('rollback', 'promote', 'complete', 'resize'):
        if not previous:
            raise SplitError(
                'service %r has no traffic state on this host (%s): nothing to %s; '
                'nothing was changed' % (service, params.get('state_path') or 'state_dir', operation))
        if params.get('percent') is not None:
            raise SplitError('percent cannot be given with operation=%s' % operation)
        check_sides(previous, operation)
        options = options_from(params, previous, operation)
        stable = dict(previous['stable'])
        candidate = dict(previous['candidate'])
        percent = float(previous.get('percent', 0))
        salt = previous.get('salt', '')
        if operation == 'rollback':
            if previous.get('phase') == 'promoted':
                stable, candidate = candidate, stable
            phase, status, percent = 'rollback', 'rolled_back', 0.0
        elif operation == 'promote':
            if percent < 100 and previous.get('phase') != 'promoted':
                raise SplitError(
                    'service %r cannot be promoted: the candidate holds %s %% of traffic, not 100 %%'
                    % (service, format_percent(percent)))
            if previous.get('phase') != 'promoted':
                stable, candidate = candidate, stable
            phase, status, percent = 'promoted', 'completed', 0.0
        elif operation == 'resize':
            # scale.yml: new backend lists, everything else as it is (share,
            # phase, status, versions, colours, salt: the cohort stays put)
            stable['backends'] = parse_backends(params.get('stable'), 'stable')
            candidate['backends'] = parse_backends(params.get('candidate'), 'candidate')
            phase, status = previous.get('phase'), previous.get('status')
        else:
            phase = params.get('phase')
            version = params.get('candidate_version')
            if phase != previous.get('phase') or (version is not None and version != candidate.get('version')):
                raise SplitError(
                    'cannot mark phase %s of version %s complete: service %r is in phase %s of version %s'
                    % (phase, version or '-', service, previous.get('phase'), candidate.get('version')))
            status = 'completed'
    elif operation == 'set':
        percent = parse_percent(params.get('percent'))
        stable = {'backends': parse_backends(params.get('stable'), 'stable')}
        candidate = {'backends': parse_backends(params.get('candidate'), 'candidate')}
        for side, part in (('stable', stable), ('candidate', candidate)):
            for key in ('version', 'color'):
                option = '%s_%s' % (side, key)
                part[key] = validate_label(params.get(option), option)
        phase = params.get('phase') or 'manual'
        if phase not in PHASES:
            raise SplitError('phase must be one of %s, got %r' % (', '.join(PHASES), phase))
        status = 'in_progress' if phase in ('canary', 'extended', 'full') else 'steady'
        salt = validate_salt(params.get('salt'))
        options = options_from(params, previous, operation)
    else:
        raise SplitError('operation must be one of %s, got %r' % (', '.join(OPERATIONS), operation))
    validate_sides(stable['backends'], candidate['backends'])
    split = {
        'service': service,
        'operation': operation,
        'percent': percent,
        'phase': phase,
        'status': status,
        'salt': salt,
        'sticky_key': sticky_key,
        'sticky_fallback': sticky_fallback,
        'stable': stable,
        'candidate': candidate,
    }
    split.update(options)
    return split


# --------------------------------------------------------------------------
# One call of the module
# --------------------------------------------------------------------------

def write_state_file(path, text):
    """The last write of a change (tests replace it to crash before it)."""
    write_atomic(path, text)


def drift_refusal(service, operation, reason, generation):
    return SplitError(
        'drift on %s: %s. %s refused, nothing was changed; rollback (playbooks/rollback.yml) renders the '
        'state again at 0 %% on the stable side and repairs it' % (service, reason, operation),
        drift=True, drift_reason=reason, generation=generation)


def execute(params, nginx, check_mode=False, diff=False):
    """Run one traffic_split call; return the module's result.

    ``nginx`` is a ``module_utils.nginx.Nginx`` (or a fake with ``apply``).
    Raises SplitError (nothing changed; ``details`` for fail_json) or
    NginxError (``changed`` says whether files moved).
    """
    config_path, state_path = paths(params)
    lock_dir = params['state_dir'] if os.path.isdir(params['state_dir']) else None
    with file_lock(lock_dir, '.%s.module.lock' % params['service']):
        previous = read_json(state_path)
        generation = generation_of(previous)
        try:
            return _execute(params, nginx, check_mode, diff, config_path, state_path, previous)
        except (SplitError, NginxError) as exc:
            exc.details.setdefault('generation', generation)
            exc.details['previous_generation'] = generation
            raise


def _execute(params, nginx, check_mode, diff, config_path, state_path, previous):
    service = params['service']
    operation = params.get('operation') or 'set'
    generation = generation_of(previous)
    result = dict(changed=False, config_path=config_path, state_path=state_path, reloaded=False,
                  variable=names(service)['variable'], generation=generation, previous_generation=generation)
    history_limit = params.get('history_limit')
    history_limit = 100 if history_limit is None else history_limit
    if not isinstance(history_limit, int) or history_limit < 0:
        raise SplitError('history_limit must be >= 0 (0 keeps every entry), got %r' % (history_limit,))
    check_expected_generation(previous, validate_generation(params.get('expected_generation')))
    current = read_text(config_path)
    drift = drift_reason(previous, current)
    if drift and operation != 'rollback':
        raise drift_refusal(service, operation, drift, generation)
    split = plan_split(dict(params, state_path=state_path), previous)
    result['previous'] = result['split'] = split_summary(previous)
    if split is None:  # restore: the last change is not this run's
        return result
    if not drift and traffic_fields(previous) == traffic_fields(split):
        return result

    run_by = params.get('run_by') or os.environ.get('SUDO_USER') or getpass.getuser()
    run_id = params.get('run_id') or str(uuid.uuid4())
    state = new_state(previous, split, run_by, run_id, history_limit)
    content = render_config(split, state['generation'])
    result.update(changed=True, split=split_summary(state), generation=state['generation'])
    if drift:
        result['repaired'] = drift
    if diff:
        result['diff'] = [dict(before_header=config_path, after_header=config_path,
                               before=current or '', after=content)]
    # Only comments changed (a new generation, a status): nothing for NGINX to
    # reload, unless the file had drifted (what NGINX runs is then unknown).
    reload = bool(params.get('reload', True)) and (body(content) != body(current) or bool(drift))
    if not check_mode:
        for directory in (params['state_dir'], params['config_dir']):
            if not os.path.isdir(directory):
                os.makedirs(directory, 0o755)
    outcome = nginx.apply({config_path: content}, reload=reload, check_mode=check_mode,
                          backup_dir=params['state_dir'], force_reload=reload)
    result['reloaded'] = outcome['reloaded']
    if not check_mode:
        try:
            write_state_file(state_path, dump_state(state))
        except (IOError, OSError) as exc:
            raise NginxError('the split file %s is in place at generation %d but the state could not be written (%s): '
                             'the next call sees drift; run rollback to repair' % (config_path, state['generation'], exc),
                             changed=True)
    return result


# --------------------------------------------------------------------------
# traffic_split_info
# --------------------------------------------------------------------------

def lease_view(lease, now):
    """The rollout lease with ``expired``, or None."""
    if lease is None:
        return None
    view = dict(lease)
    try:
        view['expired'] = float(lease.get('expires', 0)) <= now
    except (TypeError, ValueError):
        view['expired'] = True
    return view


def info(params, now, history=10):
    """What traffic_split_info returns: the state, the live file, drift, the lease.

    Each file is read once, under the lock the module's writers take, so a
    change in progress is not mistaken for drift.
    """
    config_path, state_path = paths(params)
    service = params['service']
    lock_dir = params['state_dir'] if os.path.isdir(params['state_dir']) else None
    with file_lock(lock_dir, '.%s.module.lock' % service, create=False, shared=True):
        state = read_json(state_path)
        current = read_text(config_path)
        lease = read_lease(lease_path(params['state_dir'], service))
    live = parse_live(current, service)
    reason = drift_reason(state, current)
    return {
        'changed': False,
        'config_path': config_path,
        'state_path': state_path,
        'exists': state is not None,
        'state': trimmed(state, history),
        'generation': generation_of(state),
        'file_generation': None if live is None else live['generation'],
        'drift': reason is not None,
        'drift_reason': reason,
        'live': None if live is None else dict((k, live[k]) for k in LIVE_KEYS),
        'lease': lease_view(lease, now),
    }
