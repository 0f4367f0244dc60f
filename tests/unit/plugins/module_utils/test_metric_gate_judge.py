"""The Kayenta-style judge: Mann-Whitney U and Hodges-Lehmann in pure Python, checked against SciPy."""
import random
import statistics

import pytest
from scipy import stats

from ansible_collections.supersmartmatch.platform.plugins.module_utils import metric_gate as mg
from ansible_collections.supersmartmatch.platform.plugins.module_utils import metric_gate_compare as mc
from ansible_collections.supersmartmatch.platform.plugins.module_utils import metric_gate_judge as judge
from metric_gate_fakes import FakeTime, T0

SEEDED = random.Random(20261129)
NORMAL_A = [round(SEEDED.gauss(0.120, 0.010), 4) for _draw in range(60)]
NORMAL_B = [round(SEEDED.gauss(0.125, 0.010), 4) for _draw in range(45)]

SAMPLES = [
    # id, x, y
    ('small, no ties', [1.1, 2.3, 0.7], [3.2, 4.5, 2.9, 5.0]),
    ('one value each', [1.0], [2.0]),
    ('one against many', [5.0], [1.0, 2.0, 3.0, 4.0, 6.0]),
    ('ties across samples', [1, 2, 2, 3, 3, 3], [2, 3, 3, 4, 4, 5]),
    ('heavy ties', [0, 0, 0, 0, 1, 1], [0, 0, 1, 1, 1, 1, 1]),
    ('identical', [0.2, 0.2, 0.3], [0.2, 0.3, 0.3]),
    ('x all larger', [10, 11, 12, 13, 14, 15, 16, 17, 18, 19], [1, 2, 3, 4, 5, 6, 7, 8, 9, 9.5]),
    ('negative values', [-3.5, -1.0, 0.0, 2.5, -2.0], [-1.5, 0.5, 1.0, -0.5]),
    ('latencies, rounded (ties)', NORMAL_A, NORMAL_B),
    ('same distribution', NORMAL_A[:30], NORMAL_A[30:]),
    ('unequal sizes', NORMAL_A[:12], NORMAL_B),
]


@pytest.mark.parametrize('x, y', [case[1:] for case in SAMPLES], ids=[case[0] for case in SAMPLES])
def test_mann_whitney_matches_scipy_asymptotic(x, y):
    mine = judge.mann_whitney_u(x, y)
    theirs = stats.mannwhitneyu(x, y, alternative='two-sided', method='asymptotic', use_continuity=True)
    assert mine['u'] == pytest.approx(float(theirs.statistic), abs=1e-9)
    assert mine['p_value'] == pytest.approx(float(theirs.pvalue), rel=1e-9, abs=1e-12)


@pytest.mark.parametrize('x, y', [case[1:] for case in SAMPLES[:4]], ids=[case[0] for case in SAMPLES[:4]])
def test_mann_whitney_without_continuity_matches_scipy(x, y):
    mine = judge.mann_whitney_u(x, y, continuity=False)
    theirs = stats.mannwhitneyu(x, y, alternative='two-sided', method='asymptotic', use_continuity=False)
    assert mine['p_value'] == pytest.approx(float(theirs.pvalue), rel=1e-9)


def test_all_values_tied_is_no_evidence():
    assert judge.mann_whitney_u([0.0] * 12, [0.0] * 15) == dict(u=90.0, p_value=1.0, z=0.0)


@pytest.mark.parametrize('values, ranks, ties', [
    ([3, 1, 2], [3.0, 1.0, 2.0], [1, 1, 1]),
    ([1, 2, 2, 3], [1.0, 2.5, 2.5, 4.0], [1, 2, 1]),
    ([5, 5, 5], [2.0, 2.0, 2.0], [3]),
])
def test_midranks(values, ranks, ties):
    assert judge.midranks(values) == (ranks, ties)


@pytest.mark.parametrize('x, y', [case[1:] for case in SAMPLES], ids=[case[0] for case in SAMPLES])
def test_hodges_lehmann_estimate_is_the_median_of_pairwise_differences(x, y):
    result = judge.hodges_lehmann(x, y, 0.98)
    diffs = [a - b for a in x for b in y]
    assert result['estimate'] == pytest.approx(statistics.median(diffs))
    assert min(diffs) <= result['lower'] <= result['estimate'] <= result['upper'] <= max(diffs)


@pytest.mark.parametrize('shift', [0.0, 0.01, -0.02])
def test_hodges_lehmann_interval_covers_a_known_shift_and_narrows_with_confidence(shift):
    x = [value + shift for value in NORMAL_A]
    y = NORMAL_A[::-1]
    wide = judge.hodges_lehmann(x, y, 0.99)
    narrow = judge.hodges_lehmann(x, y, 0.80)
    assert wide['lower'] <= narrow['lower'] <= shift <= narrow['upper'] <= wide['upper']
    assert wide['estimate'] == pytest.approx(shift, abs=1e-9)


def test_hodges_lehmann_interval_matches_the_textbook_order_statistics():
    # Hollander & Wolfe: n1 = n2 = 10, 95 %: k = round(50 - 1.96 * sqrt(100 * 21 / 12)) = round(24.07) = 24
    x = list(range(10, 20))
    y = list(range(0, 10))
    diffs = sorted(a - b for a in x for b in y)
    result = judge.hodges_lehmann(x, y, 0.95)
    sigma = judge.u_sigma(10, 10, judge.midranks(x + y)[1])
    assert sigma == pytest.approx((100 * 21 / 12.0) ** 0.5)
    assert (result['lower'], result['upper']) == (diffs[23], diffs[100 - 24])


SLOW = [round(value * 1.4, 4) for value in NORMAL_A]
LITTLE_SLOWER = [round(value * 1.05, 4) for value in NORMAL_A]
FEWER_ERRORS = [round(value * 0.5, 4) for value in NORMAL_A]

JUDGE_CASES = [
    # id, candidate, baseline, options, outcome, reason
    ('40 % slower fails', SLOW, NORMAL_A, dict(max_ratio=1.1), 'failed', 'worse beyond tolerance'),
    ('5 % slower is within a 1.1 tolerance', LITTLE_SLOWER, NORMAL_A, dict(max_ratio=1.1), 'passed', 'within tolerance'),
    ('5 % slower fails a 1.0 tolerance', LITTLE_SLOWER, NORMAL_A, dict(max_ratio=1.0), 'failed', 'worse beyond'),
    ('same release passes', NORMAL_A[:30], NORMAL_A[30:], dict(max_ratio=1.1), 'passed', 'within tolerance'),
    ('faster is not worse when higher is worse', FEWER_ERRORS, NORMAL_A, dict(max_ratio=1.0), 'passed', 'within'),
    ('lower is worse: half fails', FEWER_ERRORS, NORMAL_A, dict(direction='lower_is_worse', min_ratio=0.9), 'failed',
     'worse beyond tolerance'),
    ('lower is worse: higher passes', SLOW, NORMAL_A, dict(direction='lower_is_worse', min_ratio=0.9), 'passed',
     'within'),
    ('too few candidate samples', SLOW[:9], NORMAL_A, dict(max_ratio=1.1), 'inconclusive', 'too few samples'),
    ('too few baseline samples', SLOW, NORMAL_A[:3], dict(max_ratio=1.1), 'inconclusive', 'too few samples'),
    ('no samples at all', [], [], dict(max_ratio=1.1), 'inconclusive', 'too few samples'),
    # 5 against 5: the 98 % interval spans every difference, down to +0.009 < the allowed +0.013: not shown
    ('5 vs 5 cannot show it at 98 %', SLOW[:5], NORMAL_A[:5], dict(max_ratio=1.1, min_samples=5), 'passed', 'within'),
    ('10 vs 10 can', SLOW[:10], NORMAL_A[:10], dict(max_ratio=1.1), 'failed', 'worse'),
    ('stable median 0: any significant rise fails', [0.01] * 12 + [0.02] * 8, [0.0] * 20, dict(max_ratio=2.0),
     'failed', 'worse'),
    ('all zeros: no difference', [0.0] * 20, [0.0] * 20, dict(max_ratio=1.1), 'passed', 'within'),
]


@pytest.mark.parametrize('candidate, baseline, options, outcome, reason', [c[1:] for c in JUDGE_CASES],
                         ids=[c[0] for c in JUDGE_CASES])
def test_judge(candidate, baseline, options, outcome, reason):
    result = judge.judge(candidate, baseline, **options)
    assert result['outcome'] == outcome
    assert result['reason'].startswith(reason)
    if outcome != 'inconclusive':
        assert result['p_value'] == pytest.approx(
            float(stats.mannwhitneyu(candidate, baseline, method='asymptotic').pvalue), rel=1e-9, abs=1e-12) \
            if len(set(candidate + baseline)) > 1 else result['p_value'] == 1.0


def test_judge_of_a_good_release_never_fails_over_many_canaries():
    rng = random.Random(7)
    verdicts = set()
    for _canary in range(200):
        stable = [rng.lognormvariate(-2.1, 0.25) for _draw in range(40)]
        candidate = [rng.lognormvariate(-2.1, 0.25) for _draw in range(40)]
        verdicts.add(judge.judge(candidate, stable, max_ratio=1.1)['outcome'])
    assert verdicts == {'passed'}


# --------------------------------------------------------------------------
# kind: compare in the gate
# --------------------------------------------------------------------------

def params(**check):
    item = dict(name='p95', kind='compare', query='cand', baseline_query='stable', max_ratio=1.1)
    item.update(check)
    return dict(provider='prometheus', url='http://prom:9090', checks=[item], count=3, interval=30.0,
                initial_delay=0.0, failure_limit=0, consecutive_error_limit=4, error_retry_interval=10.0,
                timeout=10.0, on_no_data='inconclusive')


@pytest.mark.parametrize('check, message', [
    (dict(baseline_query=None), "check 'p95': kind compare needs a baseline_query"),
    (dict(max=0.2), "check 'p95': kind compare takes no max"),
    (dict(direction='sideways'), "direction must be one of higher_is_worse, lower_is_worse, got 'sideways'"),
    (dict(max_ratio=0.9), 'direction higher_is_worse needs max_ratio >= 1'),
    (dict(max_ratio=None), 'direction higher_is_worse needs max_ratio >= 1'),
    (dict(direction='lower_is_worse'), 'direction lower_is_worse needs 0 < min_ratio <= 1'),
    (dict(direction='lower_is_worse', max_ratio=None, min_ratio=1.2), 'lower_is_worse needs 0 < min_ratio <= 1'),
    (dict(confidence=1), 'confidence must be >= 0.5 and < 1, got 1'),
    (dict(confidence='high'), "confidence must be a finite number, got 'high'"),
    (dict(min_samples=2), 'min_samples must be a whole number >= 3, got 2'),
    (dict(min_samples=4.5), 'min_samples must be a whole number >= 3'),
    (dict(step=0), 'step must be > 0 seconds'),
    (dict(lookback=-1), 'lookback must be >= 0 seconds, got -1'),
    (dict(lookback='soon'), "lookback must be a finite number, got 'soon'"),
    (dict(provider='http_json', url='http://h/x'), 'kind compare needs provider prometheus'),
    (dict(kind='anova'), "kind must be one of threshold, compare, got 'anova'"),
])
def test_compare_check_rejects(check, message):
    with pytest.raises(mg.GateError) as err:
        mg.validate_params(params(**check))
    assert message in str(err.value)


def test_threshold_checks_refuse_judge_options():
    with pytest.raises(mg.GateError) as err:
        mg.validate_params(dict(params(), checks=[dict(name='p', query='q', max=1, confidence=0.9, step=5)]))
    assert "check 'p': confidence, step only apply to kind compare" in str(err.value)


def test_compare_needs_a_step_when_interval_is_zero():
    with pytest.raises(mg.GateError) as err:
        mg.validate_params(dict(params(), interval=0))
    assert 'needs a step' in str(err.value)
    assert mg.validate_params(dict(params(step=15), interval=0))['checks'][0]['step'] == 15


def test_compare_defaults_and_threshold_text():
    check = mg.validate_params(params())['checks'][0]
    assert (check['confidence'], check['min_samples'], check['direction']) == (0.98, 10, 'higher_is_worse')
    assert mg.threshold_text(check) == 'candidate <= 1.1 x stable (Mann-Whitney, 98% confidence, >= 10 samples each)'


class Series(object):
    """fetch_series fake: per query the (timestamp, value) points within [start, end] of a fixed timeline, every
    ``every`` s."""

    def __init__(self, values, every=30.0, error=None, origin=T0):
        self.values, self.every, self.error, self.calls, self.origin = values, every, error, [], origin

    def __call__(self, query, url, start, end, step):
        self.calls.append((query, start, end, step))
        if self.error:
            raise self.error
        points = self.values[query]
        return [(self.origin + index * self.every, value) for index, value in enumerate(points)
                if start <= self.origin + index * self.every <= end]


def run(values, count, **check):
    settings = mg.validate_params(dict(params(**check), count=count))
    fake = FakeTime()
    series = values if isinstance(values, Series) else Series(values)
    result = mg.run_gate(settings['checks'], None, count=count, interval=30.0, sleep=fake.sleep, clock=fake.clock,
                         now=fake.now, fetch_series=series)
    return result, series, settings


def test_compare_gate_catches_a_slower_release_once_it_has_enough_samples():
    result, series, settings = run({'cand': SLOW, 'stable': NORMAL_A}, count=20)
    outcomes = [m['outcome'] for m in result['measurements']]
    assert outcomes[:9] == ['inconclusive'] * 9          # 1..9 samples: too few
    assert outcomes[9:] == ['failed']                    # the 10th round judges and stops the gate
    assert result['verdict'] == 'failed' and result['stopped_early'] is True
    assert series.calls[0] == ('cand', T0, T0, 30.0) and series.calls[-1][1:] == (T0, T0 + 270, 30.0)
    message = mg.gate_message(result, settings['checks'], name='canary')
    assert message.startswith("metric gate 'canary' failed: p95: candidate 1.39")
    assert ' x stable (shift +0.05' in message and '10 vs 10 samples' in message
    assert message.endswith('> max_ratio 1.1, significant')
    judged = result['measurements'][-1]
    assert judged['value'] == pytest.approx(1.4, rel=0.02) and judged['judge']['n_candidate'] == 10


def test_compare_gate_passes_a_good_release_and_early_rounds_do_not_make_it_inconclusive():
    result, _series, settings = run({'cand': NORMAL_A[::-1], 'stable': NORMAL_A}, count=12)
    assert [m['outcome'] for m in result['measurements']][-1] == 'passed'
    assert result['verdict'] == 'passed'
    assert result['summary']['p95']['inconclusive'] == 9 and result['summary']['p95']['verdict'] == 'passed'


def test_compare_window_opens_lookback_seconds_before_the_first_round():
    # the samples taken before the first round (since the traffic shift) count: the
    # judgement comes 9 rounds sooner than without lookback
    timeline = Series({'cand': SLOW, 'stable': NORMAL_A}, origin=T0 - 270)
    result, series, _settings = run(timeline, count=20, lookback=270)
    assert series.calls[0][1:3] == (T0 - 270, T0)
    assert [m['outcome'] for m in result['measurements']] == ['failed']
    assert result['measurements'][0]['judge']['n_candidate'] == 10


@pytest.mark.parametrize('initial_delay, lookback, opens, first_round, verdict', [
    # the first 10 rounds' worth of samples (a cold start, 2 x slower) are left out: the rest
    # is as fast as stable and passes
    (300, 0, T0 + 300, 11, 'passed'),
    # with a lookback as long as the delay, the window opens at the first round again, and the
    # check takes part from the first round (the delay counts from the window's opening)
    (300, 300, T0, 1, 'failed'),
    # a delay longer than the lookback: the window opens 200 s after the first round, and the
    # check's first round is the first one after that (210 s, the 8th); 3 cold points of many
    (300, 100, T0 + 200, 8, 'passed'),
    # without a delay the cold start is judged, and fails the gate
    (0, 0, T0, 1, 'failed'),
])
def test_compare_window_leaves_out_the_checks_initial_delay(initial_delay, lookback, opens, first_round, verdict):
    cold = [value * 2 for value in NORMAL_A[:10]] + NORMAL_A[10:]
    timeline = Series({'cand': cold, 'stable': NORMAL_A})
    result, series, _settings = run(timeline, count=20, initial_delay=initial_delay, lookback=lookback)
    assert series.calls[0][1] == opens
    assert result['measurements'][0]['sample'] == first_round
    assert result['verdict'] == verdict


def test_compare_gate_too_short_is_inconclusive_never_passed():
    result, _series, settings = run({'cand': NORMAL_A, 'stable': NORMAL_A}, count=5)
    assert result['verdict'] == 'inconclusive'
    assert mg.gate_message(result, settings['checks']) == (
        'metric gate inconclusive: p95: too few samples: candidate 5, stable 5 (min_samples 10) '
        '(set allow_inconclusive to accept)')


def test_compare_gate_provider_error_is_an_error_measurement():
    result, _series, _settings = run(Series({}, error=mg.ProviderError('HTTP 500 from prom:9090/api/v1/query_range')),
                                     count=2)
    assert result['verdict'] == 'error'
    assert result['measurements'][0]['message'] == 'HTTP 500 from prom:9090/api/v1/query_range'


def test_judgement_text_lower_is_worse():
    check = mg.validate_params(params(direction='lower_is_worse', max_ratio=None, min_ratio=0.9))['checks'][0]
    result = judge.judge(FEWER_ERRORS, NORMAL_A, 'lower_is_worse', min_ratio=0.9)
    text = mc.judgement_text(check, result)
    assert text.startswith('candidate 0.5') and text.endswith('< min_ratio 0.9, significant')
    assert '98% CI [-' in text and '60 vs 60 samples' in text


@pytest.mark.parametrize('start, end, step, expected', [
    (0, 0, 30, 30),                 # first round: an instant
    (0, 7200, 30, 7200 / 239.0),    # 2 h at 30 s is 241 points: widened to 240
    (0, 3600, 30, 30),              # 1 h at 30 s: 121 points
    (0, 6 * 3600, 30, 21600 / 239.0),
])
def test_range_step_keeps_at_most_240_points_a_side(start, end, step, expected):
    got = mc.range_step(start, end, step)
    assert got == pytest.approx(expected)
    assert int((end - start) // got) + 1 <= mc.MAX_POINTS
