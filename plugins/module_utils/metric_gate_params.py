# -*- coding: utf-8 -*-
# Copyright: SuperSmartMatch platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Validation of the metric_gate options: bad input is refused, with the option named, before any request."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import math

try:
    from urllib.parse import urlsplit
except ImportError:  # pragma: no cover - Python 2
    from urlparse import urlsplit

from ansible_collections.supersmartmatch.platform.plugins.module_utils.metric_gate_common import (
    CHECK_KEYS, NO_DATA_POLICIES, PROVIDERS, GateError, fmt_bound, parse_bound)
from ansible_collections.supersmartmatch.platform.plugins.module_utils.metric_gate_compare import (
    COMPARE_ONLY_KEYS, KINDS, normalize_compare, rounds_from)
from ansible_collections.supersmartmatch.platform.plugins.module_utils.metric_gate_providers import redact_url
from ansible_collections.supersmartmatch.platform.plugins.module_utils.metric_gate_watch import normalize_watch


def _number_param(params, option, minimum, integer=False, strict=False, label=None):
    value = params.get(option)
    label = label or option
    if isinstance(value, bool) or value is None:
        raise GateError('%s must be a number, got %r' % (label, value))
    try:
        number = int(value) if integer else float(value)
    except (TypeError, ValueError):
        raise GateError('%s must be a number, got %r' % (label, value))
    if integer and float(value) != number:
        raise GateError('%s must be a whole number, got %r' % (label, value))
    if math.isnan(number) or math.isinf(number):
        raise GateError('%s must be a finite number, got %r' % (label, value))
    if (strict and number <= minimum) or number < minimum:
        raise GateError('%s must be %s %s, got %s' % (label, '>' if strict else '>=', minimum, value))
    return number


def validate_url(url, option='url'):
    if not isinstance(url, str) or not url.strip():
        raise GateError('%s is required: the Prometheus server or the JSON document URL' % option)
    url = url.strip()
    parts = urlsplit(url)
    if parts.scheme not in ('http', 'https') or not parts.netloc:
        raise GateError('%s must be an http:// or https:// URL, got %r' % (option, redact_url(url)))
    return url


def normalize_check(item, index, provider='prometheus', compile_expr=None):
    """Validate one check and return it with its bounds as floats.

    ``compile_expr`` (``jmespath.compile`` for http_json) is called on each
    expression so a syntax error is reported before any request.
    """
    where = 'checks[%d]' % index
    if not isinstance(item, dict):
        raise GateError('%s must be a dict with name, query and min and/or max, got %r' % (where, item))
    unknown = sorted(set(item) - set(CHECK_KEYS))
    if unknown:
        raise GateError('%s: unknown key(s) %s (allowed: %s)' % (where, ', '.join(unknown), ', '.join(CHECK_KEYS)))
    name = item.get('name')
    if not isinstance(name, str) or not name.strip():
        raise GateError('%s: name is required (a non-empty string)' % where)
    name = name.strip()
    where = 'check %r' % name
    provider = item.get('provider') or provider
    if provider not in PROVIDERS:
        raise GateError('%s: provider must be one of %s, got %r' % (where, ', '.join(PROVIDERS), provider))
    check = dict(name=name, provider=provider)
    for key in ('query', 'baseline_query'):
        query = item.get(key)
        if query is None and key == 'baseline_query':
            check[key] = None
            continue
        if not isinstance(query, str) or not query.strip():
            raise GateError('%s: %s must be a non-empty %s' % (
                where, key, 'PromQL query' if provider == 'prometheus' else 'JMESPath expression'))
        check[key] = query.strip()
        if compile_expr is not None and provider == 'http_json':
            try:
                compile_expr(check[key])
            except Exception as exc:
                raise GateError('%s: invalid JMESPath expression in %s %r: %s' % (where, key, check[key], exc))
    for key in ('min', 'max'):
        check[key] = parse_bound(item.get(key), key, where)
    for key in ('min_ratio', 'max_ratio'):
        check[key] = parse_bound(item.get(key), key, where, minimum=0)
    for key in ('url', 'baseline_url'):
        check[key] = validate_url(item[key], '%s: %s' % (where, key)) if item.get(key) is not None else None
    policy = item.get('on_no_data')
    if policy is not None and policy not in NO_DATA_POLICIES:
        raise GateError('%s: on_no_data must be one of %s, got %r' % (where, ', '.join(NO_DATA_POLICIES), policy))
    check['on_no_data'] = policy
    check['initial_delay'] = (0.0 if item.get('initial_delay') is None
                              else _number_param(item, 'initial_delay', 0, label='%s: initial_delay' % where))
    kind = item.get('kind') or 'threshold'
    if kind not in KINDS:
        raise GateError('%s: kind must be one of %s, got %r' % (where, ', '.join(KINDS), kind))
    if kind == 'compare':
        return normalize_compare(item, check, where)
    misplaced = sorted(key for key in COMPARE_ONLY_KEYS if key != 'kind' and item.get(key) is not None)
    if misplaced:
        raise GateError('%s: %s only apply to kind compare' % (where, ', '.join(misplaced)))
    if all(check[key] is None for key in ('min', 'max', 'min_ratio', 'max_ratio')):
        raise GateError('%s needs at least one of min, max, min_ratio, max_ratio' % where)
    if check['min'] is not None and check['max'] is not None and check['min'] > check['max']:
        raise GateError('%s: min %s is greater than max %s' % (where, fmt_bound(check['min']), fmt_bound(check['max'])))
    if check['min_ratio'] is not None and check['max_ratio'] is not None and check['min_ratio'] > check['max_ratio']:
        raise GateError('%s: min_ratio %s is greater than max_ratio %s' % (
            where, fmt_bound(check['min_ratio']), fmt_bound(check['max_ratio'])))
    has_ratio = check['min_ratio'] is not None or check['max_ratio'] is not None
    if has_ratio and check['baseline_query'] is None:
        raise GateError('%s: min_ratio/max_ratio need a baseline_query' % where)
    if check['baseline_query'] is not None and not has_ratio:
        raise GateError('%s: baseline_query needs min_ratio and/or max_ratio' % where)
    if check['baseline_url'] is not None and check['baseline_query'] is None:
        raise GateError('%s: baseline_url needs a baseline_query' % where)
    return check


def validate_params(params, compile_expr=None):
    """Validate the module parameters; return the normalised settings.

    Raises GateError with a message naming the option; nothing is requested
    before this succeeds.
    """
    provider = params.get('provider', 'prometheus')
    if provider not in PROVIDERS:
        raise GateError('provider must be one of %s, got %r' % (', '.join(PROVIDERS), provider))
    on_no_data = params.get('on_no_data', 'inconclusive')
    if on_no_data not in NO_DATA_POLICIES:
        raise GateError('on_no_data must be one of %s, got %r' % (', '.join(NO_DATA_POLICIES), on_no_data))
    checks = params.get('checks')
    if not isinstance(checks, (list, tuple)) or not checks:
        raise GateError('checks must be a non-empty list of dicts with name, query and min and/or max')
    normalized = [normalize_check(item, index, provider, compile_expr) for index, item in enumerate(checks)]
    seen = set()
    for check in normalized:
        if check['name'] in seen:
            raise GateError('check names must be unique: %r appears twice' % check['name'])
        seen.add(check['name'])
    settings = dict(
        provider=provider,
        url=validate_url(params.get('url')),
        checks=normalized,
        count=_number_param(params, 'count', 1, integer=True),
        interval=_number_param(params, 'interval', 0),
        initial_delay=_number_param(params, 'initial_delay', 0),
        failure_limit=_number_param(params, 'failure_limit', 0, integer=True),
        consecutive_error_limit=_number_param(params, 'consecutive_error_limit', 1, integer=True),
        error_retry_interval=_number_param(params, 'error_retry_interval', 0),
        timeout=_number_param(params, 'timeout', 0, strict=True),
        on_no_data=on_no_data,
        start_at=None if params.get('start_at') is None else _number_param(params, 'start_at', 0),
        watch=normalize_watch(params.get('watch')),
    )
    for check in normalized:
        if check.get('kind') == 'compare' and check['step'] is None and settings['interval'] <= 0:
            raise GateError('check %r: kind compare needs a step (seconds between samples) when interval is 0'
                            % check['name'])
    last_round = settings['interval'] * (settings['count'] - 1)
    for check in normalized:
        if rounds_from(check) > last_round:
            raise GateError('check %r: initial_delay %s leaves it no sample round (the last of %d rounds starts '
                            '%s s after the first); lower it or raise count' % (
                                check['name'], fmt_bound(check['initial_delay']), settings['count'],
                                fmt_bound(last_round)))
    return settings


def max_duration(settings, errors=0):
    """Run time of a gate, request time aside: initial_delay + interval x (count - 1) + errors x retry."""
    return (settings['initial_delay'] + settings['interval'] * (settings['count'] - 1)
            + errors * settings['error_retry_interval'])
