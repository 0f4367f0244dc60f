"""Table-driven tests of the metric_gate logic (no network, no real time)."""
import io
import math
import urllib.error

import jmespath
import pytest

from ansible_collections.supersmartmatch.platform.plugins.module_utils import metric_gate as mg

NAN = float('nan')
INF = float('inf')
T0 = 1700000000.0


class FakeTime(object):
    """clock/now/sleep over one fake timeline; records every sleep."""

    def __init__(self):
        self.t = 0.0
        self.sleeps = []

    def sleep(self, seconds):
        self.sleeps.append(seconds)
        self.t += seconds

    def clock(self):
        return self.t

    def now(self):
        return T0 + self.t


class Script(object):
    """fetch_value fake: per query a list of results (numbers, None, NaN or exceptions).

    The last result repeats once the list is used up. ``cost`` advances the clock per call.
    """

    def __init__(self, script, fake=None, cost=0.0):
        self.script = dict((key, list(values)) for key, values in script.items())
        self.calls = []
        self.providers = []
        self.fake = fake
        self.cost = cost

    def __call__(self, query, url=None, provider=None):
        self.calls.append((query, url))
        self.providers.append(provider)
        if self.fake is not None:
            self.fake.t += self.cost
        values = self.script[query]
        item = values.pop(0) if len(values) > 1 else values[0]
        if isinstance(item, Exception):
            raise item
        return item


E = mg.ProviderError('HTTP 500 Internal Server Error from http://prom/api/v1/query')


def check(name='precision', **bounds):
    return mg.normalize_check(dict(dict(name=name, query=name), **bounds), 0)


def ratio_check(**bounds):
    return mg.normalize_check(dict(dict(name='p95', query='p95', baseline_query='p95_stable'), **bounds), 0)


def gate(script, checks=None, fake=None, cost=0.0, **options):
    fake = fake or FakeTime()
    fetch = Script(script, fake, cost)
    options.setdefault('interval', 60.0)
    options.setdefault('error_retry_interval', 10.0)
    result = mg.run_gate(checks or [check(min=0.94)], fetch, sleep=fake.sleep, clock=fake.clock, now=fake.now,
                         **options)
    return result, fetch, fake


def outcomes(result):
    return [m['outcome'] for m in result['measurements']]


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
# Extraction
# --------------------------------------------------------------------------

def prom(result, result_type='vector'):
    return {'status': 'success', 'data': {'resultType': result_type, 'result': result}}


def series(value, **labels):
    return {'metric': labels, 'value': [1700000000.0, value]}


@pytest.mark.parametrize('doc, expected', [
    (prom([series('0.97')]), 0.97),
    (prom([series('0')]), 0.0),
    (prom([series('1e3')]), 1000.0),
    (prom([series('+Inf')]), INF),
    (prom([]), None),
    (prom([1700000000.0, '42'], 'scalar'), 42.0),
])
def test_extract_prometheus(doc, expected):
    assert mg.extract_prometheus(doc) == expected


def test_extract_prometheus_nan_is_nan():
    assert math.isnan(mg.extract_prometheus(prom([series('NaN')])))


@pytest.mark.parametrize('doc, message', [
    (prom([series('1', pod='a'), series('2', pod='b')]), 'query returned 2 series, expected 1'),
    (prom([series('1'), series('2'), series('3')]), 'query returned 3 series, expected 1'),
    ({'status': 'error', 'errorType': 'bad_data', 'error': 'parse error at char 5'},
     'Prometheus error bad_data: parse error at char 5'),
    ({'status': 'weird'}, "status 'weird'"),
    ({'status': 'success'}, 'no data object'),
    (prom([{'metric': {}, 'values': [[1, '1']]}], 'matrix'), 'range vector'),
    (prom([1, 'x'], 'string'), "resultType 'string'"),
    (prom([series('abc')]), "Prometheus vector value is not a number: 'abc'"),
    (prom([{'metric': {}, 'value': [1]}]), 'malformed vector sample'),
    (prom({'x': 1}), 'vector result is not a list'),
    ([1, 2], 'not a JSON object'),
])
def test_extract_prometheus_errors(doc, message):
    with pytest.raises(mg.ProviderError) as err:
        mg.extract_prometheus(doc)
    assert message in str(err.value)


HEALTH = {'status': 'ok', 'up': 1, 'version': '2.0.0', 'ratio': '0.97', 'items': [{'n': 'a', 'v': 3}, {'n': 'b', 'v': 4}],
          'nothing': None, 'empty': [], 'nested': {'p95': 0.25}}


@pytest.mark.parametrize('expr, expected', [
    ('up', 1.0),
    ('nested.p95', 0.25),
    ("status == 'ok'", 1.0),
    ("status == 'down'", 0.0),
    ('ratio', 0.97),
    ("items[?n=='a'].v", 3.0),            # one-element list is unwrapped
    ("items[?n=='zzz'].v", None),         # empty list is no data
    ('missing', None),
    ('nothing', None),
    ('empty', None),
    ('length(items)', 2.0),
])
def test_extract_json(expr, expected):
    assert mg.extract_json(HEALTH, expr, jmespath.search) == expected


@pytest.mark.parametrize('expr, message', [
    ('status', "JMESPath 'status' result is not a number: 'ok'"),
    ('version', 'is not a number'),
    ('nested', 'is not a number: {"p95": 0.25}'),
    ('items[].v', "JMESPath 'items[].v' returned 2 values, expected 1"),
    ('abs(status)', "JMESPath 'abs(status)' failed"),
])
def test_extract_json_errors(expr, message):
    with pytest.raises(mg.ProviderError) as err:
        mg.extract_json(HEALTH, expr, jmespath.search)
    assert message in str(err.value)


def test_extract_json_nan():
    assert math.isnan(mg.extract_json({'v': NAN}, 'v'))


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


# --------------------------------------------------------------------------
# Verdict precedence and messages
# --------------------------------------------------------------------------

def counts(passed=0, failed=0, inconclusive=0, error=0, limit=False):
    return dict(passed=passed, failed=failed, inconclusive=inconclusive, error=error, error_limit_reached=limit,
                measurements=passed + failed + inconclusive)


@pytest.mark.parametrize('summary, failure_limit, verdict', [
    ({'a': counts(passed=3)}, 0, 'passed'),
    ({'a': counts(passed=3, error=3)}, 0, 'passed'),                               # retried errors do not count
    ({'a': counts(passed=2, failed=1)}, 0, 'failed'),
    ({'a': counts(passed=2, failed=1)}, 1, 'passed'),
    ({'a': counts(passed=1, failed=2)}, 1, 'failed'),
    ({'a': counts(passed=2, inconclusive=1)}, 0, 'inconclusive'),
    ({'a': counts(failed=1, inconclusive=1)}, 0, 'failed'),                        # failed > inconclusive
    ({'a': counts(failed=1, inconclusive=1)}, 1, 'inconclusive'),
    ({'a': counts(passed=1), 'b': counts(inconclusive=1)}, 0, 'inconclusive'),
    ({'a': counts(failed=1), 'b': counts(inconclusive=1)}, 0, 'failed'),
    ({'a': counts(failed=5), 'b': counts(error=4, limit=True)}, 0, 'error'),        # error > failed
    ({'a': counts(inconclusive=1), 'b': counts(error=4, limit=True)}, 0, 'error'),
    ({'a': counts(passed=1), 'b': counts(error=4, limit=True)}, 0, 'error'),
    ({'a': counts(passed=3), 'b': counts()}, 0, 'inconclusive'),                   # never measured: no evidence
    ({'a': counts(passed=3), 'b': counts(error=2)}, 0, 'inconclusive'),            # only errors, limit not reached
])
def test_verdict_of(summary, failure_limit, verdict):
    assert mg.verdict_of(summary, failure_limit) == verdict


@pytest.mark.parametrize('verdict, allow, failed', [
    ('passed', False, False), ('passed', True, False), ('failed', True, True), ('error', True, True),
    ('inconclusive', False, True), ('inconclusive', True, False),
])
def test_task_failed(verdict, allow, failed):
    assert mg.task_failed(verdict, allow) is failed


def fake_measurements(name, values, outcome='failed', baselines=None):
    out = []
    for index, value in enumerate(values):
        item = dict(check=name, value=value, outcome=outcome, message='no data' if value is None else '')
        if baselines is not None:
            item['baseline'] = baselines[index]
        out.append(item)
    return out


@pytest.mark.parametrize('the_check, measurements, on_no_data, text', [
    (check(min=0.94), fake_measurements('precision', [0.912, 0.918, 0.905]), 'inconclusive',
     'precision 0.912, 0.918, 0.905 < min 0.94 in 3 of 3 measurements'),
    (check(min=0.94), fake_measurements('precision', [0.912]) + fake_measurements('precision', [0.97], 'passed'),
     'inconclusive', 'precision 0.912 < min 0.94 in 1 of 2 measurements'),
    (check(min=0.94), fake_measurements('precision', [0.9123456]), 'inconclusive',
     'precision 0.9123 < min 0.94 in 1 of 1 measurements'),
    (check(min=0.94), fake_measurements('other', [0.1]) + fake_measurements('precision', [0.9]), 'inconclusive',
     'precision 0.9 < min 0.94 in 1 of 1 measurements'),
    (check(min=0.94), fake_measurements('precision', [0.9]) + fake_measurements('precision', [None], 'error'),
     'inconclusive', 'precision 0.9 < min 0.94 in 1 of 1 measurements'),              # errors are not counted
    (check('latency', max=0.5), fake_measurements('latency', [0.52, 123456.0]), 'inconclusive',
     'latency 0.52, 1.235e+05 > max 0.5 in 2 of 2 measurements'),
    (check(min=0.9, max=1), fake_measurements('precision', [0.8, 1.2]), 'inconclusive',
     'precision 0.8 < min 0.9 and 1.2 > max 1 in 2 of 2 measurements'),
    (check(min=0.94), fake_measurements('precision', [None, None]), 'fail',
     'precision no data x2 (on_no_data=fail) in 2 of 2 measurements'),
    (ratio_check(max_ratio=1.2), fake_measurements('p95', [0.3, 0.4], baselines=[0.2, 0.25]), 'inconclusive',
     'p95 ratio 1.5, 1.6 > max_ratio 1.2 in 2 of 2 measurements'),
])
def test_failure_message(the_check, measurements, on_no_data, text):
    assert mg.failure_message(the_check, measurements, on_no_data) == text


def test_failure_message_caps_long_lists():
    text = mg.failure_message(check(min=0.94), fake_measurements('precision', [0.5] * 12))
    assert text == 'precision %s, ... (2 more) < min 0.94 in 12 of 12 measurements' % ', '.join(['0.5'] * 10)


def message_of(script, checks=None, allow=False, name='canary', labels=None, **options):
    checks = checks or [check(min=0.94)]
    result, fetch, fake = gate(script, checks, **options)
    return result['verdict'], mg.gate_message(
        result, checks, name=name, labels=labels, failure_limit=options.get('failure_limit', 0),
        consecutive_error_limit=options.get('consecutive_error_limit', 4),
        on_no_data=options.get('on_no_data', 'inconclusive'), allow_inconclusive=allow)


@pytest.mark.parametrize('script, options, verdict, text', [
    ({'precision': [0.912, 0.918, 0.905]}, dict(count=3, failure_limit=2), 'failed',
     "metric gate 'canary' failed: precision 0.912, 0.918, 0.905 < min 0.94 in 3 of 3 measurements"),
    ({'precision': [OK]}, dict(count=2), 'passed',
     "metric gate 'canary' passed: 1 check(s), 2 measurement(s) within thresholds"),
    ({'precision': [LOW, OK]}, dict(count=2, failure_limit=1), 'passed',
     "metric gate 'canary' passed: 1 check(s), 2 measurement(s) within thresholds "
     "(tolerated: precision failed 1 (failure_limit 1))"),
    ({'precision': [E]}, dict(count=2), 'error',
     "metric gate 'canary' error: precision: 4 consecutive errors (consecutive_error_limit 4), last: HTTP 500"),
    ({'precision': [None, OK]}, dict(count=2), 'inconclusive',
     "metric gate 'canary' inconclusive: precision inconclusive in 1 of 2 measurements "
     "(no data (query returned no value), on_no_data=inconclusive) (set allow_inconclusive to accept)"),
])
def test_gate_message(script, options, verdict, text):
    got, message = message_of(script, **options)
    assert got == verdict
    assert message.startswith(text), message


def test_gate_message_names_every_failing_check_and_labels():
    checks = [check('precision', min=0.94), check('errors', max=0.01), check('ok', max=1)]
    verdict, message = message_of({'precision': [0.9, 0.91], 'errors': [0.02, 0.03], 'ok': [0.5]}, checks,
                                  labels={'version': '2.0.0', 'service': 'ssm'}, count=2, failure_limit=1)
    assert verdict == 'failed'
    assert message == ("metric gate 'canary' (service=ssm, version=2.0.0) failed: "
                       "precision 0.9, 0.91 < min 0.94 in 2 of 2 measurements")
    # errors had only one failure when the gate stopped; it is not at fault yet


def test_gate_message_inconclusive_allowed():
    verdict, message = message_of({'precision': [None]}, allow=True, name=None)
    assert message.startswith('metric gate inconclusive: ') and message.endswith('(allowed)')


# --------------------------------------------------------------------------
# HTTP layer with a fake opener
# --------------------------------------------------------------------------

class Response(object):
    def __init__(self, body):
        self.body = body
        self.closed = False

    def read(self, size=-1):
        return self.body if size < 0 else self.body[:size]

    def close(self):
        self.closed = True


def opener_returning(outcome, seen=None):
    def opener(url, **kwargs):
        if seen is not None:
            seen.append((url, kwargs))
        if isinstance(outcome, Exception):
            raise outcome
        return Response(outcome)
    return opener


def http_error(code, body):
    return urllib.error.HTTPError('http://prom/x', code, 'Bad Request' if code == 400 else 'Server Error', {},
                                  io.BytesIO(body))


@pytest.mark.parametrize('outcome, message', [
    (http_error(500, b'<html>boom</html>'), 'HTTP 500 Server Error from http://prom:9090/q: <html>boom</html>'),
    (http_error(400, b'{"status":"error","errorType":"bad_data","error":"parse error"}'),
     'HTTP 400 Bad Request from http://prom:9090/q: bad_data: parse error'),
    (urllib.error.URLError(ConnectionRefusedError(111, 'Connection refused')),
     'cannot reach http://prom:9090/q: [Errno 111] Connection refused'),
    (TimeoutError('timed out'), 'cannot reach http://prom:9090/q: timed out'),
    (b'{"status": ', 'bad JSON from http://prom:9090/q'),
    (b'<html>', "body starts '<html>'"),
])
def test_fetch_json_errors(outcome, message):
    fetch = mg.make_fetch_json(opener_returning(outcome))
    with pytest.raises(mg.ProviderError) as err:
        fetch('http://u:secret@prom:9090/q')
    assert message in str(err.value)
    assert 'secret' not in str(err.value)


def test_fetch_json_passes_options():
    seen = []
    fetch = mg.make_fetch_json(opener_returning(b'{"up": 1}', seen), timeout=2.5, headers={'X-Token': 't'},
                               validate_certs=False, ca_path='/ca.pem')
    assert fetch('http://h/health') == {'up': 1}
    url, kwargs = seen[0]
    assert url == 'http://h/health'
    assert kwargs['timeout'] == 2.5 and kwargs['validate_certs'] is False and kwargs['ca_path'] == '/ca.pem'
    assert kwargs['headers'] == {'Accept': 'application/json', 'X-Token': 't'} and kwargs['method'] == 'GET'


@pytest.mark.parametrize('base, query, url', [
    ('http://prom:9090', 'up', 'http://prom:9090/api/v1/query?query=up'),
    ('http://prom:9090/', 'sum(rate(x{a="b"}[5m]))',
     'http://prom:9090/api/v1/query?query=sum%28rate%28x%7Ba%3D%22b%22%7D%5B5m%5D%29%29'),
    ('http://prom/prometheus/api/v1/query', 'up', 'http://prom/prometheus/api/v1/query?query=up'),
])
def test_prometheus_query_url(base, query, url):
    assert mg.prometheus_query_url(base, query) == url


def test_fetch_value_providers():
    docs = {'http://prom/api/v1/query?query=up': prom([series('1')]),
            'http://other/api/v1/query?query=up': prom([]),
            'http://h/health': {'status': 'ok', 'up': 1}}
    prom_value = mg.make_fetch_value('prometheus', 'http://prom', docs.__getitem__)
    assert prom_value('up') == 1.0
    assert prom_value('up', 'http://other') is None
    json_value = mg.make_fetch_value('http_json', 'http://h/health', docs.__getitem__, jmespath.search)
    assert json_value("status == 'ok'") == 1.0


def test_fetch_value_per_check_provider():
    docs = {'http://prom/api/v1/query?query=up': prom([series('1')]),
            'http://h/health': {'status': 'ok', 'up': 1}}
    value = mg.make_fetch_value('prometheus', 'http://prom', docs.__getitem__, jmespath.search)
    assert value('up') == 1.0
    assert value("status == 'ok'", 'http://h/health', 'http_json') == 1.0


@pytest.mark.parametrize('item, provider, compiled', [
    (dict(name='health', query='up', min=1, provider='http_json', url='http://h/health'), 'http_json', ['up']),
    (dict(name='p95', query='histogram_quantile(0.95, x)', max=0.2), 'prometheus', []),
])
def test_check_provider_defaults_to_the_gate_and_only_json_is_compiled(item, provider, compiled):
    seen = []
    check_ = mg.normalize_check(item, 0, 'prometheus', compile_expr=seen.append)
    assert check_['provider'] == provider
    assert seen == compiled


def test_check_provider_is_validated():
    with pytest.raises(mg.GateError) as err:
        mg.normalize_check(dict(name='x', query='up', min=1, provider='graphite'), 0)
    assert "check 'x': provider must be one of prometheus, http_json, got 'graphite'" in str(err.value)


def test_run_gate_passes_each_checks_provider():
    checks = [mg.normalize_check(dict(name='health', query='up', min=1, provider='http_json',
                                      url='http://h/health'), 0),
              mg.normalize_check(dict(name='precision', query='precision', min=0.94), 1)]
    result, fetch, fake = gate({'up': [1], 'precision': [0.97]}, checks)
    assert result['verdict'] == 'passed'
    assert fetch.providers == ['http_json', 'prometheus']
