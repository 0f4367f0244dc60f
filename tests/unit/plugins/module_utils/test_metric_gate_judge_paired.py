"""The judge's paired comparison (pairing: paired): Wilcoxon's signed-rank test and the one-sample
Hodges-Lehmann interval in pure Python, checked against SciPy and the textbook, and the gate with it."""
import random
import statistics

import pytest
from scipy import stats

from ansible_collections.supersmartmatch.platform.plugins.module_utils import metric_gate as mg
from ansible_collections.supersmartmatch.platform.plugins.module_utils import metric_gate_judge as judge
from metric_gate_fakes import FakeTime

SEEDED = random.Random(20261202)
NOISE = [round(SEEDED.gauss(0.0, 1.0), 3) for _draw in range(40)]

DIFFERENCES = [
    # id, differences
    ('small, no ties', [1.5, -0.5, 2.5, 3.0, -1.0, 4.0]),
    ('ties in the absolute values', [1, -1, 2, 2, -2, 3, 3, 3, 4]),
    ('zeros are dropped', [0, 0, 1.0, 2.0, -0.5, 3.0, 0, 1.5]),
    ('all positive', [0.3, 0.1, 0.4, 0.15, 0.9, 0.26, 0.5, 0.35, 0.8, 0.97]),
    ('noise centred on 0', NOISE),
    ('noise shifted up', [value + 0.5 for value in NOISE]),
    ('rounded (many ties)', [round(value, 1) for value in NOISE[:25]]),
]


@pytest.mark.parametrize('differences', [case[1] for case in DIFFERENCES], ids=[case[0] for case in DIFFERENCES])
def test_signed_rank_matches_scipy_approx(differences):
    mine = judge.wilcoxon_signed_rank(differences)
    theirs = stats.wilcoxon(differences, zero_method='wilcox', correction=True, method='approx')
    assert mine['statistic'] == pytest.approx(float(theirs.statistic), abs=1e-9)
    assert mine['p_value'] == pytest.approx(float(theirs.pvalue), rel=1e-9, abs=1e-12)
    assert mine['n'] == sum(1 for value in differences if value != 0)


def test_signed_rank_without_continuity_matches_scipy():
    mine = judge.wilcoxon_signed_rank(NOISE, continuity=False)
    theirs = stats.wilcoxon(NOISE, zero_method='wilcox', correction=False, method='approx')
    assert mine['p_value'] == pytest.approx(float(theirs.pvalue), rel=1e-9)


def test_signed_rank_of_nothing_but_zeros_is_no_evidence():
    assert judge.wilcoxon_signed_rank([0.0] * 12) == dict(statistic=0.0, p_value=1.0, z=0.0, n=0)


@pytest.mark.parametrize('differences', [case[1] for case in DIFFERENCES], ids=[case[0] for case in DIFFERENCES])
def test_walsh_estimate_is_the_median_of_the_walsh_averages(differences):
    result = judge.walsh_interval(differences, 0.98)
    n = len(differences)
    averages = [(differences[i] + differences[j]) / 2.0 for i in range(n) for j in range(i, n)]
    assert result['estimate'] == pytest.approx(statistics.median(averages))
    assert min(averages) <= result['lower'] <= result['estimate'] <= result['upper'] <= max(averages)


def test_walsh_interval_matches_the_textbook_order_statistics():
    # Hollander & Wolfe's normal approximation: n = 10, M = 55 Walsh averages, 95 %:
    # k = round(27.5 - 1.96 x sqrt(10 x 11 x 21 / 24)) = round(8.27) = 8 -> [A(8), A(48)]
    differences = [0.3, 0.1, 0.4, 0.15, 0.9, 0.26, 0.5, 0.35, 0.8, 0.97]
    averages = sorted((differences[i] + differences[j]) / 2.0 for i in range(10) for j in range(i, 10))
    result = judge.walsh_interval(differences, 0.95)
    assert (result['lower'], result['upper']) == (averages[7], averages[55 - 8])


def test_walsh_interval_covers_a_known_centre_and_narrows_with_confidence():
    shifted = [value + 0.25 for value in NOISE]
    wide, narrow = judge.walsh_interval(shifted, 0.99), judge.walsh_interval(shifted, 0.80)
    assert wide['lower'] <= narrow['lower'] <= 0.25 <= narrow['upper'] <= wide['upper']


def test_pair_up_keeps_the_instants_read_on_both_sides():
    candidate = [(10, 1.0), (11, 1.1), (13, 1.3)]
    baseline = [(10, 2.0), (12, 2.2), (13, 2.3)]   # 11 missing on the stable side, 12 on the candidate's
    assert judge.pair_up(candidate, baseline) == [(1.0, 2.0), (1.3, 2.3)]


def shared_load(ratio, seed, points=20, noise=0.05):
    """(candidate, stable) at ``points`` instants: both sides swing together with the load of the
    hosts they share (1 to 5 x), each with its own small noise; the candidate is ``ratio`` x stable."""
    rng = random.Random(seed)
    pairs = []
    for _instant in range(points):
        load = rng.uniform(1.0, 5.0)
        base = 0.003 * load
        pairs.append((base * ratio * rng.lognormvariate(0, noise), base * rng.lognormvariate(0, noise)))
    return pairs


PAIRED_CASES = [
    # id, pairs, options, outcome
    ('40 % slower under shared load fails', shared_load(1.4, 1), dict(max_ratio=1.1), 'failed'),
    ('the same release passes', shared_load(1.0, 2), dict(max_ratio=1.1), 'passed'),
    ('5 % slower is within 1.1', shared_load(1.05, 3), dict(max_ratio=1.1), 'passed'),
    ('5 % slower fails a 1.0 tolerance', shared_load(1.05, 4, noise=0.01), dict(max_ratio=1.0), 'failed'),
    ('faster is not worse when higher is worse', shared_load(0.5, 5), dict(max_ratio=1.0), 'passed'),
    ('lower is worse: half fails', shared_load(0.5, 6), dict(direction='lower_is_worse', min_ratio=0.9), 'failed'),
    ('lower is worse: higher passes', shared_load(1.4, 7), dict(direction='lower_is_worse', min_ratio=0.9),
     'passed'),
    ('9 pairs are too few', shared_load(1.4, 8, points=9), dict(max_ratio=1.1), 'inconclusive'),
    ('stable 0: any rise fails', [(0.01, 0.0)] * 12, dict(max_ratio=2.0), 'failed'),
    ('all zeros: no difference', [(0.0, 0.0)] * 20, dict(max_ratio=1.1), 'passed'),
]


@pytest.mark.parametrize('pairs, options, outcome', [c[1:] for c in PAIRED_CASES], ids=[c[0] for c in PAIRED_CASES])
def test_judge_paired(pairs, options, outcome):
    result = judge.judge_paired(pairs, **options)
    assert result['outcome'] == outcome
    assert result['paired'] is True and result['n_candidate'] == result['n_baseline'] == len(pairs)
    if outcome != 'inconclusive':
        tolerance = options.get('max_ratio', options.get('min_ratio'))
        differences = [c - tolerance * b for c, b in pairs]
        if any(differences):
            theirs = stats.wilcoxon(differences, method='approx', correction=True)
            assert result['p_value'] == pytest.approx(float(theirs.pvalue), rel=1e-9)


def test_pairing_sees_through_load_that_hides_a_regression_from_the_unpaired_test():
    # both sides swing 1-5 x with the load they share: the two unpaired samples overlap, and
    # the Mann-Whitney judge cannot tell a 40 % slower release; at the same instants it is plain
    pairs = shared_load(1.4, 11, points=12)
    unpaired = judge.judge([c for c, _b in pairs], [b for _c, b in pairs], max_ratio=1.1)
    paired = judge.judge_paired(pairs, max_ratio=1.1)
    assert unpaired['outcome'] == 'passed'
    assert paired['outcome'] == 'failed' and paired['ratio'] == pytest.approx(1.4, rel=0.05)


def test_paired_judge_of_a_good_release_never_fails_over_many_canaries():
    outcomes = set(judge.judge_paired(shared_load(1.0, seed, points=30, noise=0.25), max_ratio=1.1)['outcome']
                   for seed in range(200))
    assert outcomes == {'passed'}


# --------------------------------------------------------------------------
# pairing in the gate
# --------------------------------------------------------------------------

def params(**check):
    item = dict(name='p95', kind='compare', query='cand', baseline_query='stable', max_ratio=1.1, pairing='paired')
    item.update(check)
    return dict(provider='prometheus', url='http://prom:9090', checks=[item], count=3, interval=30.0,
                initial_delay=0.0, failure_limit=0, consecutive_error_limit=4, error_retry_interval=10.0,
                timeout=10.0, on_no_data='inconclusive')


def test_pairing_is_validated_by_name():
    with pytest.raises(mg.GateError) as err:
        mg.validate_params(params(pairing='matched'))
    assert "check 'p95': pairing must be one of unpaired, paired, got 'matched'" in str(err.value)
    assert mg.validate_params(params(pairing=None))['checks'][0]['pairing'] == 'unpaired'


def test_threshold_checks_refuse_pairing():
    with pytest.raises(mg.GateError) as err:
        mg.validate_params(dict(params(), checks=[dict(name='p', query='q', max=1, pairing='paired')]))
    assert "check 'p': pairing only apply to kind compare" in str(err.value)


def test_paired_threshold_text():
    check = mg.validate_params(params())['checks'][0]
    assert mg.threshold_text(check) == ('candidate <= 1.1 x stable (paired, Wilcoxon signed-rank, 98% confidence, '
                                        '>= 10 pairs)')


class Timeline(object):
    """fetch_series fake: (timestamp, value) points of a fixed timeline, one every 30 s from T0."""

    def __init__(self, values, origin):
        self.values, self.origin = values, origin

    def __call__(self, query, url, start, end, step):
        return [(self.origin + 30 * index, value) for index, value in enumerate(self.values[query])
                if start <= self.origin + 30 * index <= end]


def test_paired_gate_catches_a_slower_release_under_shared_load_and_says_how():
    pairs = shared_load(1.4, 11, points=12)
    fake = FakeTime()
    settings = mg.validate_params(dict(params(), count=20))
    timeline = Timeline({'cand': [c for c, _b in pairs], 'stable': [b for _c, b in pairs]}, fake.now())
    result = mg.run_gate(settings['checks'], None, count=20, interval=30.0, sleep=fake.sleep, clock=fake.clock,
                         now=fake.now, fetch_series=timeline)
    outcomes = [m['outcome'] for m in result['measurements']]
    assert outcomes == ['inconclusive'] * 9 + ['failed']
    message = mg.gate_message(result, settings['checks'], name='canary')
    assert message.startswith("metric gate 'canary' failed: p95: candidate 1.3")  # 1.396 x
    assert 'paired: candidate - 1.1 x stable +' in message and '10 pairs' in message
    assert message.endswith('> max_ratio 1.1, significant')
    early = result['measurements'][0]['message']
    assert early == 'too few samples: 1 instants with a value on both sides (min_samples 10)'
