"""The selection step (grubench.sweeps.selection): the best mean validation score wins, ties
go by the declared rule, and a kept point at the edge of its grid, or a cell where every
point tied, is flagged in words the report prints."""

from __future__ import annotations

from types import SimpleNamespace

from grubench.answers.report import Cell, Report, to_markdown
from grubench.store.schema import STEPS_TO_SOLVE, VAL_SCORE
from grubench.sweeps.question import Question, expand_tuning
from grubench.sweeps.selection import select, selection_flags

TIER = "unit"

QUESTION = Question(
    name="q", text="Which rate?", arms={"adam": {}, "sgd": {"optim": {"name": "sgd"}}},
    tune={"optim.lr": [0.001, 0.01, 0.1]}, seeds={"quick": [7], "full": [7]},
    tuning_seeds={"quick": [0, 1], "full": [0, 1]},
)  # fmt: skip


def run(score: float, steps: float | None = None):
    metrics = {VAL_SCORE: score, **({STEPS_TO_SOLVE: steps} if steps is not None else {})}
    return SimpleNamespace(data=SimpleNamespace(metrics=metrics, tags={}))


def selections(scores: dict[tuple[str, str], float], steps: dict | None = None):
    """select() over the question's tuning children, each run scoring ``scores[(arm, point)]``."""
    children = expand_tuning(QUESTION, "quick")
    runs = {c.key: run(scores[c.arm, c.point], (steps or {}).get((c.arm, c.point)))
            for c in children}  # fmt: skip
    return select(children, runs)


def flags(selected, arm: str) -> list[str]:
    (kept,) = [s for (a, _), s in selected.items() if a == arm]
    return selection_flags(kept, QUESTION.point_values(arm))


def test_the_best_inside_the_grid_has_no_flag_and_edges_are_named():
    selected = selections({
        ("adam", "lr=0.001"): 0.5, ("adam", "lr=0.01"): 0.9, ("adam", "lr=0.1"): 0.2,
        ("sgd", "lr=0.001"): 0.1, ("sgd", "lr=0.01"): 0.3, ("sgd", "lr=0.1"): 0.7,
    })  # fmt: skip
    assert {a: s.point for (a, _), s in selected.items()} == {"adam": "lr=0.01", "sgd": "lr=0.1"}
    assert flags(selected, "adam") == []
    assert flags(selected, "sgd") == ["lr=0.1 is the top of its grid (the best may lie above)"]
    bottom = selections({(a, p): 1.0 - float(p[3:]) for a in ("adam", "sgd")
                         for p in ("lr=0.001", "lr=0.01", "lr=0.1")})  # fmt: skip
    assert flags(bottom, "adam") == ["lr=0.001 is the bottom of its grid (the best may lie below)"]


def test_ties_go_to_fewer_steps_then_the_grid_order_and_a_full_tie_is_said():
    equal = {(a, p): 0.9 for a in ("adam", "sgd") for p in ("lr=0.001", "lr=0.01", "lr=0.1")}
    faster = selections(equal, steps={("adam", "lr=0.01"): 100, ("adam", "lr=0.1"): 300})
    assert faster[("adam", "")].point == "lr=0.01"  # equal scores: fewer steps to solve
    assert not faster[("adam", "")].tied
    zero = selections({key: 0.0 for key in equal})
    assert zero[("sgd", "")].point == "lr=0.001" and zero[("sgd", "")].tied  # the grid's first
    assert flags(zero, "sgd") == [
        "every point tied (mean validation score 0.000): none was selected, the grid's first "
        "point kept"
    ]


def test_the_report_lists_the_flagged_selections():
    selected = selections({
        ("adam", "lr=0.001"): 0.5, ("adam", "lr=0.01"): 0.9, ("adam", "lr=0.1"): 0.2,
        ("sgd", "lr=0.001"): 0.0, ("sgd", "lr=0.01"): 0.0, ("sgd", "lr=0.1"): 0.0,
    })  # fmt: skip
    cells = [Cell(arm, "", selected=s.point, tuning=s) for (arm, _), s in selected.items()]
    text = to_markdown(Report(QUESTION, "quick", cells, [], [], []))
    assert "Selections to read with care (the grid did not contain a clear best):" in text
    assert "- sgd, –: every point tied (mean validation score 0.000)" in text
    assert "- adam" not in text
