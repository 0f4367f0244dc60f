"""Table-driven tests of the metric_gate logic: evaluation, validation, the sampling loop (no network, no real time)."""

import jmespath
import pytest

from ansible_collections.supersmartmatch.platform.plugins.module_utils import metric_gate as mg
from metric_gate_fakes import E, FakeTime, T0, check, gate, outcomes, ratio_check

NAN = float('nan')
INF = float('inf')


# --------------------------------------------------------------------------
# evaluate_value: outcomes, inclusive bounds, no data, ratios
# --------------------------------------------------------------------------

@pytest.mark.parametrize('bounds, value, outcome, text', [
    (dict(min=0.94), 0.94, 'passed', 'within value >= 0.94'),          # min is inclusive
    (dict(min=0.94), 0.9399, 'failed', '0.9399 < min 0.94'),
    (dict(min=0.94), 0.912, 'failed', '0.912 < min 0.94'),
    (dict(max=0.5), 0.5, 'passed', 'within value <= 0.5'),             # max is inclusive
    (dict(max=0.5), 0.5001, 'failed', '0.5001 > max 0.5'),
    (dict(min=0.9, max=1), 1.0, 'passed', '0.9 <= value <= 1'),
    (dict(min=0.9, max=1), 0.9, 'passed', ''),
    (dict(min=0.9, max=1), 1.01, 'failed', '1.01 > max 1'),
    (dict(min=0, max=0), 0, 'passed', ''),
    (dict(max=0.5), INF, 'failed', '+Inf > max 0.5'),
    (dict(min=0.5), -INF, 'failed', '-Inf < min 0.5'),
    (dict(min=-1), -0.5, 'passed', ''),
    (dict(min=0.94), 0.93996, 'failed', '0.93996 < min 0.94'),         # digits added, never "0.94 < min 0.94"
    (dict(min=0.94), 0.912345, 'failed', '0.9123 < min 0.94'),         # 4 significant digits
])
def test_evaluate_value_bounds(bounds, value, outcome, text):
    got, message = mg.evaluate_value(check(**bounds), value)
    assert got == outcome
    assert text in message


@pytest.mark.parametrize('value, policy, outcome, text', [
    (None, 'inconclusive', 'inconclusive', 'no data (query returned no value), on_no_data=inconclusive'),
    (None, 'fail', 'failed', 'on_no_data=fail'),
    (None, 'pass', 'passed', 'on_no_data=pass'),
    (NAN, 'inconclusive', 'inconclusive', 'no data (value is NaN)'),
    (NAN, 'fail', 'failed', 'value is NaN'),
    (NAN, 'pass', 'passed', 'value is NaN'),
])
def test_evaluate_value_no_data(value, policy, outcome, text):
    got, message = mg.evaluate_value(check(min=0.94), value, on_no_data=policy)
    assert (got, text in message) == (outcome, True)


@pytest.mark.parametrize('bounds, value, baseline, outcome, text', [
    (dict(max_ratio=1.2), 0.12, 0.1, 'passed', 'ratio 1.2'),                 # ratio == max_ratio passes
    (dict(max_ratio=1.2), 0.1201, 0.1, 'failed', 'ratio 1.201 > max_ratio 1.2'),
    (dict(max_ratio=1.2), 0.05, 0.1, 'passed', ''),
    (dict(min_ratio=0.9), 0.09, 0.1, 'passed', ''),                          # ratio == min_ratio passes
    (dict(min_ratio=0.9), 0.0899, 0.1, 'failed', 'ratio 0.899 < min_ratio 0.9'),
    (dict(min_ratio=0.5, max_ratio=2), 0.3, 0.1, 'failed', 'ratio 3 > max_ratio 2'),
    (dict(max_ratio=1.2), 0.1, 0, 'inconclusive', 'baseline is 0: ratio undefined'),
    (dict(max_ratio=1.2), 0.0, 0.0, 'inconclusive', 'baseline is 0'),
    (dict(max_ratio=1.2), 0.1, None, 'inconclusive', 'baseline has no data (no value)'),
    (dict(max_ratio=1.2), 0.1, NAN, 'inconclusive', 'baseline has no data (NaN)'),
    (dict(max_ratio=1.2, max=0.5), 0.6, 0, 'failed', '0.6 > max 0.5'),      # absolute bound wins over baseline 0
    (dict(max_ratio=1.2, max=0.5), 0.6, 0.55, 'failed', '0.6 > max 0.5'),
    (dict(max_ratio=1.2, max=0.5), 0.4, 0.2, 'failed', 'ratio 2 > max_ratio 1.2'),
    (dict(max_ratio=1.2), 0.1, -0.1, 'passed', ''),                          # negative ratio is below max
])
def test_evaluate_value_ratio(bounds, value, baseline, outcome, text):
    got, message = mg.evaluate_value(ratio_check(**bounds), value, baseline)
    assert got == outcome, message
    assert text in message


def test_evaluate_value_ratio_no_value_uses_no_data_policy():
    assert mg.evaluate_value(ratio_check(max_ratio=1.2), None, 0.1, 'fail')[0] == 'failed'


# --------------------------------------------------------------------------
# Validation: bad input fails before any request
# --------------------------------------------------------------------------

def params(**extra):
    base = dict(provider='prometheus', url='http://prom:9090', checks=[dict(name='precision', query='q', min=0.94)],
                count=1, interval=60.0, initial_delay=0.0, failure_limit=0, consecutive_error_limit=4,
                error_retry_interval=10.0, timeout=10.0, on_no_data='inconclusive')
    base.update(extra)
    return base


@pytest.mark.parametrize('extra, message', [
    (dict(count=0), 'count must be >= 1, got 0'),
    (dict(count=-3), 'count must be >= 1'),
    (dict(interval=-1), 'interval must be >= 0, got -1'),
    (dict(interval=float('nan')), 'interval must be a finite number'),
    (dict(initial_delay=-0.5), 'initial_delay must be >= 0'),
    (dict(error_retry_interval=-1), 'error_retry_interval must be >= 0'),
    (dict(timeout=0), 'timeout must be > 0'),
    (dict(failure_limit=-1), 'failure_limit must be >= 0'),
    (dict(consecutive_error_limit=0), 'consecutive_error_limit must be >= 1'),
    (dict(count=True), 'count must be a number'),
    (dict(provider='graphite'), 'provider must be one of prometheus, http_json'),
    (dict(on_no_data='maybe'), 'on_no_data must be one of fail, pass, inconclusive'),
    (dict(url='ftp://prom'), 'url must be an http:// or https:// URL'),
    (dict(url=None), 'url is required'),
    (dict(checks=[]), 'checks must be a non-empty list'),
    (dict(checks=['q']), 'checks[0] must be a dict'),
    (dict(checks=[dict(query='q', min=1)]), 'checks[0]: name is required'),
    (dict(checks=[dict(name='a', min=1)]), "check 'a': query must be a non-empty PromQL query"),
    (dict(checks=[dict(name='a', query='q')]), "check 'a' needs at least one of min, max, min_ratio, max_ratio"),
    (dict(checks=[dict(name='a', query='q', min=2, max=1)]), "check 'a': min 2 is greater than max 1"),
    (dict(checks=[dict(name='a', query='q', maximum=1)]), "checks[0]: unknown key(s) maximum"),
    (dict(checks=[dict(name='a', query='q', min='high')]), "check 'a': min must be a finite number, got 'high'"),
    (dict(checks=[dict(name='a', query='q', min=True)]), 'min must be a finite number'),
    (dict(checks=[dict(name='a', query='q', max='nan')]), 'max must be a finite number'),
    (dict(checks=[dict(name='a', query='q', max_ratio=1.2)]), "check 'a': min_ratio/max_ratio need a baseline_query"),
    (dict(checks=[dict(name='a', query='q', baseline_query='b', max=1)]), 'baseline_query needs min_ratio'),
    (dict(checks=[dict(name='a', query='q', baseline_query='b', max_ratio=-1)]), 'max_ratio must be >= 0'),
    (dict(checks=[dict(name='a', query='q', baseline_query='b', min_ratio=2, max_ratio=1)]),
     'min_ratio 2 is greater than max_ratio 1'),
    (dict(checks=[dict(name='a', query='q', min=1, url='prom:9090')]), "check 'a': url must be an http"),
    (dict(checks=[dict(name='a', query='q', min=1), dict(name='a', query='r', max=1)]), "'a' appears twice"),
    (dict(checks=[dict(name='a', query='q', min=1, on_no_data='maybe')]),
     "check 'a': on_no_data must be one of fail, pass, inconclusive, got 'maybe'"),
    (dict(checks=[dict(name='a', query='q', min=1, initial_delay=-1)]), "check 'a': initial_delay must be >= 0, got -1"),
    (dict(checks=[dict(name='a', query='q', min=1, initial_delay='soon')]), "check 'a': initial_delay must be a number"),
    (dict(count=3, interval=10, checks=[dict(name='a', query='q', min=1, initial_delay=25)]),
     "check 'a': initial_delay 25 leaves it no sample round (the last of 3 rounds starts 20 s after the first)"),
    (dict(count=1, checks=[dict(name='a', query='q', min=1, initial_delay=5)]), 'leaves it no sample round'),
])
def test_validate_params_rejects(extra, message):
    with pytest.raises(mg.GateError) as err:
        mg.validate_params(params(**extra))
    assert message in str(err.value)


def test_validate_params_rejects_bad_jmespath_before_any_request():
    with pytest.raises(mg.GateError) as err:
        mg.validate_params(params(provider='http_json', checks=[dict(name='h', query='status ==', min=1)]),
                           jmespath.compile)
    assert "check 'h': invalid JMESPath expression in query 'status =='" in str(err.value)


def test_validate_params_normalises():
    settings = mg.validate_params(params(count='3', interval='0.1', checks=[
        dict(name=' p95 ', query=' q ', baseline_query='b', max_ratio='1.2', max=2)]))
    assert settings['count'] == 3 and settings['interval'] == 0.1
    assert settings['checks'] == [dict(name='p95', provider='prometheus', query='q', baseline_query='b', min=None, max=2.0,
                                       min_ratio=None, max_ratio=1.2, url=None, baseline_url=None,
                                       on_no_data=None, initial_delay=0.0)]


@pytest.mark.parametrize('bounds, text', [
    (dict(min=0.94), 'value >= 0.94'),
    (dict(max=0.5), 'value <= 0.5'),
    (dict(min=0.9, max=1), '0.9 <= value <= 1'),
])
def test_threshold_text(bounds, text):
    assert mg.threshold_text(check(**bounds)) == text


def test_threshold_text_ratio():
    assert mg.threshold_text(ratio_check(max=2, min_ratio=0.5, max_ratio=1.2)) == \
        'value <= 2 and 0.5 <= value/baseline <= 1.2'


def test_max_duration():
    settings = dict(initial_delay=30, interval=60, count=3, error_retry_interval=10)
    assert mg.max_duration(settings) == 150
    assert mg.max_duration(settings, errors=2) == 170


# --------------------------------------------------------------------------
# run_gate: sampling, limits, early stop
# --------------------------------------------------------------------------

OK, LOW, HIGH = 0.97, 0.5, 0.99

RUN_CASES = [
    # id, script for 'precision' (min 0.94), options, verdict, outcomes, sleeps, stopped_early
    ('all pass', [OK], dict(count=3), 'passed', ['passed'] * 3, [60, 60], False),
    ('count 1 no sleep', [OK], dict(count=1), 'passed', ['passed'], [], False),
    ('initial delay honoured', [OK], dict(count=2, initial_delay=30), 'passed', ['passed'] * 2, [30, 60], False),
    ('float interval', [OK], dict(count=3, interval=0.1), 'passed', ['passed'] * 3, [0.1, 0.1], False),
    ('zero interval', [OK], dict(count=3, interval=0), 'passed', ['passed'] * 3, [], False),
    ('first failure fails (limit 0)', [LOW, OK], dict(count=3), 'failed', ['failed'], [], True),
    ('failure at last sample', [OK, OK, LOW], dict(count=3), 'failed', ['passed', 'passed', 'failed'], [60, 60],
     False),
    ('failed == limit passes', [LOW, OK, OK], dict(count=3, failure_limit=1), 'passed', ['failed', 'passed', 'passed'],
     [60, 60], False),
    ('failed == limit + 1 fails early', [LOW, LOW, OK], dict(count=3, failure_limit=1), 'failed',
     ['failed', 'failed'], [60], True),
    ('limit 2, three failures', [LOW, OK, LOW, LOW, OK], dict(count=5, failure_limit=2), 'failed',
     ['failed', 'passed', 'failed', 'failed'], [60, 60, 60], True),
    ('errors retried, not a sample', [E, E, E, OK, OK], dict(count=2), 'passed',
     ['error', 'error', 'error', 'passed', 'passed'], [10, 10, 10, 60], False),
    ('error limit reached', [E], dict(count=3), 'error', ['error'] * 4, [10, 10, 10], True),
    ('error limit 1', [E], dict(count=3, consecutive_error_limit=1), 'error', ['error'], [], True),
    ('error limit 2', [E, E, OK], dict(count=1, consecutive_error_limit=2), 'error', ['error', 'error'], [10], False),
    ('good measurement resets errors', [E, E, E, OK, E, E, E, OK, E, E, E, OK], dict(count=3), 'passed',
     (['error'] * 3 + ['passed']) * 3, [10, 10, 10, 60, 10, 10, 10, 60, 10, 10, 10], False),
    ('failed measurement resets errors too', [E, E, E, LOW, E, E, E, OK], dict(count=2, failure_limit=1), 'passed',
     ['error'] * 3 + ['failed'] + ['error'] * 3 + ['passed'], [10, 10, 10, 60, 10, 10, 10], False),
    ('inconclusive resets errors too', [E, E, E, None, E, E, E, OK], dict(count=2), 'inconclusive',
     ['error'] * 3 + ['inconclusive'] + ['error'] * 3 + ['passed'], [10, 10, 10, 60, 10, 10, 10], False),
    ('no data inconclusive (default)', [None, OK], dict(count=2), 'inconclusive', ['inconclusive', 'passed'], [60],
     False),
    ('NaN inconclusive', [NAN], dict(count=2), 'inconclusive', ['inconclusive'] * 2, [60], False),
    ('no data fail', [None, OK], dict(count=2, on_no_data='fail'), 'failed', ['failed'], [], True),
    ('no data fail within limit', [None, OK], dict(count=2, on_no_data='fail', failure_limit=1), 'passed',
     ['failed', 'passed'], [60], False),
    ('no data pass', [None], dict(count=2, on_no_data='pass'), 'passed', ['passed'] * 2, [60], False),
    ('inconclusive then failed -> failed', [None, LOW], dict(count=3), 'failed', ['inconclusive', 'failed'], [60],
     True),
    ('failure then error budget irrelevant', [LOW], dict(count=2, failure_limit=5), 'passed', ['failed'] * 2, [60],
     False),
]


@pytest.mark.parametrize('script, options, verdict, expected, sleeps, early',
                         [case[1:] for case in RUN_CASES], ids=[case[0] for case in RUN_CASES])
def test_run_gate(script, options, verdict, expected, sleeps, early):
    result, fetch, fake = gate({'precision': script}, **options)
    assert result['verdict'] == verdict
    assert outcomes(result) == expected
    assert fake.sleeps == pytest.approx(sleeps)
    assert result['stopped_early'] is early
    assert len(fetch.calls) == len(expected)


def test_per_check_initial_delay_skips_early_rounds_only_for_that_check():
    checks = [check('health', min=1), check('precision', min=0.94, initial_delay=20)]
    result, fetch, fake = gate({'health': [1], 'precision': [OK]}, checks=checks, count=4, interval=10)
    assert result['verdict'] == 'passed'
    assert [(m['check'], m['sample']) for m in result['measurements']] == [
        ('health', 1), ('health', 2), ('health', 3), ('precision', 3), ('health', 4), ('precision', 4)]
    assert result['summary']['precision']['measurements'] == 2
    assert fake.sleeps == pytest.approx([10, 10, 10])


def test_per_check_initial_delay_counts_from_the_first_round_not_from_the_gate_delay():
    checks = [check('health', min=1), check('precision', min=0.94, initial_delay=10)]
    result, _fetch, fake = gate({'health': [1], 'precision': [LOW]}, checks=checks, count=3, interval=10,
                                initial_delay=30)
    assert result['verdict'] == 'failed'
    assert [(m['check'], m['sample']) for m in result['measurements']] == [
        ('health', 1), ('health', 2), ('precision', 2)]
    assert fake.sleeps == pytest.approx([30, 10])


@pytest.mark.parametrize('start_in, initial_delay, sleeps', [
    (25, 0, [25, 10]),        # anchored 25 s from now
    (-5, 0, [10]),            # the anchor is past: no wait
    (10, 30, [30, 10]),       # the later of the two waits wins
    (None, 0, [10]),
])
def test_start_at_anchors_the_first_round(start_in, initial_delay, sleeps):
    fake = FakeTime()
    start_at = None if start_in is None else T0 + start_in
    result, _fetch, fake = gate({'precision': [OK]}, fake=fake, count=2, interval=10, initial_delay=initial_delay,
                                start_at=start_at)
    assert result['verdict'] == 'passed'
    assert fake.sleeps == pytest.approx(sleeps)


def test_validate_params_start_at():
    assert mg.validate_params(params())['start_at'] is None
    assert mg.validate_params(params(start_at='1700000000.5'))['start_at'] == 1700000000.5
    with pytest.raises(mg.GateError, match='start_at must be >= 0'):
        mg.validate_params(params(start_at=-1))


def test_per_check_on_no_data_overrides_the_gate_policy():
    checks = [check('health', min=1, on_no_data='fail'), check('precision', min=0.94)]
    result, _fetch, _fake = gate({'health': [1], 'precision': [None]}, checks=checks, count=2, interval=1)
    assert result['verdict'] == 'inconclusive'  # precision: gate policy (inconclusive)
    result, _fetch, _fake = gate({'health': [None], 'precision': [OK]}, checks=checks, count=2, interval=1)
    assert result['verdict'] == 'failed' and result['summary']['health']['failed'] == 1
    message = mg.gate_message(result, checks, name='canary')
    assert message == "metric gate 'canary' failed: health no data x1 (on_no_data=fail) in 1 of 1 measurements"


def test_a_check_never_measured_is_inconclusive_not_passed():
    checks = [check('health', min=1), check('precision', min=0.94, initial_delay=10)]
    result, _fetch, _fake = gate({'health': [mg.ProviderError('down')], 'precision': [OK]}, checks=checks, count=2,
                                 interval=10, consecutive_error_limit=1)
    assert result['verdict'] == 'error'
    assert result['summary']['precision']['verdict'] == 'inconclusive'
    summary = {'health': dict(result['summary']['health'], error_limit_reached=False), 'precision':
               result['summary']['precision']}
    assert mg.verdict_of(summary) == 'inconclusive'
    assert mg.inconclusive_message(checks[1], result['measurements']) == 'precision was never measured'


def test_run_gate_interval_from_round_start_not_end():
    # each request takes 2 s of fake time: rounds still start 60 s apart
    result, fetch, fake = gate({'precision': [OK]}, count=3, cost=2.0)
    assert fake.sleeps == [58.0, 58.0]
    assert [m['time'] for m in result['measurements']] == [
        mg.iso_utc(T0), mg.iso_utc(T0 + 60), mg.iso_utc(T0 + 120)]


def test_run_gate_after_retries_interval_counts_from_last_attempt():
    result, fetch, fake = gate({'precision': [E, OK]}, count=2, cost=1.0)
    # t=0 error (1 s), sleep 10, t=11 ok (1 s), next round at 11 + 60 = 71
    assert fake.sleeps == [10.0, 59.0]
    assert result['measurements'][-1]['time'] == mg.iso_utc(T0 + 71)
    assert result['samples'] == 2


def test_run_gate_total_time_bound():
    settings = dict(initial_delay=5.0, interval=60.0, count=3, error_retry_interval=10.0)
    result, fetch, fake = gate({'precision': [E, OK, E, E, OK, OK]}, **settings)
    errors = outcomes(result).count('error')
    assert errors == 3
    assert fake.t == pytest.approx(mg.max_duration(settings, errors))


def test_run_gate_time_is_iso_utc():
    result, fetch, fake = gate({'precision': [OK]})
    assert result['measurements'][0]['time'] == '2023-11-14T22:13:20.000+00:00'


def test_run_gate_measurements_and_summary():
    checks = [check('precision', min=0.94), check('errors', max=0.01)]
    result, fetch, fake = gate({'precision': [OK, 0.95], 'errors': [0.0, E, 0.005]}, checks, count=2)
    assert result['verdict'] == 'passed'
    assert [(m['check'], m['sample'], m['outcome']) for m in result['measurements']] == [
        ('precision', 1, 'passed'), ('errors', 1, 'passed'),
        ('precision', 2, 'passed'), ('errors', 2, 'error'), ('errors', 2, 'passed')]
    # only the erroring check is retried within the round
    assert [query for query, url in fetch.calls] == ['precision', 'errors', 'precision', 'errors', 'errors']
    assert fake.sleeps == [60, 10]
    errors = result['summary']['errors']
    assert (errors['passed'], errors['failed'], errors['inconclusive'], errors['error']) == (2, 0, 0, 1)
    assert errors['measurements'] == 2 and errors['last_value'] == 0.005 and errors['threshold'] == 'value <= 0.01'
    assert errors['last_error'].startswith('HTTP 500') and errors['verdict'] == 'passed'
    assert result['summary']['precision']['last_value'] == 0.95
    assert result['measurements'][3] == dict(check='errors', sample=2, time=mg.iso_utc(T0 + 60), value=None,
                                             outcome='error', message=str(E))


def test_run_gate_error_limit_is_per_check():
    checks = [check('precision', min=0.94), check('errors', max=0.01)]
    result, fetch, fake = gate({'precision': [OK], 'errors': [E]}, checks, count=3, consecutive_error_limit=2)
    assert result['verdict'] == 'error'
    assert result['summary']['errors']['verdict'] == 'error'
    assert result['summary']['errors']['error_limit_reached'] is True
    assert result['summary']['precision']['verdict'] == 'passed'
    assert outcomes(result) == ['passed', 'error', 'error']


def test_run_gate_early_stop_skips_remaining_checks():
    checks = [check('precision', min=0.94), check('errors', max=0.01)]
    result, fetch, fake = gate({'precision': [LOW], 'errors': [0.0]}, checks, count=5)
    assert result['verdict'] == 'failed' and result['stopped_early'] is True
    assert fetch.calls == [('precision', None)]
    assert result['samples'] == 1 and fake.sleeps == []


def test_run_gate_ratio_check_fetches_baseline():
    checks = [mg.normalize_check(dict(name='p95', query='cand', baseline_query='stable', max_ratio=1.2,
                                      url='http://a:1', baseline_url='http://b:2'), 0)]
    result, fetch, fake = gate({'cand': [0.3, 0.1, 0.5], 'stable': [0.25, 0, 0.25]}, checks, count=3, failure_limit=5)
    assert outcomes(result) == ['passed', 'inconclusive', 'failed']
    assert [m['baseline'] for m in result['measurements']] == [0.25, 0.0, 0.25]
    assert fetch.calls[:2] == [('cand', 'http://a:1'), ('stable', 'http://b:2')]
    assert result['verdict'] == 'inconclusive'     # failed 1 <= failure_limit 5, but one inconclusive


def test_run_gate_ratio_baseline_error_is_an_error():
    checks = [ratio_check(max_ratio=1.2)]
    result, fetch, fake = gate({'p95': [0.3], 'p95_stable': [E, 0.25]}, checks)
    assert outcomes(result) == ['error', 'passed']
    assert result['measurements'][0]['message'].startswith('baseline: HTTP 500')
    assert result['measurements'][0]['value'] == 0.3


def test_run_gate_ratio_no_value_skips_baseline():
    result, fetch, fake = gate({'p95': [None], 'p95_stable': [0.25]}, [ratio_check(max_ratio=1.2)])
    assert fetch.calls == [('p95', None)] and outcomes(result) == ['inconclusive']


def test_run_gate_infinite_value_is_null_but_reported():
    result, fetch, fake = gate({'lat': [INF]}, [check('lat', max=0.5)])
    assert result['measurements'][0]['value'] is None
    assert mg.public_measurements(result['measurements'])[0].keys() == {
        'check', 'sample', 'time', 'value', 'outcome', 'message'}
    assert mg.failure_message(check('lat', max=0.5), result['measurements']) == \
        'lat +Inf > max 0.5 in 1 of 1 measurements'
