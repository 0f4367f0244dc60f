import pytest

from ansible_collections.supersmartmatch.platform.plugins.module_utils import scale as sc
from ansible_collections.supersmartmatch.platform.plugins.module_utils.scale import ScaleError

INVENTORY = [('app1', 'app1'), ('app2', 'app2'), ('app3', 'app3')]


def info(hosts=('app1', 'app2'), percent=0.0, phase='bootstrap', generation=4, candidate_version=None,
         stable=('blue', 5062, '1.0.0'), candidate=('green', 5070), **extra):
    state = {'percent': percent, 'phase': phase,
             'stable': {'backends': ['%s:%d' % (h, stable[1]) for h in hosts], 'color': stable[0],
                        'version': stable[2]},
             'candidate': {'backends': ['%s:%d' % (h, candidate[1]) for h in hosts], 'color': candidate[0],
                           'version': candidate_version}}
    result = {'exists': True, 'state': state, 'generation': generation, 'drift': False, 'lease': None}
    result.update(extra)
    return result


def both(**kwargs):
    return {'lb1': info(**kwargs), 'lb2': info(**kwargs)}


@pytest.mark.parametrize('before, after, low, high, problem', [
    (2, 3, 3, 10, None),
    (3, 4, 3, 10, None),
    (3, 2, 3, 10, 'below the minimum of 3'),
    (10, 11, 3, 10, 'above the maximum of 10'),
    (1, 2, 3, 10, None),            # below the minimum and growing toward it
    (12, 11, 3, 10, None),          # above the maximum and shrinking toward it
    (2, 2, 3, 10, None),            # no change
    (2, 1, 3, 10, 'below the minimum of 3'),
    (9, 12, 3, 10, 'above the maximum of 10'),
])
def test_bounds(before, after, low, high, problem):
    found = sc.bounds_problem(before, after, low, high)
    assert (found is None) == (problem is None)
    if problem:
        assert problem in found


@pytest.mark.parametrize('low, high, message', [
    (0, 10, 'min_hosts must be at least 1'),
    (4, 3, 'min_hosts (4) is above max_hosts (3)'),
    ('three', 10, "min_hosts must be a whole number, got 'three'"),
    (True, 10, 'min_hosts must be a whole number'),
    (3, 2.5, 'max_hosts must be a whole number'),
])
def test_bad_bounds(low, high, message):
    with pytest.raises(ScaleError) as err:
        sc.bounds(low, high)
    assert message in str(err.value)


def test_a_new_inventory_host_joins_both_sides():
    result = sc.plan(INVENTORY, both(), min_hosts=2)
    assert result['add'] == ['app3'] and result['remove'] == [] and result['changed']
    assert result['stable_backends'] == ['app1:5062', 'app2:5062', 'app3:5062']
    assert result['candidate_backends'] == ['app1:5070', 'app2:5070', 'app3:5070']
    assert result['deploy'] == [{'color': 'blue', 'version': '1.0.0', 'port': 5062}]
    assert result['generations'] == {'lb1': 4, 'lb2': 4}
    assert result['msg'] == 'add app3: 2 -> 3 app host(s)'


def test_removing_a_host_drains_it_from_both_sides():
    result = sc.plan(INVENTORY, both(hosts=('app1', 'app2', 'app3')), remove='app3', min_hosts=2)
    assert result['remove'] == ['app3'] and result['stop'] == ['app3'] and result['add'] == []
    assert result['stable_backends'] == ['app1:5062', 'app2:5062']
    assert result['deploy'] == []
    assert result['msg'] == 'drain and remove app3: 3 -> 2 app host(s)'


def test_nothing_to_do_is_not_a_change():
    result = sc.plan(INVENTORY[:2], both(), min_hosts=2)
    assert not result['changed']
    assert result['msg'].endswith('nothing to do')


def test_a_host_already_out_is_stopped_but_not_drained():
    result = sc.plan(INVENTORY, both(), remove=['app3'], min_hosts=2)
    assert result['remove'] == [] and result['stop'] == ['app3'] and not result['changed']


@pytest.mark.parametrize('phase, candidate_version, slots', [
    ('bootstrap', None, ['blue 1.0.0']),
    ('canary', '2.0.0', ['blue 1.0.0', 'green 2.0.0']),
    ('extended', '2.0.0', ['blue 1.0.0', 'green 2.0.0']),
    ('full', '2.0.0', ['blue 1.0.0', 'green 2.0.0']),
    ('promoted', '2.0.0', ['blue 1.0.0', 'green 2.0.0']),
    ('rollback', '2.0.0', ['blue 1.0.0']),   # the rolled-back release is not spread further
    ('manual', '2.0.0', ['blue 1.0.0']),
])
def test_slots_a_new_host_runs(phase, candidate_version, slots):
    result = sc.plan(INVENTORY, both(phase=phase, candidate_version=candidate_version), min_hosts=2)
    assert ['%(color)s %(version)s' % s for s in result['deploy']] == slots


def test_after_a_promotion_the_ports_follow_the_colours():
    result = sc.plan(INVENTORY, both(phase='promoted', candidate_version='1.0.0', stable=('green', 5070, '2.0.0'),
                                     candidate=('blue', 5062)), min_hosts=2)
    assert result['stable_backends'][-1] == 'app3:5070' and result['candidate_backends'][-1] == 'app3:5062'


@pytest.mark.parametrize('states, message', [
    ({}, 'no balancer was read'),
    ({'lb1': info(), 'lb2': {'failed': True, 'msg': 'timed out'}}, 'lb2 could not be read (timed out)'),
    ({'lb1': info(), 'lb2': {'unreachable': True}}, 'lb2 could not be read (no answer)'),
    ({'lb1': info(), 'lb2': {'exists': False}}, 'lb2 has no traffic state'),
    ({'lb1': info(drift=True, drift_reason='the file is gone'), 'lb2': info()}, 'lb1 drifts: the file is gone'),
    ({'lb1': info(lease={'holder': 'ci', 'phase': 'canary', 'expired': False}), 'lb2': info()},
     'lb1: a rollout holds the lease (ci, phase canary)'),
    ({'lb1': info(lease_taken={'failed': True, 'msg': 'held by ci@ctl (canary-2.0.0-1, phase canary)'}),
      'lb2': info()}, 'lb1: the rollout lease could not be taken (held by ci@ctl'),
    ({'lb1': info(percent=5.0, phase='canary', candidate_version='2.0.0'), 'lb2': info()},
     'the balancers disagree'),
    ({'lb1': info(hosts=('app1',)), 'lb2': info()}, 'the balancers disagree'),
])
def test_refuses_balancers_it_cannot_trust(states, message):
    with pytest.raises(ScaleError) as err:
        sc.plan(INVENTORY, states, min_hosts=2)
    assert message in str(err.value)
    assert 'othing was changed' in str(err.value) or message == 'no balancer was read'


def test_the_lease_of_this_scale_run_does_not_block():
    lease = {'holder': 'me', 'phase': 'scale', 'expired': False, 'run_id': 'scale-1'}
    states = {'lb1': info(lease=lease), 'lb2': info(lease=lease)}
    assert sc.plan(INVENTORY, states, min_hosts=2, run_id='scale-1')['add'] == ['app3']
    with pytest.raises(ScaleError):
        sc.plan(INVENTORY, states, min_hosts=2, run_id='scale-2')


def test_an_expired_lease_does_not_block():
    states = {'lb1': info(lease={'holder': 'ci', 'phase': 'canary', 'expired': True}), 'lb2': info()}
    assert sc.plan(INVENTORY, states, min_hosts=2)['add'] == ['app3']


@pytest.mark.parametrize('inventory, kwargs, message', [
    (INVENTORY, dict(remove=['app9']), 'scale_remove names app9, not in the app group'),
    (INVENTORY, dict(remove=['app1;reboot']), "scale_remove: 'app1;reboot' is not an inventory host name"),
    (INVENTORY, dict(remove=['app1\n']), 'is not an inventory host name'),
    (INVENTORY[:1], dict(), 'the upstreams hold app2, which no app host of the inventory names'),
    (INVENTORY[:2], dict(remove=['app1', 'app2']), 'no app host would be left behind the balancers'),
    (INVENTORY, dict(remove=['app2', 'app3'], min_hosts=2), 'below the minimum of 2 (scale_min_hosts)'),
    (INVENTORY, dict(max_hosts=2), 'above the maximum of 2 (scale_max_hosts)'),
])
def test_refused_requests(inventory, kwargs, message):
    kwargs.setdefault('min_hosts', 2)
    with pytest.raises(ScaleError) as err:
        sc.plan(inventory, both(), **kwargs)
    assert message in str(err.value)


def test_only_add_limits_the_new_hosts():
    inventory = INVENTORY + [('app4', 'app4')]
    result = sc.plan(inventory, both(), only_add=['app4'], min_hosts=2)
    assert result['add'] == ['app4'] and result['members'] == ['app1', 'app2', 'app4']


def test_backend_address_differs_from_the_host_name():
    inventory = [('app1', '10.0.0.1'), ('app2', '10.0.0.2'), ('app3', '10.0.0.3')]
    states = both(hosts=('10.0.0.1', '10.0.0.2'))
    result = sc.plan(inventory, states, min_hosts=2)
    assert result['add'] == ['app3'] and result['stable_backends'][-1] == '10.0.0.3:5062'


@pytest.mark.parametrize('current, cpu, memory, desired, reason', [
    (3, 0.35, 0.40, 3, 'keep the fleet as it is'),       # half the target: 1.5 -> the minimum 3
    (4, 0.35, 0.40, 3, 'remove 1 app host(s)'),          # 4 x 0.5 = 2 -> 3 (minimum)
    (3, 0.91, 0.50, 4, 'add 1 app host(s)'),             # 3 x 1.3 = 3.9 -> 4 (led by cpu)
    (3, 0.50, 0.96, 4, 'add 1 app host(s)'),             # 3 x 1.2 = 3.6 -> 4 (led by memory)
    (3, 0.74, 0.50, 3, 'keep the fleet as it is'),       # 1.057: within the 10 % tolerance
    (9, 1.40, 0.50, 10, 'add 1 app host(s)'),            # 18 -> the maximum 10
    (6, 0.35, None, 3, 'remove 3 app host(s)'),          # memory unknown: cpu alone
    (5, None, None, 5, 'no CPU or memory reading'),      # fail closed: no change
])
def test_advice(current, cpu, memory, desired, reason):
    advice = sc.advise(current, cpu, memory)
    assert advice['desired'] == desired and advice['delta'] == desired - current
    assert reason in advice['reason']


@pytest.mark.parametrize('args, message', [
    ((0, 0.5, 0.5), 'at least one app host'),
    ((3, 'high', 0.5), "cpu must be a number, got 'high'"),
    ((3, -0.1, 0.5), 'cpu must be a number of 0 or more'),
    ((3, float('nan'), 0.5), 'cpu must be a number of 0 or more'),
])
def test_advice_refuses(args, message):
    with pytest.raises(ScaleError) as err:
        sc.advise(*args)
    assert message in str(err.value)


@pytest.mark.parametrize('current, delta, add, remove', [
    (['app1', 'app2'], 1, ['app3'], []),
    (['app1', 'app2'], 3, ['app3'], []),           # only hosts present in the inventory
    (['app1', 'app2', 'app3'], -1, [], ['app3']),
    (['app1', 'app2', 'app3'], -5, [], ['app2', 'app3']),  # never the last one
    (['app1', 'app2'], 0, [], []),
])
def test_auto_pick(current, delta, add, remove):
    assert sc.auto_pick(INVENTORY, current, delta) == {'add': add, 'remove': remove}


@pytest.mark.parametrize('cpu, add, remove, note', [
    (0.95, ['app3'], [], 'add 1 app host(s)'),
    (2.0, ['app3'], [], 'only 1 spare app host(s) in the inventory: add 1 more'),
    (0.70, [], [], 'keep the fleet as it is'),
    (0.20, [], ['app2'], 'remove 1 app host(s)'),
    (None, [], [], 'no CPU or memory reading'),
])
def test_plan_auto(cpu, add, remove, note):
    result = sc.plan_auto(INVENTORY, both(), cpu, None, min_hosts=1, max_hosts=4)
    assert (result['add'], result['remove']) == (add, remove)
    assert note in result['advice']['reason']
