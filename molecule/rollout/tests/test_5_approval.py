"""Operator control: manual approval (Flagger's confirm-promotion) and hooks.

Short holds: canary_duration 15 s is one gate round at the end of the
warm-up; traffic flows so that the gates have evidence. The approval wait
runs a gate round every 5 s. Release 3.4.0 (built by prepare.yml) is reused.
"""
import json
import os
import subprocess
import time

from rolloutlab import (  # the lab shared by every test file
    READ_ERRORS, Traffic, Webhook, at, background, finish, flat, latest_report, lb_state, lease_of, playbook,
    probe, share, wait_for)


APPROVAL = ['-e', 'canary_duration=15', '-e', 'rollout_require_approval=true']


def approval_record(lb='lb1'):
    proc = subprocess.run(['docker', 'exec', lb, 'cat', '/var/lib/supersmartmatch/traffic/supersmartmatch.approval.json'],
                          capture_output=True, text=True, check=False)
    return json.loads(proc.stdout) if proc.returncode == 0 else None


def waiting_for_approval(version):
    def check():
        records = [approval_record(lb) or {} for lb in ('lb1', 'lb2')]
        return all(r.get('status') == 'waiting' and r.get('release') == version for r in records)
    return check


def test_a_phase_waiting_for_approval_completes_once_approve_yml_approves():
    rc, out = playbook('rollback.yml')
    assert rc == 0, out
    with Traffic() as traffic:
        proc = background('canary.yml', '-e', 'release_version=3.4.0', '-e', 'rollout_approval_timeout=120', *APPROVAL)
        try:
            wait_for(waiting_for_approval('3.4.0'), 300, 'the canary of 3.4.0 waiting for approval', delay=0.5,
                     ignore=READ_ERRORS, proc=proc)
            # waiting: the split holds at 5 %, the phase is not completed yet
            assert at('3.4.0', 5)() and lb_state('lb1')['status'] == 'in_progress'
            # status.yml shows the wait and how to end it, changing nothing
            rc, out = playbook('status.yml')
            assert rc == 0, out
            assert ('WAITING FOR APPROVAL: the canary of 3.4.0 on lb1, lb2' in flat(out)
                    and 'playbooks/approve.yml -e release_version=3.4.0' in flat(out)), out
            # the gate keeps running while the phase waits: let one round (5 s) pass first
            time.sleep(6)
            rc, out = playbook('approve.yml', '-e', 'release_version=3.4.0',
                               '-e', json.dumps({'comment': 'dashboards look fine'}))
            assert rc == 0, out
            assert 'approved by' in flat(out) and 'on lb1, lb2' in flat(out)
            rc, out = finish(proc, timeout=120)
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, 9)
        assert rc == 0, out
        assert 'canary of 3.4.0: PASSED' in flat(out)
        # a gate round printed while it waited, then the approval
        assert 'running, waiting for approval' in flat(out) and 'approval: approved by' in flat(out)
        for lb in ('lb1', 'lb2'):
            state = lb_state(lb)
            assert (state['percent'], state['phase'], state['status']) == (5, 'canary', 'completed'), state
            assert approval_record(lb)['status'] == 'closed'
        report = latest_report()
        assert report['verdict'] == 'passed'
        assert report['approval']['decision'] == 'approved' and report['approval']['source'] == 'approve.yml'
        assert report['approval']['comment'] == 'dashboards look fine'
        assert lease_of('lb1') is None and lease_of('lb2') is None
        assert abs(share(probe(), '3.4.0') - 5) <= 1
    traffic.assert_no_failures()
    # once the phase ended, its wait cannot be decided any more
    rc, out = playbook('approve.yml', '-e', 'release_version=3.4.0', '-e', 'decision=reject')
    assert rc != 0
    assert 'approve.yml refused: ' in flat(out) and 'nothing is waiting for approval of supersmartmatch' in flat(out)


def test_a_phase_not_approved_in_time_leaves_its_split_and_says_so():
    rc, out = playbook('rollback.yml')
    assert rc == 0, out
    with Traffic() as traffic:
        rc, out = playbook('canary.yml', '-e', 'release_version=3.4.0', '-e', 'rollout_approval_timeout=20', *APPROVAL)
        assert rc != 0
        assert 'canary of 3.4.0 was NOT APPROVED in time' in flat(out)
        assert 'nobody approved the canary of 3.4.0 within rollout_approval_timeout = 20 s' in flat(out)
        assert 'Traffic is left as it is (5 % on 3.4.0)' in flat(out)
        for lb in ('lb1', 'lb2'):
            state = lb_state(lb)
            assert (state['percent'], state['phase'], state['status']) == (5, 'canary', 'in_progress'), state
            assert lease_of(lb) is None
        report = latest_report()
        assert report['verdict'] == 'approval_timeout' and report['approval']['decision'] == 'none'
        assert abs(share(probe(), '3.4.0') - 5) <= 1
    traffic.assert_no_failures()
    rc, out = playbook('approve.yml', '-e', 'release_version=3.4.0')
    assert rc != 0 and 'nothing is waiting for approval' in flat(out)
    rc, out = playbook('extended.yml', '-e', 'release_version=3.4.0')
    assert rc != 0 and 'extended needs a completed canary of 3.4.0' in flat(out)


def test_a_rejected_phase_is_rolled_back_naming_who_rejected_it():
    with Traffic() as traffic:
        # the canary of 3.4.0 left at 5 % above holds again and waits
        proc = background('canary.yml', '-e', 'release_version=3.4.0', '-e', 'rollout_approval_timeout=120', *APPROVAL)
        try:
            wait_for(waiting_for_approval('3.4.0'), 300, 'the canary of 3.4.0 waiting for approval', delay=0.5,
                     ignore=READ_ERRORS, proc=proc)
            rc, out = playbook('approve.yml', '-e', 'release_version=3.4.0', '-e', 'decision=reject',
                               '-e', json.dumps({'comment': 'p99 too high', 'rollout_approval_by': 'oncall@test'}))
            assert rc == 0, out
            assert 'rejected by oncall@test' in flat(out)
            rc, out = finish(proc, timeout=120)
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, 9)
        assert rc != 0
        assert 'canary of 3.4.0 FAILED and was rolled back' in flat(out)
        assert 'the canary of 3.4.0 was rejected by oncall@test' in flat(out) and 'p99 too high' in flat(out)
        for lb in ('lb1', 'lb2'):
            state = lb_state(lb)
            assert state['percent'] == 0 and state['stable']['version'] == '1.0.0', state
            assert lease_of(lb) is None
        report = latest_report()
        assert report['verdict'] == 'rolled_back' and report['failures'][0]['step'] == 'rejected'
        assert report['approval']['decision'] == 'rejected' and report['approval']['by'] == 'oncall@test'
        assert list(probe(1000)['versions']) == ['1.0.0']
    traffic.assert_no_failures()


def test_a_failing_pre_rollout_hook_refuses_the_phase_with_nothing_moved():
    before = dict((lb, lb_state(lb)) for lb in ('lb1', 'lb2'))
    hook = Webhook(status=500)
    try:
        hooks = [{'name': 'smoke-tests', 'type': 'pre_rollout', 'url': hook.url, 'timeout': 5,
                  'metadata': {'suite': 'smoke'}}]
        rc, out = playbook('canary.yml', '-e', 'release_version=3.4.0', '-e', json.dumps({'rollout_hooks': hooks}))
    finally:
        hook.close()
    assert rc != 0
    assert 'canary of 3.4.0 REFUSED' in flat(out)
    assert ("the pre_rollout hook 'smoke-tests' failed (answered HTTP 500): the phase is refused, nothing was moved"
            in flat(out))
    assert 'secret-token' not in flat(out), 'the hook URL leaked into the output'
    assert [e['event'] for e in hook.events] == ['pre_rollout'], hook.events
    event = hook.events[0]
    assert (event['hook'], event['phase'], event['release'], event['metadata']) == (
        'smoke-tests', 'canary', '3.4.0', {'suite': 'smoke'})
    for lb in ('lb1', 'lb2'):
        state = lb_state(lb)
        assert (state['generation'], state['percent']) == (before[lb]['generation'], 0), state
        assert lease_of(lb) is None
    report = latest_report()
    assert report['verdict'] == 'refused' and report['failures'][0]['step'] == 'pre_rollout'
    assert list(probe(1000)['versions']) == ['1.0.0']
