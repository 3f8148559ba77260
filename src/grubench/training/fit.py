"""One fit: a task, a model, the system and a Trainer, tracked as one MLflow run.

``run_fit(FitConfig(...))`` validates the whole config first (a bad value raises
:class:`ConfigError` listing every problem, before anything touches the store), then creates
exactly one MLflow run with the resolved config as params and ``config.yaml``, trains, tests,
logs summary metrics (final and best validation values, ``steps_to_solve``, time per step,
parameter count) and marks the run FINISHED, FAILED or KILLED. A run whose loss or gradients
went non-finite stops early and is recorded as diverged (tag ``grubench.outcome=diverged``
and ``grubench.diverged_step``), not crashed through.

A SIGTERM or SIGINT stops the fit at the next step boundary with a checkpoint (status KILLED);
``run_fit(cfg, resume=run_id)`` continues that same run from its ``last.ckpt`` and ends with
the metrics an uninterrupted fit would have (see :mod:`grubench.training.resume`).
"""

from __future__ import annotations

import logging
import os
import socket
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightning as L
import yaml

from grubench import __version__
from grubench.models import build_model, count_parameters
from grubench.models.gru_bptt import subnormals_flushed
from grubench.store.health import out_of_space, server_gone
from grubench.store.schema import (
    CHANCE_LEVEL,
    DIVERGED_STEP,
    GAP_SCORE,
    GLOBAL_BATCH,
    HOST,
    LENGTH_SCORE,
    LENGTH_SCORE_PREFIX,
    MODEL,
    OBJECTIVE,
    OBJECTIVE_MODE,
    OUTCOME,
    PARAM_COUNT,
    PID,
    SOLVED,
    STEPS,
    STEPS_TO_SOLVE,
    SUPERSEDED,
    TASK,
    TEST_SCORE,
    TIME_PER_STEP,
    VAL_SCORE,
    VERSION,
    WALL_TIME,
    FitOutcome,
    RunStatus,
)
from grubench.store.tracking import (
    checkpoint_dir,
    ensure_experiment,
    flatten,
    get_client,
    git_commit,
)
from grubench.tasks import build_task
from grubench.training.config import (
    CheckpointUnreadable,
    ConfigError,
    FitConfig,
    RunStillRunning,
    first_line,
    resolved_config,
    validate_fit_config,
)
from grubench.training.data import SyntheticDataModule
from grubench.training.diagnostics import GradientDiagnostics
from grubench.training.module import RecurrentSystem, StepTimer
from grubench.training.resume import (
    CHECKPOINT_NAME,
    Interrupted,
    ResumableMLFlowLogger,
    RunCheckpoint,
    StopSignals,
    logged_through,
    unlogged,
)

warnings.filterwarnings("ignore", ".*does not have many workers.*")
# Lightning counts the logging interval over all steps, not per epoch: short epochs still log
warnings.filterwarnings("ignore", ".*is smaller than the logging interval.*")
warnings.filterwarnings("ignore", ".*isinstance\\(treespec, LeafSpec\\)` is deprecated.*")
# The DataModule's state_dict restores the position in the epoch (Lightning looks for it on
# the DataLoader only)
warnings.filterwarnings("ignore", ".*your dataloader is not resumable.*")


class StoreFailure(OSError):
    """A fit stopped by its store: a full disk under the store or the checkpoints, or a tracking
    server that stopped answering through MLflow's retries (about four minutes by default:
    ``MLFLOW_HTTP_REQUEST_MAX_RETRIES`` 7, ``MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR`` 2). ``why``
    and ``fix`` are phrases for the one line grubench prints; ``run_id`` its run (FAILED, or
    still RUNNING where not even that could be written: resumable either way); ``step`` the
    step its last checkpoint holds (None: it has none and starts afresh)."""

    def __init__(self, why: str, fix: str, run_id: str, step: int | None) -> None:
        super().__init__(f"{why} (run {run_id})")
        self.why, self.fix, self.run_id, self.step = why, fix, run_id, step


def _store_failure(error: BaseException | None, uri: str) -> tuple[str, str] | None:
    """(why, fix) when ``error`` is the store's failure rather than the fit's."""
    if out_of_space(error):
        return "no space left on the disk holding the store or its checkpoints", (
            "free some space")  # fmt: skip
    if uri.startswith(("http://", "https://")) and server_gone(error):
        return f"the tracking server at {uri} stopped answering", "once it answers again"
    return None


@dataclass
class FitResult:
    run_id: str
    experiment_id: str
    status: RunStatus  # FINISHED, FAILED or KILLED
    outcome: str  # solved, unsolved or diverged
    metrics: dict[str, float]


def run_fit(cfg: FitConfig, resume: str | None = None) -> FitResult:
    """Fit ``cfg`` as one MLflow run; ``resume``: continue that run (of this config) from its
    checkpoint instead (check it first with :func:`resume_point`)."""
    # MLflow's SQL store logs every database error with its traceback at ERROR before it
    # raises it; the fit says it once (a full disk: grubench.cli's one line)
    db_log = logging.getLogger("mlflow.store.db.utils")
    level = db_log.level
    db_log.setLevel(logging.CRITICAL)
    try:
        with subnormals_flushed(cfg.flush_denormal is True):  # (validated by _run_fit)
            return _run_fit(cfg, resume)
    finally:
        db_log.setLevel(level)


def _run_fit(cfg: FitConfig, resume: str | None) -> FitResult:
    problems = validate_fit_config(cfg)
    if problems:
        raise ConfigError(problems)
    config = resolved_config(cfg)
    system, data = build_fit(cfg)
    with StopSignals() as signals, TrackedRun(cfg, config, system.task, resume) as run:
        # from here a signal stops the fit at a step boundary and marks the run KILLED
        timer, checkpoint = StepTimer(), RunCheckpoint(run.checkpoints, signals)
        callbacks = [timer]
        if cfg.diagnostics_every_n_steps:
            callbacks.append(GradientDiagnostics(cfg.diagnostics_every_n_steps))
        callbacks.append(checkpoint)  # last: it saves what the others did in the same hook
        trainer = L.Trainer(
            **config["trainer"],
            logger=run.logger(),
            callbacks=callbacks,
            default_root_dir=run.checkpoints,
            use_distributed_sampler=False,  # the DataModule's samplers split data over ranks
        )
        trainer.fit(
            system,
            datamodule=data,
            ckpt_path=checkpoint.path if resume else None,
            weights_only=True,  # tensors and plain types only: nothing is unpickled as code
        )
        if signals.signum is not None:  # it came during the last step: training is complete
            raise Interrupted(signals.signum, step=trainer.global_step)
        wall_time, diverged = system.training_seconds(), system.diverged_step is not None
        if cfg.test and not diverged:
            trainer.test(system, datamodule=data, verbose=False)

        samples_per_step = cfg.task.batch_size * trainer.world_size  # the global batch
        metrics = summary_metrics(system, timer, wall_time, trainer.global_step, samples_per_step)
        test_value = trainer.callback_metrics.get(f"test/{system.objective.metric}")
        if cfg.test and not diverged and test_value is not None:
            metrics[TEST_SCORE] = system.task.normalized_score(float(test_value))
            metrics.update(length_scores(system, cfg.task.eval_lengths, trainer.callback_metrics))
        if diverged:
            outcome = FitOutcome.DIVERGED
        else:
            outcome = (
                FitOutcome.SOLVED if system.steps_to_solve is not None else FitOutcome.UNSOLVED
            )
        return run.finish(outcome, metrics, trainer.global_step, system.diverged_step)


def build_fit(cfg: FitConfig) -> tuple[RecurrentSystem, SyntheticDataModule]:
    """The task, the model (under the run's seed), the LightningModule and the DataModule."""
    L.seed_everything(cfg.seed, workers=True, verbose=False)
    task = build_task(cfg.task.name, cfg.task.seq_len, **cfg.task.options)
    model = build_model(
        cfg.model, task.input_size, task.output_size, task.output_mode, task.seq_len
    )
    eval_lengths = tuple(cfg.task.eval_lengths)
    system = RecurrentSystem(
        model, task, cfg.optim, eval_lengths=eval_lengths, stop_after_solved=cfg.stop_after_solved
    )
    data = SyntheticDataModule(
        task,
        batch_size=cfg.task.batch_size,
        epoch_size=cfg.task.epoch_size,
        val_size=cfg.task.val_size,
        test_size=cfg.task.test_size,
        train_size=cfg.task.train_size,
        seed=cfg.seed,
        num_workers=cfg.task.num_workers,
        eval_lengths=eval_lengths,
    )
    return system, data


class TrackedRun:
    """One fit's MLflow run, from its creation (or its resumption) to its final status: the
    one place that opens, tags and closes it.

    Under DDP every process runs the fit (Lightning re-executes the command for ranks 1..N-1;
    torchrun starts them all): only global rank 0 touches the store, so one fit is one MLflow
    run, and the other ranks learn its id from ``GRUBENCH_RUN_ID``. On leaving, the run is
    FINISHED if :meth:`finish` was reached, KILLED on a stop signal or Ctrl-C, FAILED on any
    other exception; the environment variables the fit exported are put back.
    """

    def __init__(self, cfg: FitConfig, config: dict[str, Any], task, resume: str | None):
        self.cfg, self.config, self.task, self.resume = cfg, config, task, resume
        self.uri = config["tracking_uri"]
        self.rank_zero = is_global_rank_zero()
        self.client, self.experiment_id = None, ""
        self.run_id = os.environ.get(RUN_ID_ENV, "")
        self.already_logged: dict[str, int] = {}  # metric -> last step, of a resumed run
        self.status = RunStatus.FAILED

    def __enter__(self) -> TrackedRun:
        if self.rank_zero:
            self.client = get_client(self.uri)
            if self.resume:
                self.run_id = self.resume
                self.experiment_id = self.client.get_run(self.resume).info.experiment_id
                self.already_logged = logged_through(self.client, self.run_id)
                self.client.update_run(self.run_id, status=RunStatus.RUNNING)
            else:
                self.experiment_id = ensure_experiment(
                    self.client, self.cfg.experiment_name, self.uri
                )
                self.run_id = self.client.create_run(
                    self.experiment_id,
                    run_name=self.cfg.run_name,
                    tags=run_tags(self.cfg, self.task),
                ).info.run_id
        self._saved_env = dict(os.environ)
        try:
            if self.rank_zero:
                if not self.resume:
                    log_config(self.client, self.run_id, self.config)
                # which process runs the run: grubench fit --resume refuses a live one
                self.client.set_tag(self.run_id, PID, str(os.getpid()))
                self.client.set_tag(self.run_id, HOST, socket.gethostname())
                os.environ[RUN_ID_ENV] = self.run_id  # ranks that Lightning launches inherit it
        except BaseException as err:
            self.__exit__(type(err), err, err.__traceback__)
            raise
        return self

    @property
    def checkpoints(self) -> Path:
        """The run's checkpoint folder (rank 0 writes it)."""
        return checkpoint_dir(self.uri, self.run_id or "rank-nonzero")

    def logger(self) -> ResumableMLFlowLogger | bool:
        """Rank 0's MLflow logger into this run; False elsewhere (MLFlowLogger opens the store
        as soon as it is built, and under torchrun the ranks would race rank 0's schema)."""
        if not self.rank_zero:
            return False
        return ResumableMLFlowLogger(
            tracking_uri=self.uri, run_id=self.run_id, logged_through=self.already_logged
        )

    def finish(
        self, outcome: str, metrics: dict[str, float], step: int, diverged_step: int | None
    ) -> FitResult:
        """The outcome tags and the summary metrics (those a resumed run has not logged)."""
        if self.rank_zero:
            self.client.set_tag(self.run_id, OUTCOME, outcome)
            if diverged_step is not None:
                self.client.set_tag(self.run_id, DIVERGED_STEP, str(diverged_step))
            log_metrics(self.client, self.run_id, unlogged(metrics, step, self.already_logged),
                        step=step)  # fmt: skip
        self.status = RunStatus.FINISHED
        return FitResult(self.run_id, self.experiment_id, self.status, outcome, metrics)

    def __exit__(self, kind, error, traceback) -> None:
        if kind is not None and issubclass(kind, (KeyboardInterrupt, SystemExit)):
            self.status = RunStatus.KILLED
            if isinstance(error, Interrupted):
                error.run_id = self.run_id
        elif kind is not None:
            self.status = RunStatus.FAILED
        lost = _store_failure(error, self.uri)
        if self.rank_zero:
            try:
                self.client.set_terminated(self.run_id, self.status)
            except Exception as err:
                if lost is None or _store_failure(err, self.uri) is None:
                    raise  # (the store's own failure, said below, may keep even this out)
        # MLFlowLogger exports MLFLOW_TRACKING_URI, rank 0 the run id: leak neither
        for key in ("MLFLOW_TRACKING_URI", RUN_ID_ENV):
            if key in self._saved_env:
                os.environ[key] = self._saved_env[key]
            else:
                os.environ.pop(key, None)
        if lost is not None and self.rank_zero:  # one line for the user, and how to go on
            step = checkpoint_step(self.checkpoints / CHECKPOINT_NAME)
            raise StoreFailure(*lost, self.run_id, step) from error


@dataclass
class ResumePoint:
    run: Any  # the MLflow run
    checkpoint: Path
    step: int  # the global step the checkpoint holds


def resume_point(client, run_id: str, tracking_uri: str) -> ResumePoint:
    """The checkpoint to continue run ``run_id`` from; ConfigError says why there is none."""
    from mlflow.exceptions import MlflowException

    where = f"--resume {run_id}"
    try:
        run = client.get_run(run_id)
    except MlflowException:
        raise ConfigError([f"{where}: no such run in {tracking_uri}"]) from None
    status, tags = run.info.status, run.data.tags
    if status == RunStatus.FINISHED:
        raise ConfigError([f"{where}: the run is FINISHED already; there is nothing to resume"])
    if tags.get(SUPERSEDED) == "true":
        raise ConfigError(
            [f"{where}: the run was superseded by a newer run of its sweep child; resume that"]
        )
    if status == RunStatus.RUNNING and _alive_elsewhere(tags):
        raise RunStillRunning(
            [f"{where}: the run is RUNNING in process {tags['grubench.pid']} on this host; "
             "stop it first (a SIGTERM stops it with a checkpoint)"]
        )  # fmt: skip
    path = checkpoint_dir(tracking_uri, run_id) / CHECKPOINT_NAME
    config = f"{run.info.artifact_uri}/config.yaml".removeprefix("file://")
    if not path.is_file():
        raise ConfigError(
            [f"{where}: the run ({status}) has no checkpoint ({path} does not exist: it "
             f"stopped before writing one); start it again with: grubench fit --config {config}"]
        )  # fmt: skip
    import torch

    try:
        step = torch.load(path, map_location="cpu", weights_only=True, mmap=True)["global_step"]
    except Exception as err:  # truncated or overwritten: not a checkpoint torch can read
        raise CheckpointUnreadable(
            [f"{where}: its checkpoint {path} cannot be read ({first_line(err)}); start the run "
             f"afresh with: grubench fit --config {config}"]
        ) from None  # fmt: skip
    return ResumePoint(run, path, int(step))


def checkpoint_step(path: Path) -> int | None:
    """The global step a checkpoint holds; None when there is none, or none torch can read."""
    import torch

    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
        return int(checkpoint["global_step"])
    except Exception:  # missing, truncated, overwritten
        return None


def _alive_elsewhere(tags: dict[str, str]) -> bool:
    """Whether the process that started the run still lives on this host (not this one)."""
    pid, host = tags.get(PID), tags.get(HOST)
    if not pid or host != socket.gethostname() or int(pid) == os.getpid():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


RUN_ID_ENV = "GRUBENCH_RUN_ID"


def is_global_rank_zero() -> bool:
    """Whether this process is global rank 0, as launchers announce ranks before any process
    group exists (True without a launcher)."""
    if "RANK" in os.environ:  # torchrun
        return int(os.environ["RANK"]) == 0
    if "SLURM_PROCID" in os.environ and "SLURM_NTASKS" in os.environ:  # srun
        return int(os.environ["SLURM_PROCID"]) == 0
    # Lightning's own launcher: LOCAL_RANK per device, NODE_RANK per machine
    return int(os.environ.get("LOCAL_RANK", 0)) == 0 and int(os.environ.get("NODE_RANK", 0)) == 0


def run_tags(cfg: FitConfig, task) -> dict[str, str]:
    tags = {
        MODEL: cfg.model.name,
        TASK: cfg.task.name,
        VERSION: __version__,
        OBJECTIVE: task.objective.metric,
        OBJECTIVE_MODE: task.objective.mode,
        **cfg.tags,
    }
    commit = git_commit()
    if commit:
        tags["mlflow.source.git.commit"] = commit
    return tags


def log_config(client, run_id: str, config: dict[str, Any]) -> None:
    """The resolved config as params (flattened) and as the artifact ``config.yaml``."""
    from mlflow.entities import Param

    params = [Param(k, str(v)) for k, v in flatten(config).items()]
    for start in range(0, len(params), 100):  # MLflow takes at most 100 params per batch
        client.log_batch(run_id, params=params[start : start + 100])
    client.log_text(run_id, yaml.safe_dump(config, sort_keys=False), "config.yaml")


def summary_metrics(
    system: RecurrentSystem, timer: StepTimer, wall_time: float, steps: int, samples_per_step: int
) -> dict[str, float]:
    """What a comparison reads: final and best values, the generalization gap, cost, speed."""
    name = system.objective.metric
    key = f"val/{name}"
    metrics = {
        PARAM_COUNT: float(count_parameters(system.model)),
        WALL_TIME: wall_time,
        TIME_PER_STEP: timer.median_ms(),
        STEPS: float(steps),
        SOLVED: float(system.steps_to_solve is not None),
        GLOBAL_BATCH: float(samples_per_step),  # batch_size x processes
        CHANCE_LEVEL: system.task.chance_level(),  # the score's zero (grubench.answers.stats)
    }
    if system.optim.grad_clip > 0 and system.optimizer_steps:
        metrics["clip_fraction"] = system.clipped_steps / system.optimizer_steps
    if system.val_history:
        values = [v for _, v in system.val_history]
        best = min(values) if system.objective.mode == "min" else max(values)
        metrics[f"final/{key}"] = values[-1]
        metrics[f"best/{key}"] = best
        metrics[VAL_SCORE] = system.task.normalized_score(values[-1])
    if system.train_history:
        # on the last training epoch's batches (a finite train set: data the model has seen)
        metrics[f"final/train/{name}"] = system.train_history[-1]
        if system.val_history:
            metrics[f"final/gap/{name}"] = system.val_history[-1][1] - system.train_history[-1]
            # normalized: train score minus validation score, > 0 when the model overfits
            metrics[GAP_SCORE] = system.task.normalized_score(
                system.train_history[-1]
            ) - system.task.normalized_score(system.val_history[-1][1])
    if system.steps_to_solve is not None:
        metrics[STEPS_TO_SOLVE] = float(system.steps_to_solve)
        metrics["samples_to_solve"] = float(system.steps_to_solve * samples_per_step)
        metrics["seconds_to_solve"] = system.seconds_to_solve
    return metrics


def length_scores(system: RecurrentSystem, lengths: list[int], logged) -> dict[str, float]:
    """The normalized test score at each extra evaluation length, each against the chance
    level of the task at that length, and at the longest of them (:data:`LENGTH_SCORE`)."""
    scores = {}
    for length in lengths:
        value = logged.get(f"test/{system.objective.metric}_L{length}")
        if value is not None:
            task = system.task.with_seq_len(length)
            scores[f"{LENGTH_SCORE_PREFIX}{length}"] = task.normalized_score(float(value))
    if lengths and f"{LENGTH_SCORE_PREFIX}{max(lengths)}" in scores:
        scores[LENGTH_SCORE] = scores[f"{LENGTH_SCORE_PREFIX}{max(lengths)}"]
    return scores


def log_metrics(client, run_id: str, metrics: dict[str, float], step: int) -> None:
    from mlflow.entities import Metric

    now = int(time.time() * 1000)
    client.log_batch(run_id, metrics=[Metric(k, float(v), now, step) for k, v in metrics.items()])
