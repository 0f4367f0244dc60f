"""The judge on the answers (source: histogram): the two sides' latency histograms over the window,
the stable quantile's upper confidence bound and a binomial test of the candidate's answers beyond
max_ratio x that bound; checked against SciPy and hand-computed tables, and the gate with it."""
import math
import random

import pytest
from scipy import stats

from ansible_collections.supersmartmatch.platform.plugins.module_utils import metric_gate as mg
from ansible_collections.supersmartmatch.platform.plugins.module_utils import metric_gate_judge as judge
from ansible_collections.supersmartmatch.platform.plugins.module_utils import metric_gate_providers as providers
from ansible_collections.supersmartmatch.platform.plugins.module_utils.metric_gate_common import ProviderError
from metric_gate_fakes import FakeTime

INF = float('inf')
# the service's buckets of ssm_match_computed_duration_seconds (service/.../metrics.py), in part
BOUNDS = (0.00025, 0.0004, 0.0005, 0.0006, 0.0007, 0.0008, 0.001, 0.0012, 0.0015, 0.002, 0.0025, 0.003, 0.004,
          0.005, 0.0075, 0.01, 0.015, 0.02, 0.03, 0.04, 0.05, 0.06, 0.075, 0.1, 0.125, 0.15, 0.175, 0.2, 0.25)


def bucketed(durations):
    """The cumulative (le, count) buckets of ``durations``, as Prometheus would give them."""
    return [(le, float(sum(1 for d in durations if d <= le))) for le in BOUNDS] + [(INF, float(len(durations)))]


def answers(n, seed, slower=1.0):
    """``n`` durations like the lab's computed answers: log-normal around 0.7 ms, a long tail."""
    rng = random.Random(seed)
    return [slower * 0.0007 * math.exp(rng.gauss(0.0, 0.45)) for _answer in range(n)]


# --------------------------------------------------------------------------
# the binomial tail
# --------------------------------------------------------------------------

@pytest.mark.parametrize('k, n, p', [
    (0, 10, 0.05), (1, 10, 0.05), (3, 20, 0.05), (4, 20, 0.05), (10, 20, 0.05), (20, 20, 0.05), (21, 20, 0.05),
    (50, 1000, 0.05), (70, 1000, 0.05), (30, 1000, 0.05), (1, 1, 0.5), (7, 12, 0.3), (5000, 100000, 0.05),
    (4000, 100000, 0.05), (5400, 100000, 0.05), (3, 50, 0.01)])
def test_binomial_tail_matches_scipy(k, n, p):
    assert judge.binomial_sf(k, n, p) == pytest.approx(float(stats.binom.sf(k - 1, n, p)), rel=1e-8, abs=1e-15)


# --------------------------------------------------------------------------
# reading a histogram
# --------------------------------------------------------------------------

SMALL = [(0.001, 10.0), (0.002, 30.0), (0.005, 90.0), (INF, 100.0)]


@pytest.mark.parametrize('rank, value', [
    (5, 0.0005),            # first bucket from 0
    (10, 0.001), (20, 0.0015), (30, 0.002), (60, 0.0035),
    (95, 0.005),            # in +Inf: the highest finite bound, as histogram_quantile
    (0, 0.0), (150, 0.005)])  # clamped to the answers there are
def test_value_at_a_rank_interpolates_as_prometheus(rank, value):
    assert judge.histogram_value_at(judge.cumulative_buckets(SMALL), rank) == pytest.approx(value)


@pytest.mark.parametrize('value, above', [
    (0.0, 100.0), (0.0005, 95.0), (0.001, 90.0), (0.0035, 40.0), (0.005, 10.0),
    (0.006, 0.0)])          # within the +Inf bucket: unknown, counted as none
def test_count_above_a_value_interpolates_within_its_bucket(value, above):
    assert judge.histogram_count_above(judge.cumulative_buckets(SMALL), value) == pytest.approx(above)


def test_cumulative_buckets_sort_and_smooth_extrapolated_counts():
    # increase() extrapolates each bucket on its own: a higher bucket may read a hair lower
    cumulative = judge.cumulative_buckets([(INF, 10.0), (0.002, 9.9), (0.001, 10.02)])
    assert cumulative == [(0.001, 10.02), (0.002, 10.02), (INF, 10.02)]
    assert judge.cumulative_buckets([]) == [(INF, 0.0)]
    assert judge.histogram_value_at(judge.cumulative_buckets([]), 1) is None


@pytest.mark.parametrize('buckets, error', [
    ([(0.001, 1.0)], 'no +Inf bucket'),
    ([(0.001, 1.0), (0.001, 2.0), (INF, 2.0)], 'appears twice'),
    ([(0.001, -1.0), (INF, 2.0)], 'has count'),
    ([(0.001, float('nan')), (INF, 2.0)], 'has count')])
def test_what_is_not_a_histogram_is_refused(buckets, error):
    with pytest.raises(ValueError, match=error.replace('+', r'\+')):
        judge.cumulative_buckets(buckets)


# --------------------------------------------------------------------------
# the verdict
# --------------------------------------------------------------------------

def slower_by(durations, stable, share=0.4):
    """``durations`` with ``share`` x the p95 of ``stable`` added to each: the lab's slow-release fault."""
    extra = share * sorted(stable)[int(0.95 * len(stable))]
    return [d + extra for d in durations]


def test_a_release_40_percent_slower_fails_at_the_median_on_a_few_dozen_answers():
    stable = answers(300, 2)
    result = judge.judge_histogram(bucketed(slower_by(answers(20, 1), stable)), bucketed(stable), quantile=0.5,
                                   max_ratio=1.1)
    assert result['outcome'] == 'failed' and result['histogram'] is True
    assert result['exceeding'] > result['expected'] and result['p_value'] < 0.02
    # the test behind it: k answers beyond the limit against Binomial(n, 0.5)
    assert result['p_value'] == pytest.approx(float(stats.binom.sf(result['exceeding'] - 1, 20, 0.5)), rel=1e-8)


def test_at_the_p95_the_same_release_needs_hundreds_of_answers():
    # a p95 is decided by the few answers beyond it: 20 answers cannot show it, 600 can
    stable = answers(6000, 2)
    few = judge.judge_histogram(bucketed(slower_by(answers(20, 1), stable)), bucketed(stable), max_ratio=1.1)
    many = judge.judge_histogram(bucketed(slower_by(answers(600, 1), stable)), bucketed(stable), max_ratio=1.1)
    assert few['outcome'] == 'passed' and many['outcome'] == 'failed'
    assert many['ratio'] == pytest.approx(1.4, rel=0.15)


def test_a_release_within_the_tolerance_passes():
    result = judge.judge_histogram(bucketed(answers(400, 3, slower=1.05)), bucketed(answers(4000, 4)),
                                   max_ratio=1.1)
    assert result['outcome'] == 'passed'


def test_too_few_answers_on_either_side_is_inconclusive_never_a_pass():
    few = judge.judge_histogram(bucketed(answers(9, 5, slower=3.0)), bucketed(answers(500, 6)), min_samples=10)
    assert few['outcome'] == 'inconclusive' and few['n_candidate'] == 9
    none = judge.judge_histogram([], bucketed(answers(500, 6)))
    assert none['outcome'] == 'inconclusive' and none['n_candidate'] == 0


def test_the_stable_bound_and_the_limit_are_what_the_docstring_says():
    base = bucketed(answers(2000, 7))
    result = judge.judge_histogram(bucketed(answers(100, 8)), base, quantile=0.95, max_ratio=1.1,
                                   confidence=0.98)
    cumulative = judge.cumulative_buckets(base)
    rank = 2000 * 0.95 + stats.norm.ppf(0.98) * math.sqrt(2000 * 0.95 * 0.05)
    assert result['baseline_bound'] == pytest.approx(judge.histogram_value_at(cumulative, rank))
    assert result['baseline_bound'] > result['baseline_quantile']
    assert result['limit'] == pytest.approx(1.1 * result['baseline_bound'])
    assert result['expected'] == pytest.approx(5.0)


def test_a_good_release_is_not_rolled_back_over_many_canaries():
    # the lab's good canaries: a few dozen to a few hundred answers of the candidate, ten times
    # as many of the stable side, the same distribution; three rounds each with a growing window
    failed = 0
    for seed in range(300):
        candidate, stable = answers(300, 2 * seed + 100), answers(3000, 2 * seed + 101)
        for share in (0.33, 0.66, 1.0):
            verdict = judge.judge_histogram(bucketed(candidate[:int(300 * share)]),
                                            bucketed(stable[:int(3000 * share)]), max_ratio=1.1, confidence=0.98)
            failed += verdict['outcome'] == 'failed'
    assert failed == 0


# --------------------------------------------------------------------------
# the check's options
# --------------------------------------------------------------------------

SELECTOR = 'ssm_match_computed_duration_seconds_bucket{version="1.1.0",slot="green"}'
STABLE = 'ssm_match_computed_duration_seconds_bucket{version="1.0.0",slot="blue"}'


def params(**check):
    item = dict(name='p95', kind='compare', query=SELECTOR, baseline_query=STABLE, max_ratio=1.1,
                source='histogram')
    item.update(check)
    return dict(provider='prometheus', url='http://prom:9090', checks=[item], count=3, interval=15.0,
                initial_delay=0.0, failure_limit=0, consecutive_error_limit=4, error_retry_interval=10.0,
                timeout=10.0, on_no_data='inconclusive')


def test_a_histogram_check_is_completed_with_its_defaults():
    check = mg.validate_params(params())['checks'][0]
    assert (check['source'], check['quantile'], check['pairing']) == ('histogram', 0.95, 'unpaired')
    assert mg.threshold_text(check) == ('candidate p95 <= 1.1 x stable (answers, binomial test, 98% confidence, '
                                        '>= 10 answers each)')
    assert mg.validate_params(params(source=None))['checks'][0]['source'] == 'points'


@pytest.mark.parametrize('options, error', [
    (dict(source='buckets'), "source must be one of points, histogram, got 'buckets'"),
    (dict(quantile=1), 'quantile must be > 0 and < 1, got 1'),
    (dict(quantile=0), 'quantile must be > 0 and < 1, got 0'),
    (dict(source='points', quantile=0.9), 'quantile applies to source histogram only'),
    (dict(pairing='paired'), 'source histogram compares the answers of the whole window: no pairing'),
    (dict(direction='lower_is_worse', max_ratio=None, min_ratio=0.9), 'direction must be higher_is_worse'),
    (dict(query='histogram_quantile(0.95, x_bucket)'), 'query must be a histogram bucket selector'),
    (dict(query='x_bucket{a="1"}) or vector(1'), 'query must be a histogram bucket selector'),
    (dict(baseline_query='x_bucket{a="1"}[5m]'), 'baseline_query must be a histogram bucket selector'),
])
def test_a_histogram_check_refuses_what_it_cannot_use(options, error):
    with pytest.raises(mg.GateError) as err:
        mg.validate_params(params(**options))
    assert error in str(err.value)


def test_threshold_checks_refuse_the_histogram_options():
    with pytest.raises(mg.GateError) as err:
        mg.validate_params(dict(params(), checks=[dict(name='p', query='q', max=1, source='histogram')]))
    assert "check 'p': source only apply to kind compare" in str(err.value)


# --------------------------------------------------------------------------
# reading Prometheus
# --------------------------------------------------------------------------

def vector(buckets):
    return {'status': 'success', 'data': {'resultType': 'vector', 'result': [
        {'metric': {'le': le}, 'value': [1700000000, count]} for le, count in buckets]}}


def test_buckets_are_read_from_an_instant_query_aggregated_by_le():
    doc = vector([('+Inf', '12'), ('0.001', '3.5'), ('0.002', 'NaN')])
    assert providers.extract_prometheus_buckets(doc) == [(0.001, 3.5), (0.002, 0.0), (INF, 12.0)]
    assert providers.extract_prometheus_buckets(vector([])) == []


@pytest.mark.parametrize('doc, error', [
    (vector([('0.001', '1')]), 'no le="+Inf" bucket'),
    (vector([('0.001', '1'), ('0.001', '2'), ('+Inf', '2')]), 'twice'),
    ({'status': 'success', 'data': {'resultType': 'vector', 'result': [{'metric': {}, 'value': [1, '1']}]}},
     'without an le label'),
    ({'status': 'success', 'data': {'resultType': 'matrix', 'result': []}}, 'no vector result'),
    ({'status': 'error', 'errorType': 'bad_data', 'error': 'parse error'}, 'Prometheus error bad_data: parse error')])
def test_what_is_not_a_histogram_answer_is_a_provider_error(doc, error):
    with pytest.raises(ProviderError) as err:
        providers.extract_prometheus_buckets(doc)
    assert error in str(err.value)


def test_the_window_becomes_one_instant_query_at_its_end():
    asked = []

    def fetch_json(url):
        asked.append(url)
        return vector([('+Inf', '4')])

    fetch = providers.make_fetch_series('http://prom:9090', fetch_json)
    assert fetch(SELECTOR, None, 1000.0, 1042.4, 1.0, histogram=True) == [(INF, 4.0)]
    query = 'sum by (le) (increase(%s[42s]))' % SELECTOR
    assert asked == ['http://prom:9090/api/v1/query?%s&time=1042.400' % providers.urlencode({'query': query})]


# --------------------------------------------------------------------------
# the gate with it
# --------------------------------------------------------------------------

class Answers(object):
    """fetch_series fake for histograms: the answers each side gave from T0, ``rate`` a second."""

    def __init__(self, durations, origin, rate):
        self.durations, self.origin, self.rate = durations, origin, rate

    def __call__(self, query, url, start, end, step, histogram=False):
        assert histogram
        given = self.durations[query]
        first, last = int((start - self.origin) * self.rate[query]), int((end - self.origin) * self.rate[query])
        return bucketed(given[max(first, 0):last])


def test_the_gate_rolls_back_a_slower_release_at_its_first_round_with_answers():
    fake = FakeTime()
    settings = mg.validate_params(dict(params(quantile=0.5), count=6))
    stable = answers(6000, 10)
    fetch = Answers({SELECTOR: slower_by(answers(600, 9), stable), STABLE: stable}, fake.now(),
                    {SELECTOR: 2.0, STABLE: 20.0})
    result = mg.run_gate(settings['checks'], None, count=6, interval=15.0, sleep=fake.sleep, clock=fake.clock,
                         now=fake.now, fetch_series=fetch)
    outcomes = [m['outcome'] for m in result['measurements']]
    # the first round opens the window: no answers yet; 15 s later, 30 answers decide
    assert outcomes == ['inconclusive', 'failed']
    assert result['measurements'][0]['message'] == 'too few answers: candidate 0, stable 0 (min_samples 10)'
    message = mg.gate_message(result, settings['checks'], name='canary')
    assert message.startswith("metric gate 'canary' failed: p95: candidate p50 1.")
    assert 'answers above 1.1 x' in message and message.endswith('> max_ratio 1.1, significant')
    assert result['measurements'][-1]['judge']['histogram'] is True
