"""The report's verdicts from cells (no store): per condition first, a pooled verdict only
where the conditions agree, Holm over the question's family, the detectable effect beside each
"not detected", the one-sentence answer, and the rate of false "better" verdicts under the null
at the profiles' seed counts."""

import math

import numpy as np
import pytest

from grubench.answers import stats
from grubench.answers.report import Cell, Report, answer, sentence, to_markdown
from grubench.sweeps.question import Claim, Question, Tip

TIER = "unit"

LOW, HIGH = [0.1, 0.2, 0.3, 0.4, 0.5], [0.6, 0.7, 0.8, 0.9, 1.0]


def question(conditions=("c1", "c2"), arms=("a", "b"), **kwargs) -> Question:
    return Question(name="q", text="A or B?", arms={arm: {} for arm in arms},
                    conditions={c: {} for c in conditions}, verdict_measures=("score",),
                    **kwargs)  # fmt: skip


def cell(arm: str, condition: str, scores) -> Cell:
    scores = [float(s) for s in scores]
    return Cell(arm, condition, run_ids=[str(i) for i in range(len(scores))], scores=scores)


def report(q: Question, scores: dict[tuple[str, str], list[float]]) -> Report:
    cells = [cell(arm, condition, values) for (arm, condition), values in scores.items()]
    verdicts, tips = answer(q, "quick", cells)
    return Report(q, "quick", cells, [], verdicts, tips)


def lines(r: Report) -> list[str]:
    return r.verdict.splitlines()


def test_opposite_conditions_give_per_condition_verdicts_and_a_mixed_pool():
    ten_low, ten_high = list(range(10)), list(range(10, 20))
    r = report(question(), {("a", "c1"): ten_high, ("a", "c2"): ten_low,
                            ("b", "c1"): ten_low, ("b", "c2"): ten_high})  # fmt: skip
    # 10 against 10 fully separated: p = 2 / C(20, 10); Holm over the family's 3 tests
    p = 2 / math.comb(20, 10)
    c1, c2, pooled = lines(r)
    assert c1.startswith("- test score, c1: **a better than b**, P(a > b) = 1.000 [")
    assert c2.startswith("- test score, c2: **b better than a**, P(a > b) = 0.000 [")
    assert f"p = {p:.2g} (Holm: {3 * p:.2g}, 3 tests)" in c1
    assert pooled.startswith(
        "- test score, pooled over 2 conditions: a vs b: mixed (a ahead in c1 (1.00); "
        "b ahead in c2 (1.00)), P(a > b) = 0.500 ["
    )
    assert sentence(r) == (
        "On test score, a beats b at c1 (P = 1.00), b beats a at c2 (P = 1.00), pooled, mixed "
        "(a ahead in c1 (1.00); b ahead in c2 (1.00))."
    )


def test_conditions_that_agree_give_a_pooled_verdict():
    ahead = [0.25, 0.7, 0.8, 0.9, 1.0]  # beats LOW in 22 of 25 pairs: p = 2 x 7/252 alone
    r = report(question(), {("a", "c1"): ahead, ("a", "c2"): ahead,
                            ("b", "c1"): LOW, ("b", "c2"): LOW})  # fmt: skip
    *per_condition, pooled = r.verdicts
    assert [v.p_value for v in per_condition] == pytest.approx([14 / 252] * 2)
    assert [v.label for v in per_condition] == ["not detected", "not detected"]
    assert pooled.label == "supported" and pooled.adjusted <= 0.05
    assert lines(r)[2].startswith("- test score, pooled over 2 conditions: **a better than b**")
    at_least = math.ceil(stats.detectable_effect(5, 5, 0.05 / 3) * 100) / 100
    assert f"not detected; would detect P ≥ {at_least:.2f} (or ≤" in lines(r)[0]
    assert sentence(r) == (
        "On test score, no difference between a and b was detected in any condition (it would "
        f"have detected P ≥ {at_least:.2f}), pooled, a beats b (P = 0.88)."
    )


def test_holm_decides_better_and_a_restated_claim_is_one_test():
    tips = [
        Tip("B loses.", (Claim("b", "a"),)),
        Tip("A is faster.", (Claim("a", "b", "ms_per_step"),)),
    ]
    q = question(conditions=("",), tips=tips)
    r = report(q, {("a", ""): HIGH, ("b", ""): LOW})
    ms = {("a", ""): [2.0] * 5, ("b", ""): [2.0] * 5}  # equal times: p = 1
    for c in r.cells:
        c.ms_per_step = ms[(c.arm, c.condition)]
    verdicts, tips = answer(q, "quick", r.cells)
    ((verdict,), ((_, (restated,)), (_, (speed,)))) = verdicts, tips
    # the tip restates the verdict the other way round: one test of two, adjusted 2 x 2/252
    assert q.family("quick") == [Claim("a", "b"), Claim("a", "b", "ms_per_step")]
    assert verdict.family == restated.family == speed.family == 2
    assert verdict.adjusted == restated.adjusted == pytest.approx(2 * 2 / 252)
    assert (verdict.label, restated.label, speed.label) == ("supported", "contradicted",
                                                          "not detected")  # fmt: skip


def test_a_family_too_large_for_five_seeds_detects_nothing_and_says_so():
    # 4 arms, every pair: 6 tests, and one tip on time: 7; 2/252 = 0.0079 > 0.05 / 7
    q = question(conditions=("",), arms=("a", "b", "c", "d"),
                 tips=[Tip("?", (Claim("a", "b", "ms_per_step"),))])  # fmt: skip
    rng = np.random.default_rng(0)
    scores = {("a", ""): HIGH, ("b", ""): LOW, ("c", ""): rng.random(5), ("d", ""): rng.random(5)}
    r = report(q, scores)
    for c in r.cells:
        c.ms_per_step = [1.0] * 5
    r.verdicts, r.tips = answer(q, "quick", r.cells)
    assert r.family == 7
    assert lines(r)[0] == (
        "- test score: a vs b: not detected; nothing detectable at 5 vs 5 seeds (the smallest "
        "p, 0.0079, is above 0.05/7), P(a > b) = 1.000 [0.643, 1.000], p = 0.0079 (Holm: 0.056, "
        "7 tests)"
    )
    assert "no effect was detectable at 5 vs 5 seeds after the correction over 7 tests" in (
        sentence(r)
    )


def test_not_detected_prints_the_effect_it_would_detect():
    rng = np.random.default_rng(1)
    q = question(conditions=("",))
    r = report(q, {("a", ""): rng.normal(size=10), ("b", ""): rng.normal(size=10)})
    (verdict,) = r.verdicts
    assert verdict.label == "not detected" and verdict.family == 1
    assert verdict.detectable == stats.detectable_effect(10, 10, 0.05)
    at_least = math.ceil(verdict.detectable * 100) / 100
    assert f"not detected; would detect P ≥ {at_least:.2f} (or ≤ {1 - at_least:.2f})" in r.verdict


def test_too_few_seeds_stay_out_of_the_family():
    r = report(question(), {("a", "c1"): HIGH[:3], ("a", "c2"): HIGH,
                            ("b", "c1"): LOW[:3], ("b", "c2"): LOW})  # fmt: skip
    labels = {v.claim.conditions: v.label for v in r.verdicts}
    assert labels == {("c1",): "too few seeds", ("c2",): "supported", (): "too few seeds"}
    assert r.family == 1 and "c1: a vs b: too few seeds (3 < 5 in some condition)" in r.verdict


def test_the_markdown_states_the_procedure_and_the_sentence():
    r = report(question(), {("a", "c1"): HIGH, ("a", "c2"): HIGH,
                            ("b", "c1"): LOW, ("b", "c2"): LOW})  # fmt: skip
    text = to_markdown(r)
    assert "Holm's correction over this question's 3 tests" in text
    assert f"In one sentence: {sentence(r)}" in text


@pytest.mark.parametrize("n", [5, 10])
def test_false_better_verdicts_stay_under_5_5_percent_under_the_null(n):
    """2,000 A/A comparisons through the report's verdicts, two conditions: per condition and
    pooled, the share of "better" verdicts stays at most 5.5%, for continuous and tied
    scores."""
    rng = np.random.default_rng(n)
    q = question()
    for kind in ("normal", "bimodal"):
        per_condition = pooled = 0
        for _ in range(2000):
            draws = rng.normal(size=(4, n))
            if kind == "bimodal":  # solved (score near 1) or not (exactly 0): ties
                draws = (draws > 0) * (0.9 + 0.1 * rng.random((4, n)))
            r = report(q, {("a", "c1"): draws[0], ("a", "c2"): draws[1],
                           ("b", "c1"): draws[2], ("b", "c2"): draws[3]})  # fmt: skip
            better = [v.label in ("supported", "contradicted") for v in r.verdicts]
            per_condition += sum(better[:2])
            pooled += better[2]
        assert per_condition / 4000 <= 0.055 and pooled / 2000 <= 0.055, (kind, per_condition,
                                                                           pooled)  # fmt: skip
