"""A seeded random search as an experiment's tuning stage, and hyperparameter importance by
fANOVA (Greff et al. 2017, "LSTM: A Search Space Odyssey"; Hutter et al. 2014).

The search's trials are the tuning points of an :class:`~grubench.sweeps.question.Experiment`:
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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from grubench.sweeps.overrides import merge, nested

OPTUNA_ENV = "GRUBENCH_OPTUNA_STORAGE"
TRIAL = "trial"  # point labels: "trial=7"


def load_optuna():
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
            optuna = load_optuna()
            seed = int(np.random.SeedSequence([self.seed, trial]).generate_state(1)[0])
            study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed))
            self._drawn[(arm, trial)] = study.ask(self.space_for(arm)).params
        return dict(self._drawn[(arm, trial)])

    def points(self, arm: str, profile: str) -> dict[str, dict[str, Any]]:
        """label ("trial=k") -> nested FitConfig overrides, for each trial of ``profile``."""
        points = {}
        for k in range(self.trials.get(profile, 0)):
            overrides: dict[str, Any] = {}
            for key, value in self.params(arm, k).items():
                overrides = merge(overrides, nested(key, value))
            points[f"{TRIAL}={k}"] = overrides
        return points

    def check(self, arms) -> list[str]:
        optuna = load_optuna()
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
    from grubench.store.tracking import store_dir

    if os.environ.get(OPTUNA_ENV):
        return os.environ[OPTUNA_ENV]
    return f"sqlite:///{(store_dir(tracking_uri) / 'optuna.db').resolve()}"


def study_name(question, profile: str, arm: str, condition: str) -> str:
    return f"{question.name}:{profile}:{arm}:{condition}"


def _locked(storage: str):
    """Serialize syncs of an SQLite storage across processes (a lock file beside it)."""
    from grubench.store.tracking import file_lock

    if not storage.startswith("sqlite:///"):
        return contextlib.nullcontext()
    return file_lock(Path(storage.removeprefix("sqlite:///") + ".lock"))


def sync_studies(question, profile: str, tracking_uri: str, tuning, finished) -> dict:
    """Add every finished tuning run of the search that its study lacks; returns the studies
    by (arm, condition). ``tuning`` are the search's tuning children, ``finished`` the store's
    finished runs by (child key, settings hash), as the report reads them. Idempotent: a child
    already in its study is skipped."""
    from grubench.store.runs import run_score
    from grubench.store.schema import VAL_SCORE

    optuna = load_optuna()
    search = question.search
    storage = storage_url(tracking_uri)
    studies, known = {}, {}
    with _locked(storage):
        for child in tuning:
            cell = (child.arm, child.condition)
            if cell not in studies:
                studies[cell] = optuna.create_study(
                    storage=storage, load_if_exists=True, direction="maximize",
                    study_name=study_name(question, profile, *cell),
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
