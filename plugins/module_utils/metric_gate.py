# -*- coding: utf-8 -*-
# Copyright: SuperSmartMatch platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The logic behind the metric_gate module, in the spirit of an Argo Rollouts AnalysisRun.

This module only gathers the parts, split by concern as Argo's ``analysis/``:

* ``metric_gate_common``: outcomes, errors, numbers and their formatting;
* ``metric_gate_params``: validation of the options (nothing is requested before it passes);
* ``metric_gate_providers``: fetching (Prometheus, JSON documents), URL building, redaction;
* ``metric_gate_evaluate``: thresholds, violations, outcomes and verdicts;
* ``metric_gate_loop``: the sampling rounds (classic mode), one attempt at a time;
* ``metric_gate_watch``: the watched state file that aborts a gate when it moves;
* ``metric_gate_step``: step mode, one round per module call, resumed from a file;
* ``metric_gate_compare`` and ``metric_gate_judge``: the statistical comparison with the baseline;
* ``metric_gate_messages``: messages and summaries.

Rules, as in Argo: every measurement of a check is ``passed``, ``failed`` or
``inconclusive`` (a good measurement), or ``error`` (none could be taken);
errors are retried after ``error_retry_interval`` without using a sample slot
and ``consecutive_error_limit`` errors in a row end the gate with ``error``;
a check fails when ``failed > failure_limit``; the verdict is the worst
outcome: error > failed > inconclusive > passed (``aborted`` when the watched
state moved under the gate).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.supersmartmatch.platform.plugins.module_utils.metric_gate_common import (
    CHECK_KEYS, GOOD_OUTCOMES, NO_DATA_POLICIES, OUTCOMES, PROVIDERS, VERDICT_RANK, GateError, ProviderError,
    fmt, fmt_bound, is_nan, iso_utc, json_number, no_data, parse_bound, to_number)
from ansible_collections.supersmartmatch.platform.plugins.module_utils.metric_gate_evaluate import (
    check_verdict, evaluate_value, new_summary, task_failed, threshold_text, verdict_of, violation)
from ansible_collections.supersmartmatch.platform.plugins.module_utils.metric_gate_loop import (
    attempt, measure, new_run, result_of, run_gate, wait_until_due)
from ansible_collections.supersmartmatch.platform.plugins.module_utils.metric_gate_messages import (
    error_message, failure_message, gate_message, gate_title, inconclusive_message, public_measurements)
from ansible_collections.supersmartmatch.platform.plugins.module_utils.metric_gate_params import (
    max_duration, normalize_check, validate_params, validate_url)
from ansible_collections.supersmartmatch.platform.plugins.module_utils.metric_gate_providers import (
    endpoint_text, extract_json, extract_prometheus, make_fetch_json, make_fetch_value, prometheus_query_url,
    redact_url)

__all__ = [
    'CHECK_KEYS', 'GOOD_OUTCOMES', 'NO_DATA_POLICIES', 'OUTCOMES', 'PROVIDERS', 'VERDICT_RANK', 'GateError',
    'ProviderError', 'fmt', 'fmt_bound', 'is_nan', 'iso_utc', 'json_number', 'no_data', 'parse_bound', 'to_number',
    'check_verdict', 'evaluate_value', 'new_summary', 'task_failed', 'threshold_text', 'verdict_of', 'violation',
    'attempt', 'measure', 'new_run', 'result_of', 'run_gate', 'wait_until_due',
    'error_message', 'failure_message', 'gate_message', 'gate_title', 'inconclusive_message', 'public_measurements',
    'max_duration', 'normalize_check', 'validate_params', 'validate_url',
    'endpoint_text', 'extract_json', 'extract_prometheus', 'make_fetch_json', 'make_fetch_value',
    'prometheus_query_url', 'redact_url',
]
