# -*- coding: utf-8 -*-
# Copyright: SuperSmartMatch platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Pure logic behind the traffic_split module.

Everything here is plain Python so unit tests can call it directly: input
validation, rendering of the NGINX split file, the per-service state file, and
the construction of a throw-away configuration tree in which a new split file
is validated by ``nginx -t`` *before* it is put in place.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import datetime
import json
import math
import re

STATE_VERSION = 1
SERVICE_RE = re.compile(r'^[a-z][a-z0-9_]{0,62}$')
HOST_RE = re.compile(r'^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9]([A-Za-z0-9.-]{0,251}[A-Za-z0-9])?)$')
NGINX_VAR_RE = re.compile(r'^\$[A-Za-z_][A-Za-z0-9_]*$')
SALT_RE = re.compile(r'^[A-Za-z0-9._:+-]{0,64}$')
PHASES = ('bootstrap', 'canary', 'extended', 'full', 'promoted', 'rollback', 'manual')
MANAGED_HEADER = '# Managed by supersmartmatch.platform.traffic_split - do not edit by hand.'


class SplitError(Exception):
    """Bad input or an unusable state: nothing has been changed."""


# --------------------------------------------------------------------------
# Input validation
# --------------------------------------------------------------------------

def parse_percent(value):
    """Return ``value`` as a float in [0, 100] with at most two decimals.

    Accepts ints, floats and numeric strings; rejects booleans, NaN and
    anything else with a message that names the bad value.
    """
    if isinstance(value, bool) or value is None:
        raise SplitError('percent must be a number from 0 to 100, got %r' % (value,))
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise SplitError('percent must be a number from 0 to 100, got %r' % (value,))
    if math.isnan(number) or math.isinf(number):
        raise SplitError('percent must be a number from 0 to 100, got %r' % (value,))
    if number < 0 or number > 100:
        raise SplitError('percent must be between 0 and 100, got %s' % format_percent(number))
    if round(number, 2) != number:
        raise SplitError('percent has at most two decimals (NGINX split_clients), got %r' % (value,))
    return number


def format_percent(number):
    """``5.0`` -> ``'5'``, ``12.5`` -> ``'12.5'``."""
    if float(number).is_integer():
        return '%d' % int(number)
    return ('%.2f' % number).rstrip('0').rstrip('.')


def validate_service(name):
    if not isinstance(name, str) or not SERVICE_RE.match(name):
        raise SplitError(
            'service must start with a lower-case letter and contain only a-z, 0-9 and _ '
            '(it names NGINX upstreams and variables), got %r' % (name,))
    return name


def parse_backend(item):
    """Validate one ``host:port`` backend and return it normalised."""
    if not isinstance(item, str) or not item.strip():
        raise SplitError('backend must be a "host:port" string, got %r' % (item,))
    text = item.strip()
    host, sep, port = text.rpartition(':')
    if not sep or not host:
        raise SplitError('backend %r must be "host:port"' % (item,))
    if not HOST_RE.match(host):
        raise SplitError('backend %r has an invalid host %r' % (item, host))
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise SplitError('backend %r has an invalid port %r (1-65535)' % (item, port))
    return '%s:%d' % (host, int(port))


def parse_backends(items, side):
    if items is None:
        raise SplitError('%s is required: a list of "host:port" backends' % side)
    if isinstance(items, str):
        items = [items]
    if not isinstance(items, (list, tuple)) or not items:
        raise SplitError('%s must be a non-empty list of "host:port" backends' % side)
    result = []
    for item in items:
        backend = parse_backend(item)
        if backend in result:
            raise SplitError('%s lists backend %s twice' % (side, backend))
        result.append(backend)
    return result


def validate_sides(stable, candidate):
    shared = sorted(set(stable) & set(candidate))
    if shared:
        raise SplitError('stable and candidate must not share backends: %s' % ', '.join(shared))


def validate_nginx_variable(value, option):
    if not isinstance(value, str) or not NGINX_VAR_RE.match(value):
        raise SplitError('%s must be one NGINX variable such as $cookie_ssm_uid, got %r' % (option, value))
    return value


def validate_salt(value):
    value = '' if value is None else str(value)
    if not SALT_RE.match(value):
        raise SplitError('salt may hold up to 64 of A-Z a-z 0-9 . _ : + -, got %r' % (value,))
    return value


# --------------------------------------------------------------------------
# Rendering
# --------------------------------------------------------------------------

def names(service):
    """The NGINX names a service's split file defines."""
    return {
        'stable': '%s_stable' % service,
        'candidate': '%s_candidate' % service,
        'key': '$%s_split_key' % service,
        'variable': '$%s_backend' % service,
    }


def render_config(split, options=None):
    """Render the NGINX split file for ``split``.

    ``split`` holds ``service``, ``stable``/``candidate`` (dicts with
    ``backends``), ``percent``, ``salt``, ``sticky_key`` and ``sticky_fallback``.
    The candidate bucket is listed first, so with a fixed key and salt the
    users sent to the candidate at 5 % are still there at 25 %. Only the
    upstreams that take traffic are defined.
    """
    options = options or {}
    service = split['service']
    n = names(service)
    keepalive = int(options.get('keepalive', 32))
    server_options = options.get('server_options', 'max_fails=3 fail_timeout=10s').strip()
    percent = float(split['percent'])
    lines = [MANAGED_HEADER,
             '# service=%s stable=%s candidate=%s percent=%s' % (
                 service, split['stable'].get('version') or '-',
                 split['candidate'].get('version') or '-', format_percent(percent)),
             '']
    # A side that takes no traffic is left out, so that a dead or unresolvable
    # host on that side cannot make the configuration invalid (rollback must
    # work when the candidate is gone).
    sides = ('stable',) if percent <= 0 else ('candidate',) if percent >= 100 else ('stable', 'candidate')
    for side in sides:
        lines.append('upstream %s {' % n[side])
        for backend in split[side]['backends']:
            lines.append('    server %s%s;' % (backend, ' ' + server_options if server_options else ''))
        if keepalive > 0:
            lines.append('    keepalive %d;' % keepalive)
        lines.append('}')
        lines.append('')
    lines.append('map %s %s {' % (split['sticky_key'], n['key']))
    lines.append('    ""      %s;' % split['sticky_fallback'])
    lines.append('    default %s;' % split['sticky_key'])
    lines.append('}')
    lines.append('')
    lines.append('split_clients "%s%s" %s {' % (
        '${%s}' % n['key'][1:], split.get('salt') or '', n['variable']))
    if percent >= 100:
        lines.append('    *   %s;' % n['candidate'])
    elif percent <= 0:
        lines.append('    *   %s;' % n['stable'])
    else:
        lines.append('    %s%%  %s;' % (format_percent(percent), n['candidate']))
        lines.append('    *   %s;' % n['stable'])
    lines.append('}')
    return '\n'.join(lines) + '\n'


# --------------------------------------------------------------------------
# State
# --------------------------------------------------------------------------

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


def dump_state(state):
    """Serialise a state for its file."""
    return json.dumps(state, indent=2, sort_keys=True) + '\n'


def split_summary(state):
    """The part of a state that describes where traffic goes."""
    if not state:
        return None
    return {
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
    keys = ('percent', 'phase', 'status', 'salt', 'sticky_key', 'sticky_fallback')
    result = dict((k, state.get(k)) for k in keys)
    for side in ('stable', 'candidate'):
        part = state.get(side) or {}
        result[side] = (tuple(part.get('backends') or ()), part.get('version'), part.get('color'))
    return result


def new_state(previous, split, run_by, run_id, history_limit=100, now=None):
    """Build the state to store after applying ``split`` over ``previous``."""
    now = now or utc_now()
    history = list((previous or {}).get('history') or [])
    entry = {
        'time': now,
        'operation': split.get('operation', 'set'),
        'phase': split['phase'],
        'status': split.get('status'),
        'percent': split['percent'],
        'stable_version': split['stable'].get('version'),
        'candidate_version': split['candidate'].get('version'),
        'by': run_by,
        'run_id': run_id,
    }
    history.append(entry)
    if history_limit and len(history) > history_limit:
        history = history[-history_limit:]
    state = {
        'format': STATE_VERSION,
        'service': split['service'],
        'percent': split['percent'],
        'phase': split['phase'],
        'status': split.get('status'),
        'salt': split.get('salt', ''),
        'sticky_key': split['sticky_key'],
        'sticky_fallback': split['sticky_fallback'],
        'stable': dict(split['stable']),
        'candidate': dict(split['candidate']),
        'updated_at': now,
        'updated_by': run_by,
        'run_id': run_id,
        # a restore cannot itself be restored: a second restore is a no-op
        'previous': None if split.get('operation') == 'restore' else snapshot(previous),
        'history': history,
    }
    return state


def snapshot(state):
    """The part of a state that ``restore`` can go back to (no history)."""
    if not state:
        return None
    keys = ('percent', 'phase', 'status', 'salt', 'sticky_key', 'sticky_fallback', 'stable', 'candidate',
            'run_id', 'updated_at', 'updated_by')
    return dict((k, state.get(k)) for k in keys)


def plan_restore(service, params, previous, sticky_key, sticky_fallback):
    """Undo the last change if the run ``params['run_id']`` made it.

    Used to keep load balancers together: when one fails to move, those that
    moved in the same run go back. Returns None when there is nothing to undo
    (no state, or the last change belongs to another run).
    """
    run_id = params.get('run_id')
    if not run_id:
        raise SplitError('operation=restore needs run_id: only the run that made a change may undo it')
    if not previous or previous.get('run_id') != run_id or not previous.get('previous'):
        return None
    before = previous['previous']
    return {
        'service': service, 'operation': 'restore', 'percent': float(before['percent']),
        'phase': before['phase'], 'status': before.get('status'), 'salt': before.get('salt', ''),
        'sticky_key': before.get('sticky_key') or sticky_key,
        'sticky_fallback': before.get('sticky_fallback') or sticky_fallback,
        'stable': dict(before['stable']), 'candidate': dict(before['candidate']),
    }


def plan_split(params, previous):
    """Turn module parameters and the previous state into the split to apply.

    ``params['operation']`` is ``set`` (the caller gives sides and percent),
    ``rollback`` (all traffic back to the stable side named in the state; after
    a promotion, back to the side that was stable before it) or ``promote``
    (the candidate, which must already hold 100 %, becomes the stable side) or
    ``complete`` (the current phase passed its hold; traffic does not move).
    Raises SplitError, naming the problem, when the request cannot be met.
    """
    service = validate_service(params['service'])
    operation = params.get('operation') or 'set'
    sticky_key = validate_nginx_variable(
        params.get('sticky_key') or (previous or {}).get('sticky_key') or '$cookie_ssm_uid', 'sticky_key')
    sticky_fallback = validate_nginx_variable(
        params.get('sticky_fallback') or (previous or {}).get('sticky_fallback') or '$remote_addr',
        'sticky_fallback')

    if operation == 'restore':
        return plan_restore(service, params, previous, sticky_key, sticky_fallback)
    if operation in ('rollback', 'promote', 'complete'):
        if not previous:
            raise SplitError(
                'service %r has no traffic state on this host (%s): nothing to %s; '
                'nothing was changed' % (service, params.get('state_path') or 'state_dir', operation))
        if params.get('percent') is not None:
            raise SplitError('percent cannot be given with operation=%s' % operation)
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
                value = params.get('%s_%s' % (side, key))
                part[key] = None if value is None else str(value)
        phase = params.get('phase') or 'manual'
        if phase not in PHASES:
            raise SplitError('phase must be one of %s, got %r' % (', '.join(PHASES), phase))
        status = 'in_progress' if phase in ('canary', 'extended', 'full') else 'steady'
        salt = validate_salt(params.get('salt'))
    else:
        raise SplitError('operation must be set, rollback, promote, complete or restore, got %r' % (operation,))
    validate_sides(stable['backends'], candidate['backends'])
    return {
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
