"""traffic_split operation=join: a balancer added to a running fleet takes the fleet's split whole."""
import copy

import pytest

from ansible_collections.supersmartmatch.platform.plugins.module_utils import traffic_split as ts
from ansible_collections.supersmartmatch.platform.plugins.module_utils import traffic_split_render as rd
from ansible_collections.supersmartmatch.platform.plugins.module_utils import traffic_split_state as st
from ansible_collections.supersmartmatch.platform.plugins.module_utils.nginx import read_text
from ansible_collections.supersmartmatch.platform.plugins.module_utils.traffic_split_validate import SplitError

from splitcases import Host


@pytest.fixture
def fleet(tmp_path):
    """lb1 after a completed canary at 5 % with its own options; lb2 new (no state)."""
    lb1, lb2 = Host(tmp_path / 'lb1'), Host(tmp_path / 'lb2')
    lb1.call(percent=0, phase='bootstrap')
    lb1.call(percent=5, phase='canary', server_options='max_fails=2 fail_timeout=5s', keepalive=8,
             sticky_key='$http_x_user')
    lb1.call(operation='complete', phase='canary', candidate_version='2.0.0')
    return lb1, lb2


def join(host, split, **extra):
    return host.call(operation='join', fleet_split=split, **extra)


@pytest.mark.parametrize('phase, status, percent', [
    ('canary', 'completed', 5), ('extended', 'completed', 25), ('promoted', 'completed', 0),
    ('rollback', 'rolled_back', 0), ('bootstrap', 'steady', 0)])
def test_a_new_balancer_takes_the_fleet_split_whole(fleet, phase, status, percent):
    lb1, lb2 = fleet
    peer = dict(lb1.state(), phase=phase, status=status, percent=percent)
    result = join(lb2, peer)
    assert result['changed'] is True and (result['previous_generation'], result['generation']) == (0, 1)
    state = lb2.state()
    # everything that decides where a user goes is the peer's, so the next phase sees a fleet that agrees
    assert st.traffic_fields(state) == st.traffic_fields(peer)
    assert state['history'][-1]['operation'] == 'join' and state['previous'] is None
    assert (state['sticky_key'], state['server_options'], state['keepalive']) == (
        '$http_x_user', 'max_fails=2 fail_timeout=5s', 8)
    assert rd.drift_reason(state, read_text(lb2.config_path)) is None


def test_the_joined_file_routes_as_the_peer_file(fleet):
    lb1, lb2 = fleet
    join(lb2, lb1.state())
    # the same NGINX configuration but for the generation each file records
    assert rd.body(read_text(lb2.config_path)) == rd.body(read_text(lb1.config_path))
    assert lb2.nginx.calls[-1]['reload'] is True


def test_a_joined_balancer_follows_the_next_phases(fleet):
    lb1, lb2 = fleet
    join(lb2, lb1.state())
    for host in (lb1, lb2):
        host.call(percent=25, phase='extended', server_options='max_fails=2 fail_timeout=5s', keepalive=8,
                  sticky_key='$http_x_user')
    assert st.traffic_fields(lb2.state()) == st.traffic_fields(lb1.state())
    assert lb2.call(operation='rollback')['split']['percent'] == 0


def test_check_mode_writes_nothing(fleet):
    lb1, lb2 = fleet
    result = lb2.call(check_mode=True, operation='join', fleet_split=lb1.state())
    assert result['changed'] is True and lb2.files() == (None, None)


def test_a_balancer_with_a_state_is_refused_and_keeps_it(fleet):
    lb1, lb2 = fleet
    lb2.call(percent=0, phase='bootstrap')
    before = lb2.files()
    with pytest.raises(SplitError) as err:
        join(lb2, lb1.state())
    assert "already has a traffic state on this host (generation 1): operation=join is for a balancer that has none" \
        in str(err.value)
    assert lb2.files() == before


def damaged(state, path, value):
    state = copy.deepcopy(state)
    target = state
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return state


@pytest.mark.parametrize('path, value, message', [
    (('phase',), 'canary\n', "fleet_split.phase must be one of bootstrap, canary"),
    (('status',), 'done', "fleet_split.status must be one of steady, in_progress, completed, rolled_back, got 'done'"),
    (('percent',), '5\n', 'percent must be a number from 0 to 100'),
    (('percent',), 101, 'percent must be between 0 and 100, got 101'),
    (('salt',), '2.0.0;', "salt must be empty or 1 to 64 of"),
    (('stable', 'version'), '1.0.0\nserver evil:80;', 'fleet_split.stable.version must be 1 to 64 of'),
    (('candidate', 'color'), 'green ', 'fleet_split.candidate.color must be 1 to 64 of'),
    (('stable', 'backends'), ['app1:5062', 'app1:5062'], 'fleet_split.stable.backends lists backend app1:5062 twice'),
    (('candidate', 'backends'), ['app1:5062'], 'stable and candidate must not share backends: app1:5062'),
    (('candidate', 'backends'), [], 'fleet_split.candidate.backends must be a non-empty list'),
    (('sticky_key',), '$cookie_x; return 200', 'fleet_split.sticky_key must be one NGINX variable'),
    (('server_options',), 'max_fails=3 backup', 'server_options'),
    (('stable',), None, 'the state of svc has no stable side'),
])
def test_a_bad_fleet_split_is_refused_by_name_and_writes_nothing(fleet, path, value, message):
    lb1, lb2 = fleet
    with pytest.raises(SplitError) as err:
        join(lb2, damaged(lb1.state(), path, value))
    assert message in str(err.value)
    assert lb2.files() == (None, None)


@pytest.mark.parametrize('extra, message', [
    (dict(percent=5), 'percent cannot be given with operation=join: the split comes whole from fleet_split'),
    (dict(stable=['app1:5062'], candidate=['app1:5070']), 'stable, candidate cannot be given with operation=join'),
    (dict(keepalive=4), 'keepalive cannot be given with operation=join'),
])
def test_the_split_comes_only_from_fleet_split(fleet, extra, message):
    lb1, lb2 = fleet
    with pytest.raises(SplitError) as err:
        join(lb2, lb1.state(), **extra)
    assert message in str(err.value)
    assert lb2.files() == (None, None)


@pytest.mark.parametrize('split', [None, {}, 'canary'])
def test_join_needs_fleet_split(fleet, split):
    _lb1, lb2 = fleet
    with pytest.raises(SplitError) as err:
        join(lb2, split)
    assert 'operation=join needs fleet_split' in str(err.value)


def test_the_plan_is_the_same_for_the_state_or_its_summary(fleet):
    lb1, _lb2 = fleet
    full = ts.plan_join('svc', {'fleet_split': lb1.state()}, None)
    keys = ('percent', 'phase', 'status', 'salt', 'sticky_key', 'sticky_fallback', 'server_options', 'keepalive',
            'stable', 'candidate')
    trimmed = ts.plan_join('svc', {'fleet_split': dict((k, lb1.state()[k]) for k in keys)}, None)
    assert full == trimmed
