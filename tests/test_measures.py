"""The one registry of measures (grubench.store.measures): the question's valid measures, the
report's words and cells and each measure's direction all come from it."""

from __future__ import annotations

import math

import pytest

from grubench.answers.report import MEASURE_WORDS, Cell
from grubench.store.measures import MEASURES
from grubench.sweeps.question import MEASURES as QUESTION_MEASURES
from grubench.sweeps.question import Question

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
