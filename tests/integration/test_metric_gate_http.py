"""metric_gate run as Ansible runs it, against a real HTTP server on loopback.

The server returns canned documents: these tests cover the HTTP, JSON and
Prometheus-response parsing path of the module, not Prometheus itself.
"""
import http.server
import json
import os
import threading
import time
import urllib.parse

import pytest

from conftest import free_port, run_module
from labwait import poll  # on the path set by conftest

PROM = {
    'precision': '0.97',
    'latency': '0.3',
    'latency_stable': '0.25',
    'zero': '0',
    'nan': 'NaN',
}


def vector(*values):
    return {'status': 'success', 'data': {'resultType': 'vector', 'result': [
        {'metric': {'pod': 'p%d' % i}, 'value': [1700000000.0, value]} for i, value in enumerate(values)]}}


def latency(index):
    """A steady p95 around 120 ms with some jitter, deterministic per step."""
    return 0.12 + 0.01 * ((index * 37) % 11 - 5) / 5.0


RANGE = {
    'lat_stable': latency,
    'lat_same': lambda index: latency(index + 3),
    'lat_slow': lambda index: 1.4 * latency(index + 3),     # 40 % slower, still under a 200 ms threshold
}


def range_doc(query, args):
    start, end, step = (float(args[key][0]) for key in ('start', 'end', 'step'))
    points = int((end - start) // step) + 1
    return {'status': 'success', 'data': {'resultType': 'matrix', 'result': [
        {'metric': {}, 'values': [[start + i * step, '%.6f' % RANGE[query](i)] for i in range(points)]}]}}


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self):
        self.requests = []
        self.lock = threading.Lock()
        self.flaky_left = 2
        super().__init__(('127.0.0.1', 0), Handler)

    @property
    def url(self):
        return 'http://127.0.0.1:%d' % self.server_address[1]


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = 'HTTP/1.1'

    def log_message(self, *args):
        pass

    def reply(self, status, body, content_type='application/json'):
        if not isinstance(body, bytes):
            body = json.dumps(body).encode() if not isinstance(body, str) else body.encode()
        self.send_response(status)
        self.send_header('Content-Type', content_type)
        self.send_header('Content-Length', str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        parts = urllib.parse.urlsplit(self.path)
        query = urllib.parse.parse_qs(parts.query).get('query', [None])[0]
        server = self.server
        with server.lock:
            server.requests.append(dict(path=parts.path, query=query, headers=dict(self.headers)))
        if parts.path == '/health':
            return self.reply(200, {'status': 'ok', 'up': 1, 'version': '2.0.0'})
        if parts.path == '/nan':
            return self.reply(200, '{"status": "ok", "value": NaN}')
        if parts.path == '/boom':
            return self.reply(500, 'internal error', 'text/plain')
        if parts.path == '/badjson':
            return self.reply(200, '{"status": "ok", "up": ')
        if parts.path == '/slow':
            time.sleep(1.5)
            return self.reply(200, {'up': 1})
        if parts.path == '/flaky':
            with server.lock:
                server.flaky_left -= 1
                failing = server.flaky_left >= 0
            return self.reply(503, 'warming up', 'text/plain') if failing else self.reply(200, {'up': 1})
        if parts.path == '/api/v1/query_range':
            return self.reply(200, range_doc(query, urllib.parse.parse_qs(parts.query)))
        if parts.path != '/api/v1/query':
            return self.reply(404, 'not found', 'text/plain')
        if query in PROM:
            return self.reply(200, vector(PROM[query]))
        if query == 'empty':
            return self.reply(200, vector())
        if query == 'two':
            return self.reply(200, vector('1', '2'))
        if query == 'scalar(1)':
            return self.reply(200, {'status': 'success', 'data': {'resultType': 'scalar', 'result': [1700000000, '1']}})
        if query == 'boom':
            return self.reply(500, 'internal error', 'text/plain')
        if query == 'badjson':
            return self.reply(200, '<html>not json</html>', 'text/html')
        return self.reply(400, {'status': 'error', 'errorType': 'bad_data',
                                'error': 'parse error: unexpected identifier %r' % query})


@pytest.fixture
def server():
    srv = Server()
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield srv
    srv.shutdown()
    srv.server_close()


def gate(server, checks, provider='prometheus', path='', **extra):
    check_mode = extra.pop('_check', False)
    args = dict(provider=provider, url=server.url + path, checks=checks, interval=0.1, error_retry_interval=0.1,
                timeout=2, name='canary')
    args.update(extra)
    return run_module('metric_gate', args, check=check_mode)


def outcomes(result):
    return [m['outcome'] for m in result['measurements']]


def test_http_json_health_passes(server):
    result = gate(server, [dict(name='healthy', query="status == 'ok'", min=1), dict(name='up', query='up', min=1)],
                  provider='http_json', path='/health', count=2)
    assert result.get('failed') is not True, result
    assert result['verdict'] == 'passed' and result['changed'] is False
    assert outcomes(result) == ['passed'] * 4
    assert result['summary']['up']['last_value'] == 1.0
    assert [r['path'] for r in server.requests] == ['/health'] * 4
    assert result['message'] == "metric gate 'canary' passed: 2 check(s), 4 measurement(s) within thresholds"


def test_prometheus_passes_and_sends_query_and_headers(server):
    start = time.monotonic()
    result = gate(server, [dict(name='precision', query='precision', min=0.94, max=1)], count=3,
                  headers={'Authorization': 'Bearer abc'}, labels={'version': '2.0.0'})
    elapsed = time.monotonic() - start
    assert result['verdict'] == 'passed', result
    assert [m['value'] for m in result['measurements']] == [0.97] * 3
    assert [m['sample'] for m in result['measurements']] == [1, 2, 3]
    assert all(m['time'].endswith('+00:00') for m in result['measurements'])
    assert result['summary']['precision']['threshold'] == '0.94 <= value <= 1'
    assert [(r['path'], r['query']) for r in server.requests] == [('/api/v1/query', 'precision')] * 3
    assert server.requests[0]['headers']['Authorization'] == 'Bearer abc'
    assert result['labels'] == {'version': '2.0.0'}
    assert 0.2 <= result['duration'] < 3 and elapsed < 10


def test_prometheus_query_is_url_encoded(server):
    result = gate(server, [dict(name='p', query='scalar(1)', min=1)])
    assert result['verdict'] == 'passed', result
    assert server.requests[0]['query'] == 'scalar(1)'


def test_failure_stops_early_and_reports_measurements(server):
    result = gate(server, [dict(name='precision', query='precision', min=0.98)], count=5)
    assert result['failed'] is True and result['verdict'] == 'failed'
    assert result['msg'] == "metric gate 'canary' failed: precision 0.97 < min 0.98 in 1 of 1 measurements"
    assert result['stopped_early'] is True and len(server.requests) == 1
    assert result['measurements'][0]['value'] == 0.97 and result['measurements'][0]['outcome'] == 'failed'


def test_failure_limit_lists_failing_values(server):
    result = gate(server, [dict(name='precision', query='precision', min=0.98)], count=3, failure_limit=2)
    assert result['verdict'] == 'failed'
    assert 'precision 0.97, 0.97, 0.97 < min 0.98 in 3 of 3 measurements' in result['msg']


@pytest.mark.parametrize('kwargs, text', [
    (dict(checks=[dict(name='p', query='boom', max=1)]), 'HTTP 500'),
    (dict(checks=[dict(name='p', query='badjson', max=1)]), 'bad JSON from'),
    (dict(checks=[dict(name='p', query='two', max=1)]), 'query returned 2 series, expected 1'),
    (dict(checks=[dict(name='p', query='rate(x[5m]', max=1)]), 'HTTP 400 Bad Request from'),
    (dict(checks=[dict(name='p', query='up', max=1)], provider='http_json', path='/boom'), 'HTTP 500'),
    (dict(checks=[dict(name='p', query='up', max=1)], provider='http_json', path='/badjson'), 'bad JSON'),
    (dict(checks=[dict(name='p', query='version', max=1)], provider='http_json', path='/health'),
     "JMESPath 'version' result is not a number: '2.0.0'"),
])
def test_errors_are_retried_then_error_verdict(server, kwargs, text):
    result = gate(server, consecutive_error_limit=3, count=2, **kwargs)
    assert result['failed'] is True and result['verdict'] == 'error', result
    assert outcomes(result) == ['error'] * 3
    assert text in result['measurements'][0]['message']
    assert '3 consecutive errors (consecutive_error_limit 3)' in result['msg'] and text in result['msg']
    assert len(server.requests) == 3


def test_bad_query_message_carries_prometheus_error(server):
    result = gate(server, [dict(name='p', query='rate(x[5m]', max=1)], consecutive_error_limit=1)
    assert "bad_data: parse error: unexpected identifier 'rate(x[5m]'" in result['measurements'][0]['message']


def test_errors_then_recovery_pass(server):
    result = gate(server, [dict(name='up', query='up', min=1)], provider='http_json', path='/flaky', count=2)
    assert result['verdict'] == 'passed', result
    assert outcomes(result) == ['error', 'error', 'passed', 'passed']
    assert 'HTTP 503' in result['measurements'][0]['message']
    assert result['summary']['up']['error'] == 2 and result['summary']['up']['passed'] == 2


def test_unreachable_is_error():
    url = 'http://127.0.0.1:%d' % free_port()
    result = run_module('metric_gate', dict(url=url, checks=[dict(name='p', query='up', min=1)],
                                            consecutive_error_limit=2, error_retry_interval=0.05))
    assert result['verdict'] == 'error' and result['failed'] is True
    assert 'cannot reach %s/api/v1/query: ' % url[len('http://'):] in result['measurements'][0]['message']


def test_url_and_headers_are_no_log_and_failures_still_name_the_check(server):
    url = server.url.replace('http://', 'http://reader:s3cr3t-pass@')
    result = run_module('metric_gate', dict(url=url, checks=[dict(name='precision', query='boom', max=1)],
                                            headers={'Authorization': 'Bearer t0ken-value'}, name='canary',
                                            consecutive_error_limit=1))
    assert result['failed'] is True and result['verdict'] == 'error'
    text = json.dumps(result)
    assert 's3cr3t-pass' not in text and 't0ken-value' not in text and url not in text
    assert result['invocation']['module_args']['url'] == 'VALUE_SPECIFIED_IN_NO_LOG_PARAMETER'
    assert result['invocation']['module_args']['headers'] == {'Authorization': 'VALUE_SPECIFIED_IN_NO_LOG_PARAMETER'}
    # which check failed, and where, is still said
    assert result['msg'].startswith("metric gate 'canary' error: precision: 1 consecutive errors")
    assert 'HTTP 500 Internal Server Error from 127.0.0.1:%d/api/v1/query' % server.server_address[1] in result['msg']
    assert server.requests[0]['headers']['Authorization'] == 'Bearer t0ken-value'


def test_timeout_is_error(server):
    result = gate(server, [dict(name='up', query='up', min=1)], provider='http_json', path='/slow',
                  timeout=0.3, consecutive_error_limit=1)
    assert result['verdict'] == 'error' and 'cannot reach' in result['measurements'][0]['message'], result


@pytest.mark.parametrize('kwargs, verdict, failed', [
    (dict(checks=[dict(name='p', query='empty', min=1)]), 'inconclusive', True),
    (dict(checks=[dict(name='p', query='empty', min=1)], allow_inconclusive=True), 'inconclusive', False),
    (dict(checks=[dict(name='p', query='empty', min=1)], on_no_data='fail'), 'failed', True),
    (dict(checks=[dict(name='p', query='empty', min=1)], on_no_data='pass'), 'passed', False),
    (dict(checks=[dict(name='p', query='nan', min=1)]), 'inconclusive', True),
    (dict(checks=[dict(name='p', query='value', min=1)], provider='http_json', path='/nan'), 'inconclusive', True),
    (dict(checks=[dict(name='p', query='missing', min=1)], provider='http_json', path='/health'), 'inconclusive',
     True),
])
def test_no_data(server, kwargs, verdict, failed):
    result = gate(server, **kwargs)
    assert result['verdict'] == verdict, result
    assert bool(result.get('failed')) is failed
    assert result['measurements'][0]['value'] is None
    assert 'no data' in result['measurements'][0]['message']


def test_inconclusive_message(server):
    result = gate(server, [dict(name='p', query='empty', min=1)])
    assert result['msg'] == ("metric gate 'canary' inconclusive: p inconclusive in 1 of 1 measurements "
                             "(no data (query returned no value), on_no_data=inconclusive) "
                             "(set allow_inconclusive to accept)")


@pytest.mark.parametrize('baseline, max_ratio, verdict, text', [
    ('latency_stable', 1.2, 'passed', 'ratio 1.2'),
    ('latency_stable', 1.1, 'failed', 'ratio 1.2 > max_ratio 1.1'),
    ('zero', 1.2, 'inconclusive', 'baseline is 0'),
    ('empty', 1.2, 'inconclusive', 'baseline has no data'),
])
def test_ratio_against_baseline(server, baseline, max_ratio, verdict, text):
    result = gate(server, [dict(name='p95', query='latency', baseline_query=baseline, max_ratio=max_ratio)])
    assert result['verdict'] == verdict, result
    assert text in result['measurements'][0]['message']
    assert [r['query'] for r in server.requests] == ['latency', baseline]


def test_check_mode_still_queries(server):
    result = gate(server, [dict(name='precision', query='precision', min=0.94)], _check=True)
    assert result['verdict'] == 'passed' and result['changed'] is False, result
    assert len(server.requests) == 1


@pytest.mark.parametrize('kwargs, text', [
    (dict(count=0), 'count must be >= 1, got 0'),
    (dict(interval=-1), 'interval must be >= 0'),
    (dict(checks=[dict(name='p', query='precision')]), "check 'p' needs at least one of min, max"),
    (dict(checks=[dict(name='p', query='status ==', min=1)], provider='http_json', path='/health'),
     'invalid JMESPath expression'),
])
def test_bad_input_fails_before_any_request(server, kwargs, text):
    checks = kwargs.pop('checks', [dict(name='p', query='precision', min=0.9)])
    result = gate(server, checks, **kwargs)
    assert result['failed'] is True and text in result['msg'], result
    assert result['msg'].startswith("metric gate 'canary': ")
    assert result['measurements'] == [] and server.requests == []


# --------------------------------------------------------------------------
# Step mode and the watched state, through the real module
# --------------------------------------------------------------------------

def write_state(path, generation, operation='set', by='alice@ctl'):
    with open(path, 'w') as handle:
        json.dump(dict(generation=generation, phase='canary', status='in_progress', updated_by=by,
                       updated_at='2026-11-29T18:00:00+00:00', history=[dict(operation=operation, by=by)]), handle)


@pytest.mark.parametrize('threshold, verdict, rounds', [
    (0.94, 'passed', 3),
    (0.98, 'failed', 1),
])
def test_step_mode_one_round_per_call_and_never_fails_on_a_verdict(server, tmp_path, threshold, verdict, rounds):
    resume = str(tmp_path / 'gate.json')
    seen = []
    for _call in range(rounds + 2):
        result = gate(server, [dict(name='precision', query='precision', min=threshold)], count=3, interval=0.2,
                      resume_file=resume, run_key='run-7')
        assert result.get('failed') is not True, result
        seen.append((result['round'] or {}).get('index'))
        if result['finished']:
            break
    assert seen == list(range(1, rounds + 1))
    assert result['verdict'] == verdict and result['rounds_total'] == 3 and result['remaining_s'] == 0
    assert len(server.requests) == rounds
    again = gate(server, [dict(name='precision', query='precision', min=threshold)], count=3, interval=0.2,
                 resume_file=resume, run_key='run-7')
    assert again['repeated'] is True and again['verdict'] == verdict and len(server.requests) == rounds
    assert oct(os.stat(resume).st_mode & 0o777) == '0o600'


def test_classic_gate_aborts_within_a_second_when_the_watched_state_moves(server, tmp_path):
    state = str(tmp_path / 'state.json')
    write_state(state, 8)
    moved = []

    def move_after_two_rounds():
        poll(lambda: len(server.requests) >= 2, 60, delay=0.05)  # moves after 60 s at the latest
        write_state(state, 9, 'rollback', 'bob@ctl')
        moved.append((time.monotonic(), len(server.requests)))

    mover = threading.Thread(target=move_after_two_rounds, daemon=True)
    mover.start()
    result = gate(server, [dict(name='precision', query='precision', min=0.9)], count=40, interval=2,
                  watch=dict(path=state, expected=8))
    ended = time.monotonic()
    mover.join(5)
    assert result['failed'] is True and result['verdict'] == 'aborted', result
    assert result['msg'] == ("metric gate 'canary': aborted, the watched state moved to generation 9 "
                             "(rollback by bob@ctl at 2026-11-29T18:00:00+00:00)")
    assert result['watch']['changed'] is True and result['watch']['operation'] == 'rollback'
    moved_at, rounds_before = moved[0]
    # read every second: seen within about a second (bounded loosely for a loaded machine), no round after it
    assert ended - moved_at < 5
    assert len(server.requests) == rounds_before == 2 and len(result['measurements']) == 2


def test_step_gate_with_the_watched_state_unchanged_and_then_gone(server, tmp_path):
    state = str(tmp_path / 'state.json')
    write_state(state, '8')
    args = dict(count=5, interval=0.1, resume_file=str(tmp_path / 'gate.json'), run_key='r',
                watch=dict(path=state, expected=8))
    first = gate(server, [dict(name='precision', query='precision', min=0.9)], **args)
    assert first['verdict'] == 'running' and first['watch'] == dict(changed=False, value=8), first
    os.unlink(state)
    second = gate(server, [dict(name='precision', query='precision', min=0.9)], **args)
    assert second.get('failed') is not True and second['finished'] is True and second['verdict'] == 'aborted'
    assert 'the watched state is gone or unreadable (%s: No such file or directory)' % state in second['message']


@pytest.mark.parametrize('extra, text', [
    (dict(run_key='r'), 'run_key needs resume_file'),
    (dict(resume_file='/tmp/x-gate.json'), 'resume_file needs run_key'),
    (dict(watch=dict(path='/tmp/s.json')), 'missing required arguments: expected'),
])
def test_step_and_watch_bad_input(server, extra, text):
    result = gate(server, [dict(name='p', query='precision', min=0.9)], **extra)
    assert result['failed'] is True and text in result['msg'], result
    assert server.requests == []


@pytest.mark.parametrize('candidate, verdict, text', [
    ('lat_same', 'passed', 'within max_ratio 1.1'),
    ('lat_slow', 'failed', '> max_ratio 1.1, significant'),
])
def test_compare_kind_judges_the_candidate_against_the_stable_side(server, candidate, verdict, text):
    checks = [dict(name='p95_vs_stable', kind='compare', query=candidate, baseline_query='lat_stable', max_ratio=1.1),
              dict(name='p95', query='latency', max=0.5)]
    result = gate(server, checks, count=1, interval=30, start_at=time.time() - 600)
    assert result['verdict'] == verdict, result
    judged = result['measurements'][0]
    assert judged['outcome'] == verdict and text in judged['message']
    assert judged['judge']['n_candidate'] == judged['judge']['n_baseline'] == 21
    ranges = [r for r in server.requests if r['path'] == '/api/v1/query_range']
    assert [r['query'] for r in ranges] == [candidate, 'lat_stable']
    assert result['summary']['p95_vs_stable']['threshold'].startswith('candidate <= 1.1 x stable (Mann-Whitney')
