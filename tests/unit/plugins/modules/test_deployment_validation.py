"""deployment_validation through its main path: a verdict with its table, bad input named."""
import pytest

from ansible_collections.supersmartmatch.platform.plugins.modules import deployment_validation as mod

from .helpers import run_main

BASE = {'run': '20261130T120000Z', 'expected_top': 'smoke-best', 'live_versions': ['2.0.0']}
HEALTH = {'health': {'results': [{'status': 200, 'json': {'status': 'ok', 'version': '2.0.0'},
                                  'item': {'colour': 'green', 'version': '2.0.0'}}]}}


@pytest.mark.parametrize('fail_on_blocker,failed', [(True, True), (False, None)])
def test_a_blocker_fails_unless_the_playbook_prints_first(capsys, fail_on_blocker, failed):
    out = run_main(mod, dict(BASE, hosts={'app1': HEALTH}, expected_hosts=['app1', 'lb1'],
                             fail_on_blocker=fail_on_blocker), capsys)
    assert out.get('failed') is failed and out['passed'] is False
    assert out['msg'] == 'BLOCKED: 1 blocker(s): reachable on lb1'
    assert out['rows'][1] == {'check': 'slot health', 'host': 'app1', 'status': 'pass', 'detail': 'green slot (2.0.0) ok'}


def test_a_healthy_slot_passes(capsys):
    out = run_main(mod, dict(BASE, hosts={'app1': HEALTH}, expected_hosts=['app1']), capsys)
    assert out['passed'] is True and out['msg'] == 'PASSED: 1 check(s) passed, 0 warning(s), no blocker'


@pytest.mark.parametrize('args,words', [
    ({'run': "2026'; DROP TABLE x"}, 'run must be a UTC timestamp YYYYmmddTHHMMSSZ'),
    ({'hosts': {"lb1'--": {}}}, "is not a host name"),
    ({'hosts': {'lb1': {'matchh': {}}}}, "hosts[lb1]: unknown reading 'matchh'"),
    ({'hosts': {'lb1': {'match': []}}}, 'hosts[lb1][match]: must be a registered result (a dict), got list'),
])
def test_bad_input_is_named_and_judges_nothing(capsys, args, words):
    out = run_main(mod, dict(BASE, hosts={}, **args) if 'hosts' not in args else dict(BASE, **args), capsys)
    assert out['failed'] is True and words in out['msg'] and out['rows'] == []
