"""Which knob matters most: fANOVA importances of a random search's trials (Greff et al.
2017, "LSTM: A Search Space Odyssey"; Hutter et al. 2014), with their range over evaluator
seeds and a bootstrap interval over trials, the best trial per arm and condition, and a plot.

The trials come from the Optuna studies that :func:`grubench.sweeps.search.sync_studies` keeps
equal to the store's finished tuning runs (the current settings' runs only). Where the top two
knobs' intervals overlap, the report says how many trials would separate them
(:meth:`Importance.trials_to_separate`).
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass
from typing import Any

import numpy as np

from grubench.sweeps.search import (
    POSITION,
    LogRangeByChoice,
    current_trials,
    load_optuna,
    sync_studies,
)


@dataclass
class Importance:
    """fANOVA importances of one study: per parameter, the mean over evaluator seeds with
    their range, and the 95% percentile interval over bootstrap resamples of the trials."""

    trials: int
    mean: dict[str, float]
    seed_range: dict[str, tuple[float, float]]
    bootstrap: dict[str, tuple[float, float]]

    def ranking(self) -> list[str]:
        return sorted(self.mean, key=lambda p: -self.mean[p])

    def trials_to_separate(self) -> int | None:
        """How many trials it would take for the top knob's bootstrap interval to clear the
        second's: ``trials`` if it already does; else the count at which it would, if the mean
        importances stayed and each interval's distance from its mean shrank as
        1/sqrt(trials); None where the top two tie (no count separates them)."""
        if len(self.mean) < 2:
            return self.trials
        top, second = self.ranking()[:2]
        top_low, second_high = self.bootstrap[top][0], self.bootstrap[second][1]
        if top_low > second_high:
            return self.trials
        gap = self.mean[top] - self.mean[second]
        if gap <= 0:
            return None
        spread = max(self.mean[top] - top_low, 0.0) + max(second_high - self.mean[second], 0.0)
        # separated when gap > spread * sqrt(trials / n)
        return max(self.trials + 1, math.ceil(self.trials * (spread / gap) ** 2))


# bootstrap resamples of the trials per study (issue 24 item 8: 20 left the intervals' ends to
# one or two resamples); about 30 s per study of 24 trials on this 2-core machine
RESAMPLES = 200


def importance(
    trials, evaluator_seeds=range(5), resamples: int = RESAMPLES, seed: int = 0
) -> Importance:
    """fANOVA (Optuna's FanovaImportanceEvaluator) on ``trials`` (completed FrozenTrials)."""
    optuna = load_optuna()
    from optuna.importance import FanovaImportanceEvaluator, get_param_importances

    def evaluate(chosen, evaluator_seed):
        study = optuna.create_study(direction="maximize")
        study.add_trials(chosen)
        evaluator = FanovaImportanceEvaluator(seed=evaluator_seed)
        return get_param_importances(study, evaluator=evaluator, normalize=True)

    trials = [t for t in trials if t.value is not None and math.isfinite(t.value)]
    by_seed = [evaluate(trials, s) for s in evaluator_seeds]
    names = sorted(by_seed[0])
    rng = np.random.default_rng(seed)
    resampled = []
    for _ in range(resamples):
        picks = rng.integers(0, len(trials), len(trials))
        chosen = [trials[i] for i in picks]
        if len({t.number for t in chosen}) < 2:
            continue
        values = evaluate(chosen, 0)
        resampled.append({n: values.get(n, 0.0) for n in names})
    return Importance(
        trials=len(trials),
        mean={n: statistics.fmean(v[n] for v in by_seed) for n in names},
        seed_range={n: (min(v[n] for v in by_seed), max(v[n] for v in by_seed)) for n in names},
        bootstrap={
            n: tuple(float(q) for q in np.percentile([r[n] for r in resampled], [2.5, 97.5]))
            for n in names
        },
    )


def knob(key: str) -> str:
    """A search dimension's short name: "optim.lr" -> "lr", "optim.name" -> "optimizer";
    a position in a range by choice names its value ("optim.lr_position" -> "lr")."""
    key = key.removesuffix(POSITION)
    group, _, name = key.rpartition(".")
    return {"optim.name": "optimizer", "model.name": "model"}.get(key, name or group)


@dataclass
class SearchSummary:
    """What a search found, per (arm, condition): the importances and the best trial."""

    importances: dict[tuple[str, str], Importance]
    best: dict[tuple[str, str], Any]  # the best completed FrozenTrial
    search: Any = None  # the Search: the best trials' settings, the ranges by choice

    def markdown(self) -> str:
        if not self.importances:
            return ""
        cells = list(self.importances)
        keys = list(dict.fromkeys(k for c in cells for k in self.importances[c].mean))
        lines = [
            "",
            "**Which knob matters most** (fANOVA: Optuna's FanovaImportanceEvaluator on each "
            "study's trials, normalized to sum 1; mean over 5 evaluator seeds [their range]; "
            f"(95% interval over {RESAMPLES} bootstrap resamples of the trials)):",
            "",
            "| knob | "
            + " | ".join(f"{a}, {c} ({self.importances[(a, c)].trials} trials)" for a, c in cells)
            + " |",  # fmt: skip
            "|---|" + "---|" * len(cells),
        ]
        for key in keys:
            row = []
            for cell in cells:
                imp = self.importances[cell]
                if key not in imp.mean:
                    row.append("–")
                    continue
                low, high = imp.seed_range[key]
                b_low, b_high = imp.bootstrap[key]
                row.append(
                    f"{imp.mean[key]:.2f} [{low:.2f}, {high:.2f}] ({b_low:.2f}, {b_high:.2f})"
                )
            lines.append(f"| {knob(key)} | " + " | ".join(row) + " |")
        lines += _by_choice_note(self.search)
        lines += ["", "Ranking (by mean importance):", ""]
        for (arm, condition), imp in self.importances.items():
            lines.append(f"- {arm}, {condition}: " + " > ".join(knob(k) for k in imp.ranking()))
        lines += ["", "Do the top two knobs separate? (the top's bootstrap interval above the "
                  "second's; else the trials it would take if the mean importances stayed and "
                  "the intervals shrank as 1/√trials):", ""]  # fmt: skip
        for (arm, condition), imp in self.importances.items():
            lines.append(f"- {arm}, {condition}: {separation(imp)}")
        lines += ["", greff_comparison(self.importances)]
        lines += ["", "Best trial per model and task (validation score; the table's evaluation "
                  "row re-runs it on fresh seeds):", ""]  # fmt: skip
        for (arm, condition), trial in self.best.items():
            values = trial.params
            if self.search is not None and "trial" in trial.user_attrs:
                values = self.search.settings(arm, trial.user_attrs["trial"])
            params = ", ".join(f"{knob(k)}={_fmt_value(v)}" for k, v in values.items())
            lines.append(f"- {arm}, {condition}: trial {trial.user_attrs.get('trial')} "
                         f"({trial.value:.3f}): {params}")  # fmt: skip
        return "\n".join(lines) + "\n"


def clause(importances: dict[tuple[str, str], Importance]) -> str:
    """The search's answer in words, for the one-sentence answer: which knob ranked first in
    how many studies (by mean importance), and whether the top two separate."""
    if not importances:
        return ""
    firsts: dict[str, list[str]] = {}
    for (arm, condition), imp in importances.items():
        if imp.mean:
            firsts.setdefault(imp.ranking()[0], []).append(f"{arm}, {condition}")
    n = len(importances)
    ranked = sorted(firsts.items(), key=lambda kv: -len(kv[1]))
    parts = [f"{knob(k)} in {len(where)} of {n} studies ({'; '.join(where)})"
             if len(where) > 1 else f"{knob(k)} in {where[0]}" for k, where in ranked]  # fmt: skip
    studies = [imp for imp in importances.values() if len(imp.mean) > 1]
    needed = [(imp, imp.trials_to_separate()) for imp in studies]
    overlap = [(imp, t) for imp, t in needed if t is None or t > imp.trials]
    if not overlap:
        tail = "the top knob's interval clears the second's in every study"
    else:
        counts = [t for _, t in overlap if t is not None]
        at = "/".join(str(t) for t in sorted({imp.trials for imp in studies}))
        tail = (f"the top two knobs' intervals overlap in {len(overlap)} of {len(studies)} "
                f"studies at {at} trials")  # fmt: skip
        if counts:
            low, high = min(counts), max(counts)
            tail += (
                f" (separating them would take about {low} to {high} trials)"
                if low != high
                else f" (separating them would take about {low} trials)"
            )
    return "the knob that mattered most (fANOVA): " + ", ".join(parts) + "; " + tail


def separation(imp: Importance) -> str:
    """Whether the top two knobs' intervals separate, or how many trials it would take."""
    if len(imp.mean) < 2:
        return "one knob"
    top, second = imp.ranking()[:2]
    lo, hi = imp.bootstrap[top][0], imp.bootstrap[second][1]
    text = (f"{knob(top)} {imp.mean[top]:.2f} (lower end {lo:.2f}) over {knob(second)} "
            f"{imp.mean[second]:.2f} (upper end {hi:.2f}): ")  # fmt: skip
    needed = imp.trials_to_separate()
    if needed is None:
        return text + "tied; no number of trials separates them"
    if needed <= imp.trials:
        return text + f"separate at {imp.trials} trials"
    return text + f"overlap; would separate at about {needed} trials (now {imp.trials})"


def _by_choice_note(search) -> list[str]:
    """What a knob drawn as a position within a range by choice means."""
    if search is None:
        return []
    notes = []
    for key, dim in search.space.items():
        if isinstance(dim, LogRangeByChoice):
            ranges = ", ".join(f"{c} {lo:g}–{hi:g}" for c, (lo, hi) in dim.ranges.items())
            notes.append(f"{knob(key)} is drawn as a position in [0, 1] within the log range of "
                         f"the {knob(dim.by)} drawn ({ranges}): its importance is that of the "
                         f"position, the {knob(dim.by)}'s includes the ranges' shift.")  # fmt: skip
    return ["", *notes] if notes else []


def _ordinal(n: int) -> str:
    return f"{n}{'th' if 10 <= n % 100 <= 20 else {1: 'st', 2: 'nd', 3: 'rd'}.get(n % 10, 'th')}"


def greff_comparison(importances: dict[tuple[str, str], Importance], key: str = "optim.lr") -> str:
    """Where the learning rate ranks here, beside Greff et al.'s finding."""
    ranks = []
    for (arm, condition), imp in importances.items():
        if key not in imp.mean and key + POSITION in imp.mean:
            key = key + POSITION
        if key in imp.mean:
            rank = imp.ranking().index(key) + 1
            ranks.append(f"{arm}, {condition}: {_ordinal(rank)} of {len(imp.mean)} "
                         f"({imp.mean[key]:.2f})")  # fmt: skip
    return (
        "Against Greff et al. 2017 (LSTM, 5,400 runs of random search, fANOVA): there the "
        "learning rate mattered most by far, then the network size, with little interaction; "
        "the optimizer was not one of their knobs (SGD with momentum throughout). Here the "
        "learning rate ranks " + "; ".join(ranks) + "."
    )


def _fmt_value(value) -> str:
    return f"{value:.3g}" if isinstance(value, float) else str(value)


def summarize(question, profile: str, tracking_uri: str, tuning, finished) -> SearchSummary:
    """Sync the studies with the store (:func:`sync_studies`), then fANOVA on every study
    with enough trials."""
    studies = sync_studies(question, profile, tracking_uri, tuning, finished)
    importances, best = {}, {}
    for cell, study in studies.items():
        done = current_trials(study, tuning, finished)
        if len(done) >= 2:
            importances[cell] = importance(done)
            best[cell] = max(done, key=lambda t: t.value)
    return SearchSummary(importances, best, question.search)
