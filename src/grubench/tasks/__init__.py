"""The task registry. Adding a task: one file with a :class:`Task` subclass, one line below.

This module imports no torch: each task is named here as ``"file:Class"`` and imported when
first looked up, so the task names (``grubench fit --help``, the config's choices) cost no
torch import. ``Task``, ``DatasetTask``, ``batch_generator`` and the rest of
:mod:`grubench.tasks.base` are importable from here as before; they load torch when first named.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator, MutableMapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from grubench.tasks.base import Task

_FROM_BASE = ("IGNORE_INDEX", "DatasetTask", "Objective", "Samples", "Task", "batch_generator",
              "batch_seed")  # fmt: skip


def __getattr__(name: str) -> Any:  # PEP 562: base's names, imported when first named
    if name in _FROM_BASE:
        return getattr(importlib.import_module(f"{__name__}.base"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class TaskRegistry(MutableMapping):
    """name -> Task class, each class imported at its first lookup (``"file:Class"`` under
    grubench.tasks); listing the names imports nothing."""

    def __init__(self, entries: dict[str, str | type[Task]]) -> None:
        self._entries = dict(entries)

    def __getitem__(self, name: str) -> type[Task]:
        entry = self._entries[name]
        if isinstance(entry, str):
            module, _, cls = entry.partition(":")
            entry = getattr(importlib.import_module(f"{__name__}.{module}"), cls)
            self._entries[name] = entry
        return entry

    def __setitem__(self, name: str, cls: type[Task]) -> None:
        self._entries[name] = cls

    def __delitem__(self, name: str) -> None:
        del self._entries[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def __repr__(self) -> str:
        return f"TaskRegistry({self._entries!r})"


# each key is its class's ``name`` (tests/test_tasks.py checks)
TASKS: TaskRegistry = TaskRegistry({
    "adding": "adding:AddingTask",
    "associative_recall": "associative_recall:AssociativeRecallTask",
    "char_lm": "char_lm:CharLMTask",
    "copy_memory": "copy_memory:CopyMemoryTask",
    "counting": "counting:CountingTask",
    "parity": "parity:ParityTask",
    "selective_copy": "selective_copy:SelectiveCopyTask",
    "sequential_digits": "sequential_digits:SequentialDigitsTask",
})  # fmt: skip


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
    "TaskRegistry",
    "DatasetTask",
    "Samples",
    "Objective",
    "Task",
    "batch_generator",
    "batch_seed",
    "build_task",
    "validate_task_options",
]
