# -*- coding: utf-8 -*-
# Copyright: SuperSmartMatch platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Fetching values for metric_gate: Prometheus and JSON documents over HTTP, URL building, redaction.

HTTP is done by the ``opener`` given to :func:`make_fetch_json` (``ansible.module_utils.urls.open_url``
in the module), so unit tests use fakes.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json

try:
    from urllib.parse import urlencode, urlsplit, urlunsplit
except ImportError:  # pragma: no cover - Python 2
    from urllib import urlencode
    from urlparse import urlsplit, urlunsplit

from ansible_collections.supersmartmatch.platform.plugins.module_utils.metric_gate_common import (
    MAX_BODY, PROMETHEUS_PATH, ProviderError, is_nan, to_number)

PROMETHEUS_RANGE_PATH = '/api/v1/query_range'


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


def endpoint_text(url):
    """``host:port/path`` of a URL, for messages: no scheme, credentials, query or fragment.

    The module's ``url`` option is ``no_log`` (it may carry credentials), so
    Ansible masks it wherever it appears whole in a result; this form names
    the endpoint without repeating the option's value or anything secret.
    """
    try:
        parts = urlsplit(url)
        netloc = parts.hostname or ''
        if parts.port:
            netloc = '%s:%d' % (netloc, parts.port)
    except ValueError:
        return '(unparsable URL)'
    if not netloc:
        return '(unparsable URL)'
    return netloc + (parts.path or '')


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
        shown = endpoint_text(url)
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


def prometheus_range_url(base, query, start, end, step):
    """``<base>/api/v1/query_range?query=...&start=...&end=...&step=...`` (times in epoch seconds)."""
    base = base.rstrip('/')
    if base.endswith(PROMETHEUS_PATH):
        base = base[:-len(PROMETHEUS_PATH)]
    return '%s%s?%s' % (base, PROMETHEUS_RANGE_PATH, urlencode(
        [('query', query), ('start', '%.3f' % start), ('end', '%.3f' % end), ('step', '%g' % step)]))


def _result_of(doc, result_type, what):
    """The ``result`` list of a successful Prometheus response of ``result_type``; anything else raises
    ProviderError (``what`` names the query in the message)."""
    if not isinstance(doc, dict) or doc.get('status') != 'success':
        if isinstance(doc, dict) and doc.get('status') == 'error':
            raise ProviderError('Prometheus error %s: %s' % (doc.get('errorType', 'unknown'), doc.get('error', '')))
        raise ProviderError('Prometheus %s response is not a successful JSON object' % what)
    data = doc.get('data')
    if not isinstance(data, dict) or data.get('resultType') != result_type or not isinstance(data.get('result'), list):
        raise ProviderError('Prometheus %s response has no %s result' % (what, result_type))
    return data['result']


def extract_prometheus_points(doc):
    """The ``(timestamp, value)`` points of a ``/api/v1/query_range`` response with at most one
    series, NaN dropped.

    No series gives ``[]``; more than one series, ``status: error`` and
    malformed documents raise ProviderError.
    """
    result = _result_of(doc, 'matrix', 'range')
    if not result:
        return []
    if len(result) > 1:
        raise ProviderError('range query returned %d series, expected 1' % len(result))
    series = result[0]
    points = series.get('values') if isinstance(series, dict) else None
    if not isinstance(points, list):
        raise ProviderError('Prometheus returned a malformed range series: %r' % (series,))
    read = []
    for point in points:
        value = _sample_value(point, 'range')   # checks the point's shape first
        if value is not None and not is_nan(value):
            read.append((point[0], value))
    return read


def extract_prometheus_buckets(doc):
    """The ``(le, count)`` buckets of a ``/api/v1/query`` response aggregated by ``le``: one series
    per bucket, each with its ``le`` label. No series gives ``[]``; a series without ``le``, a
    repeated ``le``, ``status: error`` and malformed documents raise ProviderError."""
    buckets = {}
    for series in _result_of(doc, 'vector', 'histogram'):
        labels = series.get('metric') if isinstance(series, dict) else None
        le = labels.get('le') if isinstance(labels, dict) else None
        if le is None:
            raise ProviderError('histogram query returned a series without an le label: %r' % (labels,))
        bound = to_number(le, 'bucket bound le')
        if bound is None or is_nan(bound) or bound in buckets:
            raise ProviderError('histogram query returned le=%r twice or unreadable (aggregate by le)' % (le,))
        count = _sample_value(series.get('value'), 'bucket')
        buckets[bound] = 0.0 if count is None or is_nan(count) else count
    if buckets and float('inf') not in buckets:
        raise ProviderError('histogram query returned no le="+Inf" bucket')
    return sorted(buckets.items())


def histogram_window_query(selector, start, end):
    """``sum by (le) (increase(<selector>[<N>s]))``: the answers of the window ending at ``end``."""
    return 'sum by (le) (increase(%s[%ds]))' % (selector, max(1, int(round(end - start))))


def make_fetch_series(url, fetch_json):
    """Return ``fetch_series(query, url, start, end, step, histogram=False)``.

    Points: ``[(timestamp, float)]`` from a Prometheus range query (both sides
    of a comparison are read over the same grid of instants). With
    ``histogram``, ``query`` is a bucket selector, and the result is the
    ``[(le, count)]`` answers of the window, one instant query at ``end``.
    """
    default_url = url

    def fetch_series(query, url, start, end, step, histogram=False):
        if histogram:
            address = '%s&%s' % (prometheus_query_url(url or default_url, histogram_window_query(query, start, end)),
                                 urlencode({'time': '%.3f' % end}))
            return extract_prometheus_buckets(fetch_json(address))
        return extract_prometheus_points(fetch_json(prometheus_range_url(url or default_url, query, start, end, step)))

    return fetch_series
