"""Table tests of the phase decisions before anything moves (module_utils/rollout_plan.py)."""
import copy

import pytest

from ansible_collections.supersmartmatch.platform.plugins.module_utils import rollout_plan as rp

PHASES = {'canary': {'percent': 5, 'requires': None}, 'extended': {'percent': 25, 'requires': 'canary'},
          'full': {'percent': 100, 'requires': 'extended'}}
SLOTS = {'blue': 5062, 'green': 5070}


def state(percent=0, phase='bootstrap', status='steady', stable=('1.0.0', 'blue'), candidate=(None, 'green')):
    return {'percent': percent, 'phase': phase, 'status': status, 'salt': '',
            'stable': {'version': stable[0], 'color': stable[1], 'backends': ['app1:5062', 'app2:5062']},
            'candidate': {'version': candidate[0], 'color': candidate[1], 'backends': ['app1:5070', 'app2:5070']},
            'updated_by': 'alice@ctl', 'updated_at': '2026-11-29T18:00:00+00:00'}


def info(st, generation=3, drift=False, reason=None, lease=None, exists=True):
    return {'exists': exists, 'state': st, 'generation': generation, 'drift': drift, 'drift_reason': reason,
            'lease': lease}


def views(*infos):
    return [{'host': 'lb%d' % (i + 1), 'status': 'ok', 'info': x} for i, x in enumerate(infos)]


def plan(phase, release, vs, run_id='run-1', force=False):
    return rp.plan_phase('supersmartmatch', phase, release, vs, PHASES, SLOTS, run_id, force_lease=force)


CANARY_IN_FLIGHT = state(5, 'canary', 'in_progress', candidate=('2.0.0', 'green'))
CANARY_DONE = state(5, 'canary', 'completed', candidate=('2.0.0', 'green'))
EXTENDED_DONE = state(25, 'extended', 'completed', candidate=('2.0.0', 'green'))
ROLLED_BACK = state(0, 'rollback', 'rolled_back', candidate=('2.0.0', 'green'))
PROMOTED = state(0, 'promoted', 'completed', stable=('2.0.0', 'green'), candidate=('1.0.0', 'blue'))


@pytest.mark.parametrize('phase, release, st, refusal', [
    ('canary', '2.0.0', state(), None),
    ('canary', '2.0.0', CANARY_IN_FLIGHT, None),                       # run the canary again: hold longer
    ('canary', '3.0.0', CANARY_IN_FLIGHT, 'release 2.0.0 is in phase canary (in_progress): finish it'),
    ('canary', '2.0.0', state(25, 'extended', 'in_progress', candidate=('2.0.0', 'green')),
     'release 2.0.0 is already in phase extended'),
    ('canary', '1.0.0', state(), 'release 1.0.0 already serves all traffic on the blue slot'),
    ('canary', '2.0.0', ROLLED_BACK, None),                            # a new canary after a rollback
    ('canary', '3.0.0', PROMOTED, None),
    ('extended', '2.0.0', CANARY_DONE, None),
    ('extended', '2.0.0', CANARY_IN_FLIGHT, 'extended needs a completed canary of 2.0.0, but the service is in '
     'phase canary (in_progress) of release 2.0.0'),
    ('extended', '2.0.0', state(), 'extended needs a completed canary of 2.0.0'),
    ('extended', '3.0.0', CANARY_DONE, 'extended needs a completed canary of 3.0.0'),
    ('extended', '2.0.0', ROLLED_BACK, 'extended needs a completed canary'),
    ('extended', '2.0.0', state(25, 'extended', 'in_progress', candidate=('2.0.0', 'green')), None),
    ('full', '2.0.0', EXTENDED_DONE, None),
    ('full', '2.0.0', CANARY_DONE, 'full needs a completed extended of 2.0.0'),
    ('full', '2.0.0', PROMOTED, 'release 2.0.0 already serves all traffic on the green slot'),
    ('canary', '2.0.0', state(stable=('1.0.0', 'purple')), "the stable slot 'purple' is not one of blue, green"),
])
def test_prerequisites(phase, release, st, refusal):
    result = plan(phase, release, views(info(st), info(copy.deepcopy(st))))
    if refusal is None:
        assert result['refused'] is None, result['refused']
        assert result['plan']['percent'] == PHASES[phase]['percent']
    else:
        assert result['plan'] is None
        assert refusal in result['refused']


@pytest.mark.parametrize('st, stable, candidate, ports', [
    (state(), 'blue', 'green', (5062, 5070)),
    (PROMOTED, 'green', 'blue', (5070, 5062)),
])
def test_slots(st, stable, candidate, ports):
    p = plan('canary', '3.0.0', views(info(st, generation=7), info(st, generation=9)))['plan']
    assert (p['stable_color'], p['candidate_color']) == (stable, candidate)
    assert (p['stable_port'], p['candidate_port']) == ports
    assert p['generations'] == {'lb1': 7, 'lb2': 9}
    assert p['before']['stable_version'] == st['stable']['version']


LIVE_LEASE = {'run_id': 'canary-2.0.0-x', 'holder': 'bob@ctl', 'phase': 'canary', 'expires_at': '2026-11-29T20:00:00Z',
              'expired': False}


@pytest.mark.parametrize('vs, refusal', [
    ([{'host': 'lb1', 'status': 'ok', 'info': info(state())},
      {'host': 'lb2', 'status': 'unreachable', 'msg': 'ssh: connect timed out'}],
     'lb2 is unreachable (ssh: connect timed out): its split is unknown'),
    ([{'host': 'lb1', 'status': 'lost', 'msg': 'dropped out'}, {'host': 'lb2', 'status': 'ok', 'info': info(state())}],
     'lb1 is lost'),
    (views(info(state()), info(None, exists=False)), 'lb2 has no traffic state for supersmartmatch'),
    (views(info(state()), info(state(), drift=True, reason='the live file is at generation 4, the state at 3')),
     'drift: lb2: the live file is at generation 4'),
    (views(info(state()), info(CANARY_IN_FLIGHT)), 'the load balancers disagree on where traffic goes: lb1: 0 % on'),
    (views(info(state(), lease=LIVE_LEASE), info(state())),
     'the rollout lease of supersmartmatch is held by bob@ctl (run canary-2.0.0-x, phase canary)'),
    ([], 'the inventory has no load balancer'),
])
def test_refusals_before_anything_moves(vs, refusal):
    result = plan('canary', '2.0.0', vs)
    assert result['plan'] is None
    assert refusal in result['refused']


@pytest.mark.parametrize('lease, force, refused', [
    (dict(LIVE_LEASE, expired=True), False, False),
    (dict(LIVE_LEASE, run_id='run-1'), False, False),
    (LIVE_LEASE, True, False),
    (LIVE_LEASE, False, True),
    (None, False, False),
])
def test_lease(lease, force, refused):
    result = plan('canary', '2.0.0', views(info(state(), lease=lease), info(state())), force=force)
    assert (result['refused'] is not None) == refused
    if refused:
        assert 'run playbooks/rollback.yml' in result['refused']


def test_unknown_phase_is_a_bug():
    with pytest.raises(rp.PhaseError):
        plan('bogus', '2.0.0', views(info(state())))


@pytest.mark.parametrize('phase, release, hold, interval, warmup, checks, url, no_data, problem', [
    ('canary', '2.0.0', 30, 5, 15, [{'name': 'p'}], 'http://mon1:9090', 'inconclusive', None),
    ('canary', '2.0.0', 10, 5, 15, [], '', 'inconclusive', None),
    ('bogus', '2.0.0', 30, 5, 15, [], '', 'inconclusive', "unknown phase 'bogus'"),
    ('canary', None, 30, 5, 15, [], '', 'inconclusive', "got 'nothing'"),
    ('canary', '2.0.0\nserver {}', 30, 5, 15, [], '', 'inconclusive', 'give the release'),
    ('canary', '2.0.0;', 30, 5, 15, [], '', 'inconclusive', 'give the release'),
    ('canary', '../2', 30, 5, 15, [], '', 'inconclusive', 'give the release'),
    ('canary', '2.0.0', '30s', 5, 15, [], '', 'inconclusive', 'canary_duration must be a whole number'),
    ('canary', '2.0.0', 30, 0, 15, [], '', 'inconclusive', 'rollout_gate_interval must be'),
    ('canary', '2.0.0', 30, 5, 15, 'x', '', 'inconclusive', 'must be lists of checks'),
    ('canary', '2.0.0', 30, 5, 15, [{'query': 'x'}], '', 'inconclusive', 'must be lists of checks'),
    ('canary', '2.0.0', 30, 5, 15, [{'name': 'p'}], '', 'inconclusive', 'the metric checks (p) need Prometheus'),
    ('canary', '2.0.0', 10, 5, 15, [{'name': 'p'}], 'http://m', 'inconclusive', 'shorter than the metric checks'),
    ('canary', '2.0.0', 30, 5, 15, [], '', 'maybe', 'rollout_gate_on_no_data must be'),
    # the judge's delay must leave it a round: rounds at 15, 20, 25, 30 s after the shift
    ('canary', '2.0.0', 30, 5, 15, [{'name': 'j', 'initial_delay': '15'}], 'http://m', 'inconclusive', None),
    ('canary', '2.0.0', 30, 5, 15, [{'name': 'j', 'initial_delay': 16}], 'http://m', 'inconclusive',
     'check j: initial_delay 16 s leaves it no gate round in the canary hold (30 s, rounds from 15 s after the '
     'shift, the last 15 s after the first): hold at least 31 s'),
    # a compare check's delay counts from its window's opening, the first round less its lookback
    # (the judge's: the shift): 30 s after the shift is the last round
    ('canary', '2.0.0', 30, 5, 15, [{'name': 'j', 'initial_delay': 30, 'lookback': '15'}], 'http://m',
     'inconclusive', None),
    ('canary', '2.0.0', 30, 5, 15, [{'name': 'j', 'initial_delay': 31, 'lookback': 15}], 'http://m', 'inconclusive',
     'check j: initial_delay 31 s leaves it no gate round in the canary hold (30 s, rounds from 15 s after the '
     'shift, the last 15 s after the first): hold at least 31 s'),
    ('canary', '2.0.0', 30, 5, 15, [{'name': 'j', 'initial_delay': 'soon'}], 'http://m', 'inconclusive',
     "check j: initial_delay must be a number of seconds >= 0, got 'soon'"),
    ('canary', '2.0.0', 30, 5, 15, [{'name': 'j', 'initial_delay': -1}], 'http://m', 'inconclusive',
     'initial_delay must be a number of seconds >= 0, got -1'),
])
def test_check_request(phase, release, hold, interval, warmup, checks, url, no_data, problem):
    found = rp.check_request(phase, release, PHASES, hold, interval, warmup, checks, url, no_data, 2, 0)
    if problem is None:
        assert found is None
    else:
        assert problem in found


@pytest.mark.parametrize('hold, interval, warmup, metric, count, start, warm', [
    (30, 5, 15, True, 4, 115.0, 15),     # rounds at +15, +20, +25, +30
    (30, 5, 15, False, 7, 100.0, 0),     # health only: no warm-up
    (7200, 30, 30, True, 240, 130.0, 30),
    (10, 5, 15, True, 1, 110.0, 10),     # warm-up capped by the hold
])
def test_gate_settings(hold, interval, warmup, metric, count, start, warm):
    p = {'release': '2.0.0'}
    checks = [{'name': 'precision', 'query': 'q', 'min': 0.94}] if metric else []
    gate = rp.gate_settings(p, hold, interval, warmup, checks, 'http://mon1:9090', ['app1', 'app2'],
                            ['app1:5070', 'app2:5070'], 100.0)
    assert (gate['count'], gate['start_at'], gate['warmup']) == (count, start, warm)
    assert gate['end_at'] == 100.0 + hold
    names = [c['name'] for c in gate['checks']]
    assert names[:4] == ['health of app1', 'version on app1', 'health of app2', 'version on app2']
    assert gate['checks'][1]['query'] == "version == '2.0.0'" and gate['checks'][1]['on_no_data'] == 'fail'
    if metric:
        assert gate['checks'][4] == {'provider': 'prometheus', 'url': 'http://mon1:9090', 'name': 'precision',
                                     'query': 'q', 'min': 0.94}


@pytest.mark.parametrize('results, active, ok, restore, unknown', [
    ({'lb1': {'changed': True, 'generation': 4}, 'lb2': {'changed': True, 'generation': 6}}, ['lb1', 'lb2'],
     True, [], []),
    ({'lb1': {'changed': True, 'generation': 4}, 'lb2': {'unreachable': True, 'msg': 'timeout'}}, ['lb1', 'lb2'],
     False, ['lb1'], ['lb2']),
    ({'lb1': {'changed': True, 'generation': 4}, 'lb2': {'failed': True, 'msg': 'nginx -t rejected'}},
     ['lb1', 'lb2'], False, ['lb1'], []),
    ({'lb1': {'changed': True, 'generation': 4}}, ['lb1'], False, ['lb1'], ['lb2']),
    ({'lb1': {'failed': True, 'msg': 'compare-and-set refused'}, 'lb2': {'failed': True, 'msg': 'x'}},
     ['lb1', 'lb2'], False, [], []),
])
def test_shift_outcome(results, active, ok, restore, unknown):
    out = rp.shift_outcome(['lb1', 'lb2'], results, active)
    assert out['ok'] is ok
    assert out['restore'] == restore
    assert out['unknown'] == unknown
    if unknown:
        assert any('its split is unknown' in f['msg'] and f['host'] == unknown[0] for f in out['failures'])
    if ok:
        assert out['generations'] == {'lb1': 4, 'lb2': 6}


@pytest.mark.parametrize('result, active, status', [
    ({'exists': True, 'generation': 1}, True, 'ok'),
    ({'unreachable': True, 'msg': 'Failed to connect'}, True, 'unreachable'),
    ({'failed': True, 'msg': 'boom'}, True, 'failed'),
    (None, True, 'failed'),
    ({'exists': True}, False, 'lost'),
])
def test_view_of(result, active, status):
    assert rp.view_of('lb1', result, active)['status'] == status


@pytest.mark.parametrize('result, unknown', [
    ({'unreachable': True}, True),
    ({'failed': True, 'msg': 'MODULE FAILURE\nSee stdout/stderr for the exact error', 'module_stderr': 'paused'}, True),
    ({'failed': True, 'msg': 'compare-and-set refused: ...'}, False),
    ({'changed': True}, False),
    (None, False),
])
def test_no_answer(result, unknown):
    assert rp.no_answer(result) is unknown


def test_balancers_at_zero_agree_whatever_candidate_each_one_kept():
    one = state(0, 'rollback', 'rolled_back', candidate=('3.0.0', 'green'))
    other = state(0, 'rollback', 'rolled_back', candidate=('4.0.0', 'green'))
    assert plan('canary', '5.0.0', views(info(one), info(other)))['refused'] is None
    moved = state(5, 'canary', 'in_progress', candidate=('3.0.0', 'green'))
    assert 'disagree' in plan('canary', '5.0.0', views(info(moved), info(other)))['refused']


@pytest.mark.parametrize('checks, expected', [
    ([{'name': 'j', 'initial_delay': 60, 'query': 'q'}, {'name': 'p', 'query': 'r'}],
     [{'name': 'j', 'query': 'q'}, {'name': 'p', 'query': 'r'}]),
    ([], []),
    (None, []),
])
def test_without_delays_keeps_everything_but_initial_delay(checks, expected):
    original = [dict(check) for check in checks or []]
    assert rp.without_delays(checks) == expected
    assert (checks or []) == original  # the caller's checks are left as they were


# --------------------------------------------------------------------------
# fleet_split: where a balancer without a state starts (site.yml, nginx role)
# --------------------------------------------------------------------------

NEW = info(None, generation=0, exists=False)
FROZEN = {'host': 'lb3', 'status': 'unreachable', 'msg': 'ssh: connect timed out'}


def fleet(*vs):
    return rp.fleet_split('supersmartmatch', list(vs))


def lb(i, x):
    return {'host': 'lb%d' % i, 'status': 'ok', 'info': x}


@pytest.mark.parametrize('vs, fresh, members, joining, joins, refusal', [
    # a new fleet: every balancer answered, none has a state
    ([lb(1, NEW), lb(2, NEW)], True, [], ['lb1', 'lb2'], False, None),
    # a running fleet re-run: nothing joins
    ([lb(1, info(CANARY_DONE)), lb(2, info(CANARY_DONE))], False, ['lb1', 'lb2'], [], False, None),
    # a balancer added to a running fleet joins the split the others agree on
    ([lb(1, info(CANARY_DONE)), lb(2, info(CANARY_DONE)), lb(3, NEW)], False, ['lb1', 'lb2'], ['lb3'], True, None),
    ([lb(1, NEW), lb(2, info(ROLLED_BACK))], False, ['lb2'], ['lb1'], True, None),
    # refusals: the joining balancer cannot know where traffic goes
    ([lb(1, info(CANARY_DONE)), lb(2, info(EXTENDED_DONE)), lb(3, NEW)], False, ['lb1', 'lb2'], ['lb3'], False,
     'lb3 cannot join: the load balancers disagree on where traffic goes: lb1: 5 % on 2.0.0 (green)'),
    ([lb(1, info(CANARY_DONE, drift=True, reason='the split file is at generation 4')), lb(2, NEW)], False, ['lb1'],
     ['lb2'], False, 'lb2 cannot join: drift on lb1 (the split file is at generation 4). Run playbooks/rollback.yml'),
    ([lb(1, info(CANARY_IN_FLIGHT, lease=LIVE_LEASE)), lb(2, NEW)], False, ['lb1'], ['lb2'], False,
     'lb2 cannot join while a rollout runs: bob@ctl holds the rollout lease of supersmartmatch (run canary-2.0.0-x, '
     'phase canary)'),
    ([lb(1, info(CANARY_DONE, lease=dict(LIVE_LEASE, expired=True))), lb(2, NEW)], False, ['lb1'], ['lb2'], True,
     None),
    ([lb(1, info(CANARY_DONE)), lb(2, NEW), FROZEN], False, ['lb1'], ['lb2'], False,
     'cannot tell where the fleet sends traffic for supersmartmatch: lb3 is unreachable (ssh: connect timed out)'),
    # nobody can tell whether the fleet is new
    ([lb(1, NEW), FROZEN], None, [], ['lb1'], False, 'lb3 is unreachable'),
])
def test_fleet_split(vs, fresh, members, joining, joins, refusal):
    result = fleet(*vs)
    assert (result['fresh'], result['members'], result['joining']) == (fresh, members, joining)
    assert (result['split'] is not None) == joins
    if refusal:
        assert refusal in result['refused']
    else:
        assert result['refused'] is None


def test_a_joining_balancer_takes_what_decides_where_users_go_and_nothing_else():
    member = dict(CANARY_DONE, salt='2.0.0', sticky_key='$cookie_ssm_uid', server_options='max_fails=3', keepalive=16,
                  history=[{'generation': 1}], previous={'percent': 0}, updated_by='alice@ctl')
    split = fleet(lb(1, info(member)), lb(2, NEW))['split']
    assert split == {'percent': 5, 'phase': 'canary', 'status': 'completed', 'salt': '2.0.0',
                     'sticky_key': '$cookie_ssm_uid', 'sticky_fallback': None, 'server_options': 'max_fails=3',
                     'keepalive': 16, 'stable': member['stable'], 'candidate': member['candidate']}
    # what the next phase compares: the joined balancer agrees with the member
    assert rp.traffic_key(split) == rp.traffic_key(member)
