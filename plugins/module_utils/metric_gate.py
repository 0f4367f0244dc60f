# -*- coding: utf-8 -*-
# Copyright: SuperSmartMatch platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Pure logic behind the metric_gate module.

A gate measures a list of checks ``count`` times and returns one verdict, in
the spirit of an Argo Rollouts AnalysisRun:

* every measurement of a check is ``passed``, ``failed`` or ``inconclusive``
  (a "good" measurement), or ``error`` (no measurement could be taken);
* errors are retried after ``error_retry_interval`` without using a sample
  slot; ``consecutive_error_limit`` errors in a row of one check end the gate
  with the verdict ``error``; a good measurement resets the count;
* a check fails when its failed measurements exceed ``failure_limit``
  (``failed > failure_limit``); the gate then stops at once;
* the verdict is the worst outcome: error > failed > inconclusive > passed.

Nothing here does I/O by itself: HTTP is done by the ``opener`` given to
:func:`make_fetch_json` (``ansible.module_utils.urls.open_url`` in the module),
and :func:`run_gate` takes ``fetch_value``, ``sleep``, ``clock`` and ``now``
callables so unit tests run instantly with fakes.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import datetime
import json
import math
import time

try:
    from urllib.parse import urlencode, urlsplit, urlunsplit
except ImportError:  # pragma: no cover - Python 2
    from urllib import urlencode
    from urlparse import urlsplit, urlunsplit

PROVIDERS = ('prometheus', 'http_json')
OUTCOMES = ('passed', 'failed', 'inconclusive', 'error')
GOOD_OUTCOMES = ('passed', 'failed', 'inconclusive')
NO_DATA_POLICIES = ('fail', 'pass', 'inconclusive')
VERDICT_RANK = {'passed': 0, 'inconclusive': 1, 'failed': 2, 'error': 3}
CHECK_KEYS = ('name', 'query', 'min', 'max', 'baseline_query', 'min_ratio', 'max_ratio', 'url', 'baseline_url',
              'provider', 'on_no_data', 'initial_delay')
PROMETHEUS_PATH = '/api/v1/query'
MAX_BODY = 16 * 1024 * 1024
MAX_LISTED_VALUES = 10
RATIO_TOLERANCE = 1e-9


class GateError(Exception):
    """Bad input: raised before any request is made."""


class ProviderError(Exception):
    """A measurement could not be taken (unreachable, HTTP error, bad JSON, bad query)."""


# --------------------------------------------------------------------------
# Numbers and formatting
# --------------------------------------------------------------------------

def is_nan(value):
    return isinstance(value, float) and math.isnan(value)


def no_data(value):
    """True for the values that mean "no data": None and NaN."""
    return value is None or is_nan(value)


def fmt(value, digits=4, against=None):
    """Format a measured value with up to ``digits`` significant digits.

    If ``against`` (a threshold) would print the same, more digits are used
    (up to 12) so that ``0.93996 < min 0.94`` never reads ``0.94 < min 0.94``.
    """
    if value is None:
        return 'null'
    value = float(value)
    if math.isnan(value):
        return 'NaN'
    if math.isinf(value):
        return '+Inf' if value > 0 else '-Inf'
    text = '%.*g' % (digits, value)
    if against is not None and value != against:
        limit = fmt_bound(against)
        while text == limit and digits < 12:
            digits += 1
            text = '%.*g' % (digits, value)
    return text


def fmt_bound(value):
    """Format a threshold as given by the user (no rounding to 4 digits)."""
    return '%.12g' % float(value)


def to_number(raw, what):
    """Convert a value read from a provider to a float, or None for no data.

    Numbers and numeric strings are converted (``"NaN"`` gives NaN, which
    callers treat as no data); booleans give 1.0/0.0; None stays None.
    Anything else (a non-numeric string, an object) raises ProviderError.
    """
    if raw is None:
        return None
    if isinstance(raw, bool):
        return 1.0 if raw else 0.0
    if isinstance(raw, (int, float)):
        return float(raw)
    if isinstance(raw, str):
        try:
            return float(raw.strip())
        except ValueError:
            pass
    text = json.dumps(raw) if not isinstance(raw, str) else repr(raw)
    if len(text) > 80:
        text = text[:77] + '...'
    raise ProviderError('%s is not a number: %s' % (what, text))


def parse_bound(value, option, where, minimum=None):
    """Parse a threshold (min, max, ratio) given by the user; None stays None."""
    if value is None:
        return None
    number = None
    if not isinstance(value, bool):
        try:
            number = float(value)
        except (TypeError, ValueError):
            number = None
    if number is None or math.isnan(number) or math.isinf(number):
        raise GateError('%s: %s must be a finite number, got %r' % (where, option, value))
    if minimum is not None and number < minimum:
        raise GateError('%s: %s must be >= %s, got %s' % (where, option, fmt_bound(minimum), fmt_bound(number)))
    return number


def iso_utc(timestamp):
    return datetime.datetime.fromtimestamp(timestamp, datetime.timezone.utc).isoformat(timespec='milliseconds')


def redact_url(url):
    """Drop user:password from a URL before it is shown in a message."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return url
    if parts.username is None and parts.password is None:
        return url
    netloc = parts.hostname or ''
    if parts.port:
        netloc = '%s:%d' % (netloc, parts.port)
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


# --------------------------------------------------------------------------
# Validation
# --------------------------------------------------------------------------

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
    )
    last_round = settings['interval'] * (settings['count'] - 1)
    for check in normalized:
        if check['initial_delay'] > last_round:
            raise GateError('check %r: initial_delay %s leaves it no sample round (the last of %d rounds starts '
                            '%s s after the first); lower it or raise count' % (
                                check['name'], fmt_bound(check['initial_delay']), settings['count'],
                                fmt_bound(last_round)))
    return settings


def max_duration(settings, errors=0):
    """Run time of a gate, request time aside: initial_delay + interval x (count - 1) + errors x retry."""
    return (settings['initial_delay'] + settings['interval'] * (settings['count'] - 1)
            + errors * settings['error_retry_interval'])


# --------------------------------------------------------------------------
# Extraction
# --------------------------------------------------------------------------

def _sample_value(sample, what):
    if not isinstance(sample, (list, tuple)) or len(sample) != 2:
        raise ProviderError('Prometheus returned a malformed %s sample: %r' % (what, sample))
    return to_number(sample[1], 'Prometheus %s value' % what)


def extract_prometheus(doc):
    """Return the value of a ``/api/v1/query`` response.

    Instant vector: the single sample's value (an empty vector gives None;
    more than one series raises ProviderError); scalar: its value. NaN is
    returned as NaN (no data for the caller). ``status: error``, matrices,
    strings and malformed documents raise ProviderError.
    """
    if not isinstance(doc, dict):
        raise ProviderError('Prometheus response is not a JSON object')
    status = doc.get('status')
    if status != 'success':
        if status == 'error':
            raise ProviderError('Prometheus error %s: %s' % (doc.get('errorType', 'unknown'), doc.get('error', '')))
        raise ProviderError('Prometheus response has status %r, expected "success"' % (status,))
    data = doc.get('data')
    if not isinstance(data, dict):
        raise ProviderError('Prometheus response has no data object')
    result_type = data.get('resultType')
    result = data.get('result')
    if result_type == 'vector':
        if not isinstance(result, list):
            raise ProviderError('Prometheus vector result is not a list')
        if not result:
            return None
        if len(result) > 1:
            raise ProviderError('query returned %d series, expected 1' % len(result))
        series = result[0]
        if not isinstance(series, dict):
            raise ProviderError('Prometheus returned a malformed series: %r' % (series,))
        return _sample_value(series.get('value'), 'vector')
    if result_type == 'scalar':
        return _sample_value(result, 'scalar')
    if result_type == 'matrix':
        raise ProviderError('query returned a range vector (matrix); use an instant vector or scalar query')
    raise ProviderError('query returned resultType %r, expected vector or scalar' % (result_type,))


def extract_json(doc, expr, search=None):
    """Return the number that the JMESPath ``expr`` selects in ``doc``.

    null (missing key) and an empty list give None (no data); a list of one
    element is unwrapped; NaN stays NaN; booleans give 1/0; numeric strings
    are converted. A longer list or a non-numeric value raises ProviderError.
    ``search`` is ``jmespath.search`` (or a compiled expression's search).
    """
    if search is None:
        import jmespath
        search = jmespath.search
    try:
        raw = search(expr, doc)
    except Exception as exc:
        raise ProviderError('JMESPath %r failed: %s' % (expr, exc))
    if isinstance(raw, list):
        if not raw:
            return None
        if len(raw) > 1:
            raise ProviderError('JMESPath %r returned %d values, expected 1' % (expr, len(raw)))
        raw = raw[0]
    return to_number(raw, 'JMESPath %r result' % expr)


# --------------------------------------------------------------------------
# HTTP (the opener is injected: open_url in the module)
# --------------------------------------------------------------------------

def _error_detail(body):
    """Best effort: the ``error`` of a Prometheus JSON error body, else its start."""
    if not body:
        return ''
    try:
        text = body.decode('utf-8', 'replace') if isinstance(body, bytes) else str(body)
    except Exception:
        return ''
    try:
        doc = json.loads(text)
        if isinstance(doc, dict) and doc.get('error'):
            return '%s: %s' % (doc.get('errorType', 'error'), doc['error'])
    except ValueError:
        pass
    text = ' '.join(text.split())
    return text[:200]


def make_fetch_json(opener, timeout=10, headers=None, validate_certs=True, ca_path=None):
    """Return ``fetch_json(url) -> document`` doing one GET with ``opener``.

    Every failure (connection, TLS, timeout, HTTP status >= 400, bad JSON)
    becomes a ProviderError whose message names the URL.
    """
    request_headers = dict(Accept='application/json')
    request_headers.update(headers or {})

    def fetch_json(url):
        shown = redact_url(url)
        try:
            response = opener(url, method='GET', headers=request_headers, timeout=timeout,
                              validate_certs=validate_certs, ca_path=ca_path, follow_redirects='safe')
            try:
                body = response.read(MAX_BODY + 1)
            finally:
                close = getattr(response, 'close', None)
                if close:
                    close()
        except Exception as exc:
            code = getattr(exc, 'code', None)
            if isinstance(code, int):
                try:
                    detail = _error_detail(exc.read())
                except Exception:
                    detail = ''
                reason = getattr(exc, 'reason', '') or ''
                raise ProviderError('HTTP %s %s from %s%s' % (code, reason, shown, (': ' + detail) if detail else ''))
            reason = getattr(exc, 'reason', None) or exc
            raise ProviderError('cannot reach %s: %s' % (shown, reason))
        if len(body) > MAX_BODY:
            raise ProviderError('response from %s is larger than %d bytes' % (shown, MAX_BODY))
        try:
            return json.loads(body.decode('utf-8') if isinstance(body, bytes) else body)
        except ValueError as exc:
            start = body[:60].decode('utf-8', 'replace') if isinstance(body, bytes) else str(body)[:60]
            raise ProviderError('bad JSON from %s: %s (body starts %r)' % (shown, exc, start))

    return fetch_json


def prometheus_query_url(base, query):
    base = base.rstrip('/')
    if not base.endswith(PROMETHEUS_PATH):
        base += PROMETHEUS_PATH
    return '%s?%s' % (base, urlencode({'query': query}))


def make_fetch_value(provider, url, fetch_json, search=None):
    """Return ``fetch_value(query, url=None) -> float | NaN | None`` for a provider.

    ``prometheus``: one instant query per call on ``<url>/api/v1/query``.
    ``http_json``: GET the URL and apply the JMESPath ``query``.
    A check may name its own provider (and URL), passed at each call.
    """
    default_url = url
    default_provider = provider

    def fetch_value(query, url=None, provider=None):
        target = url or default_url
        if (provider or default_provider) == 'prometheus':
            return extract_prometheus(fetch_json(prometheus_query_url(target, query)))
        return extract_json(fetch_json(target), query, search)

    return fetch_value


# --------------------------------------------------------------------------
# Evaluation
# --------------------------------------------------------------------------

def _range_text(lo, hi, subject):
    """``0.94 <= value <= 1``, ``value >= 0.94``, ``value <= 1`` or None."""
    if lo is not None and hi is not None:
        return '%s <= %s <= %s' % (fmt_bound(lo), subject, fmt_bound(hi))
    if lo is not None:
        return '%s >= %s' % (subject, fmt_bound(lo))
    if hi is not None:
        return '%s <= %s' % (subject, fmt_bound(hi))
    return None


def threshold_text(check):
    """``0.94 <= value <= 1``, ``value <= 0.5 and value/baseline <= 1.2``..."""
    parts = [_range_text(check.get('min'), check.get('max'), 'value'),
             _range_text(check.get('min_ratio'), check.get('max_ratio'), 'value/baseline')]
    return ' and '.join(part for part in parts if part)


def violation(check, value, baseline=None):
    """The first bound that ``value`` breaks, as ``(kind, shown, bound)``, else None.

    ``kind`` is ``min``/``max`` (value) or ``min_ratio``/``max_ratio``
    (value / baseline). Bounds are inclusive: a value equal to a bound
    passes; a ratio within a relative 1e-9 of its bound counts as equal
    (``0.09 / 0.1`` is ``0.8999999999999999``). The ratio is only looked at with a usable baseline (not None,
    NaN or 0). ``value`` must not be None or NaN.
    """
    if check.get('min') is not None and value < check['min']:
        return ('min', value, check['min'])
    if check.get('max') is not None and value > check['max']:
        return ('max', value, check['max'])
    if check.get('baseline_query') and not no_data(baseline) and baseline != 0:
        ratio = value / baseline
        lo, hi = check.get('min_ratio'), check.get('max_ratio')
        if lo is not None and ratio < lo and not math.isclose(ratio, lo, rel_tol=RATIO_TOLERANCE):
            return ('min_ratio', ratio, lo)
        if hi is not None and ratio > hi and not math.isclose(ratio, hi, rel_tol=RATIO_TOLERANCE):
            return ('max_ratio', ratio, hi)
    return None


def _violation_text(kind, shown, bound):
    op = '<' if kind.startswith('min') else '>'
    prefix = 'ratio ' if kind.endswith('ratio') else ''
    return '%s%s %s %s %s' % (prefix, fmt(shown, against=bound), op, kind, fmt_bound(bound))


def evaluate_value(check, value, baseline=None, on_no_data='inconclusive'):
    """Return ``(outcome, message)`` for one measurement of ``check``.

    * no data (``value`` None or NaN): ``on_no_data`` decides:
      fail -> failed, pass -> passed, inconclusive -> inconclusive;
    * ``value < min`` or ``value > max`` -> failed (bounds inclusive);
    * with a baseline_query: a baseline that is None, NaN or 0 gives
      inconclusive (the ratio is undefined), otherwise ``value / baseline``
      is held to ``min_ratio <= ratio <= max_ratio`` (inclusive);
    * otherwise passed.
    """
    if no_data(value):
        reason = 'value is NaN' if is_nan(value) else 'query returned no value'
        outcome = {'fail': 'failed', 'pass': 'passed'}.get(on_no_data, 'inconclusive')
        return outcome, 'no data (%s), on_no_data=%s' % (reason, on_no_data)
    broken = violation(check, value, baseline)
    if broken:
        return 'failed', _violation_text(*broken)
    if check.get('baseline_query'):
        if no_data(baseline):
            return 'inconclusive', 'baseline has no data (%s): ratio undefined' % (
                'NaN' if is_nan(baseline) else 'no value')
        if baseline == 0:
            return 'inconclusive', 'baseline is 0: ratio undefined'
        return 'passed', '%s (ratio %s) within %s' % (fmt(value), fmt(value / baseline), threshold_text(check))
    return 'passed', '%s within %s' % (fmt(value), threshold_text(check))


def _json_number(value):
    """Floats for the result: NaN and infinities become None (not valid JSON)."""
    if value is None:
        return None
    value = float(value)
    if math.isnan(value) or math.isinf(value):
        return None
    return value


def verdict_of(summary, failure_limit=0):
    """The gate verdict from the per-check counts, worst first.

    error: a check reached consecutive_error_limit; failed: a check has
    more failed measurements than ``failure_limit``; inconclusive: a check
    has any inconclusive measurement; passed otherwise.
    """
    verdicts = [check_verdict(counts, failure_limit) for counts in summary.values()]
    if not verdicts:
        return 'inconclusive'
    return max(verdicts, key=VERDICT_RANK.get)


def check_verdict(counts, failure_limit=0):
    if counts.get('error_limit_reached'):
        return 'error'
    if counts.get('failed', 0) > failure_limit:
        return 'failed'
    if counts.get('inconclusive', 0) > 0 or not counts.get('measurements', 0):
        # never measured (the gate stopped first): no evidence, never a pass
        return 'inconclusive'
    return 'passed'


def _new_summary(check):
    return dict(passed=0, failed=0, inconclusive=0, error=0, measurements=0, consecutive_errors=0,
                error_limit_reached=False, last_value=None, threshold=threshold_text(check), verdict='passed')


def measure(check, fetch_value, on_no_data, timestamp):
    """Take one measurement of ``check``; errors become an ``error`` measurement."""
    item = dict(check=check['name'], time=iso_utc(timestamp), value=None)
    if check.get('baseline_query'):
        item['baseline'] = None
    value = baseline = None
    try:
        value = fetch_value(check['query'], check.get('url'), check.get('provider'))
        if check.get('baseline_query') and not no_data(value):
            try:
                baseline = fetch_value(check['baseline_query'], check.get('baseline_url') or check.get('url'),
                                       check.get('provider'))
            except ProviderError as exc:
                raise ProviderError('baseline: %s' % exc)
    except ProviderError as exc:
        item.update(value=_json_number(value), outcome='error', message=str(exc))
        return item, value, baseline
    outcome, message = evaluate_value(check, value, baseline, check.get('on_no_data') or on_no_data)
    item.update(value=_json_number(value), outcome=outcome, message=message)
    if value is not None and item['value'] is None and not is_nan(value):
        item['_raw'] = value  # +/-Inf: null in the result, kept for failure_message
    if check.get('baseline_query'):
        item['baseline'] = _json_number(baseline)
    return item, value, baseline


def run_gate(checks, fetch_value, count=1, interval=60.0, initial_delay=0.0, failure_limit=0,
             consecutive_error_limit=4, error_retry_interval=10.0, on_no_data='inconclusive',
             sleep=time.sleep, clock=time.monotonic, now=time.time, start_at=None):
    """Measure ``checks`` ``count`` times and return the verdict.

    Timing: wait ``initial_delay``, then take sample rounds; a round measures
    every check once. A check whose measurement errors is retried after
    ``error_retry_interval`` within the same round (the error does not use a
    sample slot). The next round starts ``interval`` seconds after the start
    of the last attempt of the previous round, so request time does not
    stretch the cadence. Total ~ initial_delay + interval x (count - 1) +
    retries x error_retry_interval.

    Stops early when a check reaches ``consecutive_error_limit`` errors in a
    row (verdict error) or has more than ``failure_limit`` failed
    measurements (verdict failed).

    Returns ``dict(verdict, measurements, summary, samples, stopped_early)``
    (``stopped_early``: measurements were skipped because the verdict was decided);
    a check with an ``initial_delay`` is left out of the rounds that start
    less than that many seconds after the first round (Argo's per-metric
    ``initialDelay``), so slow-to-appear metrics do not read as no data;
    ``summary`` maps each check name to its counts, ``last_value``,
    ``threshold`` and ``verdict``.
    """
    summary = dict((check['name'], _new_summary(check)) for check in checks)
    measurements = []
    last_error = {}
    decided = None
    skipped = False
    samples = 0
    # start_at (epoch seconds) anchors the first round to an event, however
    # late the gate itself started; the later of the two waits wins
    delay = max(initial_delay, (start_at - now()) if start_at is not None else 0)
    if delay > 0:
        sleep(delay)
    started = clock()
    next_at = None
    for sample in range(1, count + 1):
        if next_at is not None:
            wait = next_at - clock()
            if wait > 0:
                sleep(min(wait, interval))
        samples = sample
        elapsed = clock() - started
        pending = [check for check in checks if (check.get('initial_delay') or 0) <= elapsed]
        attempt_start = clock()
        while pending:
            attempt_start = clock()
            retry = []
            for position, check in enumerate(pending):
                counts = summary[check['name']]
                item, value, baseline = measure(check, fetch_value, on_no_data, now())
                item['sample'] = sample
                measurements.append(item)
                if item['outcome'] == 'error':
                    counts['error'] += 1
                    counts['consecutive_errors'] += 1
                    last_error[check['name']] = item['message']
                    if counts['consecutive_errors'] >= consecutive_error_limit:
                        counts['error_limit_reached'] = True
                        decided = 'error'
                        break
                    retry.append(check)
                    continue
                counts[item['outcome']] += 1
                counts['measurements'] += 1
                counts['consecutive_errors'] = 0
                counts['last_value'] = item['value']
                if 'baseline' in item:
                    counts['last_baseline'] = item['baseline']
                if counts['failed'] > failure_limit:
                    decided = 'failed'
                    break
            if decided:
                skipped = bool(retry) or position < len(pending) - 1 or sample < count
                break
            if retry:
                sleep(error_retry_interval)
            pending = retry
        if decided:
            break
        next_at = attempt_start + interval
    for name, counts in summary.items():
        counts['verdict'] = check_verdict(counts, failure_limit)
        if name in last_error:
            counts['last_error'] = last_error[name]
    verdict = verdict_of(summary, failure_limit)
    return dict(verdict=verdict, measurements=measurements, summary=summary, samples=samples,
                stopped_early=skipped)


# --------------------------------------------------------------------------
# Messages
# --------------------------------------------------------------------------

def _listed(values):
    if len(values) > MAX_LISTED_VALUES:
        return ', '.join(values[:MAX_LISTED_VALUES]) + ', ... (%d more)' % (len(values) - MAX_LISTED_VALUES)
    return ', '.join(values)


def failure_message(check, measurements, on_no_data='inconclusive'):
    """``precision 0.912, 0.93 < min 0.94 in 2 of 3 measurements``.

    Lists the failing values (4 significant digits) per broken bound, in the
    order measured; ``N of M`` counts failed among good measurements.
    """
    mine = [m for m in measurements if m['check'] == check['name'] and m['outcome'] in GOOD_OUTCOMES]
    failed = [m for m in mine if m['outcome'] == 'failed']
    groups = []
    by_kind = {}
    for m in failed:
        value = m.get('value')
        if m.get('_raw') is not None:
            value = m['_raw']
        if no_data(value) and 'no data' in m.get('message', ''):
            key = ('no_data', None)
            shown = None
        else:
            broken = violation(check, value if value is not None else float('nan'), m.get('baseline'))
            if broken is None:
                key, shown = ('other', None), m.get('message', '')
            else:
                key, shown = (broken[0], broken[2]), fmt(broken[1], against=broken[2])
        if key not in by_kind:
            by_kind[key] = []
            groups.append(key)
        by_kind[key].append(shown)
    parts = []
    for key in groups:
        kind, bound = key
        values = by_kind[kind, bound]
        if kind == 'no_data':
            parts.append('no data x%d (on_no_data=%s)' % (len(values), on_no_data))
        elif kind == 'other':
            parts.append(_listed(values))
        else:
            op = '<' if kind.startswith('min') else '>'
            prefix = 'ratio ' if kind.endswith('ratio') else ''
            parts.append('%s%s %s %s %s' % (prefix, _listed(values), op, kind, fmt_bound(bound)))
    return '%s %s in %d of %d measurements' % (check['name'], ' and '.join(parts), len(failed), len(mine))


def inconclusive_message(check, measurements):
    mine = [m for m in measurements if m['check'] == check['name'] and m['outcome'] in GOOD_OUTCOMES]
    if not mine:
        return '%s was never measured' % check['name']
    odd = [m for m in mine if m['outcome'] == 'inconclusive']
    reasons = []
    for m in odd:
        if m['message'] not in reasons:
            reasons.append(m['message'])
    return '%s inconclusive in %d of %d measurements (%s)' % (check['name'], len(odd), len(mine), '; '.join(reasons))


def error_message(check, counts, consecutive_error_limit):
    return '%s: %d consecutive errors (consecutive_error_limit %d), last: %s' % (
        check['name'], counts['consecutive_errors'], consecutive_error_limit, counts.get('last_error', ''))


def gate_title(name=None, labels=None):
    title = 'metric gate'
    if name:
        title += ' %r' % name
    if labels:
        title += ' (%s)' % ', '.join('%s=%s' % (key, labels[key]) for key in sorted(labels))
    return title


def gate_message(result, checks, name=None, labels=None, failure_limit=0, consecutive_error_limit=4,
                 on_no_data='inconclusive', allow_inconclusive=False):
    """One line for the task: the verdict and, for each check at fault, why."""
    verdict = result['verdict']
    summary = result['summary']
    measurements = result['measurements']
    title = gate_title(name, labels)
    details = []
    for check in checks:
        counts = summary[check['name']]
        if verdict == 'error' and counts['verdict'] == 'error':
            details.append(error_message(check, counts, consecutive_error_limit))
        elif verdict == 'failed' and counts['verdict'] == 'failed':
            details.append(failure_message(check, measurements, check.get('on_no_data') or on_no_data))
        elif verdict == 'inconclusive' and counts['verdict'] == 'inconclusive':
            details.append(inconclusive_message(check, measurements))
    if verdict == 'passed':
        good = sum(counts['measurements'] for counts in summary.values())
        text = '%s passed: %d check(s), %d measurement(s) within thresholds' % (title, len(checks), good)
        tolerated = ['%s failed %d (failure_limit %d)' % (c['name'], summary[c['name']]['failed'], failure_limit)
                     for c in checks if summary[c['name']]['failed']]
        if tolerated:
            text += ' (tolerated: %s)' % '; '.join(tolerated)
        return text
    text = '%s %s: %s' % (title, verdict, '; '.join(details))
    if verdict == 'inconclusive':
        text += ' (allowed)' if allow_inconclusive else ' (set allow_inconclusive to accept)'
    return text


def task_failed(verdict, allow_inconclusive=False):
    """The task fails for failed and error, and for inconclusive unless allowed."""
    if verdict in ('failed', 'error'):
        return True
    return verdict == 'inconclusive' and not allow_inconclusive


def public_measurements(measurements):
    """Measurements without the private keys (``_raw``), ready for JSON."""
    return [dict((key, value) for key, value in m.items() if not key.startswith('_')) for m in measurements]
