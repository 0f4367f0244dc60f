"""pre_deployment_check through its main path: a verdict with its table, blockers, bad input named."""
import pytest

from ansible_collections.supersmartmatch.platform.plugins.modules import pre_deployment_check as mod

from .helpers import run_main

DF = 'Filesystem 1024-blocks Used Available Capacity Mounted on\n/dev/sda1 1000 %d %d 0%% /\n'


def test_a_passing_fleet_exits_with_its_table(capsys):
    out = run_main(mod, {'hosts': {'app1': {'disk': {'rc': 0, 'stdout': DF % (100, 900)}}},
                         'expected_hosts': ['app1']}, capsys)
    assert out['passed'] is True and out['changed'] is False and not out.get('failed')
    assert out['rows'] == [{'check': 'disk space', 'host': 'app1', 'status': 'pass',
                            'detail': '90.0 % free on / (0.0 GiB)'}]
    assert out['table'][-1] == out['msg'] == 'PASSED: 1 check(s) passed, 0 warning(s), no blocker'


@pytest.mark.parametrize('fail_on_blocker,failed', [(True, True), (False, None)])
def test_a_blocker_fails_unless_the_playbook_prints_first(capsys, fail_on_blocker, failed):
    out = run_main(mod, {'hosts': {'app1': {'disk': {'rc': 0, 'stdout': DF % (950, 50)}}},
                         'expected_hosts': ['app1', 'app2'], 'min_free_percent': 10,
                         'fail_on_blocker': fail_on_blocker}, capsys)
    assert out.get('failed') is failed and out['passed'] is False
    assert [(r['check'], r['host']) for r in out['blockers']] == [('reachable', 'app2'), ('disk space', 'app1')]
    assert out['msg'] == 'BLOCKED: 2 blocker(s): reachable on app2; disk space on app1'


@pytest.mark.parametrize('args,words', [
    ({'hosts': {'lb1': {'nginxx': {}}}}, "hosts[lb1]: unknown reading 'nginxx' (known: nginx, split,"),
    ({'hosts': {'lb1': {'nginx': 'rc=0'}}}, 'hosts[lb1][nginx]: must be a registered result (a dict), got str'),
    ({'hosts': {'lb1': ['x']}}, 'hosts[lb1]: must be a dict of registered results, got list'),
    ({'hosts': {}, 'min_free_percent': 100}, 'min_free_percent must be from 0 to under 100, got 100.0'),
    ({'hosts': {}, 'cert_days': -1}, 'cert_days must be 0 or more, got -1'),
    ({'hosts': {}, 'max_lag_bytes': -5}, 'max_lag_bytes must be 0 or more, got -5'),
    ({'hosts': {}, 'backup_max_age_hours': 0}, 'backup_max_age_hours must be above 0, got 0.0'),
])
def test_bad_input_is_named_and_judges_nothing(capsys, args, words):
    out = run_main(mod, args, capsys)
    assert out['failed'] is True and words in out['msg'] and out['rows'] == []
