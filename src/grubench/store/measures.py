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
    GLOBAL_BATCH,
    LENGTH_SCORE,
    STEPS_TO_SOLVE,
    TEST_SCORE,
    TIME_PER_STEP,
)


@dataclass(frozen=True)
class Measure:
    """``read(run)`` gives the run's value (None: the run has none, e.g. a diverged run's
    gap); ``higher_is_better`` orients it for P(A > B).

    ``to_solve``: a cost of solving (steps, samples, seconds): a run that never solved reads
    ``inf`` (counted as never, not dropped), the measure exists only where the task has a
    solved threshold, and at the floor (no run solved) every arm ties at never.
    ``controlled_time``: the value is the run's steps to solve times its arm's time per step
    from the controlled measurement (benchmarks/results/arm_speed.json), which no stored run
    holds: ``read`` gives None and the report fills the values per arm and condition
    (``grubench.answers.speed.fill_timed``); an arm not measured there has none."""

    name: str
    words: str  # as a verdict says it: "lstm beats gru on <words>"
    key: str  # the summary metric it reads
    higher_is_better: bool
    unit: str
    read: Callable[[object], float | None]
    to_solve: bool = False
    controlled_time: bool = False

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


def _samples_to_solve(run) -> float | None:
    """Steps to solve times the run's global batch (samples per step, over every process);
    ``inf`` for a run that never solved, None for a solved run that logged no batch."""
    steps = run_steps(run)
    if math.isinf(steps):
        return steps
    batch = run.data.metrics.get(GLOBAL_BATCH)
    return steps * float(batch) if batch is not None else None


def _not_stored(run) -> None:
    """None: a stored run holds steps, not the controlled time per step (``controlled_time``)."""
    return None


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
                "steps; never solved counts as never", run_steps, to_solve=True),
        Measure("ms_per_step", "time per step", TIME_PER_STEP, False, "ms",
                _metric(TIME_PER_STEP)),
        Measure("gap", "train-validation gap", GAP_SCORE, False,
                "normalized train score minus validation score", _metric(GAP_SCORE, True)),
        Measure("length_generalization", "test score at the longest extra length",
                LENGTH_SCORE, True,
                "normalized: 0 chance, 1 perfect (at the longest of task.eval_lengths)",
                _length_score),
        Measure("samples_to_solve", "samples to solve", STEPS_TO_SOLVE, False,
                f"training samples: steps to solve × the run's {GLOBAL_BATCH} (batch_size × "
                "processes); never solved counts as never", _samples_to_solve, to_solve=True),
        Measure("seconds_to_solve",
                "seconds to solve (steps × time per step, timed side by side)",
                STEPS_TO_SOLVE, False,
                "s: steps to solve × the arm's median time per training step, measured side "
                "by side with the other arms in one process on 1 torch thread "
                "(benchmarks/results/arm_speed.json), not the sweep's wall time (its runs "
                "share cores; validation and logging are left out); never solved counts as "
                "never", _not_stored, to_solve=True, controlled_time=True),
    )
}  # fmt: skip
LENGTH_GENERALIZATION = MEASURES["length_generalization"]
