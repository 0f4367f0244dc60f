# -*- coding: utf-8 -*-
# Copyright: SuperSmartMatch platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Decisions of the vault role, as plain functions (table-driven unit tests).

- node_state: what a node's /v1/sys/health answer means;
- restart_order: which nodes a rolling restart touches, in which order, or why it must not start;
- policy_hcl: a read-only policy for KV v2 paths (one policy per path set);
- config_problems: what `bao/vault operator diagnose -format=json` found wrong in a configuration.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re

# /v1/sys/health status codes (same in OpenBao and HashiCorp Vault).
HEALTH_CODES = {
    200: 'active',
    429: 'standby',
    472: 'standby',    # disaster-recovery secondary (Vault Enterprise)
    473: 'standby',    # performance standby (Vault Enterprise)
    501: 'uninitialized',
    503: 'sealed',
}

# The query that makes every state answer with its own code (never a redirect).
HEALTH_QUERY = 'standbycode=429&perfstandbyok=false&sealedcode=503&uninitcode=501'

NAME_RE = re.compile(r'^[A-Za-z0-9][A-Za-z0-9_-]{0,62}\Z')
KV_PATH_RE = re.compile(r'^[A-Za-z0-9_-]+(/[A-Za-z0-9_-]+)*\Z')
CAPABILITIES = ('create', 'read', 'update', 'patch', 'delete', 'list')


class VaultDecisionError(ValueError):
    """A decision that must stop the role, with a message for the user."""


def node_state(status, body=None):
    """State of one node from its health answer: active, standby, sealed, uninitialized or unreachable."""
    try:
        status = int(status)
    except (TypeError, ValueError):
        return 'unreachable'
    state = HEALTH_CODES.get(status, 'unreachable')
    if isinstance(body, dict) and state in ('active', 'standby'):
        if body.get('sealed') is True:
            return 'sealed'
        if body.get('initialized') is False:
            return 'uninitialized'
    return state


def node_states(results):
    """{host: state} from the results of a health probe looped over the hosts (item, status, json)."""
    states = {}
    for result in results or []:
        if not isinstance(result, dict) or 'item' not in result:
            raise VaultDecisionError('node_states expects the results of a looped health probe, got %r' % (result,))
        states[result['item']] = node_state(result.get('status'), result.get('json'))
    return states


def restart_order(states, changed):
    """Hosts to restart one at a time: changed standbys first (sorted), the active node last.

    states: {host: state} for every node of the cluster; changed: hosts whose configuration,
    unit or certificate changed. A rolling restart starts only when every node is unsealed and
    exactly one is active: restarting while a node is sealed or down could lose the quorum.
    """
    changed = [host for host in changed if host in states]
    if not changed:
        return []
    not_ready = sorted(host for host, state in states.items() if state not in ('active', 'standby'))
    if not_ready:
        raise VaultDecisionError(
            'rolling restart refused: node(s) %s are %s; every node must be unsealed and healthy before one '
            'is restarted (run the role again once they are, it unseals sealed nodes)'
            % (', '.join(not_ready), ', '.join(states[host] for host in not_ready)))
    active = sorted(host for host, state in states.items() if state == 'active')
    if len(active) != 1:
        raise VaultDecisionError('rolling restart refused: %d active node(s) (%s), expected exactly one'
                                 % (len(active), ', '.join(active) or 'none'))
    standbys = sorted(host for host in changed if states[host] == 'standby')
    return standbys + [host for host in active if host in changed]


def policy_hcl(mount, paths, capabilities=('read',)):
    """HCL of a policy giving `capabilities` on the KV v2 secrets under each path of `paths`.

    A path 'app/app1' covers the secret app/app1 and everything under app/app1/.
    """
    if not isinstance(mount, str) or not KV_PATH_RE.match(mount):
        raise VaultDecisionError('invalid KV mount %r: letters, digits, _ and - separated by /' % (mount,))
    if isinstance(paths, str) or not paths:
        raise VaultDecisionError('a policy needs a non-empty list of KV paths, got %r' % (paths,))
    capabilities = list(capabilities)
    unknown = [cap for cap in capabilities if cap not in CAPABILITIES]
    if unknown or not capabilities:
        raise VaultDecisionError('invalid capabilities %r: choose among %s' % (unknown or capabilities, ', '.join(CAPABILITIES)))
    caps = ', '.join('"%s"' % cap for cap in capabilities)
    blocks = []
    for path in paths:
        if not isinstance(path, str) or not KV_PATH_RE.match(path):
            raise VaultDecisionError('invalid KV path %r: letters, digits, _ and - separated by /' % (path,))
        for prefix in ('data', 'metadata'):
            item_caps = caps if prefix == 'data' else '"read", "list"'
            for suffix in ('', '/*'):
                blocks.append('path "%s/%s/%s%s" {\n  capabilities = [%s]\n}\n' % (mount, prefix, path, suffix, item_caps))
    return '\n'.join(blocks)


# Checks of the running machine, not of the file: diagnose binds the listener even with -skip=listener,
# which fails while the server runs ("address already in use"). The root's status only sums up its children.
RUNTIME_CHECKS = ('Start Listeners',)


def config_problems(report):
    """Problems in an `operator diagnose -format=json` report of a configuration file.

    A check in status 'fail' or 'error' is a problem, and so is an unknown field (a warning the
    server would ignore silently: a typo in a setting must not pass).
    """
    problems = []

    def walk(node, trail):
        if not isinstance(node, dict):
            return
        name = node.get('name', '?')
        if name in RUNTIME_CHECKS:
            return
        status = node.get('status')
        message = node.get('message') or ''
        here = trail + [name]
        if status in ('fail', 'error') and trail:
            problems.append('%s: %s' % (' > '.join(here), message or status))
        for warning in [message] + list(node.get('warnings') or []):
            if 'Unknown or unsupported field' in warning:
                problems.append('%s: %s' % (' > '.join(here), warning))
        for child in node.get('children') or []:
            walk(child, here)

    walk(report, [])
    return problems
