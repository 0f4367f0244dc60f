"""Faults as on-call meets them: a dead candidate, a rollback during a hold, a balancer that
freezes (docker pause) during a shift or a rollback, a killed controller.
Traffic flows through the balancers that stay reachable, with 0 failures.
"""

import os
import subprocess
import time

from rolloutlab import (  # the lab shared by every test file
    LB1_ONLY, READ_ERRORS, STATE, Traffic, Webhook, at, background, finish, flat, latest_report, lb_state,
    lease_of, playbook, probe, wait_for)


def canary_holding(version):
    """canary.yml of ``version`` with a 300 s hold, in the background: its Popen once every
    balancer has sent it 5 % for 3 s (killed if it never gets there)."""
    proc = background('canary.yml', '-e', 'release_version=%s' % version, '-e', 'canary_duration=300')
    try:
        wait_for(at(version, 5), 300, 'the canary of %s at 5 %%' % version, delay=0.3, ignore=READ_ERRORS, proc=proc)
        time.sleep(3)
    except BaseException:
        os.killpg(proc.pid, 9)
        raise
    return proc


def test_rollback_works_when_the_candidate_is_dead():
    for app in ('app1', 'app2'):
        subprocess.run(['docker', 'exec', app, 'systemctl', 'stop', 'supersmartmatch-green'], check=True)
    rc, out = playbook('rollback.yml')
    assert rc == 0, out
    assert list(probe(1000)['versions']) == ['1.0.0']
    print('rollback.yml took %.1fs after full' % STATE.get('rollback_seconds', -1))


def test_rollback_during_a_hold_aborts_the_hold_at_once_and_frees_the_lease():
    with Traffic() as traffic:
        proc = canary_holding('3.1.0')
        try:
            started = time.time()
            rc, out = playbook('rollback.yml')
            assert rc == 0, out
            assert 'rollback.yml: 100 % back on 1.0.0 (blue slot) on all 2 load balancer(s)' in out
            rc, out = finish(proc, timeout=120)
            STATE['abort_seconds'] = time.time() - started
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, 9)
        assert rc != 0
        assert 'canary of 3.1.0 ABORTED' in out
        assert 'rolled back by' in out and 'during the hold' in out
        assert 'INCONCLUSIVE' not in out and 'Traffic is left as it is' not in out
        report = latest_report()
        assert report['verdict'] == 'aborted' and report['split_after']['percent'] == 0
        assert lease_of('lb1') is None and lease_of('lb2') is None
        assert list(probe(1000)['versions']) == ['1.0.0']
    traffic.assert_no_failures()
    # one gate interval (5 s) plus the rollback itself and the verdict play
    assert STATE['abort_seconds'] < 60, STATE['abort_seconds']


def test_balancer_frozen_during_a_shift_brings_the_other_back():
    with Traffic(LB1_ONLY) as traffic:
        proc = background('canary.yml', '-e', 'release_version=3.2.0')
        try:
            # a new canary starts at once after the aborted one; freeze lb2 once
            # the lease is taken (the deployment to the idle slots comes next)
            wait_for(lambda: (lease_of('lb2') or {}).get('phase') == 'canary', 300, 'the lease on lb2', delay=0.3,
                     ignore=READ_ERRORS, proc=proc)
            subprocess.run(['docker', 'pause', 'lb2'], check=True)
            rc, out = finish(proc)
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, 9)
            subprocess.run(['docker', 'unpause', 'lb2'], check=False)
        assert rc != 0
        assert 'canary of 3.2.0 FAILED' in out
        assert 'lb2' in out and 'its split is unknown' in out
        assert 'PASSED' not in out
        state = lb_state('lb1')
        assert state['percent'] == 0 and state['stable']['version'] == '1.0.0', state
        report = latest_report()
        assert report['verdict'] == 'failed' and 'lb2' in report['unknown_hosts']
    traffic.assert_no_failures()
    rc, out = playbook('rollback.yml')
    assert rc == 0, out


def test_killed_playbook_during_the_hold_is_detected_and_rollback_repairs_it():
    with Traffic() as traffic:
        proc = canary_holding('3.3.0')
        os.killpg(proc.pid, 9)
        proc.communicate(timeout=60)
        rc, out = playbook('canary.yml', '-e', 'release_version=3.3.0')
        assert rc != 0
        assert 'canary of 3.3.0 REFUSED' in out
        assert 'if it died (killed, lost controller), run playbooks/rollback.yml' in out
        assert at('3.3.0', 5)(), 'a refused phase changed the split'
    traffic.assert_no_failures()


def test_rollback_with_a_frozen_balancer_names_it_and_moves_the_other():
    subprocess.run(['docker', 'pause', 'lb2'], check=True)
    try:
        with Traffic(LB1_ONLY) as traffic:
            hook = Webhook()
            try:
                started = time.time()
                rc, out = playbook('rollback.yml', '-e', 'rollout_webhook_url=%s' % hook.url)
                STATE['rollback_frozen_seconds'] = time.time() - started
            finally:
                hook.close()
            assert rc != 0
            assert 'rollback.yml INCOMPLETE: 100 % back on 1.0.0 (blue slot) on lb1; split UNKNOWN on lb2' in out
            # status.yml answers in seconds with the frozen balancer marked unknown
            started = time.time()
            rc, status_out = playbook('status.yml')
            assert time.time() - started < 20, time.time() - started
            assert 'UNKNOWN: lb2' in flat(status_out) and 'lb1 1.0.0 blue 100 %' in flat(status_out), status_out
            assert lb_state('lb1')['percent'] == 0
            assert list(probe(1000, LB1_ONLY)['versions']) == ['1.0.0']
            assert [e['event'] for e in hook.events] == ['rollback_incomplete'], hook.events
            assert hook.events[0]['details']['unknown'] == ['lb2']
            assert 'all 2' not in hook.events[0]['text']
            # the pre-deployment check names the frozen balancer as a blocker. Over SSH each read of lb2
            # times out (pre_check_task_timeout) on the open connection, a blocker per check; a host
            # whose connection cannot even start is a row of its own ('reachable')
            rc, pre_out = playbook('pre_deployment_check.yml', '-e', 'pre_check_task_timeout=5')
            text = flat(pre_out)
            assert rc != 0, pre_out
            assert 'nginx config lb1 PASS' in text, pre_out
            if 'reachable lb2 FAIL no reading: the host did not answer' in text:
                assert 'BLOCKED: 1 blocker(s)' in text, pre_out
            else:
                for check in ('nginx config', 'split state', 'rollout lease', 'app fleet', 'certificate', 'disk space'):
                    assert '%s lb2 FAIL' % check in text, pre_out
                assert 'Timed out after 5 second(s)' in text and 'BLOCKED: 6 blocker(s)' in text, pre_out
        traffic.assert_no_failures()
    finally:
        subprocess.run(['docker', 'unpause', 'lb2'], check=True)
    # lb2 still sends 5 % to 3.3.0: the balancers disagree, and a phase says so
    rc, out = playbook('canary.yml', '-e', 'release_version=3.4.0')
    assert rc != 0
    assert 'the load balancers disagree on where traffic goes' in out
    rc, out = playbook('rollback.yml')
    assert rc == 0, out
    assert lb_state('lb2')['percent'] == 0 and lease_of('lb2') is None
    assert list(probe(1000)['versions']) == ['1.0.0']
