"""validation: the smoke tests of validate_deployment.yml judged (table tests), and a fleet's rows."""
import pytest

from ansible_collections.supersmartmatch.platform.plugins.module_utils import precheck as pc
from ansible_collections.supersmartmatch.platform.plugins.module_utils import validation as va

RUN = '20261130T120000Z'


def answer(top='smoke-best', version='2.0.0', slot='green', status=200):
    return {'status': status, 'json': {'candidate_id': 'x', 'version': version, 'slot': slot,
                                       'matches': [{'offer_id': top, 'score': 1.0}, {'offer_id': 'o', 'score': 0.1}]}}


@pytest.mark.parametrize('data,status,words', [
    (answer(), pc.PASS, 'top offer smoke-best as labelled, answered by 2.0.0 (green)'),
    (answer(top='smoke-other'), pc.FAIL, 'top offer smoke-other, expected smoke-best (answered by 2.0.0, green)'),
    (answer(version='1.0.0', slot='blue'), pc.FAIL, 'answered by 1.0.0 (blue), which is not live (2.0.0)'),
    ({'status': 502, 'msg': 'Status code was 502 and not [200]'}, pc.FAIL, 'match: HTTP 502 (expected 200)'),
    ({'status': -1, 'msg': 'Connection refused'}, pc.FAIL, 'HTTP -1 (expected 200): Connection refused'),
    ({'status': 200, 'json': {'version': '2.0.0', 'matches': []}}, pc.FAIL, 'top offer None'),
])
def test_smoke_match(data, status, words):
    got, detail = va.smoke_match(data, 'smoke-best', ['2.0.0'])
    assert got == status and words in detail


@pytest.mark.parametrize('data,status,words', [
    ({'status': 202, 'json': {'accepted': True, 'version': '2.0.0', 'slot': 'green'}}, pc.PASS, 'accepted by 2.0.0'),
    ({'status': 503, 'content': 'database unreachable, feedback not stored'}, pc.FAIL, 'HTTP 503 (expected 202)'),
    ({'status': 202, 'json': {'accepted': False}}, pc.FAIL, 'feedback not accepted'),
    ({'status': 401, 'json': {'error': 'feedback_token does not match this candidate_id and offer_id',
                              'reason': 'forged'}},
     pc.FAIL, 'feedback refused (HTTP 401, forged): feedback_token does not match this candidate_id and offer_id; '
              'do all slots share app_feedback_key?'),
    ({'status': 401, 'content': 'Unauthorized', 'msg': 'Status code was 401 and not [202]'}, pc.FAIL,
     'feedback refused (HTTP 401, no reason given): Unauthorized'),
])
def test_feedback(data, status, words):
    got, detail = va.feedback(data)
    assert got == status and words in detail


@pytest.mark.parametrize('result,status,words', [
    ({'status': 200, 'json': {'status': 'ok', 'version': '2.0.0'}}, pc.PASS, 'green slot (2.0.0) ok'),
    ({'status': 503, 'json': {'status': 'unhealthy', 'version': '2.0.0'}}, pc.FAIL, 'HTTP 503'),
    ({'status': 200, 'json': {'status': 'degraded', 'version': '2.0.0'}}, pc.FAIL, 'status degraded'),
    ({'status': 200, 'json': {'status': 'ok', 'version': '1.9.0'}}, pc.FAIL, 'runs 1.9.0'),
])
def test_slot_health(result, status, words):
    got, detail = va.slot_health(dict(result, item={'colour': 'green', 'version': '2.0.0'}))
    assert got == status and words in detail


IDS = {'lb1': va.candidate_id(RUN, 'lb1'), 'lb2': va.candidate_id(RUN, 'lb2')}


@pytest.mark.parametrize('data,expected', [
    ({'rc': 0, 'stdout': 'matches|%s|1\nfeedback|%s|1\nmatches|%s|2\nfeedback|%s|1' % (
        IDS['lb1'], IDS['lb1'], IDS['lb2'], IDS['lb2'])}, [pc.PASS, pc.PASS]),
    ({'rc': 0, 'stdout': 'matches|%s|1\nfeedback|%s|1\nmatches|%s|1' % (IDS['lb1'], IDS['lb1'], IDS['lb2'])},
     [pc.PASS, pc.FAIL]),
    ({'rc': 2, 'stderr': 'psql: error: connection to server failed\nmore'}, [pc.FAIL, pc.FAIL]),
    ({'skipped_reason': 'no postgresql group in the inventory'}, [pc.WARN, pc.WARN]),
])
def test_rows_replicated(data, expected):
    assert [status for _host, status, _detail in va.rows_replicated(data, IDS)] == expected


def test_rows_missing_name_what_is_missing():
    (_h, _s, detail), = va.rows_replicated({'rc': 0, 'stdout': ''}, {'lb1': IDS['lb1']})
    assert detail == '%s: 0 match and 0 feedback row(s) readable (expected both)' % IDS['lb1']


def test_a_validated_fleet_and_one_with_a_silent_balancer():
    lb = {'match': answer(), 'feedback': {'status': 202, 'json': {'accepted': True, 'version': '2.0.0', 'slot': 'green'}}}
    app = {'health': {'results': [{'status': 200, 'json': {'status': 'ok', 'version': '2.0.0'},
                                   'item': {'colour': 'green', 'version': '2.0.0'}}]}}
    rows = {'rows': {'rc': 0, 'stdout': '\n'.join('%s|%s|1' % (t, IDS[h]) for h in IDS for t in ('matches', 'feedback'))}}
    result = va.report({'lb1': lb, 'lb2': lb, 'app1': app, 'data1': rows}, ['lb1', 'lb2', 'app1', 'data1'], RUN,
                       'smoke-best', ['2.0.0'])
    assert result['passed'], result
    assert [(r['check'], r['host']) for r in result['rows']] == [
        ('slot health', 'app1'), ('smoke match', 'lb1'), ('feedback', 'lb1'), ('smoke match', 'lb2'),
        ('feedback', 'lb2'), ('rows replicated', 'lb1 via data1'), ('rows replicated', 'lb2 via data1')]
    silent = va.report({'lb1': lb, 'app1': app, 'data1': rows}, ['lb1', 'lb2', 'app1', 'data1'], RUN,
                       'smoke-best', ['2.0.0'])
    assert [(r['check'], r['host']) for r in silent['blockers']] == [('reachable', 'lb2')]
    assert pc.table(silent)[-1] == 'BLOCKED: 1 blocker(s): reachable on lb2'


def test_a_failed_match_sends_no_feedback_and_says_so():
    result = va.report({'lb1': {'match': {'status': -1, 'msg': 'timed out'}, 'feedback': {'skipped': True}}},
                       ['lb1'], RUN, 'smoke-best', ['2.0.0'])
    assert [(r['check'], r['detail']) for r in result['blockers']] == [
        ('smoke match', 'match: HTTP -1 (expected 200): timed out'), ('feedback', 'no feedback sent (the match failed)')]
