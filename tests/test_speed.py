"""Time per step from the controlled measurement (grubench.answers.speed): the ratio of two
arms' times per round, the order-statistic interval of its median, the decision rule, and the
report reading a small artifact written here (no store, no timing asserted)."""

from __future__ import annotations

import doctest
import json
import math

import numpy as np
import pytest

from grubench.answers import speed as speeds
from grubench.answers.report import (
    Cell,
    Report,
    answer,
    sentence,
    tip_line,
    to_markdown,
    verdict_line,
)
from grubench.sweeps.question import Claim, Question, Tip, sweep_id

TIER = "unit"

LINE = "time per step (controlled, benchmarks/results/arm_speed.json)"


def test_doctests():
    assert doctest.testmod(speeds).failed == 0


@pytest.mark.parametrize(("n", "k"), [(5, 0), (6, 1), (7, 1), (8, 1), (9, 2), (15, 4), (21, 6)])
def test_the_median_interval_is_the_widest_sign_test_rank_that_holds_95_percent(n, k):
    def coverage(rank: int) -> float:  # P(x_(rank) <= median <= x_(n+1-rank))
        return 1 - 2 * sum(math.comb(n, j) for j in range(rank)) / 2**n

    assert speeds.median_rank(n) == k
    if k:
        assert coverage(k) >= 0.95 > coverage(k + 1)
    else:
        assert coverage(1) < 0.95


def test_the_interval_covers_the_true_median_ratio_by_simulation():
    """Rounds with a true ratio of 1.3 and lognormal noise on each arm: the interval of 15
    rounds covers 1.3 in at least 95% of 2,000 simulated measurements."""
    rng = np.random.default_rng(0)
    covered = 0
    for _ in range(2000):
        base = rng.lognormal(0.0, 0.3, 15) * 10  # drift shared by both arms in a round
        a = base * 1.3 * rng.lognormal(0, 0.05, 15)
        b = base * rng.lognormal(0, 0.05, 15)
        r = speeds.ratio(list(a), list(b))
        covered += r.low <= 1.3 <= r.high
    assert covered / 2000 >= 0.95


def test_ratio_median_and_its_inverse():
    a, b = [3.0, 2.0, 4.0, 6.0, 5.0, 3.3], [2.0, 2.0, 2.0, 3.0, 2.5, 3.0]
    r = speeds.ratio(a, b)  # per round: 1.5, 1.0, 2.0, 2.0, 2.0, 1.1
    assert r.estimate == pytest.approx(math.sqrt(1.5 * 2.0))  # the middle two, in log space
    assert (r.low, r.high) == pytest.approx((1.0, 2.0))  # n = 6: the extremes
    back = speeds.ratio(b, a)
    assert (back.estimate, back.low, back.high) == pytest.approx(
        (1 / r.estimate, 1 / r.high, 1 / r.low)
    )
    assert str(speeds.Ratio(1.4216, 1.38, 1.4649)) == "1.42x [1.38, 1.46]"


@pytest.mark.parametrize(
    ("ratio", "decision", "why"),
    [
        ((0.70, 0.60, 0.80), "faster", ""),
        ((1.42, 1.38, 1.46), "slower", ""),
        ((0.97, 0.95, 0.99), "no difference", "under 5% apart"),  # excludes 1, under 5%
        ((1.04, 1.01, 1.08), "no difference", "under 5% apart"),
        ((0.80, 0.60, 1.01), "no difference", "the interval includes 1"),
        ((1.30, 0.99, 1.60), "no difference", "the interval includes 1"),
    ],
)
def test_the_decision_rule(ratio, decision, why):
    r = speeds.Ratio(*ratio)
    assert speeds.decide(r) == decision
    assert speeds.decide(r.inverse()) == {"faster": "slower", "slower": "faster"}.get(
        decision, decision
    )
    if why:
        assert speeds.why_same(r) == why


@pytest.mark.parametrize(
    ("a", "b", "message"),
    [
        ([1.0] * 5, [1.0] * 5, "5 rounds give no 95% interval; want >= 6"),
        ([1.0] * 6, [1.0] * 7, "want as many rounds of each arm, got 6 and 7"),
        ([1.0] * 5 + [0.0], [1.0] * 6, "times per step must be positive"),
    ],
)
def test_bad_rounds_are_refused_in_one_line(a, b, message):
    with pytest.raises(ValueError, match=message):
        speeds.ratio(a, b)


def question(**kwargs) -> Question:
    options = dict(
        name="q",
        text="A or B?",
        arms={"a": {"model": {"name": "custom_gru"}}, "b": {"model": {"name": "lstm"}}},
        conditions={"c1": {"task": {"seq_len": 10}}, "c2": {"task": {"seq_len": 20}}},
        base={"model": {"hidden_size": 8}},
        verdict_measures=("score", "ms_per_step"),
        tips=[Tip("A is faster.", (Claim("a", "b", "ms_per_step"),))],
    )
    return Question(**{**options, **kwargs})


def artifact(tmp_path, q: Question, times: dict[tuple[str, str], list[float]], engines=None,
             **changed):  # fmt: skip
    """An artifact as benchmarks/arm_speed.py writes it, with the given per-round times;
    ``engines``: condition -> the engine of its arms; ``changed``: arm -> another settings
    hash."""
    configs = speeds.speed_configs(q, "quick")
    conditions: dict[str, dict] = {}
    for (arm, condition), rounds in times.items():
        record = {"rounds_ms": rounds, "ms_per_step": float(np.median(rounds)),
                  "engine": (engines or {}).get(condition, "grubench's engine"),
                  "settings_hash": changed.get(arm, speeds.settings_hash(configs[arm, condition]))}  # fmt: skip
        conditions.setdefault(condition, {"arms": {}})["arms"][arm] = record
    measured = {"date": "2026-12-05T00:00:00Z", "commit": "abc1234", "command": "python x",
                "machine": {"cpu": "Some CPU", "cores": 2, "torch": "2.13.0"}}  # fmt: skip
    entry = {"question": q.name, "profile": "quick", "conditions": conditions,
             "measured": measured}  # fmt: skip
    path = tmp_path / "arm_speed.json"
    path.write_text(json.dumps({"questions": {sweep_id(q, "quick"): entry}}))
    return speeds.load(path)


def report(q: Question, speed: speeds.Artifact | None) -> Report:
    """Score cells with 8 runs each, and sweep timings that say the opposite of the
    artifact (b faster): the verdicts on time must not read them."""
    cells = []
    for arm, scores in (("a", [0.6, 0.7, 0.8, 0.9] * 2), ("b", [0.1, 0.2, 0.3, 0.4] * 2)):
        for condition in ("c1", "c2"):
            cells.append(Cell(arm, condition, run_ids=[str(i) for i in range(8)],
                              scores=scores, ms_per_step=[1.0 if arm == "b" else 9.0] * 8))  # fmt: skip
    verdicts, tips = answer(q, "quick", cells, speed)
    return Report(q, "quick", cells, [], verdicts, tips, speed=speed)


FAST, SLOW = [10.0, 10.2, 9.9, 10.1, 10.0, 10.3, 9.8], [15.0, 15.3, 14.9, 15.2, 15.0, 15.4, 14.8]


def test_the_report_reads_time_from_the_artifact_and_keeps_it_out_of_holm(tmp_path):
    q = question()
    times = {("a", "c1"): FAST, ("b", "c1"): SLOW, ("a", "c2"): FAST, ("b", "c2"): SLOW}
    r = report(q, artifact(tmp_path, q, times))
    lines = r.verdict.splitlines()
    ratio = speeds.ratio(SLOW, FAST)
    c1 = (f"- {LINE}, c1: **a faster than b**, b {ratio.estimate:.2f}x a "
          f"[{ratio.low:.2f}, {ratio.high:.2f}], both on grubench's engine")  # fmt: skip
    assert c1 in lines
    assert (f"- {LINE}, over 2 conditions: **a faster than b**, b 1.50x to 1.50x a over 2 "
            "conditions, both on grubench's engine") in lines  # fmt: skip
    speed_results = [v for v in r.verdicts if v.speed is not None]
    assert len(speed_results) == 3 and all(not v.tested for v in speed_results)
    assert r.family == 3  # the score's two conditions and its pool; time is no test
    ((_, (tip,)),) = r.tips
    assert tip.label == "supported"
    assert tip_line(*r.tips[0]).startswith(
        '- "A is faster." *supported*: a beats b on time per step (controlled: b 1.50x to 1.50x a'
    )
    assert sentence(r, "ms_per_step").startswith(
        f"On time per step (controlled, {speeds.SHOWN}), a is faster than b (b 1.50x"
    )
    text = to_markdown(r)
    assert "| ms/step (sweep, under load) |" in text
    assert "**Time per step** is read from a controlled measurement" in text
    assert "Measured 2026-12-05T00:00:00Z at commit abc1234 on Some CPU (2 cores)" in text


def test_no_difference_and_mixed(tmp_path):
    q = question()
    same = [10.0, 10.4, 9.8, 10.1, 10.2, 9.9, 10.0]
    times = {("a", "c1"): FAST, ("b", "c1"): same, ("a", "c2"): FAST, ("b", "c2"): SLOW}
    r = report(q, artifact(tmp_path, q, times))
    labels = {v.claim.conditions: v.label for v in r.verdicts if v.speed is not None}
    assert labels == {("c1",): "no difference", ("c2",): "supported", (): "mixed"}
    lines = r.verdict.splitlines()
    assert any(line.startswith(f"- {LINE}, c1: a vs b: no difference (") for line in lines)
    assert any(line.startswith(f"- {LINE}, over 2 conditions: a vs b: mixed, ")
               and "(a faster at c2; no difference at c1)" in line for line in lines)  # fmt: skip


def test_what_the_artifact_lacks_is_not_measured_and_names_the_command(tmp_path):
    q = question()
    r = report(q, artifact(tmp_path, q, {("a", "c1"): FAST, ("b", "c1"): SLOW}))
    lines = r.verdict.splitlines()
    command = "run: python benchmarks/arm_speed.py experiments/q.py"
    assert (f"- {LINE}, c2: a vs b: not measured ({speeds.SHOWN} has no q (quick) c2, for "
            f"both arms; {command})") in lines  # fmt: skip
    assert f"- {LINE}, c1: **a faster than b**" in r.verdict
    pooled = next(v for v in r.verdicts if v.speed is not None and not v.claim.conditions)
    assert pooled.label == "not measured"  # c2 is missing: no fall back to the sweep's times
    assert tip_line(*r.tips[0]) == (
        '- "A is faster." *not measured*: a beats b on time per step '
        f"({speeds.SHOWN} has no q (quick) c2, for both arms; {command})."
    )


def test_an_artifact_of_other_settings_missing_or_unreadable_is_not_measured(tmp_path):
    q = question()
    times = {("a", "c1"): FAST, ("b", "c1"): SLOW, ("a", "c2"): FAST, ("b", "c2"): SLOW}
    stale = report(q, artifact(tmp_path, q, times, a="0123456789ab"))
    assert "measured a at other settings than the question's now" in stale.verdict
    assert all(v.label == "not measured" for v in stale.verdicts if v.speed is not None)
    missing = report(q, speeds.load(tmp_path / "none.json"))
    assert f"not measured ({speeds.SHOWN} does not exist; run: " in missing.verdict
    (tmp_path / "bad.json").write_text("{not json")
    bad = report(q, speeds.load(tmp_path / "bad.json"))
    assert f"not measured ({speeds.SHOWN} is not a speed artifact (" in bad.verdict
    nothing = report(q, None)
    assert all(v.label == "not measured" for v in nothing.verdicts if v.speed is not None)


def test_a_question_whose_tuning_changes_the_step_is_not_measured(tmp_path):
    q = question(tune={"model.hidden_size": [8, 16]})
    times = {("a", "c1"): FAST, ("b", "c1"): SLOW}
    path = tmp_path / "arm_speed.json"
    path.write_text(json.dumps({"questions": {"q:quick": {"conditions": {
        "c1": {"arms": {arm: {"rounds_ms": t} for (arm, _), t in times.items()}}}}}}))  # fmt: skip
    r = report(q, speeds.load(path))
    assert "the tuning points change a step's work" in r.verdict


def test_each_condition_names_its_engines_when_they_differ(tmp_path):
    q = question()
    times = {("a", "c1"): FAST, ("b", "c1"): SLOW, ("a", "c2"): FAST, ("b", "c2"): SLOW}
    r = report(q, artifact(tmp_path, q, times, engines={"c2": "PyTorch ops"}))
    assert (
        "- " + LINE + ", c2: **a faster than b**, b 1.50x a [1.50, 1.51], both on PyTorch ops"
        in (r.verdict.splitlines())
    )
    assert ("b 1.50x to 1.50x a over 2 conditions, both on grubench's engine at c1; both on "
            "PyTorch ops at c2") in r.verdict  # fmt: skip


SECONDS = "seconds to solve (steps × time per step, timed side by side)"


def solve_cells(steps: dict[str, list[float]]) -> list[Cell]:
    """Cells with 8 solved runs each (steps to solve per arm, the same in c1 and c2), at the
    ceiling of no score so every condition discriminates."""
    return [Cell(arm, condition, run_ids=[str(i) for i in range(8)], scores=[0.5] * 8,
                 steps=list(values))
            for arm, values in steps.items() for condition in ("c1", "c2")]  # fmt: skip


def timed_question(**kwargs) -> Question:
    return question(verdict_measures=("steps_to_solve", "seconds_to_solve"),
                    tips=[Tip("A solves sooner.", (Claim("a", "b", "seconds_to_solve"),))],
                    **kwargs)  # fmt: skip


def test_seconds_to_solve_is_steps_times_the_arms_controlled_time_per_step(tmp_path):
    """a takes twice b's steps at a third of b's time per step: b wins on steps, a on
    seconds; a run that never solved stays never."""
    q = timed_question()
    assert speeds.compares_speed(q)
    a_ms, b_ms = [5.0, 5.1, 4.9, 5.0, 5.2, 4.8, 5.0], [15.0, 15.2, 14.8, 15.1, 15.0, 14.9, 15.0]
    times = {("a", "c1"): a_ms, ("b", "c1"): b_ms, ("a", "c2"): a_ms, ("b", "c2"): b_ms}
    a_steps = [1100.0, 1200, 1300, 1400, 1500, 1600, 1700, math.inf]  # 5.5 to 8.5 s, never
    cells = solve_cells({"a": a_steps, "b": [600.0, 650, 700, 750, 800, 850, 900, 950]})
    verdicts, tips = answer(q, "quick", cells, artifact(tmp_path, q, times))
    first = cells[0]
    assert first.values("seconds_to_solve") == pytest.approx(
        [s * 5.0 / 1000 for s in a_steps[:-1]] + [math.inf]
    )
    lines = [verdict_line(v) for v in verdicts]
    assert "steps to solve, c1: **b better than a**, P(a > b) = 0.000" in " ".join(lines)
    assert f"{SECONDS}, c1: **a better than b**, P(a > b) = 0.875" in " ".join(lines)
    seconds = [v for v in verdicts if v.claim.measure == "seconds_to_solve"]
    assert all(v.speed is None and v.tested for v in seconds)  # tests on the seeds, in Holm
    ((_, (tip,)),) = tips
    assert tip.label == "supported" and tip.family == 6


def test_seconds_to_solve_of_an_arm_not_measured_is_not_measured(tmp_path):
    q = timed_question()
    a_ms = [5.0, 5.1, 4.9, 5.0, 5.2, 4.8, 5.0]
    cells = solve_cells({"a": [1000.0] * 8, "b": [500.0] * 8})
    only_a = artifact(tmp_path, q, {("a", "c1"): a_ms, ("a", "c2"): a_ms})
    verdicts, tips = answer(q, "quick", cells, only_a)
    assert all(cell.values("seconds_to_solve") == [] for cell in cells if cell.arm == "b")
    command = "run: python benchmarks/arm_speed.py experiments/q.py"
    lines = [verdict_line(v) for v in verdicts]
    assert (f"{SECONDS}, c1: a vs b: not measured ({speeds.SHOWN} has no q (quick) c1, for "
            f"both arms; {command})") in lines  # fmt: skip
    assert tip_line(*tips[0]) == (
        f'- "A solves sooner." *not measured*: a beats b on {SECONDS} ({speeds.SHOWN} has no q '
        f"(quick) c1, for both arms; {speeds.SHOWN} has no q (quick) c2, for both arms; "
        f"{command})."
    )
    assert all(not v.tested for v in verdicts if v.claim.measure == "seconds_to_solve")
    stale = artifact(tmp_path, q, {("a", "c1"): a_ms, ("b", "c1"): a_ms, ("a", "c2"): a_ms,
                                   ("b", "c2"): a_ms}, b="0123456789ab")  # fmt: skip
    verdicts, _ = answer(q, "quick", solve_cells({"a": [1000.0] * 8, "b": [500.0] * 8}), stale)
    assert "measured b at other settings than the question's now" in verdict_line(verdicts[-1])
