"""An FAQ experiment: a question, the configurations it compares, seeds and budgets.

An experiment file (``experiments/<question>.py``) defines ``EXPERIMENT = Experiment(...)``.
Each configuration is a label (a row of the report's table) and nested overrides of
:class:`~grubench.fit.FitConfig`; the chosen profile's budget overrides go on top, then the
seed. ``expand`` turns that into one :class:`Child` per (configuration, seed): the unit the
runner runs, skips when already finished, and the report aggregates.
"""

from __future__ import annotations

import copy
import hashlib
import importlib.util
import itertools
import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from grubench.fit import FitConfig, TaskConfig
from grubench.models import ModelConfig
from grubench.system import OptimConfig

PROFILES = ("quick", "full")
_GROUPS = {"model": ModelConfig, "task": TaskConfig, "optim": OptimConfig}


def merge(base: dict, override: dict) -> dict:
    """Deep merge of nested dicts; ``override`` wins."""
    merged = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def fit_config_from_dict(values: dict[str, Any], where: str = "config") -> FitConfig:
    """A FitConfig from nested dicts; unknown keys raise ValueError naming the valid ones."""
    top = {f.name for f in fields(FitConfig)}
    unknown = sorted(set(values) - top)
    if unknown:
        raise ValueError(f"{where}: unknown key(s) {unknown}; valid: {', '.join(sorted(top))}")
    kwargs = {k: v for k, v in values.items() if k not in _GROUPS}
    for group, cls in _GROUPS.items():
        options = values.get(group, {})
        valid = {f.name for f in fields(cls)}
        bad = sorted(set(options) - valid)
        if bad:
            raise ValueError(
                f"{where}: unknown {group} option(s) {bad}; valid: {', '.join(sorted(valid))}"
            )
        kwargs[group] = cls(**options)
    return FitConfig(**kwargs)


@dataclass
class Experiment:
    name: str  # also the MLflow experiment's name
    question: str
    configs: dict[str, dict[str, Any]]  # row label -> FitConfig overrides
    base: dict[str, Any] = field(default_factory=dict)  # overrides shared by every config
    seeds: dict[str, list[int]] = field(
        default_factory=lambda: {"quick": [0, 1, 2], "full": [0, 1, 2, 3, 4]}
    )
    budgets: dict[str, dict[str, Any]] = field(default_factory=dict)  # profile -> overrides
    # profile -> configurations, replacing ``configs`` for that profile (e.g. longer sequences
    # in "full" than a CPU can train in "quick")
    configs_by_profile: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    # extra report columns: title -> summary metric key, e.g. {"gap": "final/gap/mse"}
    columns: dict[str, str] = field(default_factory=dict)
    plot_against: str | None = None  # e.g. "task.seq_len": a metric-against-length plot
    # run params whose values split the rows into groups judged apart (a verdict per task and
    # length, say), e.g. ["task.name", "task.seq_len"]; empty: one verdict over all rows
    compare_within: list[str] = field(default_factory=list)
    notes: str = ""

    def configs_for(self, profile: str) -> dict[str, dict[str, Any]]:
        return self.configs_by_profile.get(profile, self.configs)


@dataclass
class Child:
    label: str
    seed: int
    config: FitConfig

    @property
    def key(self) -> str:
        return f"{self.label} | seed={self.seed}"

    def config_hash(self) -> str:
        """What the child computes: changes when any setting that affects the result does."""
        settings = asdict(self.config)
        for volatile in ("tracking_uri", "tags", "run_name", "experiment_name"):
            settings.pop(volatile)
        if not settings["flush_denormal"]:
            settings.pop("flush_denormal")  # at its default: runs from before it still count
        if settings["model"]["name"] != "custom_gru":
            # Only custom_gru has backends: for other models the field means nothing, and
            # dropping it keeps their runs made before it existed counted as done.
            settings["model"].pop("backend")
        text = json.dumps(settings, sort_keys=True, default=str)
        return hashlib.sha1(text.encode()).hexdigest()[:12]


def load_experiment(path: str | Path) -> Experiment:
    """Import ``EXPERIMENT`` from an experiment file (a name resolves under experiments/)."""
    path = Path(path)
    if not path.exists() and not path.suffix:
        path = path.with_suffix(".py")
    if not path.is_file():
        raise ValueError(f"no experiment file {str(path)!r}")
    spec = importlib.util.spec_from_file_location(f"grubench_experiment_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    experiment = getattr(module, "EXPERIMENT", None)
    if not isinstance(experiment, Experiment):
        raise ValueError(f"{path} does not define EXPERIMENT = Experiment(...)")
    return experiment


def sweep_id(experiment: Experiment, profile: str) -> str:
    return f"{experiment.name}:{profile}"


def expand(
    experiment: Experiment, profile: str, overrides: dict[str, Any] | None = None
) -> list[Child]:
    """Every (configuration, seed) of ``profile``, in a stable order.

    ``overrides`` (e.g. Trainer options from the command line) apply to every child last.
    """
    if profile not in PROFILES:
        raise ValueError(f"unknown profile {profile!r}; choose from: {', '.join(PROFILES)}")
    budget = experiment.budgets.get(profile, {})
    children = []
    for label, config in experiment.configs_for(profile).items():
        values = merge(merge(merge(experiment.base, config), budget), overrides or {})
        values["experiment_name"] = experiment.name
        for seed in experiment.seeds[profile]:
            where = f"{experiment.name}: config {label!r}"
            child = Child(label, seed, fit_config_from_dict({**values, "seed": seed}, where))
            children.append(child)
    return children


def grid(**axes: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The product of named axes: ``grid(model={"gru": {...}, "lstm": {...}},
    length={"T=100": {...}})`` -> ``{"gru, T=100": {...merged...}, ...}``."""
    configs = {}
    for combo in itertools.product(*(axis.items() for axis in axes.values())):
        label = ", ".join(name for name, _ in combo)
        merged: dict[str, Any] = {}
        for _, overrides in combo:
            merged = merge(merged, overrides)
        configs[label] = merged
    return configs
