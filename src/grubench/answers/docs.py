"""The README's options tables, generated from the definitions (the models' option
dataclasses, the task classes' constructors, the shared model and task settings), so that no
option is written down twice. ``grubench readme`` writes them between the README's
``<!-- options:start -->`` and ``<!-- options:end -->`` markers; a test finds them equal.
"""

from __future__ import annotations

import dataclasses
import inspect
import sys

from grubench.models import MODELS, SharedOptions
from grubench.options import choices, help_of, option_fields
from grubench.tasks import TASKS
from grubench.training.data import TaskConfig

OPTIONS_START, OPTIONS_END = "<!-- options:start -->", "<!-- options:end -->"


def _value(value) -> str:
    if isinstance(value, bool) or value is None:
        return {True: "true", False: "false", None: "null"}[value]
    return str(value)


def _settings(cls: type) -> str:
    """``name`` (default): help; for each field of a settings dataclass."""
    items = []
    for name, (field, _) in option_fields(cls).items():
        default = (field.default if field.default is not dataclasses.MISSING
                   else field.default_factory())  # fmt: skip
        items.append(f"`{name}` ({_value(default)}): {help_of(field)}")
    return "; ".join(items)


def _model_options(name: str) -> str:
    options = MODELS[name].options
    if options is None:
        return "none"
    items = []
    for option, (field, annotation) in option_fields(options).items():
        allowed = choices(annotation)
        values = f"; {', '.join(map(_value, allowed))}" if allowed else ""
        items.append(f"`{option}` ({_value(field.default)}{values}): {help_of(field)}")
    return "; ".join(items)


def _task_options(name: str) -> str:
    parameters = inspect.signature(TASKS[name].__init__).parameters
    items = [f"`{option}` ({_value(parameters[option].default)})"
             for option in TASKS[name].option_names()]  # fmt: skip
    return ", ".join(items) or "none"


def _summary(cls: type) -> str:
    """The first paragraph of the task's module docstring, on one line."""
    doc = (sys.modules[cls.__module__].__doc__ or "").strip().split("\n\n", 1)[0]
    return " ".join(doc.split()).replace("``", "`").replace("|", "/")


def options_block() -> str:
    """The markdown between the options markers."""
    lines = [
        f"`--model.*`, every model: {_settings(SharedOptions)}.",
        "",
        "| `--model.name` | its own options (default; choices): what they do |",
        "|---|---|",
        *[f"| `{name}` | {_model_options(name)} |" for name in MODELS],
        "",
        f"`--task.*`, every task: {_settings(TaskConfig)}.",
        "",
        "| `--task.name` | what it is | its own `--task.options` (default) |",
        "|---|---|---|",
        *[
            f"| `{name}` | {_summary(cls)} | {_task_options(name)} |" for name, cls in TASKS.items()
        ],  # fmt: skip
    ]
    return "\n".join(lines) + "\n"


__all__ = ["OPTIONS_END", "OPTIONS_START", "options_block"]
