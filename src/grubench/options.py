"""Options written once: as dataclass fields (a model's own options, in the model's file;
the task settings, :class:`grubench.training.data.TaskConfig`), each with its default, its type
(``Literal`` for a fixed set of choices) and a one-line help.

The model registry (:mod:`grubench.models`) builds the flat ``ModelConfig`` of the command
line and the experiment files from the models' dataclasses and validates each option against
its own model's types and choices; ``--help`` and the README's options tables
(:mod:`grubench.answers.docs`) are generated from the same fields.
"""

from __future__ import annotations

import dataclasses
import typing
from typing import Any, Literal


def option(default: Any, help: str, *, hashed: bool = True, factory: Any = None) -> Any:  # noqa: A002
    """A dataclass field with its help text (what ``--help`` and the README show).

    ``hashed=False``: the option says where a run is recorded, not what it computes, and stays
    out of a child's settings hash. ``factory``: a mutable default's factory (``dict``)."""
    metadata = {"help": help, "hashed": hashed}
    if factory is not None:
        return dataclasses.field(default_factory=factory, metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


def hashed(field: dataclasses.Field) -> bool:
    """Whether the option changes what a run computes (part of its settings hash)."""
    return field.metadata.get("hashed", True)


def choices(annotation: Any) -> tuple | None:
    """The values a ``Literal[...]`` annotation allows (None for any other type)."""
    if typing.get_origin(annotation) is Literal:
        return typing.get_args(annotation)
    return None


def option_fields(options: type) -> dict[str, tuple[dataclasses.Field, Any]]:
    """Each field of an options dataclass with its resolved type annotation."""
    hints = typing.get_type_hints(options)
    return {f.name: (f, hints[f.name]) for f in dataclasses.fields(options)}


def help_of(field: dataclasses.Field) -> str:
    return field.metadata.get("help", "")


__all__ = ["choices", "hashed", "help_of", "option", "option_fields"]
