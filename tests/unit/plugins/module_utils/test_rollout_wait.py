"""Table tests of the wait for approval (module_utils/rollout_wait.py) and of its verdicts."""
import pytest

from ansible_collections.supersmartmatch.platform.plugins.module_utils import rollout_verdict as rv
from ansible_collections.supersmartmatch.platform.plugins.module_utils import rollout_wait as rw

CTX = {'phase': 'canary', 'release': '3.0.0', 'run_id': 'canary-3.0.0-1', 'holder': 'ci@runner',
       'started': '2027-01-15T08:00:00Z', 'started_epoch': 1000, 'hold': 15,
       'approval': {'required': True, 'timeout': 20}}
HOOK_URL = 'https://ci.example/approve?token=t0k3n'


@pytest.mark.parametrize('require, timeout, url, interval, problem', [
    (False, 3600, '', 30, None),
    ('false', 'x', None, 30, None),                  # the timeout only matters when approval is required
    (True, 3600, '', 30, None),
    ('yes', '60', HOOK_URL, '30', None),
    (True, 30, '', 30, None),
    ('maybe', 3600, '', 30, "rollout_require_approval must be true or false, got 'maybe'"),
    (True, 10, '', 30, 'rollout_approval_timeout must be between 30 and 604800 seconds, got 10 (at least one gate'),
    (True, 700000, '', 30, 'rollout_approval_timeout must be between 30 and 604800 seconds, got 700000'),
    (True, '1h', '', 30, "rollout_approval_timeout must be a whole number of seconds, got '1h'"),
    (True, 60, 'ci.example/approve', 30, 'rollout_approval_url must be an http:// or https:// URL'),
    (False, 60, 'https://ci.example/a\nb', 30, 'rollout_approval_url must be an http:// or https:// URL'),
])
def test_check_settings(require, timeout, url, interval, problem):
    found = rw.check_settings(require, timeout, url, interval)
    if problem is None:
        assert found is None
    else:
        assert problem in found and 't0k3n' not in found


@pytest.mark.parametrize('require, timeout, out', [
    (True, '20', {'required': True, 'timeout': 20}),
    ('false', 'x', {'required': False, 'timeout': 0}),
    (False, 3600, {'required': False, 'timeout': 0}),
])
def test_settings(require, timeout, out):
    assert rw.settings(require, timeout) == out


GATE = {'checks': [{'name': 'health of app1', 'url': 'http://app1:5070/health', 'min': 1},
                   {'name': 'precision', 'query': 'p', 'min': 0.94, 'initial_delay': 30}]}


@pytest.mark.parametrize('timeout, interval, count, start_at, end_at', [
    (20, 5, 4, 1005.0, 1020.0),
    (22, 5, 5, 1005.0, 1025.0),       # the last round is at or just after the deadline
    (5, 5, 1, 1005.0, 1005.0),
    (3600, 30, 120, 1030.0, 4600.0),
])
def test_wait_gate(timeout, interval, count, start_at, end_at):
    out = rw.wait_gate(GATE, timeout, interval, 1000.0)
    assert (out['rounds'], out['start_at'], out['end_at'], out['deadline']) == (count, start_at, end_at, 1000.0 + timeout)
    assert out['end_at'] >= out['deadline']
    assert [c['name'] for c in out['checks']] == ['health of app1', 'precision']
    assert all('initial_delay' not in c for c in out['checks']) and 'initial_delay' in GATE['checks'][1]


def test_wait_gate_refuses_a_timeout_shorter_than_one_interval():
    with pytest.raises(ValueError):
        rw.wait_gate(GATE, 4, 5, 1000.0)


APPROVED = {'decided': True, 'decision': 'approved', 'by': 'alice@laptop', 'at': 'T1', 'source': 'approve.yml'}
REJECTED = {'decided': True, 'decision': 'rejected', 'by': 'bob@ctl', 'at': 'T2', 'source': 'approve.yml',
            'comment': 'p99 too high'}
WAITING = {'decided': False, 'decision': 'waiting'}
MOVED = {'changed': True, 'value': 9, 'updated_by': 'oncall@ctl', 'updated_at': 'T3', 'operation': 'rollback'}


@pytest.mark.parametrize('result, step, text', [
    ({'skipped': True}, None, None),
    ({'finished': False, 'verdict': 'running', 'confirm': APPROVED}, None, None),
    ({'finished': False, 'verdict': 'running', 'confirm': dict(APPROVED, source='webhook', by='the approval webhook')},
     None, None),
    ({'finished': False, 'verdict': 'running', 'confirm': REJECTED}, 'rejected',
     'the canary of 3.0.0 was rejected by bob@ctl at T2 (approve.yml): p99 too high'),
    ({'finished': True, 'verdict': 'failed', 'message': 'precision 0.41 < min 0.94', 'confirm': WAITING}, 'hold',
     'during the wait for approval: precision 0.41 < min 0.94'),
    ({'finished': True, 'verdict': 'error', 'message': 'Prometheus: 2 consecutive errors', 'confirm': WAITING},
     'hold', 'during the wait for approval: Prometheus: 2 consecutive errors'),
    ({'finished': True, 'verdict': 'aborted', 'watch': MOVED, 'confirm': WAITING}, 'aborted',
     'rolled back by oncall@ctl at T3 during the wait for approval (generation 9)'),
    ({'finished': True, 'verdict': 'passed', 'confirm': WAITING}, 'approval_timeout',
     'nobody approved the canary of 3.0.0 within rollout_approval_timeout = 20 s'),
    ({'finished': True, 'verdict': 'inconclusive', 'confirm': WAITING}, 'approval_timeout', 'the split is left as'),
    ({'finished': False, 'verdict': 'running', 'confirm': WAITING}, 'approval_timeout', 'approve.yml -e '
                                                                                        'release_version=3.0.0'),
    ({'unreachable': True, 'msg': 'Connection timed out'}, 'hold', 'the gate host lb1 became unreachable during the '
                                                                   'wait for approval'),
    ({'failed': True, 'verdict': 'error', 'msg': 'confirm: path must be an absolute path'}, 'hold',
     'the wait for approval could not run: confirm: path must be an absolute path'),
])
def test_wait_failure(result, step, text):
    failures = rw.wait_failure('lb1', result, CTX, 20)
    if step is None:
        assert failures == []
    else:
        assert [f['step'] for f in failures] == [step] and text in failures[0]['msg']
        assert failures[0]['host'] == 'lb1'


@pytest.mark.parametrize('steps, rolls_back', [
    ([], False), (['hold'], True), (['rejected'], True), (['aborted'], False), (['approval_timeout'], False),
    (['gate_inconclusive'], False), (['deploy'], False), (['pre_rollout'], False), (['aborted', 'hold'], True),
])
def test_hold_rolls_back(steps, rolls_back):
    assert rw.hold_rolls_back([{'host': 'lb1', 'step': s, 'msg': 'x'} for s in steps]) is rolls_back


def ok(host, generation, percent=5):
    state = {'percent': percent, 'phase': 'canary', 'status': 'in_progress', 'updated_by': 'ci@runner',
             'stable': {'version': '1.0.0', 'color': 'blue'}, 'candidate': {'version': '3.0.0', 'color': 'green'}}
    return {'host': host, 'status': 'ok', 'info': {'exists': True, 'generation': generation, 'state': state}}


F_REJECTED = {'host': 'lb1', 'step': 'rejected', 'msg': 'the canary of 3.0.0 was rejected by bob@ctl at T2'}
F_TIMEOUT = {'host': 'lb1', 'step': 'approval_timeout', 'msg': 'nobody approved the canary of 3.0.0 within 20 s'}
F_HOOK = {'host': 'localhost', 'step': 'pre_rollout', 'msg': "the pre_rollout hook 'smoke' failed (HTTP 500)"}


@pytest.mark.parametrize('failures, rolled, action, hosts, verdict', [
    ([F_REJECTED], {}, 'rollback', ['lb1', 'lb2'], 'rolled_back'),   # the hold's rollback did not happen: now
    ([F_REJECTED], {'lb1': 9, 'lb2': 9}, 'none', [], 'rolled_back'),  # the hold rolled both back already
    ([F_TIMEOUT], {}, 'none', [], 'approval_timeout'),
    ([F_HOOK], {}, 'none', [], 'refused'),
])
def test_verdicts_of_the_new_failure_steps(failures, rolled, action, hosts, verdict):
    views = [ok(h, 9 if rolled else 7, 0 if rolled else 5) for h in ('lb1', 'lb2')]
    shifted = {} if failures == [F_HOOK] else {'lb1': 7, 'lb2': 7}
    out = rv.verdict_action('3.0.0', failures, shifted, views, rolled)
    assert (out['action'], out['hosts'], out['failures']) == (action, hosts, [])
    assert rv.classify('canary', failures, bool(rolled) or action == 'rollback') == verdict


def test_report_of_a_phase_not_approved_in_time():
    views = [ok('lb1', 7), ok('lb2', 7)]
    wait = {'finished': True, 'verdict': 'passed', 'confirm': WAITING, 'summary': {}, 'measurements': []}
    approval = rw.report_section(True, 20, wait)
    report = rv.build_report(CTX, 'supersmartmatch', {'stable_version': '1.0.0', 'percent': 5}, [F_TIMEOUT], False,
                             views, {'verdict': 'passed'}, '2027-01-15T08:01:00Z', 1060, wait_result=wait,
                             approval=approval, hooks=[{'name': 'load', 'type': 'rollout', 'ok': False,
                                                        'outcome': 'timed out after 5 s'}])
    assert report['verdict'] == 'approval_timeout'
    assert report['approval'] == {'required': True, 'timeout_s': 20, 'decision': 'none', 'by': None, 'at': None,
                                  'source': None, 'comment': None, 'text': 'waiting for approval'}
    assert report['gates']['approval_wait']['verdict'] == 'passed' and report['gates']['hold']['verdict'] == 'passed'
    assert report['advice'] == ('Traffic is left as it is (5 % on 3.0.0): run canary.yml again to hold and wait '
                                'for approval again, or rollback.yml')
    lines = rv.summary_lines(report)
    assert lines[0] == 'canary of 3.0.0: APPROVAL_TIMEOUT in 60 s (hold 15 s)'
    assert 'approval: none' in lines and 'hook: rollout load timed out after 5 s' in lines
    assert rv.fail_message(report).startswith('canary of 3.0.0 was NOT APPROVED in time: [lb1 approval_timeout] '
                                              'nobody approved')


@pytest.mark.parametrize('required, result, decision, by', [
    (False, None, None, None),
    (True, None, 'not asked', None),
    (True, {'skipped': True}, 'not asked', None),
    (True, {'finished': False, 'confirm': APPROVED}, 'approved', 'alice@laptop'),
    (True, {'finished': False, 'confirm': REJECTED}, 'rejected', 'bob@ctl'),
])
def test_report_section(required, result, decision, by):
    out = rw.report_section(required, 20, result)
    assert out['required'] is required
    assert out.get('decision') == decision and out.get('by') == by


@pytest.mark.parametrize('release, decision, phase, comment, by, problem', [
    ('2.0.0', 'approve', None, None, 'alice@laptop', None),
    ('2.0.0', 'reject', 'canary', 'p99 too high', 'alice@laptop', None),
    (None, 'approve', None, None, 'alice@laptop', "give the release waiting for approval with -e "
                                                  "release_version=X.Y.Z (letters, digits and . _ + -, at most 64); "
                                                  "got 'nothing'"),
    ('2.0.0\n', 'approve', None, None, 'a', 'give the release waiting for approval'),
    ('2.0.0', 'approved', None, None, 'a', "decision must be approve or reject (-e decision=reject), got 'approved'"),
    ('2.0.0', 'approve', 'promoted', None, 'a', "phase must be canary, extended or full (or left out), got 'promoted'"),
    ('2.0.0', 'approve', None, 'ok\nrm -rf', 'a', 'comment must be at most 200 of'),
    ('2.0.0', 'approve', None, None, '', 'rollout_approval_by (who decides) must not be empty'),
])
def test_approve_problem(release, decision, phase, comment, by, problem):
    found = rw.approve_problem(release, decision, phase, comment, by)
    assert found == problem if problem is None else problem in found


DONE = {'changed': True, 'msg': 'the canary of 2.0.0 (run R, started by ci@runner) approved by alice@laptop at T'}
REFUSED = {'failed': True, 'msg': 'nothing is waiting for approval of supersmartmatch (no phase is running); '
                                  'nothing was changed'}
LATER = 'nothing is waiting for approval of supersmartmatch: the last wait ended at T2'


@pytest.mark.parametrize('results, active, decision, ok, text', [
    ({'lb1': DONE, 'lb2': DONE}, ['lb1', 'lb2'], 'approve', True,
     'approve.yml: the canary of 2.0.0 (run R, started by ci@runner) approved by alice@laptop at T on lb1, lb2; it '
     'completes at its next check (within a second)'),
    ({'lb1': dict(DONE, changed=False), 'lb2': DONE}, ['lb1', 'lb2'], 'reject', True,
     'it rolls back at its next check (within a second), then ends rolled_back'),
    ({'lb1': REFUSED, 'lb2': REFUSED}, ['lb1', 'lb2'], 'approve', False,
     'approve.yml refused: nothing is waiting for approval of supersmartmatch (no phase is running); nothing was '
     'changed'),
    ({'lb1': REFUSED, 'lb2': dict(REFUSED, msg=LATER)}, ['lb1', 'lb2'], 'approve', False,
     'approve.yml refused: lb1: nothing is waiting for approval of supersmartmatch (no phase is running); nothing was '
     'changed; lb2: nothing is waiting for approval of supersmartmatch: the last wait ended at T2'),
    ({'lb1': DONE, 'lb2': {'unreachable': True, 'msg': 'paused'}}, ['lb1', 'lb2'], 'approve', False,
     'approve.yml INCOMPLETE: approved on lb1; NOT recorded on lb2 (lb2 unreachable: paused): run approve.yml again'),
    ({'lb2': DONE}, ['lb2'], 'reject', False, 'rejected on lb2; NOT recorded on lb1 (lb1 dropped out of the run)'),
    ({'lb1': REFUSED, 'lb2': DONE}, ['lb1', 'lb2'], 'approve', False,
     'approve.yml INCOMPLETE: approved on lb2; refused on lb1 (lb1: nothing is waiting'),
])
def test_approve_summary(results, active, decision, ok, text):
    out = rw.approve_summary(['lb1', 'lb2'], results, active, decision)
    assert out['ok'] is ok
    assert text in out['text']
