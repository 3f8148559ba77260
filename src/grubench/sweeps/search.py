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

Ranges that depend on a choice: a :class:`LogRangeByChoice` in the space (say the learning
rate, whose working range differs by optimizer) is drawn as a position ``u`` in [0, 1], the
Optuna parameter ``<key>_position``, and mapped to ``lo * (hi / lo) ** u`` in the range of the
value another dimension drew (``optim.name``). Every trial thus has the same parameters, which
fANOVA needs (Optuna's evaluator keeps only parameters present in every trial), the position
gets an importance of its own, and arms still share its draw. A :class:`ValueByChoice` sets a
constant per choice (SGD's momentum) and is not drawn. :meth:`Search.params` are the draws
(what the Optuna study holds), :meth:`Search.settings` the FitConfig values they map to.

The Optuna study: one per (arm, condition), named ``<experiment>:<profile>:<arm>:<condition>``,
in ``optuna.db`` beside the MLflow store (the SQLite file's folder; ``$GRUBENCH_OPTUNA_STORAGE``
names another storage URL). :func:`sync_studies` adds each finished tuning run as one
completed trial (its parameters, its validation score as the value, the MLflow run id as a
user attribute), keyed by the MLflow run, under a file lock: it runs after every ``grubench
run`` and ``grubench report``, so a sweep that was killed and re-run ends with every trial
exactly once in both stores. A study keeps the trials of earlier settings (a child whose
settings changed is a new run under the same key); the report uses only the trials whose runs
are the current children's (:func:`current_trials`).
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


POSITION = "_position"  # the Optuna parameter of a LogRangeByChoice: "optim.lr_position"


@dataclass(frozen=True)
class LogRangeByChoice:
    """A float whose log-uniform range depends on the value drawn for dimension ``by``:
    ``ranges`` maps each of its choices to ``(lo, hi)``. Drawn as a position ``u`` in [0, 1].

    >>> lr = LogRangeByChoice("optim.name", {"adam": (1e-4, 1e-2), "sgd": (1e-2, 1.0)})
    >>> round(lr.value(0.5, "adam"), 6), round(lr.value(0.5, "sgd"), 6)
    (0.001, 0.1)
    """

    by: str
    ranges: dict[str, tuple[float, float]]

    def value(self, position: float, choice: Any) -> float:
        lo, hi = self.ranges[choice]
        return float(lo * (hi / lo) ** position)

    def distribution(self):
        return load_optuna().distributions.FloatDistribution(0.0, 1.0)


@dataclass(frozen=True)
class ValueByChoice:
    """A constant per value of dimension ``by`` (``values``: choice -> value); not drawn."""

    by: str
    values: dict[str, Any]


@dataclass
class Search:
    """A random search: ``space`` (dotted FitConfig key -> Optuna distribution, or a
    :class:`LogRangeByChoice` or :class:`ValueByChoice` on another dimension) for every arm,
    plus ``space_by_arm``'s dimensions for some arms; ``trials`` per profile and per arm and
    condition; ``seed`` of the sampler."""

    space: dict[str, Any]
    trials: dict[str, int]
    space_by_arm: dict[str, dict[str, Any]] = field(default_factory=dict)
    seed: int = 0
    _drawn: dict = field(default_factory=dict, repr=False, compare=False)  # (arm, k) -> params

    def declared_for(self, arm: str) -> dict[str, Any]:
        """The arm's dimensions as declared (FitConfig key -> distribution or by-choice)."""
        return {**self.space, **self.space_by_arm.get(arm, {})}

    def space_for(self, arm: str) -> dict[str, Any]:
        """The arm's Optuna space: parameter name -> distribution, in the declared order (a
        LogRangeByChoice as its position, a ValueByChoice left out)."""
        space = {}
        for key, dim in self.declared_for(arm).items():
            if isinstance(dim, LogRangeByChoice):
                space[key + POSITION] = dim.distribution()
            elif not isinstance(dim, ValueByChoice):
                space[key] = dim
        return space

    def params(self, arm: str, trial: int) -> dict[str, Any]:
        """Trial ``trial``'s draws for ``arm`` (Optuna parameter -> value): a fresh
        RandomSampler seeded by ``(seed, trial)``, asked once."""
        if (arm, trial) not in self._drawn:
            optuna = load_optuna()
            seed = int(np.random.SeedSequence([self.seed, trial]).generate_state(1)[0])
            study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed))
            self._drawn[(arm, trial)] = study.ask(self.space_for(arm)).params
        return dict(self._drawn[(arm, trial)])

    def settings(self, arm: str, trial: int) -> dict[str, Any]:
        """Trial ``trial``'s FitConfig values for ``arm`` (dotted key -> value): its draws,
        positions mapped into their chosen range, by-choice constants added."""
        drawn, settings = self.params(arm, trial), {}
        for key, dim in self.declared_for(arm).items():
            if isinstance(dim, LogRangeByChoice):
                settings[key] = dim.value(drawn[key + POSITION], drawn[dim.by])
            elif isinstance(dim, ValueByChoice):
                settings[key] = dim.values[drawn[dim.by]]
            else:
                settings[key] = drawn[key]
        return settings

    def points(self, arm: str, profile: str) -> dict[str, dict[str, Any]]:
        """label ("trial=k") -> nested FitConfig overrides, for each trial of ``profile``."""
        points = {}
        for k in range(self.trials.get(profile, 0)):
            overrides: dict[str, Any] = {}
            for key, value in self.settings(arm, k).items():
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
            declared = self.declared_for(arm)
            for key, dim in declared.items():
                if isinstance(dim, (LogRangeByChoice, ValueByChoice)):
                    problems += _check_by_choice(key, dim, declared)
                elif not isinstance(dim, optuna.distributions.BaseDistribution):
                    problems.append(f"search space {key!r}: {dim!r} is not an Optuna distribution")
        if any(n < 2 for n in self.trials.values()):
            problems.append(f"search.trials {self.trials}: fANOVA needs 2 or more per profile")
        return problems


def _check_by_choice(key: str, dim, declared: dict[str, Any]) -> list[str]:
    optuna = load_optuna()
    by = declared.get(dim.by)
    if not isinstance(by, optuna.distributions.CategoricalDistribution):
        return [f"search space {key!r}: depends on {dim.by!r}, which is not a choice in the space"]
    table = dim.ranges if isinstance(dim, LogRangeByChoice) else dim.values
    problems = [f"search space {key!r}: no value for {dim.by}={c!r}"
                for c in by.choices if c not in table]  # fmt: skip
    if isinstance(dim, LogRangeByChoice):
        problems += [f"search space {key!r}: range {lo, hi} for {c!r} needs 0 < lo < hi"
                     for c, (lo, hi) in dim.ranges.items() if not 0 < lo < hi]  # fmt: skip
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
    finished runs by (child key, settings hash), as the report reads them. Idempotent: a run
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
                known[cell] = {t.user_attrs.get("mlflow_run_id") for t in studies[cell].trials}
            study, run = studies[cell], finished.get((child.key, child.config_hash()))
            if run is None or run.info.run_id in known[cell]:
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
            known[cell].add(run.info.run_id)
    return studies


def current_trials(study, tuning, finished) -> list:
    """The study's completed trials whose MLflow runs are the current tuning children's (a
    study also keeps the trials of settings since changed)."""
    current = {run.info.run_id for child in tuning
               if (run := finished.get((child.key, child.config_hash()))) is not None}  # fmt: skip
    return [t for t in study.trials
            if t.value is not None and t.user_attrs.get("mlflow_run_id") in current]  # fmt: skip
