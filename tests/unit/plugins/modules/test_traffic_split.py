"""The modules' main path (AnsibleModule with patched arguments): every bad input is a clean refusal."""
import json
import os

import pytest

from ansible_collections.supersmartmatch.platform.plugins.modules import traffic_split

from .helpers import Dirs, run_main


BAD_INPUTS = [
    (dict(percent='5_0'), "percent must be a number from 0 to 100, got '5_0'"),
    (dict(percent='\u0665'), 'percent must be a number from 0 to 100'),
    (dict(percent='\uff15\uff10'), 'percent must be a number from 0 to 100'),
    (dict(percent=' 5'), "got ' 5'"),
    (dict(percent='5\n'), "got '5\\n'"),
    (dict(percent=True), 'percent must be a number from 0 to 100, got True'),
    (dict(percent='101'), 'percent must be between 0 and 100, got 101'),
    (dict(percent=5.555), 'at most two decimals'),
    (dict(stable=['host:\u00b2']), "backend 'host:\u00b2' has an invalid port"),
    (dict(stable=['host:\u0668\u0660']), 'has an invalid port'),
    (dict(candidate=['app1\n:80']), 'has an invalid host'),
    (dict(candidate=['app1:5062'], stable=['app1:5062']), 'must not share backends'),
    (dict(candidate_version='2.0.0\n} server { listen 81; }'), 'candidate_version must be 1 to 64 of'),
    (dict(stable_version='1.0.0\n'), 'stable_version must be 1 to 64 of'),
    (dict(candidate_color='green;'), 'candidate_color must be 1 to 64 of'),
    (dict(salt='2.0.0\n'), 'salt must be empty or 1 to 64 of'),
    (dict(salt='a"b'), 'salt must be empty or 1 to 64 of'),
    (dict(sticky_key='$cookie_ssm_uid\n'), 'sticky_key must be one NGINX variable'),
    (dict(sticky_fallback='remote_addr'), 'sticky_fallback must be one NGINX variable'),
    (dict(service='../x'), 'service must start with a lower-case letter'),
    (dict(service='svc\n'), 'service must start with a lower-case letter'),
    (dict(server_options='max_fails=3; } server { listen 81; }'), 'max_fails must be a whole number'),
    (dict(server_options='max_fails=3 backup'), "'backup' is not one of weight, max_fails, fail_timeout, max_conns"),
    (dict(server_options='weight=0'), 'weight must be a whole number from 1 to 1000'),
    (dict(server_options='fail_timeout=10y'), 'fail_timeout must be an NGINX time'),
    (dict(keepalive=-1), 'keepalive must be a whole number from 0 to 10000'),
    (dict(expected_generation=-1), 'expected_generation must be a whole number >= 0'),
    (dict(history_limit=-1), 'history_limit must be >= 0'),
    (dict(operation='rollback', percent=None), "service 'svc' has no traffic state on this host"),
    (dict(operation='restore', percent=None), 'operation=restore needs run_id'),
    (dict(expected_generation=3), 'compare-and-set refused: expected generation 3 but there is no state'),
]


@pytest.mark.parametrize('extra, message', BAD_INPUTS)
def test_bad_input_is_a_clean_refusal_without_state(tmp_path, capsys, extra, message):
    dirs = Dirs(tmp_path)
    result = run_main(traffic_split, dirs.args(**extra), capsys)
    assert result['failed'] is True and result['changed'] is False, result
    assert message in result['msg'], result['msg']
    assert 'Traceback' not in json.dumps(result)
    assert not os.path.exists(dirs.config_dir) and not os.path.exists(dirs.state_dir)


SEEDED = [case for case in BAD_INPUTS if 'no traffic state' not in case[1] and 'there is no state' not in case[1]] + [
    (dict(operation='rollback', percent=None, server_options='weight=2'),
     'server_options cannot be given with operation=rollback'),
    (dict(operation='promote', percent=None), 'cannot be promoted: the candidate holds 5 %'),
    (dict(operation='complete', percent=None, phase='full'), 'cannot mark phase full of version 2.0.0 complete'),
    (dict(operation='rollback', percent=5), 'percent cannot be given with operation=rollback'),
]


@pytest.mark.parametrize('extra, message', SEEDED)
def test_bad_input_is_a_clean_refusal_over_a_state(tmp_path, capsys, extra, message):
    dirs = Dirs(tmp_path)
    dirs.seed()
    before = dirs.snapshot()
    result = run_main(traffic_split, dirs.args(**extra), capsys)
    assert result['failed'] is True and result['changed'] is False, result
    assert message in result['msg'], result['msg']
    if not extra.get('service'):
        assert (result['generation'], result['previous_generation']) == (2, 2)
    assert dirs.snapshot() == before


def test_conflict_and_drift_reach_fail_json(tmp_path, capsys):
    dirs = Dirs(tmp_path)
    dirs.seed()
    conflict = run_main(traffic_split, dirs.args(percent=25, phase='extended', expected_generation=1), capsys)
    assert conflict['failed'] is True and conflict['conflict'] is True and conflict['generation'] == 2
    assert conflict['moved'] == dict(conflict['moved'], generation=2, by='seed@ctl', operation='set', phase='canary',
                                     status='in_progress', run_id='seed-run')
    assert sorted(conflict['moved']) == ['at', 'by', 'generation', 'operation', 'phase', 'run_id', 'status']
    os.unlink(os.path.join(dirs.config_dir, 'svc.conf'))
    drift = run_main(traffic_split, dirs.args(percent=25, phase='extended'), capsys)
    assert drift['failed'] is True and drift['drift'] is True and drift['changed'] is False
    assert 'drift' in drift['msg'] and drift['drift_reason'].startswith('the split file is missing')
