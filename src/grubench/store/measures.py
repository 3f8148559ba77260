"""Every measure an answer compares arms on, named once: its words, the run's summary metric
it reads, its direction and unit. The question (valid claim and verdict measures), the report
(cells, verdicts, tip labels), the plots and the UI's saved view read this registry; a new
measure is one entry here (and the summary metric its run logs).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from grubench.store.runs import diverged, run_score, run_steps
from grubench.store.schema import (
    GAP_SCORE,
    LENGTH_SCORE,
    STEPS_TO_SOLVE,
    TEST_SCORE,
    TIME_PER_STEP,
)


@dataclass(frozen=True)
class Measure:
    """``read(run)`` gives the run's value (None: the run has none, e.g. a diverged run's
    gap); ``higher_is_better`` orients it for P(A > B)."""

    name: str
    words: str  # as a verdict says it: "lstm beats gru on <words>"
    key: str  # the summary metric it reads
    higher_is_better: bool
    unit: str
    read: Callable[[object], float | None]

    def oriented(self, values: list[float]) -> list[float]:
        """``values`` with higher = better (what P(A > B) compares)."""
        return list(values) if self.higher_is_better else [-v for v in values]


def _metric(key: str, skip_diverged: bool = False) -> Callable[[object], float | None]:
    def read(run) -> float | None:
        if skip_diverged and diverged(run):
            return None
        value = run.data.metrics.get(key)
        return float(value) if value is not None and not math.isnan(value) else None

    return read


def _length_score(run) -> float | None:
    """The normalized test score at the run's longest extra evaluation length, floored at 0
    like the score; None for a run evaluated at its training length only (a diverged run with
    extra lengths scores 0: it was never tested at them)."""
    if LENGTH_SCORE not in run.data.metrics:
        lengths = getattr(run.data, "params", {}).get("task.eval_lengths", "[]")
        return 0.0 if diverged(run) and lengths not in ("[]", "") else None
    score = run_score(run, LENGTH_SCORE)
    return None if math.isnan(score) else score


MEASURES: dict[str, Measure] = {
    m.name: m
    for m in (
        Measure("score", "test score", TEST_SCORE, True, "normalized: 0 chance, 1 perfect",
                lambda run: run_score(run, TEST_SCORE)),
        Measure("steps_to_solve", "steps to solve", STEPS_TO_SOLVE, False,
                "steps; never solved counts as never", run_steps),
        Measure("ms_per_step", "time per step", TIME_PER_STEP, False, "ms",
                _metric(TIME_PER_STEP)),
        Measure("gap", "train-validation gap", GAP_SCORE, False,
                "normalized train score minus validation score", _metric(GAP_SCORE, True)),
        Measure("length_generalization", "test score at the longest extra length",
                LENGTH_SCORE, True,
                "normalized: 0 chance, 1 perfect (at the longest of task.eval_lengths)",
                _length_score),
    )
}  # fmt: skip
LENGTH_GENERALIZATION = MEASURES["length_generalization"]
