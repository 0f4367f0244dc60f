# -*- coding: utf-8 -*-
# Copyright: SuperSmartMatch platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The statistics of the Kayenta-style judge, in pure Python (no SciPy on the managed hosts).

* :func:`mann_whitney_u`: the Mann-Whitney U test, two-sided, normal
  approximation with tie correction and continuity correction (as
  ``scipy.stats.mannwhitneyu(x, y, method='asymptotic')``);
* :func:`hodges_lehmann`: the Hodges-Lehmann estimate of the shift
  ``candidate - baseline`` (the median of all pairwise differences) and its
  distribution-free confidence interval (order statistics of the differences,
  normal approximation of the U distribution);
* :func:`judge`: the verdict of one comparison, as Kayenta's Mann-Whitney
  classifier: worse only when the shift is, at ``confidence``, larger than
  the effect-size tolerance (its whole confidence interval beyond it);
* paired (``judge_paired``): the two sides read at the same instants, the
  candidate against the tolerated multiple of the stable side at each one
  (``candidate - max_ratio x stable``), Wilcoxon's signed-rank test
  (:func:`wilcoxon_signed_rank`, as ``scipy.stats.wilcoxon(d, method='approx',
  correction=True)``) and the one-sample Hodges-Lehmann interval
  (:func:`walsh_interval`). Load that both sides share (two releases on the
  same cores) moves both values of a pair, so it cancels instead of widening
  the spread of two unpaired samples;
* on the answers (``judge_histogram``): each side's latency histogram over
  the window (bucket counts), so the test counts answers rather than points
  that each summarise a few dozen of them. The stable side's quantile gets an
  upper confidence bound (order statistics, :func:`histogram_value_at`), and
  a one-sided binomial test (:func:`binomial_sf`) asks whether more of the
  candidate's answers than ``1 - quantile`` lie beyond ``max_ratio`` x that
  bound: when they do, the candidate's quantile is, at ``confidence``, above
  ``max_ratio`` x the stable side's.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import math
from statistics import NormalDist, median

DIRECTIONS = ('higher_is_worse', 'lower_is_worse')


def midranks(values):
    """1-based ranks of ``values``, ties sharing their mean rank; and the sizes of the tie groups."""
    order = sorted(range(len(values)), key=values.__getitem__)
    ranks = [0.0] * len(values)
    ties = []
    start = 0
    while start < len(order):
        end = start
        while end + 1 < len(order) and values[order[end + 1]] == values[order[start]]:
            end += 1
        rank = (start + end) / 2.0 + 1.0
        for position in range(start, end + 1):
            ranks[order[position]] = rank
        ties.append(end - start + 1)
        start = end + 1
    return ranks, ties


def u_sigma(n1, n2, ties):
    """Standard deviation of U under the null hypothesis, corrected for ties."""
    n = n1 + n2
    tie_term = sum(t ** 3 - t for t in ties)
    variance = n1 * n2 / 12.0 * ((n + 1) - (tie_term / (n * (n - 1)) if n > 1 else 0.0))
    return math.sqrt(variance) if variance > 0 else 0.0


def normal_sf(z):
    """P(Z > z) for a standard normal Z, accurate in the far tail."""
    return 0.5 * math.erfc(z / math.sqrt(2.0))


def mann_whitney_u(x, y, continuity=True):
    """Two-sided Mann-Whitney U test of ``x`` against ``y``.

    Returns ``dict(u=U of x, p_value, z)``; ``u`` counts the pairs where
    ``x`` is larger (ties count one half), as SciPy's ``statistic``. When every
    value is tied the test has no information: ``p_value`` is 1.
    """
    n1, n2 = len(x), len(y)
    if not n1 or not n2:
        raise ValueError('both samples need at least one value')
    ranks, ties = midranks(list(x) + list(y))
    u1 = sum(ranks[:n1]) - n1 * (n1 + 1) / 2.0
    u2 = n1 * n2 - u1
    sigma = u_sigma(n1, n2, ties)
    if sigma == 0:
        return dict(u=u1, p_value=1.0, z=0.0)
    z = (max(u1, u2) - n1 * n2 / 2.0 - (0.5 if continuity else 0.0)) / sigma
    return dict(u=u1, p_value=min(max(2.0 * normal_sf(z), 0.0), 1.0), z=z)


def hodges_lehmann(x, y, confidence=0.98):
    """The shift ``x - y``: Hodges-Lehmann estimate and its confidence interval at ``confidence``.

    With ``N = n1 x n2`` sorted pairwise differences ``D``, the interval is
    ``[D(k), D(N + 1 - k)]`` (1-based) with ``k = round(N/2 - z * sigma)``,
    ``z`` the two-sided normal quantile and ``sigma`` the tie-corrected
    standard deviation of U (Hollander and Wolfe); ``k < 1`` gives the whole
    range of the differences.
    """
    n1, n2 = len(x), len(y)
    if not n1 or not n2:
        raise ValueError('both samples need at least one value')
    diffs = sorted(a - b for a in x for b in y)
    total = len(diffs)
    z = NormalDist().inv_cdf(1.0 - (1.0 - confidence) / 2.0)
    sigma = u_sigma(n1, n2, midranks(list(x) + list(y))[1])
    k = int(math.floor(total / 2.0 - z * sigma + 0.5))
    k = min(max(k, 1), (total + 1) // 2)
    return dict(estimate=median(diffs), lower=diffs[k - 1], upper=diffs[total - k], confidence=confidence)


def judge(candidate, baseline, direction='higher_is_worse', max_ratio=None, min_ratio=None, confidence=0.98,
          min_samples=10):
    """Compare the candidate's samples with the baseline's.

    * fewer than ``min_samples`` values on either side: ``inconclusive``
      (no evidence is never a pass);
    * ``higher_is_worse``: ``failed`` when the whole confidence interval of
      the shift lies above the tolerance ``(max_ratio - 1) x |median(baseline)|``:
      the candidate is, at ``confidence``, worse than ``max_ratio`` x the
      baseline (significance and effect size in one test; with ``max_ratio``
      1 it is the plain two-sided test). ``lower_is_worse`` is the mirror
      image with ``min_ratio``: failed when the interval lies below
      ``(min_ratio - 1) x |median(baseline)|``;
    * ``passed`` otherwise. A point estimate beyond the tolerance with an
      interval that still reaches it is not enough: noise between two
      samples of one release must not roll it back.

    Returns ``dict(outcome, reason, n_candidate, n_baseline, ...)`` with the
    test's ``u`` and ``p_value``, the ``shift`` estimate and ``ci`` bounds,
    both medians and the estimated ``ratio`` (None when the baseline median is 0).
    """
    n1, n2 = len(candidate), len(baseline)
    out = dict(n_candidate=n1, n_baseline=n2, min_samples=min_samples, confidence=confidence,
               direction=direction)
    if n1 < min_samples or n2 < min_samples:
        out.update(outcome='inconclusive', reason='too few samples')
        return out
    test = mann_whitney_u(candidate, baseline)
    shift = hodges_lehmann(candidate, baseline, confidence)
    center = median(baseline)
    out.update(u=test['u'], p_value=test['p_value'], shift=shift['estimate'], ci=[shift['lower'], shift['upper']],
               candidate_median=median(candidate), baseline_median=center,
               ratio=(center + shift['estimate']) / center if center != 0 else None)
    if direction == 'higher_is_worse':
        allowed = (max_ratio - 1.0) * abs(center)
        worse = shift['lower'] > allowed
    else:
        allowed = (min_ratio - 1.0) * abs(center)
        worse = shift['upper'] < allowed
    out.update(allowed_shift=allowed, outcome='failed' if worse else 'passed',
               reason='worse beyond tolerance' if worse else 'within tolerance')
    return out


def wilcoxon_signed_rank(differences, continuity=True):
    """Two-sided Wilcoxon signed-rank test that the ``differences`` are centred on 0.

    Zero differences are dropped (Wilcoxon's method), the ranks of the
    absolute values are mid-ranks, and the normal approximation has the tie
    and continuity corrections. Returns ``dict(statistic=min(W+, W-),
    p_value, z, n)`` with ``n`` the non-zero differences; without any, the
    test has no information (``p_value`` 1).
    """
    values = [d for d in differences if d != 0]
    n = len(values)
    if not n:
        return dict(statistic=0.0, p_value=1.0, z=0.0, n=0)
    ranks, ties = midranks([abs(d) for d in values])
    w_plus = sum(rank for rank, d in zip(ranks, values) if d > 0)
    w_minus = n * (n + 1) / 2.0 - w_plus
    statistic = min(w_plus, w_minus)
    mean = n * (n + 1) / 4.0
    variance = n * (n + 1) * (2 * n + 1) / 24.0 - sum(t ** 3 - t for t in ties) / 48.0
    if variance <= 0:
        return dict(statistic=statistic, p_value=1.0, z=0.0, n=n)
    correction = 0.5 * ((statistic > mean) - (statistic < mean)) if continuity else 0.0
    z = (statistic - mean - correction) / math.sqrt(variance)
    return dict(statistic=statistic, p_value=min(max(2.0 * normal_sf(abs(z)), 0.0), 1.0), z=z, n=n)


def walsh_interval(differences, confidence=0.98):
    """The centre of ``differences``: the one-sample Hodges-Lehmann estimate and its interval.

    The estimate is the median of the ``M = n(n+1)/2`` Walsh averages
    ``(d_i + d_j) / 2``, ``i <= j``; the interval at ``confidence`` is
    ``[A(k), A(M + 1 - k)]`` (sorted, 1-based) with ``k = round(M/2 - z x
    sigma)``, ``sigma`` the standard deviation of the signed-rank statistic
    (Hollander and Wolfe); ``k < 1`` gives the whole range.
    """
    n = len(differences)
    if not n:
        raise ValueError('the differences need at least one value')
    averages = sorted((differences[i] + differences[j]) / 2.0 for i in range(n) for j in range(i, n))
    total = len(averages)
    z = NormalDist().inv_cdf(1.0 - (1.0 - confidence) / 2.0)
    sigma = math.sqrt(n * (n + 1) * (2 * n + 1) / 24.0)
    k = int(math.floor(total / 2.0 - z * sigma + 0.5))
    k = min(max(k, 1), (total + 1) // 2)
    return dict(estimate=median(averages), lower=averages[k - 1], upper=averages[total - k],
                confidence=confidence)


def pair_up(candidate, baseline):
    """The (candidate, baseline) values read at the same instants: ``candidate`` and ``baseline``
    are ``(timestamp, value)`` points; an instant missing on either side is left out."""
    stable = dict(baseline)
    return [(value, stable[at]) for at, value in candidate if at in stable]


def judge_paired(pairs, direction='higher_is_worse', max_ratio=None, min_ratio=None, confidence=0.98,
                 min_samples=10):
    """The verdict of one paired comparison of ``pairs`` = [(candidate, baseline)] read at the same instants.

    With ``r`` the tolerance (``max_ratio``, or ``min_ratio`` for
    ``lower_is_worse``), each instant gives ``d = candidate - r x baseline``:

    * fewer than ``min_samples`` pairs: ``inconclusive``;
    * ``higher_is_worse``: ``failed`` when the whole confidence interval of
      the centre of ``d`` lies above 0 (the candidate is, at ``confidence``,
      worse than ``r`` x the stable side at the same instants);
      ``lower_is_worse``: when it lies below 0;
    * ``passed`` otherwise.

    Returns the fields of :func:`judge` (``shift``/``ci`` are those of ``d``,
    ``ratio`` the median of the per-instant ratios, ``n_candidate`` =
    ``n_baseline`` = the pairs) and ``paired`` True.
    """
    n = len(pairs)
    out = dict(n_candidate=n, n_baseline=n, min_samples=min_samples, confidence=confidence,
               direction=direction, paired=True)
    if n < min_samples:
        out.update(outcome='inconclusive', reason='too few samples')
        return out
    tolerance = max_ratio if direction == 'higher_is_worse' else min_ratio
    differences = [candidate - tolerance * baseline for candidate, baseline in pairs]
    test = wilcoxon_signed_rank(differences)
    centre = walsh_interval(differences, confidence)
    ratios = [candidate / baseline for candidate, baseline in pairs if baseline != 0]
    out.update(u=test['statistic'], p_value=test['p_value'], shift=centre['estimate'],
               ci=[centre['lower'], centre['upper']], candidate_median=median([c for c, _b in pairs]),
               baseline_median=median([b for _c, b in pairs]), ratio=median(ratios) if ratios else None,
               allowed_shift=0.0)
    worse = centre['lower'] > 0 if direction == 'higher_is_worse' else centre['upper'] < 0
    out.update(outcome='failed' if worse else 'passed',
               reason='worse beyond tolerance' if worse else 'within tolerance')
    return out


def cumulative_buckets(buckets):
    """``[(upper bound, cumulative count)]`` sorted by bound, the last one +Inf, counts made non-decreasing;
    no bucket at all is a histogram without answers.

    ``buckets`` are ``(le, count)`` pairs of a Prometheus histogram (cumulative
    counts, as ``sum by (le) (increase(x_bucket[w]))`` gives, with their
    extrapolated fractions); without a +Inf bucket, or with a negative or
    non-finite count, the histogram is not one: ValueError.
    """
    ordered = sorted((float(le), float(count)) for le, count in buckets)
    if not ordered:   # no series: no answers
        return [(float('inf'), 0.0)]
    if ordered[-1][0] != float('inf'):
        raise ValueError('the histogram has no +Inf bucket')
    out = []
    highest = 0.0
    for le, count in ordered:
        if math.isnan(count) or math.isinf(count) or count < 0 or math.isnan(le):
            raise ValueError('bucket le=%s has count %r' % (le, count))
        if out and out[-1][0] == le:
            raise ValueError('bucket le=%s appears twice (aggregate the query by le)' % le)
        highest = max(highest, count)   # increase() extrapolates each bucket on its own
        out.append((le, highest))
    return out


def histogram_value_at(cumulative, rank):
    """The value of the answer of 1-based ``rank`` (fractional), interpolated linearly within its bucket
    as Prometheus' ``histogram_quantile`` does: the first bucket starts at 0 (or at its bound when that
    is <= 0), a rank in the +Inf bucket gives the highest finite bound. None without answers."""
    total = cumulative[-1][1]
    if total <= 0:
        return None
    rank = min(max(rank, 0.0), total)
    below, lower = 0.0, 0.0
    for index, (le, count) in enumerate(cumulative):
        if index == 0:
            lower = min(le, 0.0)
        if count >= rank and count > below:
            if le == float('inf'):
                return cumulative[-2][0] if len(cumulative) > 1 else None
            return lower + (le - lower) * (rank - below) / (count - below)
        below, lower = count, le
    return cumulative[-2][0] if len(cumulative) > 1 else None


def histogram_count_above(cumulative, value):
    """How many answers lie above ``value``, linear within the bucket that holds it; answers in the
    +Inf bucket count only when ``value`` is below the highest finite bound (else 0: unknown)."""
    total = cumulative[-1][1]
    below, lower = 0.0, 0.0
    for index, (le, count) in enumerate(cumulative):
        if index == 0:
            lower = min(le, 0.0)
        if value < le:
            if value <= lower:
                return total - below
            if le == float('inf'):
                return 0.0
            return total - (below + (count - below) * (value - lower) / (le - lower))
        below, lower = count, le
    return 0.0


def _binomial_tail(first, step, n, p):
    """The binomial probabilities from ``first`` on, going up (``step`` 1) or down (-1), away from the
    mode so that the terms shrink: the sum stops when they no longer count."""
    log_term = (math.lgamma(n + 1) - math.lgamma(first + 1) - math.lgamma(n - first + 1)
                + first * math.log(p) + (n - first) * math.log1p(-p))
    term = math.exp(log_term)
    total = 0.0
    j = first
    while 0 <= j <= n:
        total += term
        if step > 0:
            term *= (n - j) / (j + 1.0) * p / (1.0 - p)
        else:
            term *= j / (n - j + 1.0) * (1.0 - p) / p
        j += step
        if term <= total * 1e-17:
            break
    return total


def binomial_sf(k, n, p):
    """P(X >= k) for X ~ Binomial(n, p), summed exactly in log space (no SciPy)."""
    if k <= 0 or p >= 1:
        return 1.0
    if k > n or p <= 0:
        return 0.0
    if k > n * p:
        return min(_binomial_tail(k, 1, n, p), 1.0)
    return min(max(1.0 - _binomial_tail(k - 1, -1, n, p), 0.0), 1.0)


def judge_histogram(candidate, baseline, quantile=0.95, max_ratio=1.1, confidence=0.98, min_samples=10):
    """The verdict on two latency histograms over the same window: is the candidate's ``quantile``
    above ``max_ratio`` x the stable side's?

    ``candidate`` and ``baseline`` are ``(le, cumulative count)`` buckets.

    * fewer than ``min_samples`` answers on either side: ``inconclusive``;
    * the stable side's quantile gets its upper bound at ``confidence``: the
      value of the answer of rank ``n q + z sqrt(n q (1 - q))`` (order
      statistics, ``z`` the one-sided normal quantile); ``limit`` is
      ``max_ratio`` x that bound;
    * ``k``, the candidate's answers above ``limit`` (rounded down), against
      ``Binomial(n, 1 - quantile)``: were the candidate's quantile at most the
      limit, at most a share ``1 - quantile`` of its answers would lie beyond
      it. ``failed`` when ``P(X >= k) < 1 - confidence``;
    * ``passed`` otherwise.

    Returns the sample sizes (answers), ``p_value``, both sides' quantiles
    (``candidate_quantile``, ``baseline_quantile``), their ``ratio``, the
    stable side's ``baseline_bound``, ``limit``, ``exceeding`` (``k``),
    ``expected`` (``n (1 - quantile)``) and ``histogram`` True.
    """
    cand, base = cumulative_buckets(candidate), cumulative_buckets(baseline)
    n1, n2 = cand[-1][1], base[-1][1]
    out = dict(n_candidate=int(n1), n_baseline=int(n2), min_samples=min_samples, confidence=confidence,
               direction='higher_is_worse', histogram=True, quantile=quantile)
    if n1 < min_samples or n2 < min_samples:
        out.update(outcome='inconclusive', reason='too few samples')
        return out
    z = NormalDist().inv_cdf(confidence)
    stable = histogram_value_at(base, n2 * quantile)
    bound = histogram_value_at(base, n2 * quantile + z * math.sqrt(n2 * quantile * (1.0 - quantile)))
    mine = histogram_value_at(cand, n1 * quantile)
    limit = max_ratio * bound
    exceeding = histogram_count_above(cand, limit)
    n = int(math.floor(n1))
    k = min(int(math.floor(exceeding + 1e-9)), n)
    p_value = binomial_sf(k, n, 1.0 - quantile)
    worse = p_value < 1.0 - confidence
    out.update(p_value=p_value, candidate_quantile=mine, baseline_quantile=stable, baseline_bound=bound,
               limit=limit, exceeding=k, expected=n * (1.0 - quantile),
               ratio=mine / stable if stable else None,
               outcome='failed' if worse else 'passed',
               reason='worse beyond tolerance' if worse else 'within tolerance')
    return out
