"""The traffic_split state: history, generations and compare-and-set."""
import json

import pytest

from ansible_collections.supersmartmatch.platform.plugins.module_utils import traffic_split as ts
from ansible_collections.supersmartmatch.platform.plugins.module_utils import traffic_split_state as st
from ansible_collections.supersmartmatch.platform.plugins.module_utils.traffic_split_validate import SplitError

from splitcases import base_params


def chain(*steps):
    """Apply plan_split + new_state for each (params, by, run_id, time); return the last state."""
    state = None
    for params, by, run_id, now in steps:
        state = st.new_state(state, ts.plan_split(params, state), by, run_id, now=now)
    return state


def test_state_history_is_bounded_and_ordered():
    state = None
    for index in range(7):
        split = ts.plan_split(base_params(percent=index), state)
        state = st.new_state(state, split, 'user%d' % index, 'run%d' % index, history_limit=5,
                             now='2026-01-0%dT00:00:00+00:00' % (index + 1))
    assert [h['percent'] for h in state['history']] == [2, 3, 4, 5, 6]
    assert [h['generation'] for h in state['history']] == [3, 4, 5, 6, 7]
    assert state['generation'] == 7
    assert state['updated_by'] == 'user6' and state['run_id'] == 'run6'
    assert json.loads(st.dump_state(state)) == state


@pytest.mark.parametrize('state, generation', [
    (None, 0), ({}, 0), ({'percent': 5}, 0), ({'generation': 0}, 0), ({'generation': 8}, 8),
])
def test_generation_of(state, generation):
    assert st.generation_of(state) == generation


@pytest.mark.parametrize('value', [-1, '8', True, 1.5, None])
def test_generation_of_refuses_a_bad_state(value):
    with pytest.raises(SplitError) as err:
        st.generation_of({'service': 'svc', 'generation': value})
    assert 'invalid generation' in str(err.value)


def test_new_state_increments_from_a_legacy_state():
    legacy = chain((base_params(), 'me', 'r1', None))
    del legacy['generation']
    for entry in legacy['history']:
        del entry['generation']
    state = st.new_state(legacy, ts.plan_split(base_params(percent=25), legacy), 'me', 'r2')
    assert state['generation'] == 1 and state['history'][-1]['generation'] == 1


def test_new_state_keeps_options():
    state = chain((base_params(server_options='fail_timeout=5s weight=2', keepalive=8), 'me', 'r1', None))
    assert state['server_options'] == 'weight=2 fail_timeout=5s'
    assert state['keepalive'] == 8
    assert state['previous'] is None


def test_traffic_fields_ignore_time_author_and_generation():
    split = ts.plan_split(base_params(), None)
    one = st.new_state(None, split, 'a', 'r1', now='2026-01-01T00:00:00+00:00')
    two = st.new_state(one, split, 'b', 'r2', now='2026-01-02T00:00:00+00:00')
    assert st.traffic_fields(one) == st.traffic_fields(two) == st.traffic_fields(split)
    assert (one['generation'], two['generation']) == (1, 2)
    moved = ts.plan_split(base_params(percent=25), one)
    assert st.traffic_fields(moved) != st.traffic_fields(one)
    reoptioned = ts.plan_split(base_params(server_options='max_fails=1'), one)
    assert st.traffic_fields(reoptioned) != st.traffic_fields(one)


def test_traffic_fields_of_a_legacy_state_default_the_options():
    state = chain((base_params(), 'me', 'r1', None))
    legacy = dict(state)
    del legacy['server_options'], legacy['keepalive']
    assert st.traffic_fields(legacy) == st.traffic_fields(state)


def test_read_json(tmp_path):
    assert st.read_json(str(tmp_path / 'missing.json')) is None
    bad = tmp_path / 'bad.json'
    bad.write_text('{not json')
    with pytest.raises(SplitError) as err:
        st.read_json(str(bad))
    assert 'is not valid JSON' in str(err.value)


def rolled_back_state():
    return chain(
        (base_params(percent=0, phase='bootstrap'), 'ops@ctl', 'boot', '2026-11-29T17:00:00+00:00'),
        (base_params(percent=5), 'bob@ctl', 'canary-1', '2026-11-29T17:30:00+00:00'),
        (dict(service='svc', operation='rollback'), 'alice@ctl', 'rb-1', '2026-11-29T18:00:01+00:00'),
    )


@pytest.mark.parametrize('expected', [None, 3])
def test_compare_and_set_passes(expected):
    st.check_expected_generation(rolled_back_state(), expected)


def test_compare_and_set_passes_without_state_at_zero():
    st.check_expected_generation(None, 0)


@pytest.mark.parametrize('expected', [2, 0, 4, 99])
def test_compare_and_set_refuses_and_names_the_move(expected):
    with pytest.raises(SplitError) as err:
        st.check_expected_generation(rolled_back_state(), expected)
    assert str(err.value) == (
        'compare-and-set refused: expected generation %d but the state is at generation 3, moved by alice@ctl at '
        '2026-11-29T18:00:01+00:00 (rollback, phase rollback, 0 %% on the candidate); nothing was changed' % expected)
    assert err.value.details == {
        'conflict': True, 'generation': 3,
        'moved': {'generation': 3, 'by': 'alice@ctl', 'at': '2026-11-29T18:00:01+00:00', 'operation': 'rollback',
                  'phase': 'rollback', 'status': 'rolled_back', 'run_id': 'rb-1'}}


def test_compare_and_set_without_state():
    with pytest.raises(SplitError) as err:
        st.check_expected_generation(None, 4)
    assert 'expected generation 4 but there is no state on this host (generation 0)' in str(err.value)
    assert err.value.details['conflict'] is True and err.value.details['generation'] == 0


def test_last_move_of_a_legacy_state():
    state = rolled_back_state()
    del state['generation']
    for entry in state['history']:
        del entry['generation']
    assert st.last_move(state)['generation'] == 0
    assert st.last_move(None) is None


@pytest.mark.parametrize('keep, count', [(10, 3), (2, 2), (0, 0)])
def test_trimmed(keep, count):
    state = rolled_back_state()
    assert len(st.trimmed(state, keep)['history']) == count
    assert len(state['history']) == 3
    assert st.trimmed(None) is None


@pytest.mark.parametrize('operation', ['rollback', 'promote', 'complete'])
@pytest.mark.parametrize('damage, missing', [
    (lambda state: state.pop('stable'), 'stable'),
    (lambda state: state.pop('candidate'), 'candidate'),
    (lambda state: state.update(stable='app1:5062'), 'stable'),
])
def test_a_state_without_its_sides_is_refused_by_name(operation, damage, missing):
    state = chain((base_params(), 'alice', 'run-1', '2026-01-01T00:00:00+00:00'))
    damage(state)
    extra = {'percent': None, 'phase': 'full'} if operation != 'rollback' else {'percent': None}
    with pytest.raises(SplitError) as raised:
        ts.plan_split(base_params(operation=operation, **extra), state)
    message = str(raised.value)
    assert 'has no %s side' % missing in message and 'nothing was changed' in message


def test_a_restore_from_a_damaged_previous_state_is_refused_by_name():
    first = chain((base_params(), 'alice', 'run-1', '2026-01-01T00:00:00+00:00'))
    second = st.new_state(first, ts.plan_split(base_params(percent=25, phase='extended'), first), 'alice', 'run-2',
                          now='2026-01-01T01:00:00+00:00')
    del second['previous']['stable']
    with pytest.raises(SplitError) as raised:
        ts.plan_split(base_params(operation='restore', run_id='run-2', percent=None), second)
    assert 'has no stable side' in str(raised.value) and 'cannot restore' in str(raised.value)
