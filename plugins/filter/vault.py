# -*- coding: utf-8 -*-
# Copyright: SuperSmartMatch platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters of the vault role; the decisions are in module_utils/vault_cluster.py (documented in vault_*.yml)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json

from ansible.errors import AnsibleFilterError
from ansible_collections.supersmartmatch.platform.plugins.module_utils import vault_cluster


def _wrap(function):
    def wrapped(*args, **kwargs):
        try:
            return function(*args, **kwargs)
        except vault_cluster.VaultDecisionError as exc:
            raise AnsibleFilterError(str(exc))
    return wrapped


def vault_node_state(status, body=None):
    return vault_cluster.node_state(status, body)


def vault_config_problems(stdout, stderr=''):
    """Problems in `operator diagnose -format=json` output; output that is not JSON is a problem itself."""
    try:
        report = json.loads(stdout)
    except (TypeError, ValueError):
        text = ' '.join(str(part) for part in (stdout, stderr) if part).strip()
        return ['diagnose did not answer in JSON: %s' % (text[:500] or 'no output')]
    return vault_cluster.config_problems(report)


class FilterModule(object):
    def filters(self):
        return {
            'vault_node_state': vault_node_state,
            'vault_node_states': _wrap(vault_cluster.node_states),
            'vault_restart_order': _wrap(vault_cluster.restart_order),
            'vault_policy': _wrap(vault_cluster.policy_hcl),
            'vault_config_problems': vault_config_problems,
        }
