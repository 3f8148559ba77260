"""The statistics against independent references: scipy's trimmed mean, Mann-Whitney U and
Wilson interval, and the coverage of the bootstrap intervals on draws with a known answer."""

import doctest
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


def test_probability_of_improvement_averages_conditions_and_covers_a_known_value():
    # A ~ N(0.5, 1), B ~ N(0, 1): P(A > B) = Phi(0.5 / sqrt(2))
    truth = sps.norm.cdf(0.5 / math.sqrt(2))
    rng = np.random.default_rng(2)
    trials, hits = 150, 0
    for trial in range(trials):
        a = [rng.normal(0.5, 1, 30), rng.normal(0.5, 1, 30)]
        b = [rng.normal(0.0, 1, 30), rng.normal(0.0, 1, 30)]
        p = stats.probability_of_improvement(a, b, resamples=400, seed=trial)
        cells = [stats.probability_of_improvement_cell(x, y) for x, y in zip(a, b)]
        assert p.estimate == pytest.approx(np.mean(cells))
        hits += p.low <= truth <= p.high
    assert 0.88 <= hits / trials <= 0.99, hits


def test_probability_of_improvement_extremes_and_never_solved():
    assert stats.probability_of_improvement([[2, 3]], [[0, 1]]).estimate == 1
    # never solved on both sides (-inf after negating steps): a tie, one half
    p = stats.probability_of_improvement([[-math.inf] * 5], [[-math.inf] * 5])
    assert (p.estimate, p.low, p.high) == (0.5, 0.5, 0.5)
    # a condition missing for one arm is left out
    assert stats.probability_of_improvement([[1.0], []], [[0.0], [5.0]]).estimate == 1


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


def test_verdicts_and_labels_follow_the_interval():
    above, across, below = (stats.Interval(0.9, 0.7, 1.0), stats.Interval(0.6, 0.4, 0.8),
                            stats.Interval(0.1, 0.0, 0.3))  # fmt: skip
    assert stats.compare("A", "B", above, 5).startswith("**A better than B**")
    assert stats.compare("A", "B", below, 5).startswith("**B better than A**")
    assert "no difference detected, P(A > B) = 0.600 [0.400, 0.800]" in stats.compare(
        "A", "B", across, 5
    )
    assert "too few seeds (3 < 5" in stats.compare("A", "B", above, 3)
    assert [stats.label(p, 5) for p in (above, across, below)] == [
        "supported", "not detected", "contradicted"]  # fmt: skip
    assert stats.label(above, 4) == "too few seeds"
