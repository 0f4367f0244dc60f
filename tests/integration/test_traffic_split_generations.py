"""traffic_split on a real NGINX: generations, compare-and-set, drift, a process killed between its writes."""
import json
import os
import subprocess
import sys

import pytest

from conftest import COLLECTIONS, ROOT, run_module

USERS = ['u%d' % i for i in range(4000)]

# Runs the module as Ansible does, but kills it (SIGKILL) at one point of its
# work: after the split file is in place and NGINX reloaded, before the state
# is written ('state'), or after the file is in place, before the reload ('reload').
KILLER = r'''
import os, runpy, signal, sys
sys.path.insert(0, sys.argv[1])
from ansible_collections.supersmartmatch.platform.plugins.module_utils import nginx, traffic_split

def die(*args, **kwargs):
    os.kill(os.getpid(), signal.SIGKILL)

if sys.argv[3] == 'state':
    traffic_split.write_state_file = die
else:
    nginx.Nginx.reload = die
sys.argv = [sys.argv[2]]
runpy.run_path(sys.argv[0], run_name='__main__')
'''


def run_killed(args, point):
    path = os.path.join(ROOT, 'plugins', 'modules', 'traffic_split.py')
    payload = json.dumps({'ANSIBLE_MODULE_ARGS': args})
    proc = subprocess.run([sys.executable, '-c', KILLER, COLLECTIONS, path, point], input=payload, text=True,
                          capture_output=True, timeout=60, check=False)
    assert proc.returncode == -9, (proc.returncode, proc.stdout, proc.stderr)


def share(sides):
    return 100.0 * sum(1 for side in sides.values() if side == 'candidate') / len(sides)


def files(lab):
    return dict((p, open(p).read() if os.path.exists(p) else None) for p in (lab.config_path, lab.state_path))


def info(lab):
    result = run_module('traffic_split_info', dict(service='svc', config_dir=lab.config_dir, state_dir=lab.state_dir))
    assert result.get('failed') is not True, result
    return result


def op(lab, operation, **extra):
    return run_module('traffic_split', dict(service='svc', operation=operation, nginx_conf=lab.conf,
                                            config_dir=lab.config_dir, state_dir=lab.state_dir, **extra))


def at_canary(lab):
    assert run_module('traffic_split', lab.args(percent=0, phase='bootstrap', reload=False))['generation'] == 1
    lab.start()
    canary = run_module('traffic_split', lab.args(percent=5, phase='canary', run_id='canary-1', expected_generation=1))
    assert canary['changed'] is True and (canary['previous_generation'], canary['generation']) == (1, 2), canary
    return canary


@pytest.mark.parametrize('point', ['state', 'reload'])
def test_a_kill_between_the_writes_is_detected_and_rollback_repairs_it(nginx_lab, point):
    lab = nginx_lab
    at_canary(lab)
    run_killed(lab.args(percent=25, phase='extended', run_id='extended-1', expected_generation=2), point)

    # the state still says generation 2, 5 %; the file on disk is generation 3, 25 %
    seen = info(lab)
    assert (seen['generation'], seen['file_generation'], seen['drift']) == (2, 3, True), seen
    assert seen['live']['percent'] == 25 and seen['state']['percent'] == 5
    assert 'the split file is at generation 3 with 25 % on the candidate but the state is at generation 2 ' \
           'with 5 % on the candidate' in seen['drift_reason']
    live = share(lab.sides(USERS))
    assert abs(live - (25 if point == 'state' else 5)) <= 2.5, live  # what NGINX runs: reloaded or not

    before = files(lab)
    for args in (lab.args(percent=25, phase='extended', run_id='extended-2'),
                 lab.args(percent=5, phase='canary', run_id='canary-2', expected_generation=2)):
        refused = run_module('traffic_split', args)
        assert refused['failed'] is True and refused['changed'] is False and refused['drift'] is True, refused
        assert 'drift' in refused['msg'] and refused['generation'] == 2
    for operation, extra in (('complete', dict(phase='canary', candidate_version='2.0.0')),
                             ('restore', dict(run_id='canary-1'))):
        refused = op(lab, operation, **extra)
        assert refused['failed'] is True and refused['drift'] is True, refused
    assert files(lab) == before

    repaired = op(lab, 'rollback', run_by='alice@ctl')
    assert repaired['changed'] is True and repaired['reloaded'] is True, repaired
    assert (repaired['previous_generation'], repaired['generation']) == (2, 3)
    assert 'generation 3 with 25 %' in repaired['repaired']
    assert set(lab.sides(USERS[:1000]).values()) == {'stable'}
    seen = info(lab)
    assert (seen['generation'], seen['file_generation'], seen['drift']) == (3, 3, False), seen

    again = run_module('traffic_split', lab.args(percent=5, phase='canary', run_id='canary-3', expected_generation=3))
    assert again['changed'] is True and again['generation'] == 4
    assert abs(share(lab.sides(USERS)) - 5) <= 1.5


def test_a_rollback_killed_before_its_state_write_is_finished_by_the_next(nginx_lab):
    lab = nginx_lab
    at_canary(lab)
    run_killed(dict(service='svc', operation='rollback', nginx_conf=lab.conf, config_dir=lab.config_dir,
                    state_dir=lab.state_dir), 'state')
    assert set(lab.sides(USERS[:500]).values()) == {'stable'}
    assert info(lab)['drift'] is True
    finished = op(lab, 'rollback')
    # the file already says what rollback renders: NGINX is reloaded anyway, the state catches up
    assert finished['changed'] is True and finished['reloaded'] is True and finished['generation'] == 3, finished
    assert info(lab)['drift'] is False
    assert op(lab, 'rollback')['changed'] is False


def test_compare_and_set_keeps_a_rollback_from_being_undone(nginx_lab):
    lab = nginx_lab
    canary = at_canary(lab)
    rollback = op(lab, 'rollback', run_by='alice@ctl', run_id='rollback-1')
    assert rollback['changed'] is True and rollback['generation'] == 3
    before = files(lab)
    stale = run_module('traffic_split', lab.args(percent=25, phase='extended', run_id='extended-1',
                                                 expected_generation=canary['generation']))
    assert stale['failed'] is True and stale['changed'] is False and stale['conflict'] is True, stale
    assert stale['msg'].startswith('compare-and-set refused: expected generation 2 but the state is at generation 3, '
                                   'moved by alice@ctl at ')
    assert '(rollback, phase rollback, 0 % on the candidate); nothing was changed' in stale['msg']
    assert stale['moved']['run_id'] == 'rollback-1' and stale['moved']['operation'] == 'rollback'
    assert files(lab) == before
    assert set(lab.sides(USERS[:500]).values()) == {'stable'}
    # a stale automatic rollback is refused too, when it says which generation it planned from
    stale_rollback = op(lab, 'rollback', expected_generation=2)
    assert stale_rollback['failed'] is True and stale_rollback['conflict'] is True
    assert op(lab, 'rollback', expected_generation=3)['changed'] is False


def test_a_hand_edit_is_drift_and_rollback_puts_the_state_back(nginx_lab):
    lab = nginx_lab
    at_canary(lab)
    text = open(lab.config_path).read()
    with open(lab.config_path, 'w') as handle:
        handle.write(text.replace('5%  svc_candidate', '50%  svc_candidate'))
    subprocess.run(['nginx', '-c', lab.conf, '-s', 'reload'], check=True)
    seen = info(lab)
    assert seen['drift'] is True and seen['file_generation'] == 2 and seen['live']['percent'] == 50
    assert 'edited by hand' in seen['drift_reason']
    refused = run_module('traffic_split', lab.args(percent=25, phase='extended'))
    assert refused['failed'] is True and 'drift' in refused['msg']
    assert op(lab, 'rollback')['changed'] is True
    assert set(lab.sides(USERS[:500]).values()) == {'stable'} and info(lab)['drift'] is False


def test_server_options_are_kept_and_rendered_by_rollback(nginx_lab):
    lab = nginx_lab
    run_module('traffic_split', lab.args(percent=0, phase='bootstrap', reload=False))
    lab.start()
    run_module('traffic_split', lab.args(percent=5, phase='canary', server_options='fail_timeout=5s  weight=2',
                                         keepalive=4))
    assert 'server %s weight=2 fail_timeout=5s;' % lab.stable_addr in open(lab.config_path).read()
    op(lab, 'rollback')
    text = open(lab.config_path).read()
    assert 'server %s weight=2 fail_timeout=5s;' % lab.stable_addr in text and 'keepalive 4;' in text
    injected = run_module('traffic_split', lab.args(percent=5, server_options='max_fails=1; } server { listen 9; }'))
    assert injected['failed'] is True and injected['changed'] is False
    assert 'server_options: max_fails must be a whole number' in injected['msg']
