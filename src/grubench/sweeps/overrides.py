"""Nested override dicts: how a question's base, arms, conditions, budgets and tuning points
combine into one child's config."""

from __future__ import annotations

import copy
from typing import Any


def merge(base: dict, override: dict) -> dict:
    """Deep merge of nested dicts; ``override`` wins."""
    merged = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def nested(dotted: str, value: Any) -> dict[str, Any]:
    """``nested("optim.lr", 0.01)`` -> ``{"optim": {"lr": 0.01}}``."""
    out: Any = value
    for part in reversed(dotted.split(".")):
        out = {part: out}
    return out
