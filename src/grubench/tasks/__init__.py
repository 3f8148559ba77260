"""The task registry. Adding a task: one file with a :class:`Task` subclass, one line below."""

from __future__ import annotations

from grubench.tasks.adding import AddingTask
from grubench.tasks.associative_recall import AssociativeRecallTask
from grubench.tasks.base import (
    IGNORE_INDEX,
    DatasetTask,
    Objective,
    Samples,
    Task,
    batch_generator,
    batch_seed,
)
from grubench.tasks.char_lm import CharLMTask
from grubench.tasks.copy_memory import CopyMemoryTask
from grubench.tasks.counting import CountingTask
from grubench.tasks.parity import ParityTask
from grubench.tasks.selective_copy import SelectiveCopyTask
from grubench.tasks.sequential_digits import SequentialDigitsTask

TASKS: dict[str, type[Task]] = {
    AddingTask.name: AddingTask,
    AssociativeRecallTask.name: AssociativeRecallTask,
    CharLMTask.name: CharLMTask,
    CopyMemoryTask.name: CopyMemoryTask,
    CountingTask.name: CountingTask,
    ParityTask.name: ParityTask,
    SelectiveCopyTask.name: SelectiveCopyTask,
    SequentialDigitsTask.name: SequentialDigitsTask,
}


def validate_task_options(name: str, options: dict) -> list[str]:
    """Problems with ``options`` for task ``name`` (unknown keys list the valid ones)."""
    if name not in TASKS:
        return [f"task.name: unknown task {name!r}; choose from: {', '.join(sorted(TASKS))}"]
    valid = TASKS[name].option_names()
    return [
        f"task.options.{key}: {name} has no option {key!r}; "
        f"valid options: {', '.join(valid) if valid else '(none)'}"
        for key in options
        if key not in valid
    ]


def build_task(name: str, seq_len: int, **options) -> Task:
    problems = validate_task_options(name, options)
    if problems:
        raise ValueError("; ".join(problems))
    return TASKS[name](seq_len=seq_len, **options)


__all__ = [
    "IGNORE_INDEX",
    "TASKS",
    "DatasetTask",
    "Samples",
    "Objective",
    "Task",
    "batch_generator",
    "batch_seed",
    "build_task",
    "validate_task_options",
]
