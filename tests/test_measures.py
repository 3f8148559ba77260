"""The one registry of measures (grubench.store.measures): the question's valid measures, the
report's words and cells and each measure's direction all come from it."""

from __future__ import annotations

import math
from types import SimpleNamespace

import pytest

from grubench.answers.report import MEASURE_WORDS, Cell, answer, verdict_line
from grubench.store.measures import MEASURES
from grubench.store.schema import GLOBAL_BATCH, STEPS_TO_SOLVE, TEST_SCORE
from grubench.sweeps.question import CALIBRATED, FLOOR, Claim, Question, Tip
from grubench.sweeps.question import MEASURES as QUESTION_MEASURES

TIER = "unit"


def test_the_question_and_the_report_read_the_registry():
    assert QUESTION_MEASURES == tuple(MEASURES)
    assert MEASURE_WORDS == {name: m.words for name, m in MEASURES.items()}


@pytest.mark.parametrize("name", list(MEASURES))
def test_every_measure_has_its_cell_values_and_direction(name):
    cell = Cell("a", "c")
    cell.values(name).extend([1.0, 2.0])
    oriented = cell.measure(name)
    assert oriented == ([1.0, 2.0] if MEASURES[name].higher_is_better else [-1.0, -2.0])
    assert MEASURES[name].words and MEASURES[name].key and MEASURES[name].unit


def test_an_unknown_measure_is_refused_with_the_choices():
    with pytest.raises(ValueError, match="unknown measure 'speed'; choose from: score"):
        Cell("a", "c").measure("speed")
    question = Question(name="q", text="?", arms={"a": {}, "b": {}},
                        verdict_measures=("speed",))  # fmt: skip
    problems = question.check()
    assert any("speed" in p and "choose from: " + ", ".join(MEASURES) in p for p in problems)


def test_steps_to_solve_counts_a_run_that_never_solved_as_never():
    class Run:  # the two attributes a stored run's reader touches
        class data:
            metrics: dict = {}
            tags: dict = {}

    assert MEASURES["steps_to_solve"].read(Run) == math.inf
    assert MEASURES["gap"].read(Run) is None


def stored_run(metrics: dict):
    """A stand-in for a stored run: the attributes the measures' readers touch."""
    return SimpleNamespace(data=SimpleNamespace(metrics=metrics, tags={}, params={}))


def test_samples_to_solve_is_steps_times_the_global_batch_and_never_stays_never():
    samples = MEASURES["samples_to_solve"]
    assert samples.read(stored_run({STEPS_TO_SOLVE: 500.0, GLOBAL_BATCH: 256.0})) == 128000.0
    assert samples.read(stored_run({STEPS_TO_SOLVE: 1000.0, GLOBAL_BATCH: 16.0})) == 16000.0
    assert samples.read(stored_run({GLOBAL_BATCH: 16.0})) == math.inf  # never solved
    assert samples.read(stored_run({STEPS_TO_SOLVE: 500.0})) is None  # no batch logged
    # no stored run holds the controlled time per step: the report fills seconds per cell
    assert MEASURES["seconds_to_solve"].read(stored_run({STEPS_TO_SOLVE: 500.0})) is None


def test_every_cost_of_solving_is_flagged_and_ties_at_the_floor():
    solving = {name for name, m in MEASURES.items() if m.to_solve}
    assert solving == {"steps_to_solve", "samples_to_solve", "seconds_to_solve"}
    assert all(CALIBRATED[name] == (FLOOR,) for name in solving)
    assert {name for name, m in MEASURES.items() if m.controlled_time} == {"seconds_to_solve"}
    assert "side by side" in MEASURES["seconds_to_solve"].words
    assert "1 torch thread" in MEASURES["seconds_to_solve"].unit


BATCHES = Question(
    name="batches",
    text="What batch size?",
    arms={"B=16": {"task": {"batch_size": 16}}, "B=256": {"task": {"batch_size": 256}}},
    verdict_measures=("steps_to_solve", "samples_to_solve"),
    tips=[Tip("Larger batches converge faster.",
              (Claim("B=256", "B=16", "steps_to_solve"),
               Claim("B=256", "B=16", "samples_to_solve")))],
)  # fmt: skip


def cell_of(arm: str, batch: int, steps: list[float | None]) -> Cell:
    """A cell filled as the report fills it: each measure read from a stored run (None in
    ``steps``: a run that never solved)."""
    cell = Cell(arm, "")
    for i, step in enumerate(steps):
        metrics = {TEST_SCORE: 0.99, GLOBAL_BATCH: float(batch)}
        if step is not None:
            metrics[STEPS_TO_SOLVE] = step
        cell.run_ids.append(str(i))
        for measure in MEASURES.values():
            if (value := measure.read(stored_run(metrics))) is not None:
                cell.values(measure.name).append(value)
    return cell


def test_fewer_steps_but_more_samples_are_two_verdicts():
    """B=256 solves in about half the steps of B=16 but sees 16 times the samples per step:
    it wins on steps and loses on samples; B=16's run that never solved counts as never on
    both (it loses to every B=256 run)."""
    small = cell_of("B=16", 16, [900, 1000, 1100, 1200, 1300, 1400, 1500, None])
    large = cell_of("B=256", 256, [400, 450, 500, 500, 550, 600, 650, 700])
    assert small.values("samples_to_solve")[:2] == [14400.0, 16000.0]
    assert small.values("samples_to_solve")[-1] == math.inf
    verdicts, tips = answer(BATCHES, "quick", [small, large])
    lines = [verdict_line(v) for v in verdicts]
    assert lines[0].startswith(
        "steps to solve: **B=256 better than B=16**, P(B=16 > B=256) = 0.000"
    )
    assert lines[1].startswith(
        "samples to solve: **B=16 better than B=256**, P(B=16 > B=256) = 0.875"
    )
    ((_, (steps, samples)),) = tips
    assert (steps.label, samples.label) == ("supported", "contradicted")
    assert samples.p.estimate == pytest.approx(1 / 8) and samples.family == 2


def test_costs_of_solving_are_not_compared_where_the_task_has_no_threshold():
    small, large = cell_of("B=16", 16, [None] * 8), cell_of("B=256", 256, [None] * 8)
    for cell in (small, large):
        cell.solvable = False
    verdicts, tips = answer(BATCHES, "quick", [small, large])
    assert verdicts == [] and all(r.label == "not measured" for r in tips[0][1])
