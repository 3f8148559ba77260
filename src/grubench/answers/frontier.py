"""Each arm's frontier on a question's difficulty ladders (:mod:`grubench.sweeps.ladder`),
read from the report's cells: the hardest rung it solved (at least the ladder's ``climb``
rate of its evaluation seeds), the Wilson interval of its solved rate there, and the rung
above where it stopped. The report's table, its one-sentence answer and the ladder plot
(:func:`grubench.answers.plots.plot_ladders`) read these.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from grubench.answers import stats
from grubench.sweeps.ladder import Ladder


@dataclass
class Rung:
    condition: str
    value: Any
    solved: int
    runs: int
    score: stats.Interval | None = None  # IQM of the normalized test score, bootstrap interval

    @property
    def rate(self) -> stats.Interval:
        return stats.wilson_interval(self.solved, self.runs)

    def counts(self) -> str:
        rate = self.rate
        return f"{self.solved}/{self.runs} solved [{rate.low:.2f}, {rate.high:.2f}]"


@dataclass
class Frontier:
    """An arm's climb of one ladder: the rungs it ran, easiest first."""

    ladder: Ladder
    arm: str
    values: list[Any]  # every rung's value under the profile
    rungs: list[Rung] = field(default_factory=list)
    seeds: int = 0  # evaluation seeds per rung

    def _passed(self, rung: Rung) -> bool:
        return rung.runs >= self.seeds and rung.solved >= self.ladder.needed(self.seeds)

    @property
    def best(self) -> Rung | None:
        """The hardest rung solved (rungs are climbed in order, so the last one passed)."""
        passed = [rung for rung in self.rungs if self._passed(rung)]
        return passed[-1] if passed else None

    @property
    def stopped_at(self) -> Rung | None:
        """The rung it ran and did not pass (None: still climbing, or the top passed)."""
        last = self.rungs[-1] if self.rungs else None
        if last is None or last.runs < self.seeds or self._passed(last):
            return None
        return last

    @property
    def climbing(self) -> bool:
        """Runs still to come: a rung not finished, or a passed rung below the top."""
        if not self.rungs:
            return True
        last = self.rungs[-1]
        return last.runs < self.seeds or (self._passed(last) and len(self.rungs) < len(self.values))

    def value_text(self) -> str:
        """The frontier in the ladder's words: "T=400", "below T=50", "T=1000 or beyond"."""
        best = self.best
        if best is None:
            return "below " + self.ladder.rung(self.values[0])
        text = self.ladder.rung(best.value)
        if best.value == self.values[-1]:
            text += " (the top rung: the frontier may lie beyond)"
        return text

    def text(self) -> str:
        """The frontier, its solved rate there and where the arm stopped."""
        best, stopped = self.best, self.stopped_at
        parts = [self.value_text()]
        if best is not None:
            parts.append(best.counts())
        if stopped is not None:
            parts.append(f"{stopped.counts()} at {stopped.condition}")
        if self.climbing:
            parts.append("still climbing")
        return "; ".join(parts)


def frontiers(report) -> list[Frontier]:
    """Every ladder's frontier per arm, from the report's cells (ladders in declared order,
    arms in the question's)."""
    question = report.question
    cells = {(cell.arm, cell.condition): cell for cell in report.cells}
    seeds = len(question.seeds[report.profile])
    found = []
    for ladder in question.ladders:
        values = ladder.values(report.profile)
        if not values:  # no rungs under this profile
            continue
        for arm in question.arms:
            frontier = Frontier(ladder, arm, list(values.values()), seeds=seeds)
            for condition, value in values.items():
                cell = cells.get((arm, condition))
                if cell is None or not cell.runs or not cell.reached:
                    break
                score = stats.bootstrap_interval(cell.scores) if cell.scores else None
                frontier.rungs.append(Rung(condition, value, cell.solved, cell.runs, score))
            found.append(frontier)
    return found


def markdown(report) -> list[str]:
    """The report's frontier table (no lines without ladders)."""
    found = frontiers(report)
    if not found:
        return []
    climbs = sorted({f"{f.ladder.climb:.0%}" for f in found})
    lines = [
        f"**Frontiers**: each arm climbs a ladder rung by rung while it solves at least "
        f"{' / '.join(climbs)} of its {found[0].seeds} evaluation seeds at a rung (tuned at "
        "each rung like any condition); its frontier is the hardest rung it solved, with the "
        "95% Wilson interval of its solved rate there, and where it stopped.",
        "",
        "| ladder | arm | frontier | solved there | stopped at | rungs run |",
        "|---|---|---|---|---|---|",
    ]
    for frontier in found:
        best, stopped = frontier.best, frontier.stopped_at
        stop_text = f"{stopped.condition}: {stopped.counts()}" if stopped else (
            "still climbing" if frontier.climbing else "–")  # fmt: skip
        lines.append(
            f"| {frontier.ladder.name} | {frontier.arm} | {frontier.value_text()} | "
            f"{best.counts() if best else '–'} | {stop_text} | {len(frontier.rungs)} of "
            f"{len(frontier.values)} |"
        )
    return lines


def clause(report) -> str:
    """The frontiers in one clause for the one-sentence answer ("" without ladders):
    "frontier on adding T: gru T=400 (8/8 solved [0.68, 1.00]), rnn below T=50"."""
    by_ladder: dict[str, list[Frontier]] = {}
    for frontier in frontiers(report):
        by_ladder.setdefault(frontier.ladder.name, []).append(frontier)
    parts = []
    for name, found in by_ladder.items():
        arms = [f"{f.arm} {f.value_text()}" + (" (still climbing)" if f.climbing else "")
                for f in found]  # fmt: skip
        parts.append(f"the hardest {name} each arm solved: " + ", ".join(arms))
    return "; ".join(parts)
