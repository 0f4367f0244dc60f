"""The rollout_fleet filter: the registered loop of traffic_split_info reads, as the nginx role passes it."""
from ansible_collections.supersmartmatch.platform.plugins.filter.rollout import rollout_fleet

STATE = {'percent': 5, 'phase': 'canary', 'status': 'completed', 'salt': '2.0.0',
         'stable': {'version': '1.0.0', 'color': 'blue', 'backends': ['app1:5062']},
         'candidate': {'version': '2.0.0', 'color': 'green', 'backends': ['app1:5070']}}


def read(host, state=None, **extra):
    result = {'item': host, 'changed': False, 'exists': state is not None, 'state': state, 'generation': 2,
              'drift': False, 'lease': None, 'ansible_loop_var': 'item'}
    result.update(extra)
    return result


def test_a_new_balancer_joins_what_the_reads_say():
    reads = {'results': [read('lb1', STATE), read('lb2', STATE), read('lb3')], 'changed': False}
    fleet = rollout_fleet(['lb1', 'lb2', 'lb3'], reads, 'supersmartmatch')
    assert (fleet['fresh'], fleet['joining'], fleet['refused']) == (False, ['lb3'], None)
    assert fleet['split']['percent'] == 5 and fleet['split']['stable']['backends'] == ['app1:5062']


def test_a_balancer_missing_from_the_reads_or_unreachable_is_named():
    reads = {'results': [read('lb1', STATE), {'item': 'lb2', 'unreachable': True, 'msg': 'timed out'}]}
    fleet = rollout_fleet(['lb1', 'lb2', 'lb3'], reads, 'supersmartmatch')
    assert fleet['split'] is None and fleet['fresh'] is False
    assert 'lb2 is unreachable (timed out)' in fleet['refused'] and 'lb3 is failed (no answer)' in fleet['refused']


def test_no_reads_at_all_is_a_new_fleet_only_when_there_is_no_balancer():
    assert rollout_fleet([], {'results': []}, 'supersmartmatch')['fresh'] is True
    assert rollout_fleet(['lb1'], {'results': []}, 'supersmartmatch')['fresh'] is None
