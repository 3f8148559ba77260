"""What a stored run scored: its normalized score (0 = the task's chance level, 1 = perfect),
floored at 0, and its steps to solve, read from the run's summary metrics and tags."""

from __future__ import annotations

import math

from grubench.store.schema import OUTCOME, STEPS_TO_SOLVE, FitOutcome


def diverged(run) -> bool:
    return run.data.tags.get(OUTCOME) == FitOutcome.DIVERGED


def run_score(run, key: str) -> float:
    """The run's normalized score under ``key``, floored at 0: a run that ends worse than the
    trivial predictor has learned no more than it, and a diverged run scores 0 too; nan when
    the run has no such metric."""
    if diverged(run):
        return 0.0
    value = run.data.metrics.get(key)
    return max(0.0, float(value)) if value is not None and math.isfinite(value) else math.nan


def run_steps(run) -> float:
    """Steps to solve; ``inf`` for a run that never solved (censored at its budget)."""
    value = run.data.metrics.get(STEPS_TO_SOLVE)
    return float(value) if value is not None else math.inf
