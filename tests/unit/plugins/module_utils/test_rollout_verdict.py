"""Table tests of the decisions after the hold and of rollback.yml (module_utils/rollout_verdict.py)."""
import pytest

from ansible_collections.supersmartmatch.platform.plugins.module_utils import rollout_verdict as rv

CTX = {'phase': 'canary', 'release': '2.0.0', 'run_id': 'canary-2.0.0-1', 'holder': 'alice@ctl',
       'started': '2026-11-29T18:00:00Z', 'started_epoch': 1000, 'hold': 30}


def st(percent=5, phase='canary', status='in_progress'):
    return {'percent': percent, 'phase': phase, 'status': status, 'updated_by': 'bob@ctl',
            'updated_at': '2026-11-29T18:00:20+00:00',
            'stable': {'version': '1.0.0', 'color': 'blue'}, 'candidate': {'version': '2.0.0', 'color': 'green'}}


def ok(host, generation, state=None, drift=False):
    return {'host': host, 'status': 'ok',
            'info': {'exists': True, 'generation': generation, 'state': state or st(), 'drift': drift,
                     'drift_reason': 'hand edit' if drift else None}}


def down(host):
    return {'host': host, 'status': 'unreachable', 'msg': 'timed out'}


F_HOLD = {'host': 'lb1', 'step': 'hold', 'msg': 'precision 0 < min 0.94'}
F_INC = {'host': 'lb1', 'step': 'gate_inconclusive', 'msg': 'no data'}
F_PLAN = {'host': 'lb1', 'step': 'plan', 'msg': 'refused'}
F_ABORT = {'host': 'lb1', 'step': 'aborted', 'msg': 'rolled back by bob@ctl at T during the hold (generation 8)'}
F_DEPLOY = {'host': 'app1', 'step': 'deploy', 'msg': 'never healthy'}
SHIFTED = {'lb1': 7, 'lb2': 7}


@pytest.mark.parametrize('failures, vs, action, hosts, new_steps', [
    ([], [ok('lb1', 7), ok('lb2', 7)], 'complete', ['lb1', 'lb2'], []),
    ([], [ok('lb1', 7), down('lb2')], 'none', [], ['unreachable']),                 # never PASSED
    ([], [ok('lb1', 8), ok('lb2', 7)], 'none', [], ['moved']),                      # moved under us
    ([], [ok('lb1', 7, drift=True), ok('lb2', 7)], 'none', [], ['verdict']),
    ([F_DEPLOY], [ok('lb1', 7), ok('lb2', 7)], 'rollback', ['lb1', 'lb2'], []),
    ([F_HOLD], [ok('lb1', 7), ok('lb2', 8)], 'rollback', ['lb1'], ['moved']),       # only what is ours
    ([F_HOLD], [ok('lb1', 8), ok('lb2', 8)], 'none', [], ['moved', 'moved']),       # a stale run never rolls back
    ([F_INC], [ok('lb1', 7), ok('lb2', 7)], 'none', [], []),                        # inconclusive keeps the split
    ([F_ABORT], [ok('lb1', 8), ok('lb2', 8)], 'none', [], []),
    ([F_ABORT], [ok('lb1', 8), down('lb2')], 'none', [], ['unreachable']),
    ([F_PLAN], [ok('lb1', 3), ok('lb2', 3)], 'none', [], []),
])
def test_verdict_action(failures, vs, action, hosts, new_steps):
    out = rv.verdict_action('2.0.0', failures, SHIFTED if failures != [F_PLAN] else {}, vs)
    assert out['action'] == action
    assert out['hosts'] == hosts
    assert [f['step'] for f in out['failures']] == new_steps
    if action != 'none':
        assert out['expected'] == dict((h, SHIFTED[h]) for h in hosts)


@pytest.mark.parametrize('phase, failures, rolled_back, verdict', [
    ('canary', [], False, 'passed'),
    ('full', [], False, 'promoted'),
    ('canary', [F_HOLD], True, 'rolled_back'),
    ('canary', [F_HOLD], False, 'failed'),
    ('canary', [F_PLAN], False, 'refused'),
    ('canary', [F_INC], False, 'inconclusive'),
    ('canary', [F_INC, {'host': 'lb2', 'step': 'unreachable', 'msg': 'x'}], False, 'failed'),
    ('canary', [F_ABORT], False, 'aborted'),
    ('canary', [F_ABORT, {'host': 'lb2', 'step': 'unreachable', 'msg': 'x'}], False, 'aborted'),
    ('extended', [{'host': 'lb2', 'step': 'switch', 'msg': 'lb2 is unreachable: its split is unknown'}], False,
     'failed'),
])
def test_classify(phase, failures, rolled_back, verdict):
    assert rv.classify(phase, failures, rolled_back) == verdict
    assert verdict in rv.VERDICTS


@pytest.mark.parametrize('result, step, text', [
    ({'verdict': 'passed'}, None, None),
    ({'verdict': 'failed', 'message': 'precision 0 < min 0.94'}, 'hold', 'precision 0 < min 0.94'),
    ({'verdict': 'error', 'message': 'Prometheus unreachable'}, 'hold', 'Prometheus unreachable'),
    ({'verdict': 'inconclusive', 'message': 'no data'}, 'gate_inconclusive', 'no data'),
    ({'verdict': 'aborted', 'watch': {'changed': True, 'value': 9, 'updated_by': 'bob@ctl',
                                      'updated_at': '2026-11-29T18:01:00+00:00', 'operation': 'rollback'}},
     'aborted', 'rolled back by bob@ctl at 2026-11-29T18:01:00+00:00 during the hold'),
    ({'unreachable': True, 'msg': 'timed out'}, 'hold', 'became unreachable during the hold'),
    ({'failed': True, 'msg': 'bad input'}, 'hold', 'bad input'),
])
def test_hold_failure(result, step, text):
    failure = rv.hold_failure('lb1', result)
    if step is None:
        assert failure is None
    else:
        assert failure['step'] == step and text in failure['msg']


@pytest.mark.parametrize('results, active, ok, unknown, failed, text', [
    ({'lb1': {'changed': True, 'split': {'stable': {'version': '1.0.0', 'color': 'blue'}}},
      'lb2': {'changed': True}}, ['lb1', 'lb2'], True, [], [],
     'rollback.yml: 100 % back on 1.0.0 (blue slot) on all 2 load balancer(s)'),
    ({'lb1': {'changed': False, 'split': {'stable': {'version': '1.0.0', 'color': 'blue'}}},
      'lb2': {'changed': False}}, ['lb1', 'lb2'], True, [], [], 'already there'),
    ({'lb1': {'changed': True, 'split': {'stable': {'version': '1.0.0', 'color': 'blue'}}},
      'lb2': {'unreachable': True, 'msg': 'container paused'}}, ['lb1', 'lb2'], False, ['lb2'], [],
     'rollback.yml INCOMPLETE: 100 % back on 1.0.0 (blue slot) on lb1; split UNKNOWN on lb2'),
    ({'lb1': {'changed': True}}, ['lb1'], False, ['lb2'], [], 'lb2 dropped out of the run'),
    ({'lb1': {'failed': True, 'msg': 'nginx is not running'}, 'lb2': {'changed': True}}, ['lb1', 'lb2'], False, [],
     ['lb1'], 'FAILED on lb1 (lb1: nginx is not running)'),
])
def test_rollback_summary(results, active, ok, unknown, failed, text):
    out = rv.rollback_summary(['lb1', 'lb2'], results, active)
    assert (out['ok'], out['unknown'], out['failed']) == (ok, unknown, failed)
    assert text in out['text']
    if not ok:
        assert 'all 2' not in out['text']


def test_report_and_summary_of_an_aborted_hold():
    vs = [ok('lb1', 8, st(0, 'rollback', 'rolled_back')), ok('lb2', 8, st(0, 'rollback', 'rolled_back'))]
    plan = {'stable_version': '1.0.0', 'before': {'percent': 0, 'phase': 'bootstrap'}}
    report = rv.build_report(CTX, 'supersmartmatch', plan, [F_ABORT], False, vs, {'verdict': 'aborted'},
                             '2026-11-29T18:00:40Z', 1040)
    assert report['verdict'] == 'aborted'
    assert report['duration_s'] == 40 and report['hold_s'] == 30
    assert report['split_after']['percent'] == 0 and report['split_after']['generation'] == 8
    assert report['gates']['hold']['verdict'] == 'aborted'
    assert 'a new canary can start now' in report['advice']
    lines = rv.summary_lines(report, '/r.json')
    assert lines[0] == 'canary of 2.0.0: ABORTED in 40 s (hold 30 s)'
    assert 'report: /r.json' in lines
    assert rv.fail_message(report).startswith('canary of 2.0.0 ABORTED: [lb1 aborted] rolled back by bob@ctl')


def test_report_names_unknown_balancers_and_never_passes():
    failures = [{'host': 'lb2', 'step': 'unreachable', 'msg': 'lb2 is unreachable after the hold (x): its split is unknown'}]
    report = rv.build_report(CTX, 'supersmartmatch', {}, failures, False, [ok('lb1', 7), down('lb2')], None,
                             'T', 1030)
    assert report['verdict'] == 'failed'
    assert report['unknown_hosts'] == ['lb2']
    assert report['balancers']['lb2']['status'] == 'unknown'
    assert 'The split of lb2 is unknown' in report['advice']
    assert '  lb2: UNKNOWN (timed out)' in rv.summary_lines(report)


def test_report_of_a_pass_and_an_inconclusive():
    report = rv.build_report(CTX, 'supersmartmatch', {}, [], False, [ok('lb1', 7), ok('lb2', 7)],
                             {'verdict': 'passed', 'summary': {'precision': {'verdict': 'passed', 'measurements': 3,
                                                                             'last_value': 0.97, 'threshold': '>= 0.94'}}},
                             'T', 1031)
    assert report['verdict'] == 'passed' and rv.fail_message(report) is None
    assert '  precision: passed, 3 measurement(s), last 0.97 (>= 0.94)' in rv.summary_lines(report)
    report = rv.build_report(CTX, 'supersmartmatch', {}, [F_INC], False, [ok('lb1', 7), ok('lb2', 7)], None, 'T', 1031)
    assert report['advice'] == ('Traffic is left as it is (5 % on 2.0.0): run canary.yml again to hold longer, '
                                'or rollback.yml')


@pytest.mark.parametrize('results, active, steps', [
    ({'lb1': {'changed': True}, 'lb2': {'changed': True}}, ['lb1', 'lb2'], []),
    ({'lb1': {'changed': True}, 'lb2': {'unreachable': True}}, ['lb1', 'lb2'], ['complete']),
    ({'lb1': {'failed': True, 'msg': 'compare-and-set refused'}}, ['lb1'], ['complete', 'complete']),
])
def test_step_results(results, active, steps):
    assert [f['step'] for f in rv.step_results(['lb1', 'lb2'], results, active, 'complete')] == steps


def test_collect_failures_in_step_order_each_once():
    same = {'host': 'lb1', 'step': 'switch', 'msg': 'lb2 is unreachable: its split is unknown'}
    per_host = {'lb1': {'rollout_failed_shift': [same], 'rollout_failed_verdict': [F_INC]},
                'lb2': {'rollout_failed_shift': [same]},
                'app1': {'rollout_failed_deploy': [F_DEPLOY]}}
    assert rv.collect_failures(per_host) == [F_DEPLOY, same, F_INC]


def test_fail_message_of_a_rollback_says_failed_and_rolled_back():
    report = rv.build_report(CTX, 'supersmartmatch', {}, [F_HOLD], True, [ok('lb1', 8), ok('lb2', 8)], None, 'T', 1031)
    assert rv.fail_message(report).startswith('canary of 2.0.0 FAILED and was rolled back: [lb1 hold] precision')


def test_balancers_the_gate_already_rolled_back_are_done_not_moved():
    vs = [ok('lb1', 9, st(0, 'rollback', 'rolled_back')), ok('lb2', 9, st(0, 'rollback', 'rolled_back'))]
    out = rv.verdict_action('2.0.0', [F_HOLD], SHIFTED, vs, rolled_back={'lb1': 9, 'lb2': 9})
    assert out == {'action': 'none', 'hosts': [], 'expected': {}, 'failures': []}
    # one was rolled back by the gate, the other one is still ours: roll it back now
    vs = [ok('lb1', 9, st(0, 'rollback', 'rolled_back')), ok('lb2', 7)]
    out = rv.verdict_action('2.0.0', [F_HOLD], SHIFTED, vs, rolled_back={'lb1': 9})
    assert (out['action'], out['hosts'], out['failures']) == ('rollback', ['lb2'], [])
