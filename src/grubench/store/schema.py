"""Every MLflow tag and summary-metric key grubench writes and reads, named once.

A run is found by its tags (a sweep's children by role, sweep, child key and settings hash)
and compared by its summary metrics; fit, the runner, the report, the UI's saved views and
the tests import these names instead of spelling the strings out.
"""

from enum import Enum


class NamedValue(str, Enum):
    """A fixed string value with a name: it compares, hashes, formats and serializes as its
    value, so it goes into MLflow and JSON as the plain string."""

    def __str__(self) -> str:
        return self.value

    def __format__(self, spec: str) -> str:
        return format(self.value, spec)


class RunStatus(NamedValue):
    """The MLflow run statuses grubench writes and reads."""

    RUNNING = "RUNNING"
    FINISHED = "FINISHED"
    FAILED = "FAILED"
    KILLED = "KILLED"  # stopped by a signal (a checkpoint kept) or superseded


class FitOutcome(NamedValue):
    """A finished fit's outcome, its ``OUTCOME`` tag."""

    SOLVED = "solved"
    UNSOLVED = "unsolved"
    DIVERGED = "diverged"


# ---- tags of every fit -----------------------------------------------------------------------
MODEL, TASK, VERSION = "grubench.model", "grubench.task", "grubench.version"
OBJECTIVE, OBJECTIVE_MODE = "grubench.objective", "grubench.objective_mode"  # e.g. "mse", "min"
OUTCOME = "grubench.outcome"  # a FitOutcome
DIVERGED_STEP = "grubench.diverged_step"
PID, HOST = "grubench.pid", "grubench.host"  # the process running the run (resume refuses it)

# ---- tags of sweeps --------------------------------------------------------------------------
ROLE, SWEEP = "grubench.role", "grubench.sweep"  # role: "parent" or "child"
KEY, HASH = "grubench.child_key", "grubench.config_hash"  # what a child is, what it computes
STAGE, ARM, CONDITION, POINT = (
    "grubench.stage",  # "tune" or "eval"
    "grubench.arm",
    "grubench.condition",
    "grubench.point",  # the tuning point's label, e.g. "lr=0.01" or "trial=3"
)
TUNE, EVAL = "tune", "eval"  # the stage tag's values
SEED, CONFIG = "grubench.seed", "grubench.config"
PROFILE, QUESTION = "grubench.profile", "grubench.question"  # a parent's
SUPERSEDED = "grubench.superseded"  # a run replaced by a newer run of the same child
NOTE = "mlflow.note.content"  # the run page's description, rendered as Markdown by the UI
PARENT_RUN = "mlflow.parentRunId"  # a child's parent run: the UI nests children under it

# ---- summary metrics (logged once, at the end of a fit) --------------------------------------
PARAM_COUNT, WALL_TIME, TIME_PER_STEP = "param_count", "wall_time_s", "time_per_step_ms"
STEPS, SOLVED, GLOBAL_BATCH = "steps", "solved", "global_batch_size"
CHANCE_LEVEL = "chance_level"  # the normalized score's zero (grubench.answers.stats)
STEPS_TO_SOLVE = "steps_to_solve"
VAL_SCORE, TEST_SCORE, GAP_SCORE = "final/val/score", "test/score", "final/gap/score"
# with task.eval_lengths: the normalized test score at each extra length L ("test/score_L400")
# and at the longest of them (the length_generalization measure)
LENGTH_SCORE_PREFIX, LENGTH_SCORE = "test/score_L", "test/score_longest"
