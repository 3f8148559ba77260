"""Stopping a fit cleanly and continuing it: signals, checkpoints, and metrics logged once.

- **Stop.** While a fit trains (one process), the first SIGTERM or SIGINT is only recorded;
  the step that is running completes (with its logging, and the validation after it, if
  any), then :class:`RunCheckpoint` writes ``last.ckpt`` at that step boundary and raises
  :class:`Interrupted`, a ``SystemExit`` with code 128 + the signal number, which
  :func:`grubench.training.fit.run_fit` records as MLflow status KILLED. Nothing after the
  checkpoint has been computed or logged. A second signal stops at once, without a new checkpoint.
  Outside training (setup, test, summary), a signal stops at once. Under DDP Lightning's own
  SIGTERM handling applies: the fit stops at once and resumes from the last periodic
  checkpoint.
- **Periodic checkpoints.** ``last.ckpt`` is also written at the start of each training epoch
  but the first, that is after each validation (grubench validates once per epoch of
  ``task.epoch_size`` steps), and at the end of training: a ``kill -9`` loses at most one
  epoch. Saving takes milliseconds for these models.
- **Continue.** A resumed fit continues the same MLflow run from ``last.ckpt``. MLflow cannot
  delete metric entries, so :class:`ResumableMLFlowLogger` logs an entry only at a step beyond
  the last one its key already holds: the steps between a crash's checkpoint and the crash are
  recomputed (identically on CPU) but not logged again. Each key's history keeps every step once.
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from lightning.pytorch.callbacks import Checkpoint
from lightning.pytorch.loggers import MLFlowLogger
from lightning.pytorch.utilities import rank_zero_only

CHECKPOINT_NAME = "last.ckpt"


class Interrupted(SystemExit):
    """A fit stopped by a signal; ``code`` is 128 + the signal number, as a shell reports it.

    ``step``: the global step held by the checkpoint written for this stop (None: stopped at
    once, the last checkpoint, if any, is older). ``run_id`` is set by ``run_fit``.
    """

    def __init__(self, signum: int, step: int | None = None) -> None:
        super().__init__(128 + signum)
        self.signum, self.step = signum, step
        self.run_id: str | None = None

    @property
    def signal_name(self) -> str:
        return signal.Signals(self.signum).name


class StopSignals:
    """SIGTERM and SIGINT handlers for the length of a fit (a context manager).

    While ``deferring`` (set by :class:`RunCheckpoint` while training), the first signal is
    only recorded in ``signum``; otherwise, and on a second signal, the handler raises
    :class:`Interrupted` at once. Handlers are installed from the main thread only.
    """

    SIGNALS = (signal.SIGTERM, signal.SIGINT)

    def __init__(self) -> None:
        self.signum: int | None = None
        self.deferring = False
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> StopSignals:
        if threading.current_thread() is threading.main_thread():
            for signum in self.SIGNALS:
                self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc_info) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous = {}

    def _handle(self, signum: int, frame) -> None:
        if self.signum is None:
            self.signum = signum
            if self.deferring:
                return
        self.deferring = False
        raise Interrupted(signum)

    def take_over(self) -> None:
        """Put this handler back on SIGTERM. Lightning adds its own during ``fit``, which
        would also stop in the middle of a validation, and then resuming could not be exact."""
        if self._previous:
            signal.signal(signal.SIGTERM, self._handle)


@contextmanager
def signal_handlers(handler=None):
    """SIGTERM and SIGINT go to ``handler`` (None: they stay as they are) for the length of
    the block; the handlers from before are put back after it, also over any that code in the
    block installed (``ray.init`` installs its own). In the main thread only, where Python
    allows signal handlers; elsewhere nothing changes."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {signum: signal.getsignal(signum) for signum in StopSignals.SIGNALS}
    if handler is not None:
        for signum in previous:
            signal.signal(signum, handler)
    try:
        yield
    finally:
        for signum, saved in previous.items():
            signal.signal(signum, saved)


class RunCheckpoint(Checkpoint):
    """``<dirpath>/last.ckpt``: after each validation, at a stop signal, at the end of training.

    Every save happens in ``on_train_batch_start``, between two optimizer steps, where the
    loop, the data position (the DataModule's state), the system's counters and the RNG
    state are consistent: a fit resumed from it repeats nothing and skips nothing.
    """

    def __init__(self, dirpath: str | Path, signals: StopSignals) -> None:
        self.dirpath, self.signals = Path(dirpath), signals
        self._saved_step: int | None = None
        self._logging_step: int | None = None  # from the checkpoint, set on the first step

    @property
    def path(self) -> Path:
        return self.dirpath / CHECKPOINT_NAME

    def _defer_signals(self, trainer) -> None:
        if trainer.world_size == 1:
            self.signals.take_over()
            self.signals.deferring = True

    def on_sanity_check_start(self, trainer, pl_module) -> None:
        self._defer_signals(trainer)

    def on_train_start(self, trainer, pl_module) -> None:
        self._defer_signals(trainer)
        if trainer.global_step > 0:  # resumed: the checkpoint of this step exists
            self._saved_step = trainer.global_step

    # Lightning's logging step (``_batches_that_stepped``): Lightning adds one when it resumes,
    # for checkpoints saved before a step is counted (ModelCheckpoint's); these are saved after
    # it, so the saved count is put back before the first resumed step. Private, as no public
    # API reads or sets it (Lightning 2.6): Trainer.global_step is read-only and counts
    # optimizer steps; the loggers get the step from _LoggerConnector; the epoch loop
    # (_TrainingEpochLoop) and the checkpoint's "loops" entry are private too.
    def on_save_checkpoint(self, trainer, pl_module, checkpoint: dict[str, Any]) -> None:
        checkpoint["grubench_logging_step"] = trainer.fit_loop.epoch_loop._batches_that_stepped

    def on_load_checkpoint(self, trainer, pl_module, checkpoint: dict[str, Any]) -> None:
        self._logging_step = checkpoint.get("grubench_logging_step")

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if self._logging_step is not None:
            trainer.fit_loop.epoch_loop._batches_that_stepped = self._logging_step
            self._logging_step = None
        stop = self.signals.signum is not None
        new_epoch = batch_idx == 0 and trainer.global_step > 0  # the validation is done
        if (stop or new_epoch) and self._saved_step != trainer.global_step:
            self._save(trainer)
        if stop:
            raise Interrupted(self.signals.signum, step=trainer.global_step)

    def on_train_end(self, trainer, pl_module) -> None:
        self.signals.deferring = False
        self._save(trainer)

    def on_exception(self, trainer, pl_module, exception: BaseException) -> None:
        self.signals.deferring = False

    def _save(self, trainer) -> None:
        # written whole to a file of its own, then renamed over last.ckpt: a process killed
        # during the save leaves the previous checkpoint
        partial = self.dirpath / f".{CHECKPOINT_NAME}.{os.getpid()}.partial"
        for stale in self.dirpath.glob(f".{CHECKPOINT_NAME}.*.partial"):  # a killed save's
            if stale != partial and trainer.is_global_zero:  # (one process fits a run at a time)
                stale.unlink(missing_ok=True)
        try:
            trainer.save_checkpoint(partial, weights_only=False)  # False: with optimizer states
        except BaseException:  # (a full disk): the previous checkpoint stays, the partial goes
            partial.unlink(missing_ok=True)
            raise
        if trainer.is_global_zero:
            os.replace(partial, self.path)
        self._saved_step = trainer.global_step


def unlogged(metrics: Mapping[str, float], step: int, logged_through: Mapping[str, int]):
    """The entries of ``metrics`` at ``step`` that the run does not hold yet."""
    return {k: v for k, v in metrics.items() if step > logged_through.get(k, -1)}


def logged_through(client, run_id: str) -> dict[str, int]:
    """The last step logged for each metric key of a run."""
    keys = client.get_run(run_id).data.metrics
    return {key: max(m.step for m in client.get_metric_history(run_id, key)) for key in keys}


class ResumableMLFlowLogger(MLFlowLogger):
    """An ``MLFlowLogger`` for grubench's runs.

    ``logged_through`` (key -> last step logged; a resumed run's, or empty): an entry at or
    before that step is not logged, and every entry logged moves it on, so each key's
    history holds each step once. ``finalize`` leaves the run's status alone: ``run_fit``
    sets it, after the test and the summary (Lightning would mark the run FINISHED as soon
    as ``fit`` returns, and FAILED when a stop signal ends it).
    """

    def __init__(self, *args, logged_through: Mapping[str, int] | None = None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.logged_through = dict(logged_through or {})

    @rank_zero_only
    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        # also within one process: Lightning adds "epoch" to every call, several per step
        fresh = unlogged(metrics, step or 0, self.logged_through)
        if fresh:
            super().log_metrics(fresh, step)
            self.logged_through.update(dict.fromkeys(fresh, step or 0))

    @rank_zero_only
    def finalize(self, status: str = "success") -> None:
        pass
