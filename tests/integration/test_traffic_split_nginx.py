"""traffic_split against a real NGINX: shares, stickiness, safety, idempotence."""
import json
import os

import pytest

from conftest import Lab, run_module

USERS = ['u%d' % i for i in range(10000)]


def share(sides):
    return 100.0 * sum(1 for side in sides.values() if side == 'candidate') / len(sides)


def snapshot(lab):
    files = {}
    for path in (lab.config_path, lab.state_path):
        files[path] = open(path).read() if os.path.exists(path) else None
    return files


def bootstrap(lab):
    result = run_module('traffic_split', lab.args(percent=0, phase='bootstrap', reload=False))
    assert result.get('changed') is True, result
    lab.start()
    return result


def test_progressive_split_is_exact_sticky_and_growing(nginx_lab):
    lab = nginx_lab
    first = bootstrap(lab)
    assert first['previous'] is None
    assert set(lab.sides(USERS[:500]).values()) == {'stable'}

    canary = run_module('traffic_split', lab.args(percent=5, phase='canary'))
    assert canary['changed'] is True and canary['reloaded'] is True, canary
    assert canary['previous']['percent'] == 0 and canary['split']['percent'] == 5
    at5 = lab.sides(USERS)
    assert abs(share(at5) - 5) <= 1, share(at5)

    again = run_module('traffic_split', lab.args(percent=5, phase='canary'))
    assert again['changed'] is False and again['reloaded'] is False
    assert lab.sides(USERS) == at5, 'users changed side while percent was unchanged'

    extended = run_module('traffic_split', lab.args(percent=25, phase='extended'))
    assert extended['changed'] is True
    at25 = lab.sides(USERS)
    assert abs(share(at25) - 25) <= 1, share(at25)
    cohort5 = set(u for u, s in at5.items() if s == 'candidate')
    cohort25 = set(u for u, s in at25.items() if s == 'candidate')
    assert cohort5 <= cohort25, '%d canary users left the candidate at 25 %%' % len(cohort5 - cohort25)

    full = run_module('traffic_split', lab.args(percent=100, phase='full'))
    assert full['changed'] is True
    assert set(lab.sides(USERS[:500]).values()) == {'candidate'}

    state = json.load(open(lab.state_path))
    assert [h['percent'] for h in state['history']] == [0, 5, 25, 100]
    assert state['phase'] == 'full' and state['updated_by'] == 'pytest'
    assert state['candidate'] == {'backends': [lab.candidate_addr], 'version': '2.0.0', 'color': 'green'}

    rollback = run_module('traffic_split', dict(service='svc', operation='rollback', nginx_conf=lab.conf,
                                                config_dir=lab.config_dir, state_dir=lab.state_dir))
    assert rollback['changed'] is True and rollback['split']['percent'] == 0, rollback
    assert rollback['split']['phase'] == 'rollback'
    assert set(lab.sides(USERS[:500]).values()) == {'stable'}
    assert any(n.endswith('_split_svc.conf.prev') for n in os.listdir(lab.state_dir))


def test_promote_then_rollback_to_previous_release(nginx_lab):
    lab = nginx_lab
    bootstrap(lab)
    run_module('traffic_split', lab.args(percent=100, phase='full'))
    promoted = run_module('traffic_split', dict(service='svc', operation='promote', nginx_conf=lab.conf,
                                                config_dir=lab.config_dir, state_dir=lab.state_dir))
    assert promoted['changed'] is True, promoted
    assert promoted['split']['stable']['version'] == '2.0.0'
    assert set(lab.sides(USERS[:300]).values()) == {'candidate'}  # traffic did not move
    back = run_module('traffic_split', dict(service='svc', operation='rollback', nginx_conf=lab.conf,
                                            config_dir=lab.config_dir, state_dir=lab.state_dir))
    assert back['split']['stable']['version'] == '1.0.0'
    assert set(lab.sides(USERS[:300]).values()) == {'stable'}


@pytest.mark.parametrize('extra, message', [
    (dict(percent=101), 'percent must be between 0 and 100, got 101'),
    (dict(percent=-1), 'percent must be between 0 and 100, got -1'),
    (dict(percent='abc'), "percent must be a number from 0 to 100, got 'abc'"),
    (dict(percent=5, stable=[]), 'stable must be a non-empty list'),
    (dict(percent=5, service='Bad-Name'), 'service must start with a lower-case letter'),
    (dict(percent=5, stable=['no-such-host.invalid:80']), 'host not found in upstream'),
    (dict(percent=5, sticky_key='$nosuchvariable_at_all'), 'unknown "nosuchvariable_at_all" variable'),
])
def test_bad_input_changes_nothing(nginx_lab, extra, message):
    lab = nginx_lab
    bootstrap(lab)
    run_module('traffic_split', lab.args(percent=5, phase='canary'))
    before = snapshot(lab)
    before_sides = lab.sides(USERS[:2000])
    result = run_module('traffic_split', lab.args(**extra))
    assert result.get('failed') is True, result
    assert message in result['msg'], result['msg']
    assert result['changed'] is False
    assert snapshot(lab) == before
    assert lab.sides(USERS[:2000]) == before_sides
    leftovers = [n for n in os.listdir(lab.dir) if n.startswith('.nginx-validate')]
    assert leftovers == []


def test_rollback_without_state_is_refused(nginx_lab):
    lab = nginx_lab
    result = run_module('traffic_split', dict(service='other', operation='rollback', nginx_conf=lab.conf,
                                              config_dir=lab.config_dir, state_dir=lab.state_dir))
    assert result['failed'] is True
    assert "service 'other' has no traffic state on this host" in result['msg']
    assert not os.path.exists(os.path.join(lab.config_dir, 'other.conf'))


def test_check_and_diff_mode_touch_nothing(nginx_lab):
    lab = nginx_lab
    bootstrap(lab)
    before = snapshot(lab)
    preview = run_module('traffic_split', lab.args(percent=25, phase='extended'), check=True, diff=True)
    assert preview['changed'] is True and preview['split']['percent'] == 25
    assert '25%  svc_candidate;' in preview['diff'][0]['after']
    assert '*   svc_stable;' in preview['diff'][0]['before']
    assert snapshot(lab) == before
    bad = run_module('traffic_split', lab.args(percent=5, stable=['no-such-host.invalid:80']), check=True)
    assert bad['failed'] is True and 'host not found' in bad['msg']


def test_not_running_nginx_is_refused(nginx_lab):
    lab = nginx_lab
    result = run_module('traffic_split', lab.args(percent=5))
    assert result['failed'] is True and 'NGINX is not running' in result['msg']
    assert not os.path.exists(lab.config_path) and not os.path.exists(lab.state_path)


def test_rollout_lock_refuses_second_rollout(nginx_lab):
    lab = nginx_lab
    args = dict(service='svc', state_dir=lab.state_dir, run_id='run-1', holder='alice@ci', phase='canary', ttl=600)
    assert run_module('rollout_lock', args)['changed'] is True
    assert run_module('rollout_lock', args)['changed'] is False
    other = run_module('rollout_lock', dict(args, run_id='run-2', holder='bob@laptop'))
    assert other['failed'] is True
    assert 'already in progress: lease held by alice@ci (run run-1' in other['msg']
    assert run_module('rollout_lock', dict(args, state='released'))['changed'] is True
    assert run_module('rollout_lock', dict(args, run_id='run-2', holder='bob'))['changed'] is True


def test_a_balancer_that_joins_a_running_fleet_sends_every_user_where_the_others_do(nginx_lab, tmp_path):
    lb1 = nginx_lab
    bootstrap(lb1)
    run_module('traffic_split', lb1.args(percent=5, phase='canary'))
    lb2 = Lab(str(tmp_path / 'lb2'))
    try:
        peer = run_module('traffic_split_info', dict(service='svc', config_dir=lb1.config_dir, state_dir=lb1.state_dir))
        join = dict(service='svc', operation='join', fleet_split=peer['state'], nginx_conf=lb2.conf,
                    config_dir=lb2.config_dir, state_dir=lb2.state_dir, run_by='pytest')
        joined = run_module('traffic_split', dict(join, reload=False))
        assert joined['changed'] is True and joined['generation'] == 1, joined
        lb2.start()
        users = USERS[:3000]
        at_lb1 = lb1.sides(users)
        assert lb2.sides(users) == at_lb1, 'a user changed side by changing balancer'
        assert abs(share(at_lb1) - 5) <= 1.5
        again = run_module('traffic_split', join)
        assert again.get('failed') and 'already has a traffic state' in again['msg'], again
        assert lb2.sides(users[:300]) == dict((u, at_lb1[u]) for u in users[:300])
    finally:
        lb2.stop()
