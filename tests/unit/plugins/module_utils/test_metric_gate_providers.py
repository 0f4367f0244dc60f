"""metric_gate providers: Prometheus and JSON extraction, the HTTP layer with a fake opener, URLs."""
import io
import math
import urllib.error

import jmespath
import pytest

from ansible_collections.supersmartmatch.platform.plugins.module_utils import metric_gate as mg
from ansible_collections.supersmartmatch.platform.plugins.module_utils import metric_gate_providers as mg_providers
from metric_gate_fakes import gate

NAN = float('nan')
INF = float('inf')


# --------------------------------------------------------------------------
# Extraction
# --------------------------------------------------------------------------

def prom(result, result_type='vector'):
    return {'status': 'success', 'data': {'resultType': result_type, 'result': result}}


def series(value, **labels):
    return {'metric': labels, 'value': [1700000000.0, value]}


@pytest.mark.parametrize('doc, expected', [
    (prom([series('0.97')]), 0.97),
    (prom([series('0')]), 0.0),
    (prom([series('1e3')]), 1000.0),
    (prom([series('+Inf')]), INF),
    (prom([]), None),
    (prom([1700000000.0, '42'], 'scalar'), 42.0),
])
def test_extract_prometheus(doc, expected):
    assert mg.extract_prometheus(doc) == expected


def test_extract_prometheus_nan_is_nan():
    assert math.isnan(mg.extract_prometheus(prom([series('NaN')])))


@pytest.mark.parametrize('doc, message', [
    (prom([series('1', pod='a'), series('2', pod='b')]), 'query returned 2 series, expected 1'),
    (prom([series('1'), series('2'), series('3')]), 'query returned 3 series, expected 1'),
    ({'status': 'error', 'errorType': 'bad_data', 'error': 'parse error at char 5'},
     'Prometheus error bad_data: parse error at char 5'),
    ({'status': 'weird'}, "status 'weird'"),
    ({'status': 'success'}, 'no data object'),
    (prom([{'metric': {}, 'values': [[1, '1']]}], 'matrix'), 'range vector'),
    (prom([1, 'x'], 'string'), "resultType 'string'"),
    (prom([series('abc')]), "Prometheus vector value is not a number: 'abc'"),
    (prom([{'metric': {}, 'value': [1]}]), 'malformed vector sample'),
    (prom({'x': 1}), 'vector result is not a list'),
    ([1, 2], 'not a JSON object'),
])
def test_extract_prometheus_errors(doc, message):
    with pytest.raises(mg.ProviderError) as err:
        mg.extract_prometheus(doc)
    assert message in str(err.value)


HEALTH = {'status': 'ok', 'up': 1, 'version': '2.0.0', 'ratio': '0.97', 'items': [{'n': 'a', 'v': 3}, {'n': 'b', 'v': 4}],
          'nothing': None, 'empty': [], 'nested': {'p95': 0.25}}


@pytest.mark.parametrize('expr, expected', [
    ('up', 1.0),
    ('nested.p95', 0.25),
    ("status == 'ok'", 1.0),
    ("status == 'down'", 0.0),
    ('ratio', 0.97),
    ("items[?n=='a'].v", 3.0),            # one-element list is unwrapped
    ("items[?n=='zzz'].v", None),         # empty list is no data
    ('missing', None),
    ('nothing', None),
    ('empty', None),
    ('length(items)', 2.0),
])
def test_extract_json(expr, expected):
    assert mg.extract_json(HEALTH, expr, jmespath.search) == expected


@pytest.mark.parametrize('expr, message', [
    ('status', "JMESPath 'status' result is not a number: 'ok'"),
    ('version', 'is not a number'),
    ('nested', 'is not a number: {"p95": 0.25}'),
    ('items[].v', "JMESPath 'items[].v' returned 2 values, expected 1"),
    ('abs(status)', "JMESPath 'abs(status)' failed"),
])
def test_extract_json_errors(expr, message):
    with pytest.raises(mg.ProviderError) as err:
        mg.extract_json(HEALTH, expr, jmespath.search)
    assert message in str(err.value)


def test_extract_json_nan():
    assert math.isnan(mg.extract_json({'v': NAN}, 'v'))


# --------------------------------------------------------------------------
# HTTP layer with a fake opener
# --------------------------------------------------------------------------

class Response(object):
    def __init__(self, body):
        self.body = body
        self.closed = False

    def read(self, size=-1):
        return self.body if size < 0 else self.body[:size]

    def close(self):
        self.closed = True


def opener_returning(outcome, seen=None):
    def opener(url, **kwargs):
        if seen is not None:
            seen.append((url, kwargs))
        if isinstance(outcome, Exception):
            raise outcome
        return Response(outcome)
    return opener


def http_error(code, body):
    return urllib.error.HTTPError('http://prom/x', code, 'Bad Request' if code == 400 else 'Server Error', {},
                                  io.BytesIO(body))


@pytest.mark.parametrize('outcome, message', [
    (http_error(500, b'<html>boom</html>'), 'HTTP 500 Server Error from prom:9090/q: <html>boom</html>'),
    (http_error(400, b'{"status":"error","errorType":"bad_data","error":"parse error"}'),
     'HTTP 400 Bad Request from prom:9090/q: bad_data: parse error'),
    (urllib.error.URLError(ConnectionRefusedError(111, 'Connection refused')),
     'cannot reach prom:9090/q: [Errno 111] Connection refused'),
    (TimeoutError('timed out'), 'cannot reach prom:9090/q: timed out'),
    (b'{"status": ', 'bad JSON from prom:9090/q'),
    (b'<html>', "body starts '<html>'"),
])
def test_fetch_json_errors(outcome, message):
    fetch = mg.make_fetch_json(opener_returning(outcome))
    with pytest.raises(mg.ProviderError) as err:
        fetch('http://u:secret@prom:9090/q')
    assert message in str(err.value)
    assert 'secret' not in str(err.value)


def test_fetch_json_passes_options():
    seen = []
    fetch = mg.make_fetch_json(opener_returning(b'{"up": 1}', seen), timeout=2.5, headers={'X-Token': 't'},
                               validate_certs=False, ca_path='/ca.pem')
    assert fetch('http://h/health') == {'up': 1}
    url, kwargs = seen[0]
    assert url == 'http://h/health'
    assert kwargs['timeout'] == 2.5 and kwargs['validate_certs'] is False and kwargs['ca_path'] == '/ca.pem'
    assert kwargs['headers'] == {'Accept': 'application/json', 'X-Token': 't'} and kwargs['method'] == 'GET'


@pytest.mark.parametrize('base, query, url', [
    ('http://prom:9090', 'up', 'http://prom:9090/api/v1/query?query=up'),
    ('http://prom:9090/', 'sum(rate(x{a="b"}[5m]))',
     'http://prom:9090/api/v1/query?query=sum%28rate%28x%7Ba%3D%22b%22%7D%5B5m%5D%29%29'),
    ('http://prom/prometheus/api/v1/query', 'up', 'http://prom/prometheus/api/v1/query?query=up'),
])
def test_prometheus_query_url(base, query, url):
    assert mg.prometheus_query_url(base, query) == url


def test_fetch_value_providers():
    docs = {'http://prom/api/v1/query?query=up': prom([series('1')]),
            'http://other/api/v1/query?query=up': prom([]),
            'http://h/health': {'status': 'ok', 'up': 1}}
    prom_value = mg.make_fetch_value('prometheus', 'http://prom', docs.__getitem__)
    assert prom_value('up') == 1.0
    assert prom_value('up', 'http://other') is None
    json_value = mg.make_fetch_value('http_json', 'http://h/health', docs.__getitem__, jmespath.search)
    assert json_value("status == 'ok'") == 1.0


def test_fetch_value_per_check_provider():
    docs = {'http://prom/api/v1/query?query=up': prom([series('1')]),
            'http://h/health': {'status': 'ok', 'up': 1}}
    value = mg.make_fetch_value('prometheus', 'http://prom', docs.__getitem__, jmespath.search)
    assert value('up') == 1.0
    assert value("status == 'ok'", 'http://h/health', 'http_json') == 1.0


@pytest.mark.parametrize('item, provider, compiled', [
    (dict(name='health', query='up', min=1, provider='http_json', url='http://h/health'), 'http_json', ['up']),
    (dict(name='p95', query='histogram_quantile(0.95, x)', max=0.2), 'prometheus', []),
])
def test_check_provider_defaults_to_the_gate_and_only_json_is_compiled(item, provider, compiled):
    seen = []
    check_ = mg.normalize_check(item, 0, 'prometheus', compile_expr=seen.append)
    assert check_['provider'] == provider
    assert seen == compiled


def test_check_provider_is_validated():
    with pytest.raises(mg.GateError) as err:
        mg.normalize_check(dict(name='x', query='up', min=1, provider='graphite'), 0)
    assert "check 'x': provider must be one of prometheus, http_json, got 'graphite'" in str(err.value)


def test_run_gate_passes_each_checks_provider():
    checks = [mg.normalize_check(dict(name='health', query='up', min=1, provider='http_json',
                                      url='http://h/health'), 0),
              mg.normalize_check(dict(name='precision', query='precision', min=0.94), 1)]
    result, fetch, fake = gate({'up': [1], 'precision': [0.97]}, checks)
    assert result['verdict'] == 'passed'
    assert fetch.providers == ['http_json', 'prometheus']


# --------------------------------------------------------------------------
# Range queries (kind: compare)
# --------------------------------------------------------------------------

def matrix(*series_values):
    return {'status': 'success', 'data': {'resultType': 'matrix', 'result': [
        {'metric': {'s': str(i)}, 'values': [[1700000000 + 30 * j, v] for j, v in enumerate(values)]}
        for i, values in enumerate(series_values)]}}


@pytest.mark.parametrize('doc, expected', [
    (matrix(['0.1', '0.2', '0.3']), [0.1, 0.2, 0.3]),
    (matrix(['0.1', 'NaN', '0.3']), [0.1, 0.3]),            # NaN (no traffic in that step) is dropped
    (matrix(), []),
    (matrix([]), []),
])
def test_extract_prometheus_points_values(doc, expected):
    assert [value for _at, value in mg_providers.extract_prometheus_points(doc)] == expected


def test_extract_prometheus_points_keeps_each_value_s_timestamp():
    doc = matrix(['0.1', 'NaN', '0.3'])
    assert mg_providers.extract_prometheus_points(doc) == [(1700000000, 0.1), (1700000060, 0.3)]


@pytest.mark.parametrize('doc, message', [
    (matrix(['1'], ['2']), 'range query returned 2 series, expected 1'),
    ({'status': 'error', 'errorType': 'bad_data', 'error': 'bad step'}, 'Prometheus error bad_data: bad step'),
    (prom([series('1')]), 'has no matrix result'),
    ({'status': 'success', 'data': {'resultType': 'matrix', 'result': [{'values': 3}]}}, 'malformed range series'),
    (matrix(['x']), 'is not a number'),
    ([], 'not a successful JSON object'),
])
def test_extract_prometheus_points_errors(doc, message):
    with pytest.raises(mg.ProviderError) as err:
        mg_providers.extract_prometheus_points(doc)
    assert message in str(err.value)


@pytest.mark.parametrize('base, url', [
    ('http://prom:9090', 'http://prom:9090/api/v1/query_range?query=up&start=1700000000.000&end=1700000600.500&step=30'),
    ('http://prom:9090/api/v1/query', 'http://prom:9090/api/v1/query_range?query=up&start=1700000000.000'),
])
def test_prometheus_range_url(base, url):
    assert mg_providers.prometheus_range_url(base, 'up', 1700000000, 1700000600.5, 30).startswith(url)


def test_fetch_series_uses_the_check_url_or_the_gate_url():
    seen = []
    fetch = mg_providers.make_fetch_series('http://prom:9090', lambda url: seen.append(url) or matrix(['1']))
    # the points with their timestamps: a paired comparison matches the two sides' instants
    assert fetch('up', None, 0, 60, 30) == [(1700000000, 1.0)]
    assert fetch('up', 'http://other:9090', 0, 60, 30) == [(1700000000, 1.0)]
    assert [url.split('/api')[0] for url in seen] == ['http://prom:9090', 'http://other:9090']


@pytest.mark.parametrize('url, text', [
    ('http://u:secret@prom:9090/api/v1/query?token=abc', 'prom:9090/api/v1/query'),
    ('https://prom', 'prom'),
    ('http://[::1]:9090/x', '::1:9090/x'),
    ('not a url', '(unparsable URL)'),
])
def test_endpoint_text_names_the_endpoint_without_secrets(url, text):
    assert mg.endpoint_text(url) == text
