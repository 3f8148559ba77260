"""A seeded random search as an experiment's tuning stage, and hyperparameter importance by
fANOVA (Greff et al. 2017, "LSTM: A Search Space Odyssey"; Hutter et al. 2014).

The search's trials are the tuning points of an :class:`~grubench.experiment.Experiment`:
each is a child MLflow run of the sweep, run, resumed and parallelized by the same runner as
every grid, and the protocol keeps the best trial per arm and condition on validation and
re-runs it on the evaluation seeds (the recommendation, scored on the test split).

Sampling: trial ``k`` draws its parameters with Optuna's ``RandomSampler`` seeded by
``(seed, k)`` alone, in the order the space lists them. So trial ``k`` is the same whatever
else was sampled before (re-running, or raising the number of trials, never redraws or
duplicates a trial), and arms draw the same values of the dimensions they share (the shared
ones come first): common random numbers, so two arms' trials differ only where their spaces
do. fANOVA assumes random sampling, which this is.

The Optuna study: one per (arm, condition), named ``<experiment>:<profile>:<arm>:<condition>``,
in ``optuna.db`` beside the MLflow store (the SQLite file's folder; ``$GRUBENCH_OPTUNA_STORAGE``
names another storage URL). :func:`sync_studies` adds each finished tuning run as one
completed trial (its parameters, its validation score as the value, the MLflow run id as a
user attribute), keyed by the child, under a file lock: it runs after every ``grubench run``
and ``grubench report``, so a sweep that was killed and re-run ends with every trial exactly
once in both stores.
"""

from __future__ import annotations

import contextlib
import math
import os
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

OPTUNA_ENV = "GRUBENCH_OPTUNA_STORAGE"
TRIAL = "trial"  # point labels: "trial=7"


def _optuna():
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna


@dataclass
class Search:
    """A random search: ``space`` (dotted FitConfig key -> Optuna distribution) for every arm,
    plus ``space_by_arm``'s dimensions for some arms; ``trials`` per profile and per arm and
    condition; ``seed`` of the sampler."""

    space: dict[str, Any]
    trials: dict[str, int]
    space_by_arm: dict[str, dict[str, Any]] = field(default_factory=dict)
    seed: int = 0
    _drawn: dict = field(default_factory=dict, repr=False, compare=False)  # (arm, k) -> params

    def space_for(self, arm: str) -> dict[str, Any]:
        return {**self.space, **self.space_by_arm.get(arm, {})}

    def params(self, arm: str, trial: int) -> dict[str, Any]:
        """Trial ``trial``'s parameters for ``arm``: a fresh RandomSampler seeded by
        ``(seed, trial)``, asked once."""
        if (arm, trial) not in self._drawn:
            optuna = _optuna()
            seed = int(np.random.SeedSequence([self.seed, trial]).generate_state(1)[0])
            study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed))
            self._drawn[(arm, trial)] = study.ask(self.space_for(arm)).params
        return dict(self._drawn[(arm, trial)])

    def points(self, arm: str, profile: str) -> dict[str, dict[str, Any]]:
        """label ("trial=k") -> nested FitConfig overrides, for each trial of ``profile``."""
        from grubench.experiment import merge, nested

        points = {}
        for k in range(self.trials.get(profile, 0)):
            overrides: dict[str, Any] = {}
            for key, value in self.params(arm, k).items():
                overrides = merge(overrides, nested(key, value))
            points[f"{TRIAL}={k}"] = overrides
        return points

    def check(self, arms) -> list[str]:
        optuna = _optuna()
        problems = []
        for arm in self.space_by_arm:
            if arm not in arms:
                problems.append(f"search.space_by_arm names unknown arm {arm!r}")
        for arm in arms:
            for key, dist in self.space_for(arm).items():
                if not isinstance(dist, optuna.distributions.BaseDistribution):
                    problems.append(f"search space {key!r}: {dist!r} is not an Optuna distribution")
        if any(n < 2 for n in self.trials.values()):
            problems.append(f"search.trials {self.trials}: fANOVA needs 2 or more per profile")
        return problems


def storage_url(tracking_uri: str) -> str:
    from grubench.tracking import store_dir

    if os.environ.get(OPTUNA_ENV):
        return os.environ[OPTUNA_ENV]
    return f"sqlite:///{(store_dir(tracking_uri) / 'optuna.db').resolve()}"


def study_name(experiment, profile: str, arm: str, condition: str) -> str:
    return f"{experiment.name}:{profile}:{arm}:{condition}"


def _locked(storage: str):
    """Serialize syncs of an SQLite storage across processes (a lock file beside it)."""
    from grubench.tracking import file_lock

    if not storage.startswith("sqlite:///"):
        return contextlib.nullcontext()
    return file_lock(Path(storage.removeprefix("sqlite:///") + ".lock"))


def sync_studies(experiment, profile: str, tracking_uri: str, tuning, finished) -> dict:
    """Add every finished tuning run of the search that its study lacks; returns the studies
    by (arm, condition). ``tuning`` are the search's tuning children, ``finished`` the store's
    finished runs by (child key, settings hash), as the report reads them. Idempotent: a child
    already in its study is skipped."""
    from grubench.protocol import run_score
    from grubench.schema import VAL_SCORE

    optuna = _optuna()
    search = experiment.search
    storage = storage_url(tracking_uri)
    studies, known = {}, {}
    with _locked(storage):
        for child in tuning:
            cell = (child.arm, child.condition)
            if cell not in studies:
                studies[cell] = optuna.create_study(
                    storage=storage, load_if_exists=True, direction="maximize",
                    study_name=study_name(experiment, profile, *cell),
                )  # fmt: skip
                known[cell] = {t.user_attrs.get("child") for t in studies[cell].trials}
            study, run = studies[cell], finished.get((child.key, child.config_hash()))
            if run is None or child.key in known[cell]:
                continue
            score = run_score(run, VAL_SCORE)
            if math.isnan(score):
                continue
            trial = int(child.point.split("=", 1)[1])
            study.add_trial(
                optuna.trial.create_trial(
                    params=search.params(child.arm, trial),
                    distributions=search.space_for(child.arm),
                    value=score,
                    user_attrs={
                        "child": child.key,
                        "trial": trial,
                        "mlflow_run_id": run.info.run_id,
                    },
                )  # fmt: skip
            )
            known[cell].add(child.key)
    return studies


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


def importance(trials, evaluator_seeds=range(5), resamples: int = 20, seed: int = 0) -> Importance:
    """fANOVA (Optuna's FanovaImportanceEvaluator) on ``trials`` (completed FrozenTrials)."""
    optuna = _optuna()
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
    """A search dimension's short name: "optim.lr" -> "lr", "optim.name" -> "optimizer"."""
    group, _, name = key.rpartition(".")
    return {"optim.name": "optimizer", "model.name": "model"}.get(key, name or group)


@dataclass
class SearchSummary:
    """What a search found, per (arm, condition): the importances and the best trial."""

    importances: dict[tuple[str, str], Importance]
    best: dict[tuple[str, str], Any]  # the best completed FrozenTrial

    def markdown(self) -> str:
        if not self.importances:
            return ""
        cells = list(self.importances)
        keys = list(dict.fromkeys(k for c in cells for k in self.importances[c].mean))
        lines = [
            "",
            "**Which knob matters most** (fANOVA: Optuna's FanovaImportanceEvaluator on each "
            "study's trials, normalized to sum 1; mean over 5 evaluator seeds [their range]; "
            "(95% interval over 20 bootstrap resamples of the trials)):",
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
        lines += ["", "Ranking (by mean importance):", ""]
        for (arm, condition), imp in self.importances.items():
            lines.append(f"- {arm}, {condition}: " + " > ".join(knob(k) for k in imp.ranking()))
        lines += ["", greff_comparison(self.importances)]
        lines += ["", "Best trial per model and task (validation score; the table's evaluation "
                  "row re-runs it on fresh seeds):", ""]  # fmt: skip
        for (arm, condition), trial in self.best.items():
            params = ", ".join(f"{knob(k)}={_fmt_value(v)}" for k, v in trial.params.items())
            lines.append(f"- {arm}, {condition}: trial {trial.user_attrs.get('trial')} "
                         f"({trial.value:.3f}): {params}")  # fmt: skip
        return "\n".join(lines) + "\n"


def _ordinal(n: int) -> str:
    return f"{n}{'th' if 10 <= n % 100 <= 20 else {1: 'st', 2: 'nd', 3: 'rd'}.get(n % 10, 'th')}"


def greff_comparison(importances: dict[tuple[str, str], Importance], key: str = "optim.lr") -> str:
    """Where the learning rate ranks here, beside Greff et al.'s finding."""
    ranks = []
    for (arm, condition), imp in importances.items():
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


def summarize(experiment, profile: str, tracking_uri: str, tuning, finished) -> SearchSummary:
    """Sync the studies with the store (:func:`sync_studies`), then fANOVA on every study
    with enough trials."""
    studies = sync_studies(experiment, profile, tracking_uri, tuning, finished)
    importances, best = {}, {}
    for cell, study in studies.items():
        done = [t for t in study.trials if t.value is not None]
        if len(done) >= 2:
            importances[cell] = importance(done)
            best[cell] = max(done, key=lambda t: t.value)
    return SearchSummary(importances, best)


def plot_importance(summary: SearchSummary, colors: dict[str, Any], path: Path) -> Path:
    """One panel per condition: each knob's mean importance per arm, with the bootstrap
    interval as an error bar."""
    from grubench.report import _pyplot

    plt = _pyplot()
    conditions = list(dict.fromkeys(c for _, c in summary.importances))
    arms = list(dict.fromkeys(a for a, _ in summary.importances))
    keys = list(dict.fromkeys(k for imp in summary.importances.values() for k in imp.mean))
    fig, axes = plt.subplots(1, len(conditions), figsize=(5.2 * len(conditions), 0.45 * len(keys)
                             + 1.6), squeeze=False, sharey=True)  # fmt: skip
    height = 0.8 / max(len(arms), 1)
    for ax, condition in zip(axes[0], conditions):
        for i, arm in enumerate(arms):
            imp = summary.importances.get((arm, condition))
            if imp is None:
                continue
            y = np.arange(len(keys)) + (i - (len(arms) - 1) / 2) * height
            means = [imp.mean.get(k, 0.0) for k in keys]
            low = [m - imp.bootstrap.get(k, (m, m))[0] for m, k in zip(means, keys)]
            high = [imp.bootstrap.get(k, (m, m))[1] - m for m, k in zip(means, keys)]
            ax.barh(y, means, height=height, color=colors.get(arm), label=f"{arm} ({imp.trials})",
                    xerr=[np.maximum(low, 0), np.maximum(high, 0)], capsize=2)  # fmt: skip
        ax.set_yticks(np.arange(len(keys)), [knob(k) for k in keys])
        ax.invert_yaxis()
        ax.set_xlim(0, 1)
        ax.set_xlabel("fANOVA importance (share of variance)")
        ax.set_title(condition)
        ax.grid(axis="x", alpha=0.3)
    axes[0][0].legend(title="arm (trials)", loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
