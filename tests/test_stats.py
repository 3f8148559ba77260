"""The statistics against independent references: scipy's trimmed mean, Mann-Whitney U, exact
Mann-Whitney test and Wilson interval, and every split listed by hand; the error rate of the
tests under the null (A/A) and the coverage of the intervals on draws with a known answer, at
the seed counts the profiles use (5 and 10)."""

import doctest
import itertools
import math

import numpy as np
import pytest
from scipy import stats as sps

from grubench.answers import stats
from grubench.tasks.base import normalized_score

TIER = "unit"


def test_doctests():
    assert doctest.testmod(stats).failed == 0


@pytest.mark.parametrize("n", [1, 2, 3, 4, 5, 8, 13])
def test_iqm_is_the_25_percent_trimmed_mean(n):
    x = np.random.default_rng(n).normal(size=n)
    assert stats.iqm(x) == pytest.approx(sps.trim_mean(x, 0.25))


def test_normalized_score_for_both_directions():
    assert normalized_score(1 / 6, 1 / 6, "min") == 0
    assert normalized_score(0.0, 1 / 6, "min") == 1
    assert normalized_score(1 / 3, 1 / 6, "min") == pytest.approx(-1)
    assert normalized_score(1.0, 0.1, "max") == 1
    assert normalized_score(0.55, 0.1, "max") == pytest.approx(0.5)


@pytest.mark.parametrize("statistic", [np.mean, stats.iqm], ids=["mean", "iqm"])
def test_bootstrap_interval_covers_the_true_value_about_95_percent(statistic):
    # symmetric draws: the mean and the IQM both estimate the centre 0.3
    rng = np.random.default_rng(1)
    trials, hits = 200, 0
    for trial in range(trials):
        draws = rng.normal(0.3, 1.0, size=40)
        interval = stats.bootstrap_interval(draws, statistic, resamples=400, seed=trial)
        hits += interval.low <= 0.3 <= interval.high
    assert 0.88 <= hits / trials <= 0.99, hits


def test_bootstrap_interval_of_one_value_has_no_width_to_report():
    interval = stats.bootstrap_interval([0.7])
    assert interval.estimate == 0.7 and math.isnan(interval.low) and math.isnan(interval.high)


@pytest.mark.parametrize("seed", range(5))
def test_probability_of_improvement_is_mann_whitney_u_over_nm(seed):
    rng = np.random.default_rng(seed)
    a = rng.integers(0, 5, size=7).astype(float)  # small integers: ties happen
    b = rng.integers(0, 5, size=5).astype(float)
    u = sps.mannwhitneyu(a, b, alternative="two-sided").statistic
    assert stats.probability_of_improvement_cell(a, b) == pytest.approx(u / (len(a) * len(b)))


def test_probability_of_improvement_averages_conditions():
    rng = np.random.default_rng(2)
    a = [rng.normal(0.5, 1, 7), rng.normal(0.5, 1, 5)]
    b = [rng.normal(0.0, 1, 6), rng.normal(0.0, 1, 5)]
    p = stats.probability_of_improvement(a, b)
    cells = [stats.probability_of_improvement_cell(x, y) for x, y in zip(a, b)]
    assert p.estimate == pytest.approx(np.mean(cells)) and p.low < p.estimate < p.high


def test_probability_of_improvement_extremes_and_never_solved():
    assert stats.probability_of_improvement([[2, 3]], [[0, 1]]).estimate == 1
    # never solved on both sides (-inf after negating steps): a tie, one half
    p = stats.probability_of_improvement([[-math.inf] * 5], [[-math.inf] * 5])
    assert p.estimate == 0.5 and p.low < 0.5 < p.high
    # a condition missing for one arm is left out
    assert stats.probability_of_improvement([[1.0], []], [[0.0], [5.0]]).estimate == 1


def test_the_interval_keeps_its_width_when_the_samples_are_fully_separated():
    """Newcombe's score interval at P = 1 (5 against 5): the lower limit solves
    (1 - t)^2 = z^2 V(t), worked here by hand from the variance's closed form."""
    p = stats.probability_of_improvement([[6, 7, 8, 9, 10]], [[1, 2, 3, 4, 5]])
    assert (p.estimate, p.high) == (1.0, 1.0) and p.low == pytest.approx(0.643, abs=5e-4)
    t, z = p.low, sps.norm.ppf(0.975)
    variance = t * (1 - t) / 25 * (1 + 4 * ((1 - t) / (2 - t) + t / (1 + t)))
    assert (1 - t) ** 2 == pytest.approx(z * z * variance)
    mirrored = stats.probability_of_improvement([[1, 2, 3, 4, 5]], [[6, 7, 8, 9, 10]])
    assert (mirrored.estimate, mirrored.low) == (0.0, 0.0)
    assert mirrored.high == pytest.approx(1 - p.low)


def _draws(rng, truth: float, trials: int, n: int, kind: str) -> tuple[np.ndarray, np.ndarray]:
    """(trials, n) runs of A and of B with P(A > B) = truth: a normal shift, or bimodal
    scores (a run solves with some probability and scores in [0.9, 1], else exactly 0)."""
    if kind == "shift":
        shift = math.sqrt(2) * sps.norm.ppf(truth)
        return rng.normal(shift, 1, (trials, n)), rng.normal(0, 1, (trials, n))
    # bimodal: with B solving at rate 1/2, P(A > B) = q (1 - 1/2) + q/2 * 1/2 + (1 - q)/2 * 1/2
    # for A solving at rate q: truth = q / 2 + 1/4, ties (both 0) counting one half
    q = 2 * (truth - 0.25)

    def scores(rate):
        return (rng.random((trials, n)) < rate) * rng.uniform(0.9, 1.0, (trials, n))

    return scores(q), scores(0.5)


@pytest.mark.parametrize("n", [5, 8, 10, 16])
def test_the_interval_covers_p_at_least_93_percent_at_few_seeds(n):
    """Coverage of P(A > B) on draws with a known answer, from no effect to near separation,
    for a normal shift and for bimodal scores with ties at 0."""
    rng = np.random.default_rng(n)
    cases = [("shift", t) for t in (0.5, 0.7, 0.9, 0.98)] + [("bimodal", t) for t in (0.5, 0.7)]
    for kind, truth in cases:
        a, b = _draws(rng, truth, 2000, n, kind)
        hits = 0
        for x, y in zip(a, b):
            p = stats.probability_of_improvement([x], [y])
            hits += p.low <= truth <= p.high
        assert hits / 2000 >= 0.93, (kind, truth, hits)


def test_the_pooled_interval_covers_the_mean_over_conditions():
    rng = np.random.default_rng(7)
    truths = (0.6, 0.8, 0.9)  # unequal effects: the target is their mean
    draws = [_draws(rng, t, 2000, 5, "shift") for t in truths]
    hits = 0
    for trial in range(2000):
        p = stats.probability_of_improvement([a[trial] for a, _ in draws],
                                             [b[trial] for _, b in draws])  # fmt: skip
        hits += p.low <= np.mean(truths) <= p.high
    assert hits / 2000 >= 0.93, hits


def _brute_force_p(a_by_condition, b_by_condition) -> float:
    """The stratified permutation p-value by listing every split of every condition."""

    def statistic(cells):
        return np.mean([stats.probability_of_improvement_cell(a, b) for a, b in cells])

    observed = abs(statistic(list(zip(a_by_condition, b_by_condition))) - 0.5)
    splits = []
    for a, b in zip(a_by_condition, b_by_condition):
        pooled = np.concatenate([a, b])
        splits.append([(pooled[list(chosen)], np.delete(pooled, list(chosen)))
                       for chosen in itertools.combinations(range(pooled.size), len(a))])  # fmt: skip
    values = [abs(statistic(cells) - 0.5) for cells in itertools.product(*splits)]
    return float(np.mean(np.array(values) >= observed - 1e-12))


def test_the_exact_test_matches_scipy_and_the_known_values():
    # 5 against 5 fully separated: 2 of the C(10, 5) = 252 splits are as extreme
    assert stats.permutation_p_value([range(6, 11)], [range(1, 6)]) == pytest.approx(2 / 252)
    assert stats.permutation_p_value([range(1, 6)], [range(6, 11)]) == pytest.approx(2 / 252)
    assert round(stats.permutation_p_value([range(6, 11)], [range(1, 6)]), 4) == 0.0079
    assert stats.smallest_p_value(5, 5) == pytest.approx(2 / 252)
    rng = np.random.default_rng(3)
    for n, m in [(5, 5), (5, 8), (10, 10), (3, 12)]:
        a, b = rng.normal(0.5, 1, n), rng.normal(0, 1, m)
        theirs = sps.mannwhitneyu(a, b, alternative="two-sided", method="exact").pvalue
        assert stats.permutation_p_value([a], [b]) == pytest.approx(theirs)


def test_the_exact_test_with_ties_and_pooled_is_the_permutation_distribution():
    rng = np.random.default_rng(4)
    # small integers: many ties, as scores at 0 or runs that never solve; unequal and equal
    # cells (two ways of convolving the conditions)
    for sizes in [(4, 3, 3, 3), (3, 3, 3, 3), (4, 2, 2, 3)]:
        a = [rng.integers(0, 3, sizes[0]).astype(float), rng.integers(0, 4, sizes[1]).astype(float)]
        b = [rng.integers(0, 3, sizes[2]).astype(float), rng.integers(0, 4, sizes[3]).astype(float)]
        assert stats.permutation_p_value(a[:1], b[:1]) == pytest.approx(
            _brute_force_p(a[:1], b[:1])
        )
        assert stats.permutation_p_value(a, b) == pytest.approx(_brute_force_p(a, b))
        # past the exact lattice, the seeded Monte Carlo estimates the same p-value
        assert stats.permutation_p_value(a, b, exact_limit=1) == pytest.approx(
            _brute_force_p(a, b), abs=0.01
        )
    # every run tied: no evidence either way
    assert stats.permutation_p_value([[-math.inf] * 5], [[-math.inf] * 5]) == 1.0


@pytest.mark.parametrize("n", [5, 8, 10, 16])
def test_the_tests_hold_their_level_under_the_null(n):
    """5,000 A/A comparisons (enough that a test at its nominal 5% stays under 5.5%): the
    exact test per condition and the stratified test pooled over 3 conditions reject at most
    5.5% of the time, for continuous and for tied scores."""
    rng = np.random.default_rng(100 + n)
    for kind in ("shift", "bimodal"):
        a, b = _draws(rng, 0.5, 15000, n, kind)
        a, b = a.reshape(5000, 3, n), b.reshape(5000, 3, n)
        single = np.mean([stats.permutation_p_value(x[:1], y[:1]) <= 0.05 for x, y in zip(a, b)])
        pooled = np.mean([stats.permutation_p_value(x, y) <= 0.05 for x, y in zip(a, b)])
        assert single <= 0.055 and pooled <= 0.055, (kind, single, pooled)


def test_holm_by_hand():
    # sorted: 0.001 x 5 = 0.005; 0.02 x 4 = 0.08; 0.03 x 3 = 0.09; 0.04 x 2 = 0.08, raised to
    # 0.09 (adjusted p-values never decrease); 0.5 x 1 = 0.5
    assert stats.holm([0.02, 0.5, 0.001, 0.04, 0.03]) == pytest.approx(
        [0.08, 0.5, 0.005, 0.09, 0.09]
    )
    assert stats.holm([0.3, 0.6]) == [0.6, 0.6] and stats.holm([0.9, 0.8]) == [1.0, 1.0]
    assert stats.holm([0.01]) == [0.01] and stats.holm([]) == []


def test_the_detectable_effect_has_the_power_it_claims():
    """At the effect it reports, scipy's exact test on fresh draws of the shift model rejects
    about 80% of the time; nothing is detectable where the smallest p is above the level."""
    theta = stats.detectable_effect(5, 5, 0.05)
    shift = math.sqrt(2) * sps.norm.ppf(theta)
    rng = np.random.default_rng(11)
    a, b = rng.normal(shift, 1, (2000, 5)), rng.normal(0, 1, (2000, 5))
    power = sps.mannwhitneyu(a, b, axis=1, method="exact").pvalue <= 0.05
    assert 0.77 <= power.mean() <= 0.83, power.mean()
    # more tests in the family, or more conditions pooled: a stricter, or a stronger, test
    assert stats.detectable_effect(10, 10, 0.05 / 20) > stats.detectable_effect(10, 10, 0.05)
    assert stats.detectable_effect(5, 5, 0.05, conditions=3) < theta
    assert math.isnan(stats.detectable_effect(5, 5, 0.05 / 7))  # 2/252 = 0.0079 > 0.0071
    assert not math.isnan(stats.detectable_effect(5, 5, 0.05 / 6))


def test_seeds_for_is_the_fewest_that_detect_the_effect():
    for effect, alpha, conditions in [(0.9, 0.05 / 40, 1), (0.8, 0.05 / 10, 5)]:
        n = stats.seeds_for(effect, alpha, conditions)
        assert stats.detectable_effect(n, n, alpha, conditions) <= effect
        fewer = stats.detectable_effect(n - 1, n - 1, alpha, conditions)
        assert math.isnan(fewer) or fewer > effect
    assert stats.seeds_for(0.51, most=6) is None


def test_the_profiles_seed_counts_detect_what_their_plan_says():
    """The numbers written beside EVALUATION_SEEDS in grubench.sweeps.question."""
    from grubench.sweeps.question import EVALUATION_SEEDS, Question

    assert EVALUATION_SEEDS == {"quick": 8, "full": 16}
    assert Question("q", "q?", {"a": {}}).seeds["quick"] == list(range(8))
    plan = {  # (seeds, family size, conditions pooled) -> P(A > B) written in the plan
        (8, 1, 1): 0.86, (8, 4, 1): 0.92, (8, 8, 1): 0.94, (8, 16, 1): 0.95,
        (8, 1, 3): 0.73, (8, 8, 3): 0.79,
        (16, 1, 1): 0.77, (16, 4, 1): 0.82, (16, 8, 1): 0.84, (16, 16, 1): 0.85,
    }  # fmt: skip
    for (n, family, conditions), effect in plan.items():
        assert stats.detectable_effect(n, n, 0.05 / family, conditions) == pytest.approx(
            effect, abs=0.006
        )
    assert math.isnan(stats.detectable_effect(5, 5, 0.05 / 8))  # why not 5 seeds


@pytest.mark.parametrize("k,n", [(0, 5), (1, 5), (3, 5), (5, 5), (7, 20)])
def test_wilson_interval_matches_scipy(k, n):
    ours = stats.wilson_interval(k, n)
    theirs = sps.binomtest(k, n).proportion_ci(confidence_level=0.95, method="wilson")
    assert ours.estimate == k / n
    assert ours.low == pytest.approx(theirs.low) and ours.high == pytest.approx(theirs.high)


def test_censored_median_counts_unsolved_runs_as_never():
    assert stats.censored_median([100, 200, math.inf]) == 200
    assert stats.censored_median([100, 200, 300, math.inf]) == 250
    assert stats.censored_median([100, math.inf, math.inf]) == math.inf
    assert stats.censored_median([100, 300, math.inf, math.inf]) == 300  # half: Kaplan-Meier
