"""Growing the fleet under traffic, while the canary of 3.0.0 that test_2_gates.py left at 5 % is
in flight:

- a third app host (playbooks/scale.yml, issue 10) joins every balancer's upstreams with both
  slots, the stable release and the candidate, takes its share of the requests, and leaves again;
- a third load balancer (playbooks/site.yml) joins the canary's split: every user gets the same
  side through it as through the others.

The spare containers, app3 and lb3, are in the scenario's ``spare`` group only; an extra inventory
puts them in ``app`` and ``lb``, as a user edits theirs.
"""

import json
import os
import subprocess

from rolloutlab import (  # the lab shared by every test file
    EPHEMERAL, LB1_ONLY, Traffic, lb_state, playbook, probe, share)

SPARE = 'app3'
# the scenario has two app hosts: a fleet of 2 or 3 is within these bounds (the defaults are 3 and 10)
BOUNDS = ['-e', 'scale_min_hosts=2', '-e', 'scale_max_hosts=3']
LBS = ('lb1', 'lb2')
PORTS = {'blue': 5062, 'green': 5070}  # ssm_slot_ports in molecule.yml


def with_spare(group='app', host=SPARE):
    """The inventory options that add a spare host to ``group`` (JSON is YAML)."""
    path = os.path.join(EPHEMERAL, 'spare-%s-inventory.yml' % group)
    with open(path, 'w') as handle:
        json.dump({'all': {'children': {group: {'hosts': {host: {}}}}}}, handle)
    return ['-i', path]


def spare_backends(state):
    """The spare host's backends on each side of a balancer's split."""
    return dict((side, [b for b in state[side]['backends'] if b.split(':')[0] == SPARE])
                for side in ('stable', 'candidate'))


def api_requests(port):
    """The API requests the spare host's slot on ``port`` has answered, from its own /metrics."""
    proc = subprocess.run(['docker', 'exec', SPARE, 'curl', '-sf', 'http://127.0.0.1:%d/metrics' % port],
                          capture_output=True, text=True, check=True)
    return sum(float(line.rsplit(' ', 1)[1]) for line in proc.stdout.splitlines()
               if line.startswith('ssm_http_requests_total{') and 'path="/api/' in line)


def unit_state(slot):
    return subprocess.run(['docker', 'exec', SPARE, 'systemctl', 'is-active', 'supersmartmatch-%s' % slot],
                          capture_output=True, text=True, check=False).stdout.strip()


def test_a_third_app_host_joins_and_leaves_every_balancer_under_traffic_and_no_user_moves():
    before = dict((lb, lb_state(lb)) for lb in LBS)
    for lb, state in before.items():
        assert (state['phase'], state['percent'], state['candidate']['version']) == ('canary', 5, '3.0.0'), (lb, state)
        assert spare_backends(state) == {'stable': [], 'candidate': []}, (lb, state)
    stable, candidate = before['lb1']['stable'], before['lb1']['candidate']
    users = probe(5000)['user_versions']
    with Traffic() as traffic:
        rc, out = playbook('scale.yml', *(with_spare() + BOUNDS))
        assert rc == 0, out
        for lb in LBS:
            state = lb_state(lb)
            # the stable release and the candidate, each on its own slot, on every balancer
            assert spare_backends(state) == {'stable': ['%s:%d' % (SPARE, PORTS[stable['color']])],
                                             'candidate': ['%s:%d' % (SPARE, PORTS[candidate['color']])]}, (lb, state)
            assert (state['phase'], state['percent'], state['status']) == (
                before[lb]['phase'], before[lb]['percent'], before[lb]['status']), (lb, state)
            assert state['generation'] > before[lb]['generation']
        joined = probe(5000)
        assert joined['user_versions'] == users, 'users changed side when a host joined'
        assert abs(share(joined, '3.0.0') - 5) <= 1, joined['versions']
        # the new host answers its share of the stable release's requests
        assert api_requests(PORTS[stable['color']]) > 0

        rc, out = playbook('scale.yml', *(with_spare() + BOUNDS + ['-e', 'scale_remove=%s' % SPARE]))
        assert rc == 0, out
        for lb in LBS:
            state = lb_state(lb)
            assert spare_backends(state) == {'stable': [], 'candidate': []}, (lb, state)
            assert sorted(state['stable']['backends']) == sorted(before[lb]['stable']['backends'])
            assert (state['phase'], state['percent']) == (before[lb]['phase'], before[lb]['percent'])
        # drained, then stopped
        assert (unit_state(stable['color']), unit_state(candidate['color'])) == ('inactive', 'inactive')
        left = probe(5000)
        assert left['user_versions'] == users, 'users changed side when a host left'
    traffic.assert_no_failures()


LB3 = ['https://127.0.0.1:20443']  # the spare balancer's published port


def test_a_balancer_added_during_the_canary_joins_its_split_and_every_user_keeps_their_side():
    fleet = lb_state('lb1')
    assert (fleet['phase'], fleet['percent'], fleet['candidate']['version']) == ('canary', 5, '3.0.0'), fleet
    users = probe(2000, LB1_ONLY)['user_versions']
    # as a user adds a balancer: in the lb group, site.yml on it alone (every balancer is read)
    rc, out = playbook('site.yml', '--limit', 'lb3', '-e', 'ssm_initial_version=1.0.0', *with_spare('lb', 'lb3'))
    assert rc == 0, out
    joined = lb_state('lb3')
    for key in ('percent', 'phase', 'status', 'salt', 'stable', 'candidate', 'sticky_key'):
        assert joined[key] == fleet[key], (key, joined[key], fleet[key])
    assert joined['history'][-1]['operation'] == 'join'
    through_lb3 = probe(2000, LB3)
    assert through_lb3['user_versions'] == users, 'users changed side by changing balancer'
    assert set(through_lb3['versions']) == {'1.0.0', '3.0.0'}
    # the fleet the phases see is unchanged (lb3 is in no later test's inventory)
    assert lb_state('lb1')['generation'] == fleet['generation']
