"""Difficulty ladders: a condition's difficulty (a sequence length, a lag, a count) as rungs,
climbed by each arm in turn.

A question declares ``ladders=(Ladder(...),)``; each rung is a condition of the question (its
label, e.g. "adding T=400", and its overrides), tuned and evaluated like any other. An arm
runs rung k+1 only once its evaluation runs at rung k have all finished and solved at least
``climb`` of them: an arm that fails a rung stops climbing, and no compute goes to the rungs
above its reach. Rungs are compared where both arms ran; an arm's **frontier** is the hardest
rung it solved (:mod:`grubench.answers.frontier`).

:func:`reach` decides, from what has finished, which (arm, condition) cells may run; the
runner (:mod:`grubench.sweeps.runner`) climbs round by round until no new cell opens, and the
report counts a rung above an arm's reach as not reached, not as missing.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from grubench.sweeps.overrides import merge, nested


@dataclass(frozen=True)
class Ladder:
    """Rungs of one difficulty axis, easiest first.

    ``label`` names a rung's condition with ``{}`` for its value ("adding T={}"), ``key`` is
    the dotted FitConfig key the rungs set ("task.seq_len"), ``rungs`` the values per profile,
    ``base`` the overrides every rung shares ({"task": {"name": "adding"}}), ``climb`` the
    solved rate over the evaluation seeds an arm needs at a rung to go on to the next.
    """

    label: str
    key: str
    rungs: dict[str, tuple[Any, ...]]
    base: dict[str, Any] = field(default_factory=dict)
    climb: float = 0.5

    @property
    def _token(self) -> str:
        """The label's word that holds the rung ("T={}")."""
        return next((word for word in self.label.split() if "{}" in word), "{}")

    @property
    def name(self) -> str:
        """The ladder in words: its label with the rung's word cut at "=" ("adding T")."""
        axis = self._token.split("=")[0] if "=" in self._token else self._token.replace("{}", "")
        return " ".join(self.label.replace(self._token, axis).split()).strip(" ,")

    def rung(self, value: Any) -> str:
        """A rung in short, its word of the label: "T=400"."""
        return self._token.format(value)

    def conditions(self, profile: str) -> dict[str, dict[str, Any]]:
        """The rungs as conditions under ``profile``: label -> overrides, easiest first."""
        return {self.label.format(value): merge(self.base, nested(self.key, value))
                for value in self.rungs.get(profile, ())}  # fmt: skip

    def values(self, profile: str) -> dict[str, Any]:
        """Each rung's condition label -> its value."""
        return {self.label.format(value): value for value in self.rungs.get(profile, ())}

    def needed(self, runs: int) -> int:
        """Solved runs out of ``runs`` to climb on (at least one)."""
        return max(1, math.ceil(self.climb * runs - 1e-9))

    def check(self) -> list[str]:
        problems = []
        if self.label.count("{}") != 1:
            problems.append(f"ladder {self.label!r}: the label needs one {{}} for the rung")
        if not 0 < self.climb <= 1:
            problems.append(f"ladder {self.label!r}: climb {self.climb!r}; want a solved rate "
                            "in (0, 1]")  # fmt: skip
        for profile, values in self.rungs.items():
            labels = [self.label.format(v) for v in values]
            if len(set(labels)) != len(labels):
                problems.append(f"ladder {self.label!r}: {profile} rungs repeat: {list(values)}")
        return problems


# (arm, condition) -> (solved runs, finished evaluation runs, evaluation seeds)
Outcomes = Callable[[str, str], tuple[int, int, int]]


def reach(
    arms: Iterable[str], ladders: Iterable[Ladder], profile: str, outcomes: Outcomes
) -> dict[str, set[str]]:
    """Per ladder rung (condition), the arms that may run it: every arm on the first rung;
    an arm on the next once all its evaluation seeds at this one finished and at least
    ``climb`` of them solved. Conditions that are not rungs are not listed (every arm runs
    them)."""
    allowed: dict[str, set[str]] = {}
    for ladder in ladders:
        rungs = list(ladder.conditions(profile))
        for condition in rungs:
            allowed.setdefault(condition, set())
        for arm in arms:
            for condition in rungs:
                allowed[condition].add(arm)
                solved, finished, seeds = outcomes(arm, condition)
                if finished < seeds or solved < ladder.needed(seeds):
                    break
    return allowed


def allowed(cells: dict[str, set[str]] | None, arm: str, condition: str) -> bool:
    """Whether ``reach``'s result lets ``arm`` run ``condition`` (None: no ladders)."""
    return cells is None or condition not in cells or arm in cells[condition]
