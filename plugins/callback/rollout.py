# -*- coding: utf-8 -*-
# Copyright: SuperSmartMatch platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
name: rollout
type: stdout
short_description: Ansible's default output, plus each gate round of a rollout hold as it happens
version_added: 0.2.0
description:
  - The default stdout callback, with one change. A hold runs its gate one round per call
    (M(supersmartmatch.platform.metric_gate) with O(supersmartmatch.platform.metric_gate#module:resume_file)),
    and instead of Ansible's C(FAILED - RETRYING) line each round prints what it measured, as it
    happens - the round number, each check's value against its threshold and its outcome (passed,
    failed, inconclusive, error, no data), and the time left in the hold.
  - Enable it with C(stdout_callback = supersmartmatch.platform.rollout) in C(ansible.cfg) (this
    repository's does), or C(ANSIBLE_STDOUT_CALLBACK=supersmartmatch.platform.rollout).
  - While a phase waits for approval (C(rollout_require_approval)), each round says so, and the decision
    (approved or rejected, by whom, when) is printed as it arrives.
  - Every other event is printed exactly as the default callback prints it.
author:
  - SuperSmartMatch platform team (@supersmartmatch)
extends_documentation_fragment:
  - ansible.builtin.default_callback
  - ansible.builtin.result_format_callback
requirements:
  - set as stdout in configuration
'''

from ansible.plugins.callback.default import CallbackModule as DefaultCallback

from ansible_collections.supersmartmatch.platform.plugins.module_utils.gate_progress import format_decision, format_round


class CallbackModule(DefaultCallback):

    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = 'stdout'
    CALLBACK_NAME = 'supersmartmatch.platform.rollout'

    def _round_line(self, result):
        data = getattr(result, 'result', None)
        if data is None:
            data = getattr(result, '_result', None) or {}
        if not isinstance(data, dict):
            return None
        host = result.host.get_name() if hasattr(result, 'host') else result._host.get_name()
        if not isinstance(data.get('round'), dict):
            return format_decision(host, data)
        return format_round(host, data)

    def v2_runner_retry(self, result):
        line = self._round_line(result)
        if line is None:
            return super(CallbackModule, self).v2_runner_retry(result)
        self._display.display(line)
        return None

    def v2_runner_on_ok(self, result):
        line = self._round_line(result)
        if line is not None:
            self._display.display(line)
        return super(CallbackModule, self).v2_runner_on_ok(result)
