"""Step mode of metric_gate: one round per call, resumed from a file, with a fake clock and a fake fetch."""
import json
import os
import stat

import pytest

from ansible_collections.supersmartmatch.platform.plugins.module_utils import metric_gate as mg
from ansible_collections.supersmartmatch.platform.plugins.module_utils import metric_gate_step as ms
from ansible_collections.supersmartmatch.platform.plugins.module_utils import rollout_approval as ra
from metric_gate_fakes import E, FakeTime, Script, T0

OK, LOW = 0.97, 0.5


class Wall(FakeTime):
    """Step mode schedules on the wall clock: clock() is now()."""

    def clock(self):
        return self.now()


def settings(**extra):
    params = dict(provider='prometheus', url='http://prom:9090', checks=[dict(name='precision', query='precision',
                                                                              min=0.94)],
                  count=3, interval=10.0, initial_delay=0.0, failure_limit=0, consecutive_error_limit=4,
                  error_retry_interval=5.0, timeout=10.0, on_no_data='inconclusive')
    params.update(extra)
    return mg.validate_params(params)


class Gate(object):
    """Calls run_step as successive module runs would: same file, same fake time, same scripted server."""

    def __init__(self, tmp_path, script, watch=None, run_key='run-1', confirm=None, **extra):
        self.path = str(tmp_path / 'gate.json')
        self.fake = Wall()
        self.fetch = Script(script, self.fake)
        self.watch = watch
        self.confirm = confirm
        self.run_key = run_key
        self.settings = settings(**extra)

    def call(self, run_key=None, **extra):
        before = len(self.fake.sleeps)
        calls = len(self.fetch.calls)
        the_settings = settings(**extra) if extra else self.settings
        result = ms.run_step(the_settings['checks'], the_settings, self.fetch, self.path, run_key or self.run_key,
                             title="metric gate 'canary'", message_options=dict(name='canary'),
                             sleep=self.fake.sleep, clock=self.fake.clock, now=self.fake.now,
                             watch=self.watch and (lambda: self.watch(self.fake)),
                             confirm=self.confirm and self.confirm(self.fake))
        return result, self.fake.sleeps[before:], len(self.fetch.calls) - calls


def brief(result):
    rnd = result['round']
    return (result['finished'], result['verdict'], rnd and rnd['index'], rnd and rnd['retry'],
            rnd and [r['outcome'] for r in rnd['results']], result['remaining_s'])


# per call: (finished, verdict, round index, retry, outcomes of the round, remaining_s), sleeps of that call
STEP_CASES = [
    ('three passing rounds', {'precision': [OK]}, {}, [
        ((False, 'running', 1, False, ['passed'], 20.0), []),
        ((False, 'running', 2, False, ['passed'], 10.0), [10]),
        ((True, 'passed', 3, False, ['passed'], 0.0), [10]),
    ]),
    ('failure ends the gate at once', {'precision': [OK, LOW]}, {}, [
        ((False, 'running', 1, False, ['passed'], 20.0), []),
        ((True, 'failed', 2, False, ['failed'], 0.0), [10]),
    ]),
    ('failure within failure_limit goes on', {'precision': [LOW, OK]}, dict(failure_limit=1), [
        ((False, 'running', 1, False, ['failed'], 20.0), []),
        ((False, 'running', 2, False, ['passed'], 10.0), [10]),
        ((True, 'passed', 3, False, ['passed'], 0.0), [10]),
    ]),
    ('an error is retried after error_retry_interval in the same round', {'precision': [E, OK]}, {}, [
        ((False, 'running', 1, False, ['error'], 20.0), []),
        ((False, 'running', 1, True, ['passed'], 15.0), [5]),
        ((False, 'running', 2, False, ['passed'], 5.0), [10]),
        ((True, 'passed', 3, False, ['passed'], 0.0), [10]),
    ]),
    ('consecutive_error_limit ends the gate with error', {'precision': [E]}, dict(consecutive_error_limit=2, count=2), [
        ((False, 'running', 1, False, ['error'], 10.0), []),
        ((True, 'error', 1, True, ['error'], 0.0), [5]),
    ]),
    ('no data is shown as no_data and counted by the policy', {'precision': [None, OK]}, dict(count=2), [
        ((False, 'running', 1, False, ['no_data'], 10.0), []),
        ((True, 'inconclusive', 2, False, ['passed'], 0.0), [10]),
    ]),
    ('start_at ahead: the first call waits for it', {'precision': [OK]}, dict(count=2, start_at=T0 + 25), [
        ((False, 'running', 1, False, ['passed'], 10.0), [25]),
        ((True, 'passed', 2, False, ['passed'], 0.0), [10]),
    ]),
    ('start_at past: the hold left counts from it', {'precision': [OK]}, dict(count=4, start_at=T0 - 12), [
        ((False, 'running', 1, False, ['passed'], 18.0), []),
        ((False, 'running', 2, False, ['passed'], 8.0), [10]),
    ]),
    ('initial_delay of the gate', {'precision': [OK]}, dict(count=2, initial_delay=7), [
        ((False, 'running', 1, False, ['passed'], 10.0), [7]),
        ((True, 'passed', 2, False, ['passed'], 0.0), [10]),
    ]),
]


@pytest.mark.parametrize('script, options, calls', [case[1:] for case in STEP_CASES], ids=[c[0] for c in STEP_CASES])
def test_step_rounds(tmp_path, script, options, calls):
    gate = Gate(tmp_path, script, **options)
    for index, (expected, sleeps) in enumerate(calls):
        result, slept, _fetched = gate.call()
        assert brief(result) == expected, 'call %d: %s' % (index + 1, result['message'])
        assert slept == pytest.approx(sleeps), 'call %d' % (index + 1)
        assert result['rounds_total'] == options.get('count', 3)
    assert result['finished'] or len(calls) < options.get('count', 3) + 1


def test_per_check_initial_delay_in_step_mode(tmp_path):
    checks = [dict(name='health', query='health', min=1),
              dict(name='precision', query='precision', min=0.94, initial_delay=10)]
    gate = Gate(tmp_path, {'health': [1], 'precision': [OK]}, checks=checks, count=2)
    first, _slept, _n = gate.call()
    second, _slept, _n = gate.call()
    assert [r['name'] for r in first['round']['results']] == ['health']
    assert [r['name'] for r in second['round']['results']] == ['health', 'precision']
    assert second['verdict'] == 'passed'


def test_round_results_and_messages(tmp_path):
    gate = Gate(tmp_path, {'precision': [0.96, None, OK]}, count=3)
    first, _slept, _n = gate.call()
    assert first['round']['results'] == [dict(name='precision', value=0.96, outcome='passed',
                                              threshold='value >= 0.94', message='0.96 within value >= 0.94')]
    assert first['round']['time'] == mg.iso_utc(T0)
    assert first['message'] == "metric gate 'canary': round 1 of 3: precision 0.96 passed (value >= 0.94); 20s left"
    second, _slept, _n = gate.call()
    assert second['round']['results'][0]['outcome'] == 'no_data'
    assert second['round']['results'][0]['counted_as'] == 'inconclusive'
    assert second['current'] == 'inconclusive' and second['verdict'] == 'running'
    assert 'precision no data, counted inconclusive (value >= 0.94)' in second['message'] and second['message'].endswith('10s left')
    last, _slept, _n = gate.call()
    assert last['message'].startswith("metric gate 'canary' inconclusive: precision inconclusive in 1 of 3")
    assert 'allow_inconclusive' not in last['message']     # step mode: the caller decides
    assert [m['sample'] for m in last['measurements']] == [1, 2, 3]


def test_finished_gate_is_kept_and_a_repeat_call_measures_nothing(tmp_path):
    gate = Gate(tmp_path, {'precision': [LOW]}, count=3)
    final, _slept, fetched = gate.call()
    assert final['finished'] is True and final['verdict'] == 'failed' and fetched == 1
    again, slept, fetched = gate.call()
    assert (fetched, slept) == (0, [])
    assert again['repeated'] is True
    assert dict(again, repeated=False) == final


def test_another_run_key_starts_a_new_gate(tmp_path):
    gate = Gate(tmp_path, {'precision': [OK]}, count=2)
    gate.call()
    gate.call()
    fresh, slept, fetched = gate.call(run_key='run-2')
    assert (fresh['finished'], fresh['round']['index'], fetched, slept) == (False, 1, 1, [])
    assert len(fresh['measurements']) == 1


def test_state_file_is_private_and_holds_no_url(tmp_path):
    gate = Gate(tmp_path, {'precision': [OK]}, url='http://reader:s3cret@prom:9090')
    gate.call()
    mode = stat.S_IMODE(os.stat(gate.path).st_mode)
    assert mode == 0o600
    text = open(gate.path).read()
    assert 's3cret' not in text and 'prom:9090' not in text
    assert json.loads(text)['run_key'] == 'run-1'
    assert not [name for name in os.listdir(str(tmp_path)) if name != 'gate.json']   # no temp file left


@pytest.mark.parametrize('content, message', [
    ('{"format": ', 'is not a metric_gate state'),
    ('{"format": 99, "state": {}}', 'is not a metric_gate state; remove it to start a new gate'),
    ('[]', 'is not a metric_gate state'),
])
def test_damaged_state_is_refused(tmp_path, content, message):
    gate = Gate(tmp_path, {'precision': [OK]})
    with open(gate.path, 'w') as handle:
        handle.write(content)
    with pytest.raises(mg.GateError) as err:
        gate.call()
    assert message in str(err.value) and gate.path in str(err.value)
    assert gate.fetch.calls == []


def test_same_run_key_with_other_checks_is_refused(tmp_path):
    gate = Gate(tmp_path, {'precision': [OK]})
    gate.call()
    before = open(gate.path).read()
    with pytest.raises(mg.GateError) as err:
        gate.call(checks=[dict(name='precision', query='precision', min=0.99)])
    assert "holds the gate 'run-1' with other checks or timing" in str(err.value)
    assert open(gate.path).read() == before


def test_missing_directory_is_refused(tmp_path):
    gate = Gate(tmp_path / 'nowhere', {'precision': [OK]})
    with pytest.raises(mg.GateError) as err:
        gate.call()
    assert 'does not exist' in str(err.value)


def moved_at(at):
    news = dict(changed=True, value=9, operation='rollback', updated_by='bob@ctl', updated_at='T', phase='rollback',
                status='rolled_back')
    return lambda fake: news if fake.t >= at else None


def test_watch_moving_while_waiting_aborts_within_a_second(tmp_path):
    gate = Gate(tmp_path, {'precision': [OK]}, watch=moved_at(12.5))
    first, slept, _n = gate.call()
    assert first['verdict'] == 'running' and slept == []
    aborted, slept, fetched = gate.call()
    assert slept == pytest.approx([1.0] * 10)
    # round 2 was due at 10: it was measured; the move at 12.5 is seen while waiting for round 3
    assert aborted['verdict'] == 'running' and fetched == 1
    aborted, slept, fetched = gate.call()
    assert slept == pytest.approx([1.0, 1.0, 1.0]) and fetched == 0
    assert aborted['finished'] is True and aborted['verdict'] == 'aborted' and aborted['round'] is None
    assert aborted['watch']['value'] == 9 and aborted['remaining_s'] == 0
    assert aborted['message'] == "metric gate 'canary': aborted, the watched state moved to generation 9 (rollback by bob@ctl at T)"
    again, _slept, fetched = gate.call()
    assert again['repeated'] is True and again['verdict'] == 'aborted' and fetched == 0


def test_watch_already_moved_aborts_before_any_measurement(tmp_path):
    gate = Gate(tmp_path, {'precision': [OK]}, watch=moved_at(0))
    result, slept, fetched = gate.call()
    assert (result['verdict'], result['finished'], fetched, slept) == ('aborted', True, 0, [])


def test_a_round_with_no_check_due_yet_is_still_a_round(tmp_path):
    checks = [dict(name='precision', query='precision', min=0.94, initial_delay=10)]
    gate = Gate(tmp_path, {'precision': [OK]}, checks=checks, count=2)
    first, _slept, fetched = gate.call()
    assert fetched == 0 and first['round'] == dict(index=1, time=mg.iso_utc(T0), retry=False, results=[])
    assert first['message'] == "metric gate 'canary': round 1 of 2: no check due yet; 10s left"
    second, _slept, fetched = gate.call()
    assert fetched == 1 and second['verdict'] == 'passed'


CONFIRM = {'path': '/s/svc.approval.json', 'run_id': 'run-1', 'url': None, 'body': {}, 'timeout': 5.0}


def decided_at(at, status='approved', run_id='run-1'):
    """A fresh poller per call (one per module run), reading a record that holds a decision from ``at`` on."""
    record = {'run_id': run_id, 'status': status, 'by': 'alice@laptop', 'at': 'T'}
    waiting = dict(record, status='waiting')
    return lambda fake: ra.ConfirmPoller(CONFIRM, read=lambda path: record if fake.t >= at else waiting)


def test_a_decision_while_waiting_ends_the_call_at_once_without_measuring(tmp_path):
    gate = Gate(tmp_path, {'precision': [OK]}, confirm=decided_at(13.5))
    first, slept, fetched = gate.call()
    assert (first['verdict'], fetched, slept) == ('running', 1, [])
    assert first['confirm'] == {'decided': False, 'decision': 'waiting', 'url_status': None}
    second, slept, fetched = gate.call()
    assert fetched == 1 and second['round']['index'] == 2
    third, slept, fetched = gate.call()
    # the approval recorded at 13.5 is read within a second, before round 3 (due at 20)
    assert slept == pytest.approx([1.0] * 4) and fetched == 0
    assert (third['finished'], third['verdict'], third['round'], third['current']) == (False, 'running', None, 'passed')
    assert third['confirm'] == {'decided': True, 'decision': 'approved', 'by': 'alice@laptop', 'at': 'T',
                                'comment': None, 'source': 'approve.yml'}
    assert third['message'] == "metric gate 'canary': approved by alice@laptop at T, after 2 of 3 rounds"
    assert json.load(open(gate.path))['state']['finished'] is False


@pytest.mark.parametrize('status', ['approved', 'rejected'])
def test_a_decision_already_there_is_returned_before_any_round(tmp_path, status):
    gate = Gate(tmp_path, {'precision': [OK]}, confirm=decided_at(0, status))
    result, slept, fetched = gate.call()
    assert (result['confirm']['decision'], result['finished'], fetched, slept) == (status, False, 0, [])
    assert result['current'] == 'inconclusive'     # nothing measured yet


def test_a_decision_for_another_run_keeps_the_gate_waiting(tmp_path):
    gate = Gate(tmp_path, {'precision': [OK]}, confirm=decided_at(0, run_id='run-0'))
    results = [gate.call()[0] for _call in range(3)]
    assert [r['round']['index'] for r in results] == [1, 2, 3]
    assert results[-1]['finished'] is True and results[-1]['confirm']['decided'] is False


def test_a_watch_that_moved_wins_over_a_decision(tmp_path):
    gate = Gate(tmp_path, {'precision': [OK]}, watch=moved_at(0), confirm=decided_at(0))
    result, _slept, fetched = gate.call()
    assert (result['verdict'], result['finished'], fetched) == ('aborted', True, 0)
    assert result['confirm']['decided'] is False
