"""Statistics for few seeds and bimodal outcomes (after Agarwal et al. 2021, "Deep RL at the
Edge of the Statistical Precipice", the rliable library; and Bouthillier et al. 2021).

A run's *normalized score* puts every task on one scale: 0 is the task's chance level (the
trivial predictor its file states), 1 is perfect. Per arm and condition the report gives the
interquartile mean (IQM) of the scores with a 95% percentile-bootstrap interval, the solved
rate with a Wilson interval, and the median steps to solve with unsolved runs counted as never
solving (censored at the budget, not dropped). Between two arms, the probability of improvement
P(A > B) is the chance that a random run of A beats a random run of B in the same condition
(ties count one half), averaged over conditions, with a stratified bootstrap interval:
resampling the runs of each (arm, condition) cell on its own.

Everything here is plain numpy/scipy so that it can be checked against independent references
(tests/test_stats.py: bootstrap coverage on draws with a known answer, P(A > B) against the
Mann-Whitney U statistic, Wilson against its closed form).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

CONFIDENCE = 0.95
RESAMPLES = 2000
MIN_SEEDS = 5  # fewer evaluation seeds per cell than this: "too few seeds" for a verdict
BOOTSTRAP_SEED = 0  # intervals are reproducible: the same store gives the same report


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


def probability_of_improvement(
    a_by_condition: Sequence[Sequence[float]],
    b_by_condition: Sequence[Sequence[float]],
    resamples: int = RESAMPLES,
    confidence: float = CONFIDENCE,
    seed: int = BOOTSTRAP_SEED,
) -> Interval:
    """P(A > B) averaged over conditions (higher values are better: pass ``-steps`` for
    "fewer steps is better"), with a stratified bootstrap interval: each (arm, condition)
    cell's runs are resampled on their own, so every resample keeps every condition.

    Conditions where either arm has no runs are left out.
    """
    cells = [
        (np.asarray(a, dtype=float), np.asarray(b, dtype=float))
        for a, b in zip(a_by_condition, b_by_condition)
        if len(a) and len(b)
    ]
    if not cells:
        return Interval(math.nan, math.nan, math.nan)
    estimate = float(np.mean([probability_of_improvement_cell(a, b) for a, b in cells]))
    rng = np.random.default_rng(seed)
    totals = np.zeros(resamples)
    for a, b in cells:
        ia = rng.integers(0, a.size, size=(resamples, a.size))
        ib = rng.integers(0, b.size, size=(resamples, b.size))
        ra, rb = a[ia][:, :, None], b[ib][:, None, :]  # (R, n, 1), (R, 1, m)
        totals += ((ra > rb) + 0.5 * (ra == rb)).mean(axis=(1, 2))
    stats = totals / len(cells)
    alpha = (1 - confidence) / 2
    low, high = np.quantile(stats, [alpha, 1 - alpha])
    return Interval(estimate, float(low), float(high))


def compare(name_a: str, name_b: str, p: Interval, fewest_seeds: int, what: str = "") -> str:
    """The verdict on P(A > B): a difference only when its interval excludes 0.5."""
    subject = f"{what} " if what else ""
    numbers = f"P({name_a} > {name_b}) = {p}"
    if math.isnan(p.estimate):
        return f"{subject}{name_a} vs {name_b}: no runs to compare"
    if fewest_seeds < MIN_SEEDS:
        return (
            f"{subject}{name_a} vs {name_b}: too few seeds ({fewest_seeds} < {MIN_SEEDS} in "
            f"some condition), {numbers}"
        )
    if p.low > 0.5:
        return f"{subject}**{name_a} better than {name_b}**, {numbers}"
    if p.high < 0.5:
        return f"{subject}**{name_b} better than {name_a}**, {numbers}"
    return f"{subject}{name_a} vs {name_b}: no difference detected, {numbers}"


def label(p: Interval, fewest_seeds: int) -> str:
    """A tip's label from P(claimed better > claimed worse): supported, contradicted or not
    detected (or too few seeds to say)."""
    if math.isnan(p.estimate):
        return "not measured"
    if fewest_seeds < MIN_SEEDS:
        return "too few seeds"
    if p.low > 0.5:
        return "supported"
    if p.high < 0.5:
        return "contradicted"
    return "not detected"
