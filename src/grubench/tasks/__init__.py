"""The task registry. Adding a task: one file with a :class:`Task` subclass, one line below."""

from __future__ import annotations

from grubench.tasks.adding import AddingTask
from grubench.tasks.base import Objective, Task, batch_generator, batch_seed

TASKS: dict[str, type[Task]] = {
    AddingTask.name: AddingTask,
}


def build_task(name: str, seq_len: int) -> Task:
    if name not in TASKS:
        raise ValueError(f"unknown task {name!r}; choose from: {', '.join(sorted(TASKS))}")
    return TASKS[name](seq_len=seq_len)


__all__ = ["TASKS", "Objective", "Task", "batch_generator", "batch_seed", "build_task"]
