"""Statistics for few seeds and bimodal outcomes (after Agarwal et al. 2021, "Deep RL at the
Edge of the Statistical Precipice", the rliable library; and Bouthillier et al. 2021).

A run's *normalized score* puts every task on one scale: 0 is the task's chance level (the
trivial predictor its file states), 1 is perfect. Per arm and condition the report gives the
interquartile mean (IQM) of the scores with a 95% percentile-bootstrap interval, the solved
rate with a Wilson interval, and the median steps to solve with unsolved runs counted as never
solving (censored at the budget, not dropped).

Between two arms the effect is the probability of improvement P(A > B): the chance that a
random run of A beats a random run of B in the same condition (ties count one half), averaged
over conditions when several are pooled. What holds at 5 or 10 seeds per cell:

- **Tests.** Per condition, the exact two-sided Mann-Whitney test: the permutation distribution
  of U given the pooled midranks, so ties (runs that all score 0, or never solve) keep it exact
  (5 against 5 fully separated: p = 2/252 = 0.0079). Pooled over conditions, a stratified
  permutation test of the mean P(A > B): runs are exchanged only within a condition, and the
  distribution is the exact convolution of the conditions' (a seeded Monte Carlo past
  ``EXACT_LIMIT`` lattice points).
- **Interval.** Newcombe's score-type interval for P(A > B) (Newcombe 2006, Stat Med 25:559,
  method 5): the Hanley-McNeil variance with both sample sizes replaced by their mean, taken
  at the unknown value and solved for it as Wilson's interval is, so it keeps its width when
  the samples are fully separated (5 against 5: P = 1 has the interval [0.64, 1]). Pooled, the
  conditions' variances are averaged. Coverage by simulation: tests/test_stats.py.
- **Family correction: Holm.** Each question's family (its verdict lines and its tips'
  claims) is corrected with Holm's step-down procedure, which holds the chance of any false
  "better" in the family at ``ALPHA`` under any dependence between its tests. Ours are
  dependent in ways no procedure can assume away (one arm's runs enter every pair, a tip often
  restates a verdict, score and steps come from the same runs), and the false-discovery
  procedures assume independence or positive dependence of one-sided tests (Benjamini-Yekutieli
  drops that at a cost larger than Holm's at our family sizes). And a reader of a tip asks
  "is this claim wrong?", a family-wise question.
- **Detectable effect.** For a test that detects nothing, the smallest P(A > B) it detects
  with 80% power at its seed counts and Bonferroni's level ``ALPHA / family size`` (the first,
  strictest step of Holm: a p-value under it survives whatever the others are), by simulation
  of a normal shift model (A ~ N(d, 1), B ~ N(0, 1) in every condition, P = Phi(d / sqrt 2),
  no ties; seeded, so reproducible). With 5 against 5 the smallest p is 0.0079: in a family of
  more than 6 tests no single condition can detect anything, and the report says so.
  ``seeds_for`` inverts it: the runs per arm that a planned effect needs.

Everything here is plain numpy/scipy so that it can be checked against independent references
(tests/test_stats.py: scipy's exact Mann-Whitney test, A/A simulations of the error rate at 5
and 10 seeds, interval coverage on draws with a known answer, Holm by hand, Wilson against its
closed form, P(A > B) against the Mann-Whitney U statistic).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

CONFIDENCE = 0.95
RESAMPLES = 2000
MIN_SEEDS = 5  # fewer evaluation seeds per cell than this: "too few seeds" for a verdict
BOOTSTRAP_SEED = 0  # intervals are reproducible: the same store gives the same report
ALPHA = 0.05  # each question's family-wise error rate (Holm)
POWER = 0.80  # of the detectable effect
EXACT_LIMIT = 200_000  # lattice points of an exact pooled distribution; past it, Monte Carlo
PERMUTATIONS = 20_000  # the Monte Carlo's permutations (seeded)
POWER_DRAWS = 2000  # simulated experiments per detectable effect (seeded)


@dataclass(frozen=True)
class Interval:
    estimate: float
    low: float
    high: float

    def excludes(self, value: float) -> bool:
        return self.low > value or self.high < value

    def __str__(self) -> str:
        return f"{_g(self.estimate)} [{_g(self.low)}, {_g(self.high)}]"


def _g(value: float) -> str:
    if math.isnan(value):
        return "–"
    if math.isinf(value):
        return "∞" if value > 0 else "-∞"
    return f"{value:.3f}" if abs(value) >= 0.001 or value == 0 else f"{value:.1e}"


def iqm(values: Sequence[float]) -> float:
    """Interquartile mean: the mean of the middle half (rliable's aggregate; robust to an
    outlying seed, less noisy than the median). With n values, ``floor(n/4)`` are trimmed from
    each end, as scipy.stats.trim_mean(values, 0.25) does.

    >>> iqm([0.0, 0.9, 0.91, 0.93, 1.0])
    0.9133333333333334
    """
    x = np.sort(np.asarray(values, dtype=float))
    if x.size == 0:
        return math.nan
    cut = x.size // 4
    return float(x[cut : x.size - cut].mean())


def bootstrap_interval(
    values: Sequence[float],
    statistic: Callable[[np.ndarray], float] = iqm,
    resamples: int = RESAMPLES,
    confidence: float = CONFIDENCE,
    seed: int = BOOTSTRAP_SEED,
) -> Interval:
    """The statistic of ``values`` with its percentile-bootstrap interval."""
    x = np.asarray(values, dtype=float)
    if x.size == 0:
        return Interval(math.nan, math.nan, math.nan)
    estimate = float(statistic(x))
    if x.size == 1:
        return Interval(estimate, math.nan, math.nan)
    rng = np.random.default_rng(seed)
    draws = x[rng.integers(0, x.size, size=(resamples, x.size))]
    stats = np.array([statistic(row) for row in draws])
    alpha = (1 - confidence) / 2
    low, high = np.quantile(stats, [alpha, 1 - alpha])
    return Interval(estimate, float(low), float(high))


def wilson_interval(successes: int, n: int, confidence: float = CONFIDENCE) -> Interval:
    """The solved rate with its Wilson score interval (sound at 0/n and n/n, unlike the
    normal approximation)."""
    if n == 0:
        return Interval(math.nan, math.nan, math.nan)
    from scipy.stats import norm

    z = float(norm.ppf(1 - (1 - confidence) / 2))
    p = successes / n
    denominator = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denominator
    return Interval(p, max(0.0, centre - half), min(1.0, centre + half))


def censored_median(steps: Sequence[float]) -> float:
    """The median of steps to solve, unsolved runs given as ``inf`` (they never solved within
    the budget): infinite when fewer than half solved; with exactly half solved, the last of
    them. All runs of a cell share one budget, so this is the Kaplan-Meier median (the first
    step where the share still unsolved falls to one half) with censoring at the budget."""
    x = np.sort(np.asarray(steps, dtype=float))
    if x.size == 0:
        return math.nan
    lower, upper = x[(x.size - 1) // 2], x[x.size // 2]
    if math.isinf(lower):
        return math.inf
    if math.isinf(upper):  # exactly half solved: where the survival curve reaches 0.5
        return float(lower)
    return float((lower + upper) / 2)


def probability_of_improvement_cell(a: np.ndarray, b: np.ndarray) -> float:
    """P(X > Y) + P(X = Y) / 2 for X a run of A and Y a run of B: the Mann-Whitney U statistic
    of A over B divided by len(a) * len(b). Infinite values (never solved) compare as usual."""
    a, b = np.asarray(a, dtype=float)[:, None], np.asarray(b, dtype=float)[None, :]
    return float(((a > b) + 0.5 * (a == b)).mean())


def _doubled_midranks(values: np.ndarray) -> np.ndarray:
    """Twice the midranks of ``values`` (ties share their mean rank, as scipy's rankdata
    gives them): integers, so that rank sums stay exact."""
    order = np.argsort(values, kind="stable")
    ordered = values[order]
    starts_group = np.r_[True, ordered[1:] != ordered[:-1]]
    starts = np.flatnonzero(starts_group)
    ends = np.r_[starts[1:], values.size]  # a group holds ranks start + 1 ... end
    ranks = np.empty(values.size, dtype=np.int64)
    ranks[order] = (starts + 1 + ends)[np.cumsum(starts_group) - 1]
    return ranks


@functools.lru_cache(maxsize=4096)
def _null_u(ranks: tuple[int, ...], n: int) -> np.ndarray:
    """The permutation distribution of 2U for ``n`` runs drawn without replacement from the
    pooled doubled midranks ``ranks`` (sorted): probabilities of 2U = 0, 1, ..., 2nm. Counted
    exactly by dynamic programming over the runs (how many ways k runs sum to s), which handles
    ties as the midranks fall."""
    m = len(ranks) - n
    top = sum(ranks[-n:]) if n else 0
    counts = np.zeros((n + 1, top + 1))
    counts[0, 0] = 1.0
    for rank in ranks:
        # numpy reads the right side before writing (overlap is buffered): each run once
        counts[1:, rank:] += counts[:-1, : top + 1 - rank]
    low = n * (n + 1)  # the smallest doubled rank sum: 2U = doubled rank sum - n(n + 1)
    ways = counts[n, low : low + 2 * n * m + 1]
    return ways / ways.sum()


def _stratum(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, int]:
    """A condition's null distribution of 2U (A over B) and its observed 2U."""
    ranks = _doubled_midranks(np.concatenate([a, b]))
    observed = int(ranks[: a.size].sum()) - a.size * (a.size + 1)
    return _null_u(tuple(sorted(ranks.tolist())), a.size), observed


def _cells(a_by_condition, b_by_condition) -> list[tuple[np.ndarray, np.ndarray]]:
    """The conditions where both arms have runs, as float arrays."""
    return [
        (np.asarray(a, dtype=float), np.asarray(b, dtype=float))
        for a, b in zip(a_by_condition, b_by_condition)
        if len(a) and len(b)
    ]


def permutation_p_value(
    a_by_condition: Sequence[Sequence[float]],
    b_by_condition: Sequence[Sequence[float]],
    exact_limit: int = EXACT_LIMIT,
    seed: int = BOOTSTRAP_SEED,
) -> float:
    """The two-sided p-value of P(A > B) averaged over conditions, under the null that within
    each condition the runs of A and B are exchangeable. With one condition this is the exact
    Mann-Whitney test (ties by midranks); with several, the stratified permutation test (runs
    exchanged within their condition only). Conditions where either arm has no runs are left
    out; with none left, nan.

    >>> round(permutation_p_value([[6, 7, 8, 9, 10]], [[1, 2, 3, 4, 5]]), 4)  # 2 / C(10, 5)
    0.0079
    """
    cells = _cells(a_by_condition, b_by_condition)
    if not cells:
        return math.nan
    strata = [_stratum(a, b) for a, b in cells]
    sizes = [a.size * b.size for a, b in cells]
    lattice = math.lcm(*sizes)  # 2U_c * lattice / (n_c m_c): every condition on one integer grid
    if 2 * lattice * len(cells) + 1 > exact_limit:
        return _monte_carlo_p_value(cells, seed)
    distribution, observed = strata[0]  # one condition: its own distribution
    if len(strata) > 1:
        distribution, observed = np.ones(1), 0
        for (null, u), size in zip(strata, sizes):
            weight = lattice // size
            observed += weight * u
            if weight == 1:  # equal cells, the usual case
                distribution = np.convolve(distribution, null)
                continue
            grown = np.zeros(distribution.size + 2 * lattice)
            for u_value in np.flatnonzero(null):  # convolve with the condition's lattice points
                start = u_value * weight
                grown[start : start + distribution.size] += null[u_value] * distribution
            distribution = grown
    centre = lattice * len(cells)  # E[2U_c] = n_c m_c under the null, ties or not
    deviation = np.abs(np.arange(distribution.size) - centre)
    return float(min(1.0, distribution[deviation >= abs(observed - centre)].sum()))


def _monte_carlo_p_value(cells, seed: int, permutations: int = PERMUTATIONS) -> float:
    """The stratified permutation test by seeded random permutations, for cell sizes whose
    exact lattice is too fine: (1 + as extreme) / (1 + permutations)."""
    rng = np.random.default_rng(seed)
    observed = np.zeros(1)
    permuted = np.zeros(permutations)
    for a, b in cells:
        ranks = _doubled_midranks(np.concatenate([a, b]))
        low, size = a.size * (a.size + 1), a.size * b.size
        observed += (ranks[: a.size].sum() - low) / size
        order = np.argsort(rng.random((permutations, ranks.size)), axis=1)[:, : a.size]
        permuted += (ranks[order].sum(axis=1) - low) / size
    centre = len(cells)  # each condition's 2U / (n m) has mean 1
    extreme = np.abs(permuted - centre) >= abs(observed[0] - centre) - 1e-9
    return float((1 + extreme.sum()) / (1 + permutations))


def _newcombe_variance(theta: float, n: int, m: int) -> float:
    """The Hanley-McNeil variance of the estimated P(A > B) at ``theta``, with n - 1 and
    m - 1 both replaced by (n + m) / 2 - 1 (Newcombe's method 5): zero only at 0 and 1."""
    mean_size = (n + m) / 2
    spread = (1 - theta) / (2 - theta) + theta / (1 + theta)
    return theta * (1 - theta) / (n * m) * (1 + (mean_size - 1) * spread)


def _score_interval(
    estimate: float, variance: Callable[[float], float], confidence: float
) -> tuple[float, float]:
    """The values t whose score statistic |estimate - t| / sqrt(variance(t)) stays under the
    normal quantile: Wilson's construction, which does not collapse at 0 or 1."""
    from scipy.optimize import brentq
    from scipy.stats import norm

    z2 = float(norm.ppf(1 - (1 - confidence) / 2)) ** 2

    def outside(t: float) -> float:
        return (estimate - t) ** 2 - z2 * variance(t)

    near = 1e-12  # the estimate itself is a trivial root where the variance vanishes (0, 1)
    low = 0.0 if estimate <= near else brentq(outside, 0.0, estimate - near, xtol=1e-10)
    high = 1.0 if estimate >= 1 - near else brentq(outside, estimate + near, 1.0, xtol=1e-10)
    return low, high


def probability_of_improvement(
    a_by_condition: Sequence[Sequence[float]],
    b_by_condition: Sequence[Sequence[float]],
    confidence: float = CONFIDENCE,
) -> Interval:
    """P(A > B) averaged over conditions (higher values are better: pass ``-steps`` for
    "fewer steps is better") with Newcombe's score interval; pooled, the variance at t is the
    mean of the conditions' variances at t over the number of conditions.

    Conditions where either arm has no runs are left out.

    >>> print(probability_of_improvement([[6, 7, 8, 9, 10]], [[1, 2, 3, 4, 5]]))
    1.000 [0.643, 1.000]
    """
    cells = _cells(a_by_condition, b_by_condition)
    if not cells:
        return Interval(math.nan, math.nan, math.nan)
    estimate = float(np.mean([probability_of_improvement_cell(a, b) for a, b in cells]))
    sizes = tuple(sorted((a.size, b.size) for a, b in cells))
    return Interval(estimate, *_pooled_interval(estimate, sizes, confidence))


@functools.lru_cache(maxsize=65536)  # few seeds: few distinct estimates (26 at 5 against 5)
def _pooled_interval(
    estimate: float, sizes: tuple[tuple[int, int], ...], confidence: float
) -> tuple[float, float]:
    def variance(t: float) -> float:
        return sum(_newcombe_variance(t, n, m) for n, m in sizes) / len(sizes) ** 2

    return _score_interval(estimate, variance, confidence)


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm's step-down adjusted p-values, in the order given: sorted ascending, the i-th
    smallest (from 0) is multiplied by (m - i), capped at 1, and kept non-decreasing. A test
    is rejected at level alpha when its adjusted p-value is at most alpha.

    >>> holm([0.01, 0.04, 0.03, 0.005])
    [0.03, 0.06, 0.06, 0.02]
    """
    m = len(p_values)
    adjusted = [0.0] * m
    running = 0.0
    for rank, index in enumerate(sorted(range(m), key=lambda i: p_values[i])):
        running = max(running, min(1.0, (m - rank) * p_values[index]))
        adjusted[index] = round(running, 15)  # (m - i) * p in floats: 3 * 0.01 = 0.03
    return adjusted


def smallest_p_value(n: int, m: int, conditions: int = 1) -> float:
    """The smallest two-sided p-value the test can give with n runs against m in each of
    ``conditions`` (no ties): 2 / C(n + m, n) ** conditions."""
    return min(1.0, 2.0 / math.comb(n + m, n) ** conditions)


@functools.lru_cache(maxsize=256)
def detectable_effect(
    n: int,
    m: int,
    alpha: float = ALPHA,
    conditions: int = 1,
    power: float = POWER,
    draws: int = POWER_DRAWS,
    seed: int = BOOTSTRAP_SEED,
) -> float:
    """The smallest P(A > B) that the (stratified) test detects at level ``alpha`` with the
    given ``power``, n runs of A against m of B in each of ``conditions``: simulated under a
    normal shift (A ~ N(d, 1), B ~ N(0, 1), the same d in every condition, P = Phi(d / sqrt
    2)). The same draws serve every d, so the power is monotone in d and the bisection is
    exact for them. nan when no effect is detectable: the smallest p-value the test can give
    is above ``alpha``.

    >>> round(detectable_effect(10, 10), 2)
    0.84
    >>> detectable_effect(5, 5, alpha=0.05 / 10)  # 2 / 252 > 0.005: nothing is detectable
    nan
    """
    from scipy.stats import norm

    null = _null_u(tuple(range(2, 2 * (n + m) + 1, 2)), n)  # no ties: ranks 1..N, doubled
    distribution = np.ones(1)
    for _ in range(conditions):  # equal cells: the conditions' 2U simply add up
        distribution = np.convolve(distribution, null)
    centre = conditions * n * m
    deviation = np.abs(np.arange(distribution.size) - centre)
    tail = np.array([distribution[deviation >= d].sum() for d in range(centre + 1)])
    reachable = np.flatnonzero(tail <= alpha)
    if reachable.size == 0:
        return math.nan
    critical = int(reachable[0])  # |2U summed - centre| at least this: rejected
    rng = np.random.default_rng(seed)
    a = rng.standard_normal((draws, conditions, n, 1))
    b = rng.standard_normal((draws, conditions, 1, m))
    gaps = (b - a).reshape(draws, -1)  # A + d beats B where d > B - A; (draws, K n m)

    def power_at(shift: float) -> float:
        doubled_u = 2 * (gaps < shift).sum(axis=1)
        return float((np.abs(doubled_u - centre) >= critical).mean())

    low, high = 0.0, 1.0
    while power_at(high) < power:  # ends: past every gap, every draw sits in the tail
        low, high = high, 2 * high
    for _ in range(40):
        middle = (low + high) / 2
        low, high = (middle, high) if power_at(middle) < power else (low, middle)
    return float(norm.cdf(high / math.sqrt(2)))


def seeds_for(
    effect: float, alpha: float = ALPHA, conditions: int = 1, most: int = 40
) -> int | None:
    """The fewest runs per arm and condition at which the (stratified) test detects P(A > B)
    = ``effect`` with 80% power at level ``alpha`` (:func:`detectable_effect`'s model); None
    past ``most``. What a profile's seed count is planned from: a family of 40 tests needs
    14 runs per arm for P = 0.9 in one condition, 4 pooled over five.

    >>> seeds_for(0.9)
    7
    """
    for n in range(2, most + 1):
        if detectable_effect(n, n, alpha, conditions) <= effect:  # nan compares False
            return n
    return None
