"""Table-driven tests of the traffic_split logic (no NGINX needed)."""
import json

import pytest

from ansible_collections.supersmartmatch.platform.plugins.module_utils import traffic_split as ts


@pytest.mark.parametrize('value, expected', [
    (0, 0.0), (5, 5.0), ('25', 25.0), (100, 100.0), ('12.5', 12.5), (0.01, 0.01), ('99.99', 99.99),
])
def test_parse_percent_accepts(value, expected):
    assert ts.parse_percent(value) == expected


@pytest.mark.parametrize('value, message', [
    (101, 'between 0 and 100, got 101'),
    (-1, 'between 0 and 100, got -1'),
    ('abc', "number from 0 to 100, got 'abc'"),
    (None, 'number from 0 to 100'),
    (True, 'number from 0 to 100'),
    ('nan', 'number from 0 to 100'),
    ('inf', 'number from 0 to 100'),
    (5.555, 'at most two decimals'),
    ([5], 'number from 0 to 100'),
])
def test_parse_percent_rejects(value, message):
    with pytest.raises(ts.SplitError) as err:
        ts.parse_percent(value)
    assert message in str(err.value)


@pytest.mark.parametrize('number, text', [(5.0, '5'), (12.5, '12.5'), (0.25, '0.25'), (100, '100')])
def test_format_percent(number, text):
    assert ts.format_percent(number) == text


@pytest.mark.parametrize('item, expected', [
    ('app1:5062', 'app1:5062'), (' 10.0.0.1:80 ', '10.0.0.1:80'), ('[::1]:5070', '[::1]:5070'),
    ('app-1.example.com:0443', 'app-1.example.com:443'),
])
def test_parse_backend_accepts(item, expected):
    assert ts.parse_backend(item) == expected


@pytest.mark.parametrize('item, message', [
    ('app1', 'must be "host:port"'), (':80', 'must be "host:port"'), ('app1:0', 'invalid port'),
    ('app1:70000', 'invalid port'), ('app 1:80', 'invalid host'), ('app1:http', 'invalid port'),
    ('', 'must be a "host:port" string'), (5062, 'must be a "host:port" string'),
    ('a;b:80', 'invalid host'),
])
def test_parse_backend_rejects(item, message):
    with pytest.raises(ts.SplitError) as err:
        ts.parse_backend(item)
    assert message in str(err.value)


@pytest.mark.parametrize('items, message', [
    ([], 'non-empty list'), (None, 'stable is required'), (['a:1', 'a:1'], 'twice'),
])
def test_parse_backends_rejects(items, message):
    with pytest.raises(ts.SplitError) as err:
        ts.parse_backends(items, 'stable')
    assert message in str(err.value)


@pytest.mark.parametrize('name, ok', [
    ('supersmartmatch', True), ('svc_2', True), ('Svc', False), ('2svc', False), ('svc-x', False),
    ('', False), ('a' * 64, False), (None, False),
])
def test_validate_service(name, ok):
    if ok:
        assert ts.validate_service(name) == name
    else:
        with pytest.raises(ts.SplitError):
            ts.validate_service(name)


def base_params(**extra):
    params = dict(service='svc', operation='set', stable=['app1:5062', 'app2:5062'],
                  candidate=['app1:5070', 'app2:5070'], percent=5, phase='canary',
                  stable_version='1.0.0', candidate_version='2.0.0', stable_color='blue',
                  candidate_color='green', salt='2.0.0', sticky_key=None, sticky_fallback=None)
    params.update(extra)
    return params


def test_plan_set_defaults_sticky_key():
    split = ts.plan_split(base_params(), None)
    assert split['sticky_key'] == '$cookie_ssm_uid'
    assert split['sticky_fallback'] == '$remote_addr'
    assert split['percent'] == 5.0
    assert split['stable'] == {'backends': ['app1:5062', 'app2:5062'], 'version': '1.0.0', 'color': 'blue'}


def test_plan_set_keeps_sticky_key_from_state():
    previous = ts.new_state(None, ts.plan_split(base_params(sticky_key='$http_x_user'), None), 'me', 'r1')
    split = ts.plan_split(base_params(percent=25), previous)
    assert split['sticky_key'] == '$http_x_user'


@pytest.mark.parametrize('extra, message', [
    (dict(candidate=['app1:5062']), 'must not share backends: app1:5062'),
    (dict(percent=101), 'between 0 and 100'),
    (dict(percent='abc'), "got 'abc'"),
    (dict(stable=[]), 'stable must be a non-empty list'),
    (dict(sticky_key='cookie'), 'sticky_key must be one NGINX variable'),
    (dict(sticky_key='$a; return 500'), 'sticky_key must be one NGINX variable'),
    (dict(salt='x y'), 'salt may hold'),
    (dict(phase='bogus'), 'phase must be one of'),
    (dict(operation='flip'), 'operation must be'),
])
def test_plan_set_rejects(extra, message):
    with pytest.raises(ts.SplitError) as err:
        ts.plan_split(base_params(**extra), None)
    assert message in str(err.value)


def state_at(percent, phase):
    return ts.new_state(None, ts.plan_split(base_params(percent=percent, phase=phase), None), 'me', 'r1')


def test_rollback_without_state_is_refused():
    with pytest.raises(ts.SplitError) as err:
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
    state = ts.new_state(state_at(100, 'full'), promoted, 'me', 'r2')
    back = ts.plan_split(dict(service='svc', operation='rollback'), state)
    assert back['stable']['version'] == '1.0.0'
    assert back['stable']['backends'] == ['app1:5062', 'app2:5062']
    assert back['percent'] == 0


def test_promote_is_idempotent():
    promoted = ts.plan_split(dict(service='svc', operation='promote'), state_at(100, 'full'))
    promoted_state = ts.new_state(None, promoted, 'me', 'r')
    again = ts.plan_split(dict(service='svc', operation='promote'), promoted_state)
    assert ts.traffic_fields(again) == ts.traffic_fields(promoted_state)


@pytest.mark.parametrize('percent', [0, 5, 25, 99.5])
def test_promote_refused_before_full(percent):
    with pytest.raises(ts.SplitError) as err:
        ts.plan_split(dict(service='svc', operation='promote'), state_at(percent, 'canary'))
    assert 'cannot be promoted' in str(err.value)


def test_rollback_refuses_percent():
    with pytest.raises(ts.SplitError):
        ts.plan_split(dict(service='svc', operation='rollback', percent=5), state_at(5, 'canary'))


@pytest.mark.parametrize('percent, buckets', [
    (0, ['    *   svc_stable;']),
    (5, ['    5%  svc_candidate;', '    *   svc_stable;']),
    (12.5, ['    12.5%  svc_candidate;', '    *   svc_stable;']),
    (100, ['    *   svc_candidate;']),
])
def test_render_config_candidate_bucket_first(percent, buckets):
    text = ts.render_config(ts.plan_split(base_params(percent=percent), None))
    block = text.split('split_clients "${svc_split_key}2.0.0" $svc_backend {\n')[1].split('}')[0]
    assert block.splitlines() == buckets


def test_render_config_upstreams_and_key():
    text = ts.render_config(ts.plan_split(base_params(), None), {'keepalive': 0, 'server_options': ''})
    assert 'upstream svc_stable {\n    server app1:5062;\n    server app2:5062;\n}' in text
    assert 'upstream svc_candidate {\n    server app1:5070;\n    server app2:5070;\n}' in text
    assert 'map $cookie_ssm_uid $svc_split_key {\n    ""      $remote_addr;\n    default $cookie_ssm_uid;\n}' in text
    assert 'keepalive' not in text


def test_render_is_deterministic():
    split = ts.plan_split(base_params(), None)
    assert ts.render_config(split) == ts.render_config(dict(split))


def test_state_history_is_bounded_and_ordered():
    state = None
    for index in range(7):
        split = ts.plan_split(base_params(percent=index), state)
        state = ts.new_state(state, split, 'user%d' % index, 'run%d' % index, history_limit=5,
                             now='2026-01-0%dT00:00:00+00:00' % (index + 1))
    assert [h['percent'] for h in state['history']] == [2, 3, 4, 5, 6]
    assert state['updated_by'] == 'user6' and state['run_id'] == 'run6'
    assert json.loads(ts.dump_state(state)) == state


def test_traffic_fields_ignore_time_and_author():
    split = ts.plan_split(base_params(), None)
    one = ts.new_state(None, split, 'a', 'r1', now='2026-01-01T00:00:00+00:00')
    two = ts.new_state(one, split, 'b', 'r2', now='2026-01-02T00:00:00+00:00')
    assert ts.traffic_fields(one) == ts.traffic_fields(two) == ts.traffic_fields(split)
    moved = ts.plan_split(base_params(percent=25), one)
    assert ts.traffic_fields(moved) != ts.traffic_fields(one)


def test_read_json(tmp_path):
    assert ts.read_json(str(tmp_path / 'missing.json')) is None
    bad = tmp_path / 'bad.json'
    bad.write_text('{not json')
    with pytest.raises(ts.SplitError) as err:
        ts.read_json(str(bad))
    assert 'is not valid JSON' in str(err.value)


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
    assert ts.render_config(done) == ts.render_config(ts.plan_split(base_params(percent=5, phase='canary'), None))


@pytest.mark.parametrize('phase, version', [('extended', '2.0.0'), ('canary', '3.0.0')])
def test_complete_refuses_another_phase_or_version(phase, version):
    with pytest.raises(ts.SplitError) as err:
        ts.plan_split(dict(service='svc', operation='complete', phase=phase, candidate_version=version),
                      state_at(5, 'canary'))
    assert 'is in phase canary of version 2.0.0' in str(err.value)


def test_rollback_and_promote_status():
    assert ts.plan_split(dict(service='svc', operation='rollback'), state_at(25, 'extended'))['status'] == 'rolled_back'
    assert ts.plan_split(dict(service='svc', operation='promote'), state_at(100, 'full'))['status'] == 'completed'


@pytest.mark.parametrize('percent, present, absent', [
    (0, 'upstream svc_stable', 'upstream svc_candidate'),
    (100, 'upstream svc_candidate', 'upstream svc_stable'),
])
def test_side_without_traffic_is_not_rendered(percent, present, absent):
    text = ts.render_config(ts.plan_split(base_params(percent=percent), None))
    assert present in text and absent not in text


def test_restore_undoes_only_this_runs_change():
    first = ts.new_state(None, ts.plan_split(base_params(percent=5, phase='canary'), None), 'me', 'run-1')
    second = ts.new_state(first, ts.plan_split(base_params(percent=25, phase='extended'), first), 'me', 'run-2')
    undo = ts.plan_split(dict(service='svc', operation='restore', run_id='run-2'), second)
    assert (undo['percent'], undo['phase'], undo['status']) == (5.0, 'canary', 'in_progress')
    assert ts.render_config(undo) == ts.render_config(ts.plan_split(base_params(percent=5), None))
    assert ts.plan_split(dict(service='svc', operation='restore', run_id='run-1'), second) is None
    assert ts.plan_split(dict(service='svc', operation='restore', run_id='run-9'), None) is None
    with pytest.raises(ts.SplitError):
        ts.plan_split(dict(service='svc', operation='restore'), second)


def test_restore_is_not_undone_by_a_second_restore():
    first = ts.new_state(None, ts.plan_split(base_params(percent=5, phase='canary'), None), 'me', 'run-1')
    second = ts.new_state(first, ts.plan_split(base_params(percent=25, phase='extended'), first), 'me', 'run-2')
    undo = ts.plan_split(dict(service='svc', operation='restore', run_id='run-2'), second)
    restored = ts.new_state(second, undo, 'me', 'run-2')
    assert ts.plan_split(dict(service='svc', operation='restore', run_id='run-2'), restored) is None
