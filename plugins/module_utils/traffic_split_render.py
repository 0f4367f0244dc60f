# -*- coding: utf-8 -*-
# Copyright: SuperSmartMatch platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The NGINX split file of traffic_split: rendering, parsing, drift.

The file is the truth of where users go, so it records the generation of the
state it was written for (``# generation=8 service=...``). ``drift_reason``
compares the live file with what the state renders; traffic_split and
traffic_split_info both use it.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re

from ansible_collections.supersmartmatch.platform.plugins.module_utils.traffic_split_validate import (
    DEFAULT_KEEPALIVE, SplitError, format_percent, parse_backend, parse_percent, parse_server_options,
    validate_keepalive, validate_label, validate_nginx_variable, validate_salt, validate_service)
from ansible_collections.supersmartmatch.platform.plugins.module_utils.traffic_split_state import generation_of

MANAGED_HEADER = '# Managed by supersmartmatch.platform.traffic_split - do not edit by hand.'
SUMMARY_RE = re.compile(r'# (?:generation=([0-9]+) )?service=(\S+) stable=(\S+) candidate=(\S+) percent=(\S+)\Z')
SERVER_RE = re.compile(r'^\s*server\s+([^\s;]+)', re.M)


def names(service):
    """The NGINX names a service's split file defines."""
    return {
        'stable': '%s_stable' % service,
        'candidate': '%s_candidate' % service,
        'key': '$%s_split_key' % service,
        'variable': '$%s_backend' % service,
    }


def _checked_backends(side, part):
    backends = list((part or {}).get('backends') or [])
    if not backends:
        raise SplitError('%s has no backends' % side)
    for backend in backends:
        if parse_backend(backend) != backend:
            raise SplitError('%s backend %r is not normalised' % (side, backend))
    return backends


def render_config(split, generation=0):
    """Render the NGINX split file for ``split`` as written at ``generation``.

    ``split`` holds ``service``, ``stable``/``candidate`` (dicts with
    ``backends``, ``version``), ``percent``, ``salt``, ``sticky_key``,
    ``sticky_fallback``, ``server_options`` and ``keepalive`` (the last two
    default when absent, as in states written before they were kept).
    Every value is validated again here, in full, before it is rendered.
    The candidate bucket is listed first, so with a fixed key and salt the
    users sent to the candidate at 5 % are still there at 25 %. Only the
    upstreams that take traffic are defined. Generation 0 (states written
    before generations existed) renders the summary line without it.
    """
    service = validate_service(split.get('service'))
    n = names(service)
    percent = parse_percent(split.get('percent'))
    keepalive = validate_keepalive(split.get('keepalive', DEFAULT_KEEPALIVE))
    server_options = parse_server_options(split.get('server_options'))
    versions = [validate_label((split.get(side) or {}).get('version'), '%s version' % side) or '-'
                for side in ('stable', 'candidate')]
    salt = validate_salt(split.get('salt'))
    sticky_key = validate_nginx_variable(split.get('sticky_key'), 'sticky_key')
    sticky_fallback = validate_nginx_variable(split.get('sticky_fallback'), 'sticky_fallback')
    backends = dict((side, _checked_backends(side, split.get(side))) for side in ('stable', 'candidate'))
    summary = 'service=%s stable=%s candidate=%s percent=%s' % (
        service, versions[0], versions[1], format_percent(percent))
    if generation:
        summary = 'generation=%d %s' % (generation, summary)
    lines = [MANAGED_HEADER, '# ' + summary, '']
    # A side that takes no traffic is left out, so that a dead or unresolvable
    # host on that side cannot make the configuration invalid (rollback must
    # work when the candidate is gone).
    sides = ('stable',) if percent <= 0 else ('candidate',) if percent >= 100 else ('stable', 'candidate')
    for side in sides:
        lines.append('upstream %s {' % n[side])
        for backend in backends[side]:
            lines.append('    server %s%s;' % (backend, ' ' + server_options if server_options else ''))
        if keepalive > 0:
            lines.append('    keepalive %d;' % keepalive)
        lines.append('}')
        lines.append('')
    lines.append('map %s %s {' % (sticky_key, n['key']))
    lines.append('    ""      %s;' % sticky_fallback)
    lines.append('    default %s;' % sticky_key)
    lines.append('}')
    lines.append('')
    lines.append('split_clients "%s%s" %s {' % ('${%s}' % n['key'][1:], salt, n['variable']))
    if percent >= 100:
        lines.append('    *   %s;' % n['candidate'])
    elif percent <= 0:
        lines.append('    *   %s;' % n['stable'])
    else:
        lines.append('    %s%%  %s;' % (format_percent(percent), n['candidate']))
        lines.append('    *   %s;' % n['stable'])
    lines.append('}')
    return '\n'.join(lines) + '\n'


def render_state(state):
    """The file that ``state`` says is live."""
    return render_config(state, generation_of(state))


def body(text):
    """The file without its comment lines: what NGINX acts on."""
    if text is None:
        return None
    return '\n'.join(line for line in text.splitlines() if not line.startswith('#'))


# --------------------------------------------------------------------------
# Reading the live file back
# --------------------------------------------------------------------------

def _upstream_servers(text, name):
    match = re.search(r'^upstream %s \{\n(.*?)^\}' % re.escape(name), text, re.M | re.S)
    return SERVER_RE.findall(match.group(1)) if match else []


def _live_percent(text, n):
    match = re.search(r'^split_clients [^\n]* %s \{\n(.*?)^\}' % re.escape(n['variable']), text, re.M | re.S)
    if not match:
        return None
    block = match.group(1)
    share = re.search(r'^\s*([0-9]+(?:\.[0-9]+)?)%%\s+%s;' % re.escape(n['candidate']), block, re.M)
    if share:
        return float(share.group(1))
    if re.search(r'^\s*\*\s+%s;' % re.escape(n['candidate']), block, re.M):
        return 100.0
    if re.search(r'^\s*\*\s+%s;' % re.escape(n['stable']), block, re.M):
        return 0.0
    return None


def parse_live(text, service):
    """What the live split file says, or None when there is no file.

    Returns ``generation`` (None when the file does not record one),
    ``managed`` (the file has this module's header), ``percent`` (read from
    the ``split_clients`` block, which is what NGINX acts on),
    ``stable_backends``, ``candidate_backends`` and the versions of the
    summary line.
    """
    if text is None:
        return None
    n = names(service)
    lines = text.splitlines()
    summary = None
    for line in lines[:5]:
        summary = SUMMARY_RE.match(line) or summary
    return {
        'managed': bool(lines) and lines[0] == MANAGED_HEADER and summary is not None,
        'generation': int(summary.group(1)) if summary and summary.group(1) else None,
        'percent': _live_percent(text, n),
        'stable_backends': _upstream_servers(text, n['stable']),
        'candidate_backends': _upstream_servers(text, n['candidate']),
        'stable_version': summary.group(3) if summary else None,
        'candidate_version': summary.group(4) if summary else None,
    }


def _share(percent):
    return 'unknown %' if percent is None else '%s %%' % format_percent(percent)


def drift_reason(state, live_text):
    """Why the live split file is not what ``state`` renders, or None.

    Without a state there is nothing to drift from (a first ``set`` takes
    the file over). The reason names the file's generation and share and the
    state's, so that an operator can tell a crash between the two writes
    (the file one generation ahead) from a hand edit (same generation).
    """
    if state is None:
        return None
    generation = generation_of(state)
    try:
        expected = render_state(state)
    except SplitError as exc:
        return 'the state cannot be rendered (%s)' % exc
    if live_text == expected:
        return None
    told = 'the state is at generation %d with %s on the candidate' % (generation, _share(state.get('percent')))
    if live_text is None:
        return 'the split file is missing but %s' % told
    live = parse_live(live_text, state['service'])
    if not live['managed']:
        return 'the split file was not written by traffic_split (no managed header) and %s' % told
    file_generation = live['generation'] if live['generation'] is not None else 0
    seen = 'the split file is at generation %d with %s on the candidate' % (file_generation, _share(live['percent']))
    if file_generation != generation:
        return '%s but %s' % (seen, told)
    if live['percent'] != float(state.get('percent', -1)):
        return '%s but %s (edited by hand?)' % (seen, told)
    return 'the split file at generation %d differs from what the state renders (edited by hand?)' % generation
