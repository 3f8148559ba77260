"""The protocol's selection step, read from the store: per arm and condition, the tuning
point with the best mean validation score over the tuning seeds.

A run's score is its normalized objective (0 = the task's chance level, 1 = perfect; see
:mod:`grubench.answers.stats`): ``final/val/score`` for tuning runs, ``test/score`` for evaluation
runs, floored at 0: a diverged run, or one that ends worse than the trivial predictor, scores
0, as that predictor does: it is counted, not dropped. Ties in the mean score go to the point
with fewer diverged runs, then to the one whose runs solved in fewer steps, then to the first
in the grid's declared order.

A selection says what a reader must know before trusting it (:func:`selection_flags`): a kept
point at the edge of a numeric axis of its grid (the best value may lie beyond it), and a
cell where every point tied (nothing was selected: the grid's order decided).
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass, field

from grubench.store.runs import diverged, run_score, run_steps
from grubench.store.schema import VAL_SCORE
from grubench.sweeps.question import Child


@dataclass
class Selection:
    point: str  # the kept point's label
    # every point's mean validation score over the tuning seeds (the sensitivity curve)
    scores: dict[str, float] = field(default_factory=dict)
    runs: dict[str, list] = field(default_factory=dict)  # point -> its tuning runs

    @property
    def tied(self) -> bool:
        """Every point ranked alike (score, divergences, steps): the grid's order chose."""
        ranks = {_rank(self.scores[p], runs) for p, runs in self.runs.items()}
        return len(self.runs) > 1 and len(ranks) == 1


def select(tuning: list[Child], runs_by_key: dict[str, object]) -> dict[tuple[str, str], Selection]:
    """The kept point of every (arm, condition) whose tuning children all have a finished run
    in ``runs_by_key`` (child key -> run); cells with a missing run are left out."""
    cells: dict[tuple[str, str], dict[str, list]] = {}
    incomplete = set()
    for child in tuning:
        cell = (child.arm, child.condition)
        run = runs_by_key.get(child.key)
        if run is None:
            incomplete.add(cell)
            continue
        cells.setdefault(cell, {}).setdefault(child.point, []).append(run)
    selected = {}
    for cell, points in cells.items():
        if cell in incomplete:
            continue
        scores = {}
        for point, runs in points.items():
            values = [run_score(r, VAL_SCORE) for r in runs]
            scores[point] = math.nan if any(map(math.isnan, values)) else statistics.fmean(values)

        best = min(points, key=lambda point: _rank(scores[point], points[point]))
        selected[cell] = Selection(best, scores, points)
    return selected


def _rank(score: float, runs: list) -> tuple[float, int, float]:
    """Higher mean score first, then fewer diverged runs, then fewer mean steps to solve; a
    point without scores ranks last."""
    steps = statistics.fmean(run_steps(r) for r in runs)
    return (math.inf if math.isnan(score) else -score, sum(map(diverged, runs)), steps)


def selection_flags(selection: Selection, values: dict[str, dict[str, object]]) -> list[str]:
    """What to know of a kept point, in words: ``values`` maps each point's label to its value
    per grid key (:meth:`grubench.sweeps.question.Question.point_values`). The kept point on
    the lowest or highest value of a numeric key of three or more values is "at the top (or
    bottom) of its <key> grid"; a cell whose points all tied says so."""
    if selection.tied:
        score = next(iter(selection.scores.values()))
        return [f"every point tied (mean validation score {score:.3f}): none was selected, "
                "the grid's first point kept"]  # fmt: skip
    flags = []
    kept = values.get(selection.point, {})
    for key, value in kept.items():
        axis = sorted({v[key] for v in values.values() if key in v}, key=_as_number)
        if len(axis) < 3 or not all(isinstance(v, int | float) for v in axis):
            continue
        name = key.rsplit(".", 1)[-1]
        if value == axis[-1]:
            flags.append(f"{name}={value:g} is the top of its grid (the best may lie above)")
        elif value == axis[0]:
            flags.append(f"{name}={value:g} is the bottom of its grid (the best may lie below)")
    return flags


def _as_number(value: object) -> float:
    return float(value) if isinstance(value, int | float) else math.inf
