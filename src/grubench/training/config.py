"""A fit's configuration: :class:`FitConfig` (its own options and its model, task, optimizer
and Trainer groups), the keys a config file may hold, and its validation: every problem one
line, found before anything touches the store (:class:`ConfigError`).
"""

from __future__ import annotations

import functools
import inspect
import logging
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from grubench.models import ModelConfig, validate_model_config
from grubench.options import option, option_fields
from grubench.store.health import uri_problems
from grubench.store.tracking import resolve_tracking_uri
from grubench.tasks import TASKS, validate_task_options

# grubench's Trainer defaults; anything in FitConfig.trainer overrides them.
TRAINER_DEFAULTS: dict[str, Any] = {
    "max_steps": 1000,
    "log_every_n_steps": 50,  # each SQLite write costs 12-24 ms: log every 50 steps, not 1
    "enable_model_summary": False,
}
# Set by the fit itself; a user value would break tracking or the data pipeline.
RESERVED_TRAINER_KEYS = (
    "logger",
    "callbacks",
    "default_root_dir",
    "enable_checkpointing",
    "use_distributed_sampler",
)


@dataclass
class TaskConfig:
    """The task and its data: which task, its length, batch size and set sizes."""

    name: str = option("adding", f"the task: {', '.join(TASKS)}")
    seq_len: int = option(100, "the sequence length T")
    batch_size: int = option(64, "samples per training step (per process under DDP)")
    epoch_size: int = option(100, "training batches between validations")
    val_size: int = option(1024, "validation samples (a dataset task: at most its split)")
    test_size: int = option(1024, "test samples (a dataset task: at most its split)")
    train_size: int | None = option(
        None, "null: an endless stream; N: a fixed set of N samples (synthetic tasks only)"
    )
    eval_lengths: list[int] = field(
        default_factory=list, metadata={"help": "extra lengths to validate and test at"}
    )
    options: dict[str, Any] = field(
        default_factory=dict, metadata={"help": "the task's own options, e.g. {n_tokens: 16}"}
    )
    num_workers: int = option(0, "DataLoader worker processes")


OPTIMIZERS = ("adam", "adamw", "rmsprop", "sgd")
CLIP_ALGORITHMS = ("norm", "value")


@dataclass
class OptimConfig:
    """The optimizer, its learning rate, L1/L2 penalties and gradient clipping"""

    name: str = option("adam", f"the optimizer: {', '.join(OPTIMIZERS)}")
    lr: float = option(1e-3, "the learning rate")
    weight_decay: float = option(0.0, "L2: coupled for adam, rmsprop and sgd, decoupled for adamw")
    l1: float = option(0.0, "the L1 penalty's coefficient on weight matrices (biases excluded)")
    momentum: float = option(0.0, "sgd's and rmsprop's momentum (torch's default: 0)")
    grad_clip: float = option(0.0, "the gradient clipping threshold; 0 = off")
    grad_clip_algorithm: str = option(
        "norm", f"clip the global norm or each value: {', '.join(CLIP_ALGORITHMS)}"
    )


def validate_optim_config(cfg: OptimConfig) -> list[str]:
    problems = []
    if cfg.name not in OPTIMIZERS:
        problems.append(
            f"optim.name: unknown optimizer {cfg.name!r}; choose from: {', '.join(OPTIMIZERS)}"
        )
    if not cfg.lr > 0:
        problems.append(f"optim.lr must be positive, got {cfg.lr}")
    for name in ("weight_decay", "l1", "grad_clip"):
        if getattr(cfg, name) < 0:
            problems.append(f"optim.{name} must be non-negative, got {getattr(cfg, name)}")
    if not 0 <= cfg.momentum < 1:
        problems.append(f"optim.momentum must lie in [0, 1), got {cfg.momentum}")
    if cfg.grad_clip_algorithm not in CLIP_ALGORITHMS:
        problems.append(
            f"optim.grad_clip_algorithm: unknown {cfg.grad_clip_algorithm!r}; "
            f"choose from: {', '.join(CLIP_ALGORITHMS)}"
        )
    return problems


@dataclass
class FitConfig:
    model: ModelConfig = field(default_factory=ModelConfig)
    task: TaskConfig = field(default_factory=TaskConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    seed: int = option(0, "the run's seed: weights, data and dropout")
    trainer: dict[str, Any] = field(default_factory=dict)  # lightning.Trainer options
    experiment_name: str = option("grubench", "the MLflow experiment", hashed=False)
    run_name: str | None = option(None, "the MLflow run's name", hashed=False)
    tracking_uri: str | None = option(
        None, "MLflow tracking URI (default: $MLFLOW_TRACKING_URI, else "
        "sqlite:///./mlruns/mlflow.db)", hashed=False,
    )  # fmt: skip
    tags: dict[str, str] = option(None, "extra MLflow tags", hashed=False, factory=dict)
    test: bool = option(True, "Evaluate on the test set.")
    # a probe costs T single-step calls per layer: off by default
    diagnostics_every_n_steps: int = option(
        0, "Probe the gradient flow (dL/dh_t per time step and layer, gate statistics) every "
        "N steps; 0 = off."
    )  # fmt: skip
    # values below 1.2e-38 become 0, far below what moves a float32 weight: tests/test_fit.py
    # finds the metrics bit-identical
    flush_denormal: bool = option(
        True, "CPU: flush subnormal floats (< 1.2e-38) to zero during the fit; several times "
        "faster where gradients vanish through time (the adding problem)."
    )  # fmt: skip
    # steps to solve are known by then, and the scores of solved runs are compared at the
    # same rule for every arm
    stop_after_solved: int = option(
        0, "Stop once the task is solved at this many validations in a row; 0 = off."
    )


GROUPS = ("model", "task", "optim", "trainer")  # FitConfig's nested groups; the rest are options
# a flag's other spelling
ALIASES = {"tracking_uri": ("--tracking-uri",)}


def top_level_options() -> dict[str, tuple[Any, Any]]:
    """FitConfig's own options (not its groups): name -> (field, type), from which the
    command line's flags, their help and the settings hash are made."""
    return {name: spec for name, spec in option_fields(FitConfig).items() if name not in GROUPS}


@functools.cache  # the same for every child of every sweep
def config_keys() -> dict[str, frozenset[str]]:
    """The keys a fit's config may hold: ``""``, the top level; then each group's options
    (the trainer's: lightning.Trainer's arguments that grubench does not set itself)."""
    import lightning as L  # here, not at the top: the options above are read without it

    trainer = set(inspect.signature(L.Trainer.__init__).parameters) - {"self"}
    return {
        "": frozenset(f.name for f in fields(FitConfig)),
        "model": frozenset(f.name for f in fields(ModelConfig)),
        "task": frozenset(f.name for f in fields(TaskConfig)),
        "optim": frozenset(f.name for f in fields(OptimConfig)),
        "trainer": frozenset(trainer - set(RESERVED_TRAINER_KEYS)),
    }


def unknown_key(keys: dict[str, frozenset[str]], group: str, key: str) -> str | None:
    """The one-line problem of ``key`` in ``group`` of a config (None when it is valid)."""
    if key in keys[group]:
        return None
    valid = ", ".join(sorted(keys[group]))
    return (f"unknown option {group}.{key}; valid: {valid}" if group
            else f"unknown key {key!r}; valid: {valid}")  # fmt: skip


class ConfigError(ValueError):
    """One or more invalid config values; ``problems`` holds one line per problem."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


class RunStillRunning(ConfigError):
    """The run to resume is RUNNING in a live process of this host."""


class CheckpointUnreadable(ConfigError):
    """The run's checkpoint exists but torch cannot read it."""


def first_line(err: BaseException) -> str:
    """An exception's message cut to its first line (its type when it has none)."""
    return str(err).splitlines()[0] if str(err) else type(err).__name__


def validate_task_config(cfg: TaskConfig) -> list[str]:
    from grubench.tasks import DatasetTask  # (torch: not imported with the options above)

    problems = validate_task_options(cfg.name, cfg.options)
    if problems:
        return problems
    task_class = TASKS[cfg.name]
    try:  # the task's own checks of its options and length
        task = task_class(seq_len=cfg.seq_len, **cfg.options)
    except ValueError as err:
        problems.append(f"{err}")
    else:
        # as the fit builds them: the training task at another length, its resolved options
        # kept (counting's training range, say, which the evaluation strings must exceed)
        for i, length in enumerate(cfg.eval_lengths):
            try:
                task.with_seq_len(length)
            except ValueError as err:
                problems.append(f"task.eval_lengths[{i}]: {err}")
    if cfg.train_size is not None and issubclass(task_class, DatasetTask):
        problems.append(
            f"task.train_size: {cfg.name} trains on its data set's fixed training split, "
            "so train_size does not apply; leave train_size null"
        )
    elif cfg.train_size is not None and task_class.variable_length_training:
        problems.append(
            f"task.train_size: {cfg.name} draws a new length for each training batch, "
            "so it cannot have a finite training set; leave train_size null"
        )
    for name in ("batch_size", "epoch_size", "val_size", "test_size"):
        if getattr(cfg, name) <= 0:
            problems.append(f"task.{name} must be positive, got {getattr(cfg, name)}")
    if cfg.train_size is not None and cfg.train_size <= 0:
        problems.append(f"task.train_size must be positive or null, got {cfg.train_size}")
    if cfg.num_workers < 0:
        problems.append(f"task.num_workers must be non-negative, got {cfg.num_workers}")
    return problems


@contextmanager
def quiet_lightning():
    """Mute Lightning's informational banner ("GPU available: ...", tips) for a while."""
    banner = logging.getLogger("lightning.pytorch.utilities.rank_zero")
    level = banner.level
    banner.setLevel(logging.WARNING)
    try:
        yield
    finally:
        banner.setLevel(level)


def trainer_options(cfg: FitConfig) -> dict[str, Any]:
    return {**TRAINER_DEFAULTS, **cfg.trainer}


def validate_trainer_options(options: dict[str, Any]) -> list[str]:
    import lightning as L

    valid = set(inspect.signature(L.Trainer.__init__).parameters) - {"self"}
    problems = [
        f"trainer.{key} is set by grubench itself and cannot be overridden"
        for key in options
        if key in RESERVED_TRAINER_KEYS
    ]
    unknown = sorted(set(options) - valid - set(RESERVED_TRAINER_KEYS))
    problems += [f"trainer.{key}: not a lightning.Trainer option" for key in unknown]
    if problems:
        return problems
    # Let Lightning check accelerator, devices, strategy, precision... before any run exists;
    # its banner ("GPU available: ...") would print twice, so it is muted for this probe.
    try:
        with quiet_lightning():
            L.Trainer(**{**options, "enable_progress_bar": False}, logger=False,
                      enable_checkpointing=False)  # fmt: skip
    except Exception as err:  # Lightning raises several types here; report the message
        return [f"trainer: {err}"]
    return []


def validate_fit_config(cfg: FitConfig) -> list[str]:
    problems = validate_task_config(cfg.task)
    problems += validate_model_config(cfg.model, seq_len=cfg.task.seq_len)
    problems += validate_optim_config(cfg.optim)
    if not cfg.experiment_name:
        problems.append("experiment_name must not be empty")
    if not isinstance(cfg.seed, int) or not 0 <= cfg.seed < 2**32:
        problems.append(f"seed must be a whole number in [0, 2**32), got {cfg.seed!r}")
    problems += tracking_uri_problems(cfg.tracking_uri)
    if cfg.diagnostics_every_n_steps < 0:
        problems.append(
            f"diagnostics_every_n_steps must be 0 (off) or positive, "
            f"got {cfg.diagnostics_every_n_steps}"
        )
    if not isinstance(cfg.stop_after_solved, int) or cfg.stop_after_solved < 0:
        problems.append(
            f"stop_after_solved must be 0 (off) or a positive number of validations, "
            f"got {cfg.stop_after_solved!r}"
        )
    if not isinstance(cfg.flush_denormal, bool):
        problems.append(f"flush_denormal must be true or false, got {cfg.flush_denormal!r}")
    if not problems:
        problems += validate_trainer_options(trainer_options(cfg))
    return problems


def tracking_uri_problems(uri: str | None) -> list[str]:
    """A store URI MLflow cannot open (:func:`grubench.store.health.uri_problems`)."""
    return list(uri_problems(resolve_tracking_uri(uri)))


def resolved_config(cfg: FitConfig) -> dict[str, Any]:
    """The config as it runs: trainer defaults merged, tracking URI resolved."""
    resolved = asdict(cfg)
    resolved["trainer"] = trainer_options(cfg)
    resolved["tracking_uri"] = resolve_tracking_uri(cfg.tracking_uri)
    return resolved
