"""The report's verdicts from cells (no store): per condition first, a pooled verdict only
where the conditions agree, Holm over the question's family, the detectable effect beside each
"not detected", the one-sentence answer, the rate of false "better" verdicts under the null
at the profiles' seed counts, and the calibration rule: a condition with every arm at the
ceiling or the floor cannot discriminate and is no test."""

import math

import numpy as np
import pytest

from grubench.answers import stats
from grubench.answers.report import Cell, Report, answer, sentence, to_markdown
from grubench.sweeps.question import Calibration, Claim, Question, Tip, expand

TIER = "unit"

LOW, HIGH = [0.1, 0.2, 0.3, 0.4, 0.5], [0.6, 0.7, 0.8, 0.9, 1.0]


def question(conditions=("c1", "c2"), arms=("a", "b"), **kwargs) -> Question:
    kwargs.setdefault("verdict_measures", ("score",))
    return Question(name="q", text="A or B?", arms={arm: {} for arm in arms},
                    conditions={c: {} for c in conditions}, **kwargs)  # fmt: skip


def cell(arm: str, condition: str, scores, steps=None) -> Cell:
    scores = [float(s) for s in scores]
    return Cell(arm, condition, run_ids=[str(i) for i in range(len(scores))], scores=scores,
                steps=list(steps) if steps is not None else [])  # fmt: skip


def report(q: Question, scores: dict[tuple[str, str], list[float]], steps=None) -> Report:
    """``steps``: (arm, condition) -> steps to solve per run (inf: never); without, whether
    runs solved is unknown and no condition is judged against the ceiling or the floor."""
    steps = steps or {}
    cells = [cell(arm, condition, values, steps.get((arm, condition)))
             for (arm, condition), values in scores.items()]  # fmt: skip
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
        Tip("A has the smaller gap.", (Claim("a", "b", "gap"),)),
    ]
    q = question(conditions=("",), tips=tips)
    r = report(q, {("a", ""): HIGH, ("b", ""): LOW})
    gaps = {("a", ""): [0.2] * 5, ("b", ""): [0.2] * 5}  # equal gaps: p = 1
    for c in r.cells:
        c.gaps = gaps[(c.arm, c.condition)]
    verdicts, tips = answer(q, "quick", r.cells)
    ((verdict,), ((_, (restated,)), (_, (gap,)))) = verdicts, tips
    # the tip restates the verdict the other way round: one test of two, adjusted 2 x 2/252
    assert q.family("quick") == [Claim("a", "b"), Claim("a", "b", "gap")]
    assert verdict.family == restated.family == gap.family == 2
    assert verdict.adjusted == restated.adjusted == pytest.approx(2 * 2 / 252)
    assert (verdict.label, restated.label, gap.label) == ("supported", "contradicted",
                                                        "not detected")  # fmt: skip


def test_a_family_too_large_for_five_seeds_detects_nothing_and_says_so():
    # 4 arms, every pair: 6 tests, and one tip on the gap: 7; 2/252 = 0.0079 > 0.05 / 7
    q = question(conditions=("",), arms=("a", "b", "c", "d"),
                 tips=[Tip("?", (Claim("a", "b", "gap"),))])  # fmt: skip
    rng = np.random.default_rng(0)
    scores = {("a", ""): HIGH, ("b", ""): LOW, ("c", ""): rng.random(5), ("d", ""): rng.random(5)}
    r = report(q, scores)
    for c in r.cells:
        c.gaps = [0.1] * 5
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


# the calibration rule: every arm at the ceiling or at the floor
TOP = [1.0] * 5  # beats NEAR_TOP in every pair: a test would call it "better"
NEAR_TOP = [0.991, 0.992, 0.993, 0.994, 0.995]
BOTTOM = [0.0, 0.01, 0.02, 0.0, 0.03]
SOLVED, NEVER = [200.0] * 5, [math.inf] * 5
CEILING_WHY = "every arm at the ceiling (IQM score ≥ 0.99, all solved)"
FLOOR_WHY = "every arm at the floor (IQM score ≤ 0.05, none solved)"


def test_a_ceiling_condition_cannot_discriminate_and_leaves_the_family():
    r = report(question(), {("a", "c1"): TOP, ("b", "c1"): NEAR_TOP,
                            ("a", "c2"): HIGH, ("b", "c2"): LOW},
               steps={("a", "c1"): SOLVED, ("b", "c1"): SOLVED,
                      ("a", "c2"): SOLVED, ("b", "c2"): NEVER})  # fmt: skip
    assert r.bounds == {"c1": ("ceiling", CEILING_WHY)}
    c1, c2, pooled = lines(r)
    # without the rule: 3 tests, and c1's fully separated runs (p = 2/252, Holm 0.024) would
    # read "a better than b" for a gap of 0.007 within the margin
    assert c1 == f"- test score, c1: a vs b: cannot discriminate: {CEILING_WHY}"
    assert "not detected" not in r.verdict
    # the pool keeps c2 only: the same test as c2's line, so the family is one test
    assert pooled.startswith(f"- test score, pooled over 1 condition, leaving out c1, "
                             f"{CEILING_WHY}: **a better than b**, P(a > b) = 1.000 [")  # fmt: skip
    assert r.family == 1 and f"p = {2 / 252:.2g} (Holm: {2 / 252:.2g}, 1 tests)" in c2
    assert [v.label for v in r.verdicts] == ["cannot discriminate", "supported", "supported"]
    assert sentence(r) == (
        f"On test score, a beats b at c2 (P = 1.00); c1 cannot discriminate: {CEILING_WHY}."
    )
    assert (
        f"**Calibration** (ceiling: IQM score ≥ 0.99 and all solved; floor: ≤ 0.05 and none "
        f"solved): discriminate: c2; cannot discriminate: c1, {CEILING_WHY}."
    ) in to_markdown(r)


def test_a_report_where_no_condition_discriminates_says_so():
    q = question(tips=[Tip("A wins at the top.", (Claim("a", "b", conditions=("c1",)),))])
    r = report(q, {("a", "c1"): TOP, ("b", "c1"): NEAR_TOP,
                   ("a", "c2"): BOTTOM, ("b", "c2"): BOTTOM[::-1]},
               steps={("a", "c1"): SOLVED, ("b", "c1"): SOLVED,
                      ("a", "c2"): NEVER, ("b", "c2"): NEVER})  # fmt: skip
    assert r.family == 0
    assert lines(r) == [
        f"- test score, c1: a vs b: cannot discriminate: {CEILING_WHY}",
        f"- test score, c2: a vs b: cannot discriminate: {FLOOR_WHY}",
        f"- test score, pooled: a vs b: cannot discriminate: c1, {CEILING_WHY}; c2, {FLOOR_WHY}",
    ]
    assert sentence(r) == ("No condition of this profile discriminates the arms on test score: "
                           f"c1, {CEILING_WHY}; c2, {FLOOR_WHY}.")  # fmt: skip
    ((_, (tip,)),) = r.tips
    assert tip.label == "cannot discriminate" and math.isnan(tip.adjusted)
    assert "discriminate: none; cannot discriminate: c1, " in to_markdown(r)


def test_the_floor_of_a_question_with_one_condition():
    r = report(question(conditions=("",)), {("a", ""): BOTTOM, ("b", ""): [0.0] * 5},
               steps={("a", ""): NEVER, ("b", ""): NEVER})  # fmt: skip
    assert lines(r) == [f"- test score: a vs b: cannot discriminate: {FLOOR_WHY}"]
    assert sentence(r) == (
        f"No condition of this profile discriminates the arms on test score: {FLOOR_WHY}."
    )


def test_steps_to_solve_still_discriminate_at_the_ceiling_but_not_at_the_floor():
    q = question(verdict_measures=("score", "steps_to_solve"))
    r = report(q, {("a", "c1"): TOP, ("b", "c1"): TOP, ("a", "c2"): BOTTOM, ("b", "c2"): BOTTOM},
               steps={("a", "c1"): [200.0, 210, 220, 230, 240],
                      ("b", "c1"): [900.0, 1000, 1100, 1200, 1300],
                      ("a", "c2"): NEVER, ("b", "c2"): NEVER})  # fmt: skip
    labels = {(v.claim.measure, v.claim.conditions): v.label for v in r.verdicts}
    assert labels == {
        ("score", ("c1",)): "cannot discriminate",
        ("score", ("c2",)): "cannot discriminate",
        ("score", ()): "cannot discriminate",
        ("steps_to_solve", ("c1",)): "supported",  # how fast each learned: still a test
        ("steps_to_solve", ("c2",)): "cannot discriminate",  # every run "never"
        ("steps_to_solve", ()): "supported",  # pooled over c1 alone: the same test
    }
    assert r.family == 1
    assert sentence(r, "steps_to_solve") == (
        f"On steps to solve, a beats b at c1 (P = 1.00); c2 cannot discriminate: {FLOOR_WHY}."
    )


@pytest.mark.parametrize(
    ("scores", "steps", "bound"),
    [
        (TOP, SOLVED, "ceiling"),
        (TOP, SOLVED[:4] + [math.inf], ""),  # one run never solved: not the ceiling
        ([0.98] * 5, SOLVED, ""),  # below the margin
        (BOTTOM, NEVER, "floor"),
        ([0.06] * 5, NEVER, ""),  # above the margin
        (BOTTOM, [300.0] + NEVER[1:], ""),  # one run solved: not the floor
    ],
)
def test_the_margins(scores, steps, bound):
    """Both arms alike: the condition is at ``bound`` ("" where it can discriminate)."""
    r = report(question(conditions=("",)), {("a", ""): scores, ("b", ""): scores},
               steps={("a", ""): steps, ("b", ""): steps})  # fmt: skip
    assert [b for b, _ in r.bounds.values()] == ([bound] if bound else [])


def test_declared_margins_and_an_arm_without_runs():
    near = [0.96] * 5
    q = question(conditions=("",), calibration=Calibration(ceiling=0.95))
    r = report(q, {("a", ""): near, ("b", ""): near}, {("a", ""): SOLVED, ("b", ""): SOLVED})
    assert r.bounds == {"": ("ceiling", "every arm at the ceiling (IQM score ≥ 0.95, all "
                                        "solved)")}  # fmt: skip
    assert report(question(conditions=("",)), {("a", ""): near, ("b", ""): near},
                  {("a", ""): SOLVED, ("b", ""): SOLVED}).bounds == {}  # fmt: skip
    # 3 runs each: too few to test, too few to judge
    few = report(question(conditions=("",)), {("a", ""): TOP[:3], ("b", ""): TOP[:3]},
                 {("a", ""): SOLVED[:3], ("b", ""): SOLVED[:3]})  # fmt: skip
    assert few.bounds == {} and [v.label for v in few.verdicts] == ["too few seeds"]
    # b has not run yet: the condition is not judged
    assert report(question(conditions=("",)), {("a", ""): TOP, ("b", ""): []},
                  {("a", ""): SOLVED, ("b", ""): []}).bounds == {}  # fmt: skip
    bad = question(conditions=("",), calibration=Calibration(ceiling=0.05, floor=0.1))
    assert bad.check() == ["q: calibration: want 0 <= floor < ceiling <= 1, got floor 0.1, "
                           "ceiling 0.05"]  # fmt: skip


def test_the_margins_change_no_settings_hash():
    """Calibration is how the report reads runs, not what a run computes."""
    q = question(base={"trainer": {"max_steps": 3}})
    other = question(base={"trainer": {"max_steps": 3}},
                     calibration=Calibration(ceiling=0.9, floor=0.2))  # fmt: skip
    longer = question(base={"trainer": {"max_steps": 4}})
    hashes = [[c.config_hash() for c in expand(x, "quick")] for x in (q, other, longer)]
    assert hashes[0] == hashes[1] != hashes[2]  # a setting does change it


def test_scores_are_censored_at_the_solved_level_where_runs_stop_once_solved():
    """Issue 24 item 5: every run of both arms solved, a's a little higher only because its
    runs stopped later; censored at the solved level they tie, and how fast each solved is
    left to steps to solve. An unsolved run's test score above the level counts as the level."""
    a_scores, b_scores = [0.97, 0.96, 0.97, 0.95, 0.96], [0.91, 0.92, 0.90, 0.93, 0.91]
    fast, slow = [200.0] * 5, [600.0] * 5
    q = question(conditions=("c",), verdict_measures=("score", "steps_to_solve"))

    def verdicts(censor_at):
        cells = [cell("a", "c", a_scores, slow), cell("b", "c", b_scores, fast)]
        for each in cells:
            each.censor_at = censor_at
        return Report(q, "quick", cells, [], *answer(q, "quick", cells))

    raw, censored = verdicts(None), verdicts(0.9)  # not at the ceiling (IQM < 0.99)
    assert "**a better than b**" in lines(raw)[0]
    assert lines(censored)[0].startswith("- test score: a vs b: not detected")
    assert "P(a > b) = 0.500" in lines(censored)[0]
    assert "**b better than a**" in lines(censored)[1]  # steps to solve: b solved sooner
    assert "compared censored at the solved level" in to_markdown(censored)
    assert "censored" not in to_markdown(raw)
    unsolved = cell("a", "c", [0.95, 0.5], [math.inf, math.inf])
    unsolved.censor_at = 0.9
    assert unsolved.measure("score") == [0.9, 0.5]
