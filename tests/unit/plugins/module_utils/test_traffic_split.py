"""traffic_split planning and one module call (execute) against files, with a fake NGINX."""
import os

import pytest

from ansible_collections.supersmartmatch.platform.plugins.module_utils import traffic_split as ts
from ansible_collections.supersmartmatch.platform.plugins.module_utils import traffic_split_render as rd
from ansible_collections.supersmartmatch.platform.plugins.module_utils import traffic_split_state as st
from ansible_collections.supersmartmatch.platform.plugins.module_utils.nginx import read_text, write_atomic
from ansible_collections.supersmartmatch.platform.plugins.module_utils.traffic_split_validate import SplitError

from splitcases import Host, base_params


def test_plan_set_defaults_sticky_key():
    split = ts.plan_split(base_params(), None)
    assert split['sticky_key'] == '$cookie_ssm_uid'
    assert split['sticky_fallback'] == '$remote_addr'
    assert split['percent'] == 5.0
    assert split['stable'] == {'backends': ['app1:5062', 'app2:5062'], 'version': '1.0.0', 'color': 'blue'}


def test_plan_set_keeps_sticky_key_from_state():
    previous = st.new_state(None, ts.plan_split(base_params(sticky_key='$http_x_user'), None), 'me', 'r1')
    split = ts.plan_split(base_params(percent=25), previous)
    assert split['sticky_key'] == '$http_x_user'


@pytest.mark.parametrize('extra, message', [
    (dict(candidate=['app1:5062']), 'must not share backends: app1:5062'),
    (dict(percent=101), 'between 0 and 100'),
    (dict(percent='abc'), "got 'abc'"),
    (dict(stable=[]), 'stable must be a non-empty list'),
    (dict(sticky_key='cookie'), 'sticky_key must be one NGINX variable'),
    (dict(sticky_key='$a; return 500'), 'sticky_key must be one NGINX variable'),
    (dict(salt='x y'), 'salt must be empty or'),
    (dict(salt='2.0.0\n'), 'salt must be empty or'),
    (dict(candidate_version='2.0.0\n# x'), 'candidate_version must be'),
    (dict(stable_color='blue;'), 'stable_color must be'),
    (dict(server_options='max_fails=3 backup'), "'backup' is not one of"),
    (dict(keepalive=-1), 'keepalive must be'),
    (dict(percent='5_0'), "got '5_0'"),
    (dict(stable=['host:\u00b2']), 'invalid port'),
    (dict(phase='bogus'), 'phase must be one of'),
    (dict(operation='flip'), 'operation must be'),
])
def test_plan_set_rejects(extra, message):
    with pytest.raises(SplitError) as err:
        ts.plan_split(base_params(**extra), None)
    assert message in str(err.value)


def state_at(percent, phase):
    return st.new_state(None, ts.plan_split(base_params(percent=percent, phase=phase), None), 'me', 'r1')


def test_rollback_without_state_is_refused():
    with pytest.raises(SplitError) as err:
        ts.plan_split(dict(service='svc', operation='rollback', state_path='/x/svc.json'), None)
    assert "service 'svc' has no traffic state on this host (/x/svc.json): nothing to rollback" in str(err.value)


@pytest.mark.parametrize('percent, phase', [(5, 'canary'), (25, 'extended'), (100, 'full')])
def test_rollback_during_rollout_returns_all_traffic_to_stable(percent, phase):
    split = ts.plan_split(dict(service='svc', operation='rollback'), state_at(percent, phase))
    assert split['percent'] == 0
    assert split['phase'] == 'rollback'
    assert split['stable']['version'] == '1.0.0'
    assert split['candidate']['version'] == '2.0.0'
    assert split['salt'] == '2.0.0'


def test_promote_then_rollback_returns_to_previous_release():
    promoted = ts.plan_split(dict(service='svc', operation='promote'), state_at(100, 'full'))
    assert (promoted['percent'], promoted['phase']) == (0, 'promoted')
    assert promoted['stable']['version'] == '2.0.0'
    assert promoted['stable']['backends'] == ['app1:5070', 'app2:5070']
    state = st.new_state(state_at(100, 'full'), promoted, 'me', 'r2')
    back = ts.plan_split(dict(service='svc', operation='rollback'), state)
    assert back['stable']['version'] == '1.0.0'
    assert back['stable']['backends'] == ['app1:5062', 'app2:5062']
    assert back['percent'] == 0


def test_promote_is_idempotent():
    promoted = ts.plan_split(dict(service='svc', operation='promote'), state_at(100, 'full'))
    promoted_state = st.new_state(None, promoted, 'me', 'r')
    again = ts.plan_split(dict(service='svc', operation='promote'), promoted_state)
    assert st.traffic_fields(again) == st.traffic_fields(promoted_state)


@pytest.mark.parametrize('percent', [0, 5, 25, 99.5])
def test_promote_refused_before_full(percent):
    with pytest.raises(SplitError) as err:
        ts.plan_split(dict(service='svc', operation='promote'), state_at(percent, 'canary'))
    assert 'cannot be promoted' in str(err.value)


RESIZED = dict(service='svc', operation='resize', stable=['app1:5062', 'app2:5062', 'app3:5062'],
               candidate=['app1:5070', 'app2:5070', 'app3:5070'])


@pytest.mark.parametrize('percent, phase', [(5, 'canary'), (25, 'extended'), (100, 'full'), (0, 'bootstrap')])
def test_resize_changes_the_backends_only(percent, phase):
    before = state_at(percent, phase)
    split = ts.plan_split(RESIZED, before)
    assert split['stable'] == dict(before['stable'], backends=RESIZED['stable'])
    assert split['candidate'] == dict(before['candidate'], backends=RESIZED['candidate'])
    for key in ('percent', 'phase', 'status', 'salt', 'sticky_key', 'sticky_fallback', 'keepalive'):
        assert split[key] == before[key], key
    # the split_clients block (who goes where) is the same: only the upstreams grow
    block = [line for line in rd.render_config(split).splitlines() if '%;' in line or '* ' in line]
    assert block == [line for line in rd.render_config(before).splitlines() if '%;' in line or '* ' in line]
    assert ('server app3:%s' % ('5070' if percent == 100 else '5062')) in rd.render_config(split)


def test_resize_after_a_promotion_keeps_the_previous_release_for_rollback():
    full = state_at(100, 'full')
    promoted = st.new_state(full, ts.plan_split(dict(service='svc', operation='promote'), full), 'me', 'r2')
    swapped = dict(RESIZED, stable=RESIZED['candidate'], candidate=RESIZED['stable'])
    resized = st.new_state(promoted, ts.plan_split(swapped, promoted), 'me', 'r3')
    back = ts.plan_split(dict(service='svc', operation='rollback'), resized)
    assert back['stable']['version'] == '1.0.0'
    assert back['stable']['backends'] == ['app1:5062', 'app2:5062', 'app3:5062']


@pytest.mark.parametrize('params, message', [
    (dict(RESIZED, percent=5), 'percent cannot be given with operation=resize'),
    (dict(RESIZED, stable=[]), 'stable must be a non-empty list'),
    (dict(RESIZED, candidate=['app1:5062']), 'stable and candidate must not share backends: app1:5062'),
    (dict(RESIZED, keepalive=4), 'keepalive cannot be given with operation=resize'),
])
def test_resize_refuses(params, message):
    with pytest.raises(SplitError) as err:
        ts.plan_split(params, state_at(5, 'canary'))
    assert message in str(err.value)


def test_resize_needs_a_state():
    with pytest.raises(SplitError) as err:
        ts.plan_split(RESIZED, None)
    assert 'has no traffic state on this host' in str(err.value)


def test_rollback_refuses_percent():
    with pytest.raises(SplitError):
        ts.plan_split(dict(service='svc', operation='rollback', percent=5), state_at(5, 'canary'))


@pytest.mark.parametrize('phase, status', [
    ('canary', 'in_progress'), ('extended', 'in_progress'), ('full', 'in_progress'),
    ('bootstrap', 'steady'), ('manual', 'steady'),
])
def test_set_status(phase, status):
    assert ts.plan_split(base_params(phase=phase), None)['status'] == status


def test_complete_marks_current_phase_without_moving_traffic():
    state = state_at(5, 'canary')
    done = ts.plan_split(dict(service='svc', operation='complete', phase='canary', candidate_version='2.0.0'), state)
    assert (done['percent'], done['phase'], done['status']) == (5.0, 'canary', 'completed')
    assert rd.render_config(done) == rd.render_config(ts.plan_split(base_params(percent=5, phase='canary'), None))


@pytest.mark.parametrize('phase, version', [('extended', '2.0.0'), ('canary', '3.0.0')])
def test_complete_refuses_another_phase_or_version(phase, version):
    with pytest.raises(SplitError) as err:
        ts.plan_split(dict(service='svc', operation='complete', phase=phase, candidate_version=version),
                      state_at(5, 'canary'))
    assert 'is in phase canary of version 2.0.0' in str(err.value)


def test_rollback_and_promote_status():
    assert ts.plan_split(dict(service='svc', operation='rollback'), state_at(25, 'extended'))['status'] == 'rolled_back'
    assert ts.plan_split(dict(service='svc', operation='promote'), state_at(100, 'full'))['status'] == 'completed'


def test_restore_undoes_only_this_runs_change():
    first = st.new_state(None, ts.plan_split(base_params(percent=5, phase='canary'), None), 'me', 'run-1')
    second = st.new_state(first, ts.plan_split(base_params(percent=25, phase='extended'), first), 'me', 'run-2')
    undo = ts.plan_split(dict(service='svc', operation='restore', run_id='run-2'), second)
    assert (undo['percent'], undo['phase'], undo['status']) == (5.0, 'canary', 'in_progress')
    assert rd.render_config(undo) == rd.render_config(ts.plan_split(base_params(percent=5), None))
    assert ts.plan_split(dict(service='svc', operation='restore', run_id='run-1'), second) is None
    assert ts.plan_split(dict(service='svc', operation='restore', run_id='run-9'), None) is None
    with pytest.raises(SplitError):
        ts.plan_split(dict(service='svc', operation='restore'), second)


def test_restore_is_not_undone_by_a_second_restore():
    first = st.new_state(None, ts.plan_split(base_params(percent=5, phase='canary'), None), 'me', 'run-1')
    second = st.new_state(first, ts.plan_split(base_params(percent=25, phase='extended'), first), 'me', 'run-2')
    undo = ts.plan_split(dict(service='svc', operation='restore', run_id='run-2'), second)
    restored = st.new_state(second, undo, 'me', 'run-2')
    assert ts.plan_split(dict(service='svc', operation='restore', run_id='run-2'), restored) is None


@pytest.mark.parametrize('operation, extra, message', [
    ('rollback', dict(server_options='weight=2'), 'server_options cannot be given with operation=rollback'),
    ('promote', dict(keepalive=4), 'keepalive cannot be given with operation=promote'),
    ('complete', dict(keepalive=4, phase='full'), 'keepalive cannot be given with operation=complete'),
    ('restore', dict(server_options='', run_id='r1'), 'server_options cannot be given with operation=restore'),
])
def test_options_only_with_set(operation, extra, message):
    with pytest.raises(SplitError) as err:
        ts.plan_split(dict(service='svc', operation=operation, **extra), state_at(100, 'full'))
    assert message in str(err.value)


def test_set_keeps_the_stored_options_when_none_are_given():
    first = st.new_state(None, ts.plan_split(base_params(server_options='weight=2', keepalive=4), None), 'me', 'r1')
    again = ts.plan_split(base_params(percent=25), first)
    assert (again['server_options'], again['keepalive']) == ('weight=2', 4)
    fresh = ts.plan_split(base_params(), None)
    assert (fresh['server_options'], fresh['keepalive']) == ('max_fails=3 fail_timeout=10s', 32)


# --------------------------------------------------------------------------
# execute: one call of the module, files on disk, a fake NGINX
# --------------------------------------------------------------------------

@pytest.fixture
def host(tmp_path):
    return Host(tmp_path)


def test_every_change_increments_the_generation_and_no_change_keeps_it(host):
    steps = [
        (dict(percent=0, phase='bootstrap'), True, 0, 1),
        (dict(percent=0, phase='bootstrap'), False, 1, 1),
        (dict(percent=5, phase='canary', run_id='c1'), True, 1, 2),
        (dict(operation='complete', phase='canary', candidate_version='2.0.0'), True, 2, 3),
        (dict(operation='complete', phase='canary', candidate_version='2.0.0'), False, 3, 3),
        (dict(percent=25, phase='extended', run_id='e1'), True, 3, 4),
        (dict(operation='restore', run_id='e1'), True, 4, 5),
        (dict(operation='restore', run_id='e1'), False, 5, 5),
        (dict(percent=100, phase='full'), True, 5, 6),
        (dict(operation='promote'), True, 6, 7),
        (dict(operation='promote'), False, 7, 7),
        (dict(operation='rollback'), True, 7, 8),
        (dict(operation='rollback'), False, 8, 8),
    ]
    for params, changed, before, after in steps:
        result = host.call(**params)
        assert (result['changed'], result['previous_generation'], result['generation']) == (changed, before, after), \
            (params, result)
        state = host.state()
        assert state['generation'] == after
        assert rd.parse_live(read_text(host.config_path), 'svc')['generation'] == after
        assert rd.drift_reason(state, read_text(host.config_path)) is None
    assert [h['operation'] for h in host.state()['history']] == [
        'set', 'set', 'complete', 'set', 'restore', 'set', 'promote', 'rollback']


def test_a_change_of_comments_only_does_not_reload(host):
    host.call(percent=5, phase='canary')
    host.call(operation='complete', phase='canary', candidate_version='2.0.0')
    assert [c['reload'] for c in host.nginx.calls] == [True, False]
    text = read_text(host.config_path)
    assert text.splitlines()[1].startswith('# generation=2 ')


def test_check_mode_changes_nothing_and_tells_the_next_generation(host):
    host.call(percent=5, phase='canary')
    before = host.files()
    result = host.call(check_mode=True, percent=25, phase='extended')
    assert (result['changed'], result['generation'], result['previous_generation']) == (True, 2, 1)
    assert host.files() == before


OPERATIONS = [
    dict(percent=25, phase='extended'),
    dict(operation='complete', phase='canary', candidate_version='2.0.0'),
    dict(operation='promote'),
    dict(operation='restore', run_id='c1'),
    dict(operation='rollback'),
    dict(operation='resize', stable=['app1:5062'], candidate=['app1:5070']),
]


def at_canary(host):
    host.call(percent=0, phase='bootstrap', run_id='b1')
    host.call(percent=5, phase='canary', run_id='c1')
    assert host.state()['generation'] == 2


@pytest.mark.parametrize('params', OPERATIONS)
@pytest.mark.parametrize('expected', [0, 1, 3])
def test_compare_and_set_refuses_every_operation_and_changes_nothing(host, params, expected):
    at_canary(host)
    before = host.files()
    calls = len(host.nginx.calls)
    with pytest.raises(SplitError) as err:
        host.call(expected_generation=expected, **params)
    assert str(err.value).startswith('compare-and-set refused: expected generation %d but the state is at '
                                     'generation 2, moved by tester at ' % expected)
    assert '(set, phase canary, 5 % on the candidate); nothing was changed' in str(err.value)
    details = err.value.details
    assert details['conflict'] is True and details['generation'] == 2 and details['previous_generation'] == 2
    assert details['moved']['run_id'] == 'c1' and details['moved']['generation'] == 2
    assert host.files() == before and len(host.nginx.calls) == calls


@pytest.mark.parametrize('params', [OPERATIONS[0], OPERATIONS[3], OPERATIONS[4]])
def test_compare_and_set_passes_at_the_right_generation(host, params):
    at_canary(host)
    result = host.call(expected_generation=2, **params)
    assert result['changed'] is True and result['generation'] == 3


def test_a_stale_phase_cannot_undo_a_rollback(host):
    """The issue's race: a rollback lands between the plan and the shift; the shift is refused."""
    at_canary(host)
    planned = host.state()['generation']
    host.call(operation='rollback', run_by='alice@ctl', run_id='rb')
    with pytest.raises(SplitError) as err:
        host.call(percent=25, phase='extended', expected_generation=planned)
    assert 'moved by alice@ctl at ' in str(err.value) and '(rollback, phase rollback, 0 % on the candidate)' in str(err.value)
    assert host.state()['phase'] == 'rollback'
    assert rd.parse_live(read_text(host.config_path), 'svc')['percent'] == 0


DRIFTS = [
    ('missing file', lambda h: os.unlink(h.config_path), 'the split file is missing but the state is at generation 2'),
    ('hand edit', lambda h: write_atomic(h.config_path, read_text(h.config_path).replace('5%', '50%')),
     'the split file is at generation 2 with 50 % on the candidate but the state is at generation 2 with 5 %'),
    ('file ahead', lambda h: write_atomic(h.config_path, rd.render_config(dict(h.state(), percent=25.0), 3)),
     'the split file is at generation 3 with 25 % on the candidate but the state is at generation 2 with 5 %'),
]


@pytest.mark.parametrize('params', OPERATIONS[:4])
@pytest.mark.parametrize('name, damage, reason', DRIFTS)
def test_drift_refuses_set_restore_complete_promote(host, params, name, damage, reason):
    at_canary(host)
    damage(host)
    before = host.files()
    calls = len(host.nginx.calls)
    with pytest.raises(SplitError) as err:
        host.call(**params)
    assert str(err.value).startswith('drift on svc: ' + reason), str(err.value)
    assert 'nothing was changed' in str(err.value)
    assert err.value.details['drift'] is True and err.value.details['drift_reason'].startswith(reason)
    assert host.files() == before and len(host.nginx.calls) == calls


@pytest.mark.parametrize('name, damage, reason', DRIFTS)
def test_rollback_repairs_drift(host, name, damage, reason):
    at_canary(host)
    damage(host)
    result = host.call(operation='rollback')
    assert result['changed'] is True and result['generation'] == 3 and result['repaired'].startswith(reason)
    assert host.nginx.calls[-1]['reload'] is True and host.nginx.calls[-1]['force_reload'] is True
    state = host.state()
    assert (state['generation'], state['percent'], state['phase']) == (3, 0.0, 'rollback')
    assert read_text(host.config_path) == rd.render_state(state)
    assert rd.parse_live(read_text(host.config_path), 'svc')['percent'] == 0
    assert host.call(percent=5, phase='canary', expected_generation=3)['generation'] == 4


def crash(*_args):
    raise KeyboardInterrupt('killed between the NGINX write and the state write')


@pytest.mark.parametrize('params', [dict(percent=25, phase='extended'), dict(operation='rollback'),
                                    dict(operation='complete', phase='canary', candidate_version='2.0.0')])
def test_a_crash_between_the_writes_is_detected_and_repaired(host, monkeypatch, params):
    at_canary(host)
    monkeypatch.setattr(ts, 'write_state_file', crash)
    with pytest.raises(KeyboardInterrupt):
        host.call(**params)
    monkeypatch.undo()
    live = rd.parse_live(read_text(host.config_path), 'svc')
    assert live['generation'] == 3 and host.state()['generation'] == 2  # NGINX got it, the state did not

    with pytest.raises(SplitError) as err:
        host.call(percent=5, phase='canary', run_id='c2')
    assert 'drift' in str(err.value)
    assert 'the split file is at generation 3' in str(err.value) and 'the state is at generation 2' in str(err.value)

    seen = ts.info(dict(service='svc', config_dir=host.config_dir, state_dir=host.state_dir), now=0)
    assert seen['drift'] is True and seen['file_generation'] == 3 and seen['generation'] == 2

    reloads = len(host.nginx.calls)
    repaired = host.call(operation='rollback')
    assert repaired['changed'] is True and repaired['generation'] == 3 and 'repaired' in repaired
    # even when the file already says what rollback renders, NGINX is reloaded: what it runs is unknown
    assert host.nginx.calls[reloads]['force_reload'] is True and repaired['reloaded'] is True
    state = host.state()
    assert read_text(host.config_path) == rd.render_state(state) and state['percent'] == 0
    assert ts.info(dict(service='svc', config_dir=host.config_dir, state_dir=host.state_dir), now=0)['drift'] is False


def test_rollback_and_restore_render_the_options_that_were_set(host):
    host.call(percent=0, phase='bootstrap', server_options='weight=2 max_conns=10', keepalive=0, run_id='b1')
    host.call(percent=5, phase='canary', server_options='max_fails=1', keepalive=8, run_id='c1')
    assert '    server app1:5070 max_fails=1;\n' in read_text(host.config_path)
    host.call(operation='restore', run_id='c1')
    text = read_text(host.config_path)
    assert '    server app1:5062 weight=2 max_conns=10;\n' in text and 'keepalive' not in text
    host.call(percent=5, phase='canary', server_options='max_fails=1', keepalive=8, run_id='c2')
    host.call(operation='rollback')
    text = read_text(host.config_path)
    assert '    server app1:5062 max_fails=1;\n' in text and '    keepalive 8;\n' in text
    assert (host.state()['server_options'], host.state()['keepalive']) == ('max_fails=1', 8)


def test_restore_of_another_runs_change_does_nothing_but_still_sees_drift(host):
    at_canary(host)
    assert host.call(operation='restore', run_id='other')['changed'] is False
    os.unlink(host.config_path)
    with pytest.raises(SplitError) as err:
        host.call(operation='restore', run_id='other')
    assert 'drift' in str(err.value)


def test_first_set_takes_an_existing_file_over(host):
    os.makedirs(host.config_dir)
    write_atomic(host.config_path, '# left by something else\n')
    result = host.call(percent=0, phase='bootstrap')
    assert result['changed'] is True and result['generation'] == 1
    assert read_text(host.config_path) == rd.render_state(host.state())


def test_a_legacy_state_and_file_move_to_generations(host):
    host.call(percent=5, phase='canary')
    state = host.state()
    for key in ('generation', 'server_options', 'keepalive'):
        del state[key]
    for entry in state['history']:
        del entry['generation']
    write_atomic(host.state_path, st.dump_state(state))
    write_atomic(host.config_path, rd.render_config(dict(state, server_options=None), 0))
    assert host.call(percent=5, phase='canary')['changed'] is False     # nothing to do, no drift
    result = host.call(percent=25, phase='extended', expected_generation=0)
    assert (result['previous_generation'], result['generation']) == (0, 1)


def test_info_reports_state_file_and_lease(host, tmp_path):
    params = dict(service='svc', config_dir=host.config_dir, state_dir=host.state_dir)
    empty = ts.info(params, now=0)
    assert empty == {'changed': False, 'config_path': host.config_path, 'state_path': host.state_path,
                     'exists': False, 'state': None, 'generation': 0, 'file_generation': None, 'drift': False,
                     'drift_reason': None, 'live': None, 'lease': None}
    for index in range(12):
        host.call(percent=index, phase='canary')
    write_atomic(os.path.join(host.state_dir, 'svc.rollout.lock'),
                 '{"run_id": "r", "holder": "bob@ctl", "phase": "canary", "expires": 100.0}')
    seen = ts.info(params, now=50, history=10)
    assert seen['exists'] is True and seen['generation'] == 12 and seen['file_generation'] == 12
    assert len(seen['state']['history']) == 10 and len(host.state()['history']) == 12
    assert seen['drift'] is False and seen['drift_reason'] is None
    assert seen['live'] == {'percent': 11.0, 'stable_backends': ['app1:5062', 'app2:5062'],
                            'candidate_backends': ['app1:5070', 'app2:5070'], 'stable_version': '1.0.0',
                            'candidate_version': '2.0.0'}
    assert seen['lease']['holder'] == 'bob@ctl' and seen['lease']['expired'] is False
    assert ts.info(params, now=100)['lease']['expired'] is True


@pytest.mark.parametrize('service', ['../x', 'Svc', 'svc\n', ''])
def test_info_and_execute_refuse_a_bad_service(host, service):
    with pytest.raises(SplitError):
        ts.info(dict(service=service, config_dir=host.config_dir, state_dir=host.state_dir), now=0)
    with pytest.raises(SplitError):
        host.call(service=service)


def test_a_failed_state_write_says_the_file_moved(host, monkeypatch):
    at_canary(host)

    def refuse(*_args):
        raise OSError(28, 'No space left on device')

    monkeypatch.setattr(ts, 'write_state_file', refuse)
    with pytest.raises(ts.NginxError) as err:
        host.call(percent=25, phase='extended')
    assert err.value.changed is True and 'No space left on device' in str(err.value)
    assert 'in place at generation 3 but the state could not be written' in str(err.value)
    assert err.value.details == {'generation': 2, 'previous_generation': 2}
    monkeypatch.undo()
    seen = ts.info(dict(service='svc', config_dir=host.config_dir, state_dir=host.state_dir), 0)
    assert seen['drift'] is True and seen['file_generation'] == 3 and seen['generation'] == 2
