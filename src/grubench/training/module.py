"""The LightningModule: loss, metrics, optimizer, regularization and logging for any
(task, model) pair. The model is a plain ``nn.Module``; the task supplies loss and metrics.

Metric keys follow ``<stage>/<name>``: ``train/loss``, ``val/mse``, ``test/acc``. The system
also keeps what the summary of a run needs: the validation history of the task's objective,
``steps_to_solve`` (the global step of the first validation that met the solved threshold)
and the step at which the loss or gradients went non-finite, if they did.

All of that is saved in every checkpoint (``checkpoint["grubench"]``), with the training
metrics' running state and the RNG states, so a fit resumed from a checkpoint between two
steps continues exactly as the uninterrupted fit would have (on CPU: same metrics, bit for bit).
"""

from __future__ import annotations

import math
import random
import time
from typing import Any

import lightning as L
import numpy as np
import torch
from torch import nn

from grubench.tasks import Task
from grubench.training.config import OPTIMIZERS, OptimConfig  # defined without Lightning


def build_optimizer(cfg: OptimConfig, params) -> torch.optim.Optimizer:
    if cfg.name == "adam":
        return torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    if cfg.name == "adamw":
        return torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    if cfg.name == "rmsprop":
        return torch.optim.RMSprop(
            params, lr=cfg.lr, weight_decay=cfg.weight_decay, momentum=cfg.momentum
        )
    if cfg.name == "sgd":
        return torch.optim.SGD(
            params, lr=cfg.lr, weight_decay=cfg.weight_decay, momentum=cfg.momentum
        )
    raise ValueError(f"unknown optimizer {cfg.name!r}; choose from: {', '.join(OPTIMIZERS)}")


def rng_states() -> dict[str, Any]:
    """The global RNG states (torch CPU and CUDA, NumPy, Python) as plain types and tensors,
    which ``torch.load(weights_only=True)`` accepts."""
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    states: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": [kind, torch.from_numpy(keys.astype(np.int64)), pos, has_gauss, gauss],
        "python": random.getstate(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def set_rng_states(states: dict[str, Any]) -> None:
    torch.set_rng_state(states["torch"])
    kind, keys, pos, has_gauss, gauss = states["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, gauss))
    version, internal, gauss_next = states["python"]
    random.setstate((version, tuple(internal), gauss_next))
    if "cuda" in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])


def parameter_group(name: str) -> str:
    """``backbone.weight_hh_l0`` -> ``recurrent_weights``; ``head.bias`` -> ``head``."""
    if name.startswith("head."):
        return "head"
    parts = name.split(".")
    leaf = parts[-1]
    if any(part.startswith("ln_") for part in parts):
        return "layer_norm"
    if leaf.startswith("weight_ih"):
        return "input_weights"
    if leaf.startswith("weight_hh"):
        return "recurrent_weights"
    if leaf.startswith("bias"):
        return "biases"
    return "other"


class RecurrentSystem(L.LightningModule):
    def __init__(
        self,
        model: nn.Module,
        task: Task,
        optim: OptimConfig,
        eval_lengths: tuple[int, ...] = (),
        stop_after_solved: int = 0,
    ) -> None:
        super().__init__()
        self.model, self.task, self.optim = model, task, optim
        self.stop_after_solved = stop_after_solved
        self.objective = task.objective
        # Evaluation loader i > 0 runs at eval_lengths[i - 1] and its keys end in "_L<length>"
        # (val/mse, val/mse_L400, ...; MLflow metric names cannot hold "@" or "=").
        self.eval_suffixes = [""] + [f"_L{n}" for n in eval_lengths]
        # one metric collection per stage (and evaluation length): their states never mix
        self.train_metrics = task.metrics().clone(prefix="train/")
        for metric in self.train_metrics.values():  # they run over an epoch: checkpoint them
            metric.persistent(True)
        self.val_metrics = nn.ModuleList(
            task.metrics().clone(prefix="val/", postfix=s) for s in self.eval_suffixes
        )
        self.test_metrics = nn.ModuleList(
            task.metrics().clone(prefix="test/", postfix=s) for s in self.eval_suffixes
        )
        self.val_history: list[tuple[int, float]] = []  # (global_step, objective value)
        self.steps_to_solve: int | None = None
        self.seconds_to_solve: float | None = None  # wall clock from the start of fit
        self.train_history: list[float] = []  # objective on the training batches, per epoch
        self._fit_start = time.perf_counter()
        self._seconds_before = 0.0  # training time of earlier attempts (a resumed fit)
        self._rng_to_restore: dict[str, Any] | None = None
        self.clipped_steps = 0  # optimizer steps whose gradients the clipping changed
        self.optimizer_steps = 0
        self.diverged_step: int | None = None
        self._l1_weights = [p for n, p in model.named_parameters() if "weight" in n and p.ndim > 1]

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        return self.model(inputs)

    def _common_step(self, batch, stage: str, loader: int = 0) -> torch.Tensor:
        inputs, targets = batch
        prediction = self(inputs)
        loss = self.task.loss(prediction, targets)
        if stage == "train":
            self.train_metrics.update(prediction.detach(), targets)
            self.log("train/loss", loss, prog_bar=True, batch_size=len(inputs))
        else:
            getattr(self, f"{stage}_metrics")[loader].update(prediction, targets)
            self.log(
                f"{stage}/loss{self.eval_suffixes[loader]}",
                loss,
                prog_bar=loader == 0,
                batch_size=len(inputs),
                sync_dist=True,
                add_dataloader_idx=False,
            )
        return loss

    def training_step(self, batch, batch_idx):
        loss = self._common_step(batch, "train")
        if self.optim.l1 > 0:
            penalty = sum(w.abs().sum() for w in self._l1_weights)
            self.log("train/l1_penalty", penalty)
            loss = loss + self.optim.l1 * penalty
        if not torch.isfinite(loss):
            self._diverge()
            return None  # Lightning skips backward and the optimizer step
        return loss

    def _diverge(self) -> None:
        if self.diverged_step is None:
            self.diverged_step = self.global_step
        self.trainer.should_stop = True

    def on_before_optimizer_step(self, optimizer) -> None:
        # Lightning calls this before it clips: these are the raw gradients.
        named = [(n, p) for n, p in self.model.named_parameters() if p.grad is not None]
        if not named:  # the step was skipped (non-finite loss)
            return
        grad_norms = torch.stack([torch.linalg.vector_norm(p.grad) for _, p in named])
        norm = torch.linalg.vector_norm(grad_norms)
        if not torch.isfinite(norm):
            optimizer.zero_grad(set_to_none=True)  # keep the weights finite for the checkpoint
            self._diverge()
        clip = self.optim.grad_clip
        clipped = False
        if clip > 0:
            if self.optim.grad_clip_algorithm == "norm":
                clipped = bool(norm > clip)
            else:
                clipped = any(bool(p.grad.abs().max() > clip) for _, p in named)
            self.clipped_steps += clipped
        self.optimizer_steps += 1
        if not self._logging_this_step():
            # Lightning writes step-level metrics every log_every_n_steps only, and a self.log
            # call costs about 0.3 ms: the ~10 of these per step made up most of a small
            # model's step time. The counters above still see every step.
            return
        self.log("train/grad_norm", norm)
        if clip > 0:
            self.log("train/clipped", float(clipped))
        # weight and gradient norms per parameter group (input/recurrent weights, biases, ...)
        groups: dict[str, list[int]] = {}
        for i, (name, _) in enumerate(named):
            groups.setdefault(parameter_group(name), []).append(i)
        for group, indices in groups.items():
            weights = [named[i][1].detach() for i in indices]
            self.log(f"grad_norm/{group}", torch.linalg.vector_norm(grad_norms[indices]))
            self.log(
                f"weight_norm/{group}",
                torch.linalg.vector_norm(
                    torch.stack([torch.linalg.vector_norm(w) for w in weights])
                ),
            )

    def _logging_this_step(self) -> bool:
        """Whether Lightning will write this training step's logged values to the logger.

        Lightning's own decision (``_LoggerConnector.should_update_logs``, private) from public
        attributes: its logging step is ``global_step`` here (one optimizer, and
        :class:`grubench.training.resume.RunCheckpoint` restores the logging step on resume);
        ``+ 1`` because this runs before the step is counted.
        """
        trainer = self.trainer
        if trainer.fast_dev_run:
            return True
        if trainer.log_every_n_steps == 0:
            return False
        return (trainer.global_step + 1) % trainer.log_every_n_steps == 0 or trainer.should_stop

    def configure_gradient_clipping(
        self, optimizer, gradient_clip_val=None, gradient_clip_algorithm=None
    ):
        if self.optim.grad_clip > 0:
            self.clip_gradients(
                optimizer,
                gradient_clip_val=self.optim.grad_clip,
                gradient_clip_algorithm=self.optim.grad_clip_algorithm,
            )

    # Not Lightning's Timer callback: its training time runs from on_train_start to
    # on_train_end, without the setup and the sanity-check validation that this one counts.
    def on_fit_start(self) -> None:
        self._fit_start = time.perf_counter()

    def training_seconds(self) -> float:
        """Wall time since fit start, plus that of the attempts before a resume."""
        return self._seconds_before + time.perf_counter() - self._fit_start

    # Everything a resumed fit needs to continue as if never stopped; weights, optimizer,
    # loop progress and the train metrics' states are in the checkpoint already.
    _RESUMED = (
        "val_history", "steps_to_solve", "seconds_to_solve", "train_history",
        "clipped_steps", "optimizer_steps", "diverged_step",
    )  # fmt: skip

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        state = {name: getattr(self, name) for name in self._RESUMED}
        state["training_seconds"] = self.training_seconds()
        state["rng"] = rng_states()
        checkpoint["grubench"] = state

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        state = dict(checkpoint["grubench"])
        self._seconds_before = state.pop("training_seconds")
        self._rng_to_restore = state.pop("rng")
        for name in self._RESUMED:
            setattr(self, name, state[name])
        self.val_history = [tuple(entry) for entry in self.val_history]

    def on_train_batch_start(self, batch, batch_idx) -> None:
        # The RNG is restored at the point where it was saved (grubench checkpoints in
        # on_train_batch_start), so whatever Lightning draws while it resumes (the loaders'
        # iterators take a seed from the global RNG) leaves the resumed steps' draws alone.
        if self._rng_to_restore is not None:
            set_rng_states(self._rng_to_restore)
            self._rng_to_restore = None

    def on_train_epoch_end(self) -> None:
        values = self.train_metrics.compute()
        self.train_metrics.reset()
        self.log_dict(values)
        self.train_history.append(float(values[f"train/{self.objective.metric}"]))

    def validation_step(self, batch, batch_idx, dataloader_idx: int = 0):
        self._common_step(batch, "val", dataloader_idx)

    def _log_eval_metrics(self, stage: str) -> dict[str, torch.Tensor]:
        values = {}
        for metrics in getattr(self, f"{stage}_metrics"):
            values.update(metrics.compute())
            metrics.reset()
        self.log_dict(values, add_dataloader_idx=False)
        return values

    def on_validation_epoch_end(self) -> None:
        values = self._log_eval_metrics("val")
        if self.trainer.sanity_checking:
            return
        value = float(values[f"val/{self.objective.metric}"])
        self.val_history.append((self.global_step, value))
        if self.steps_to_solve is None and self.objective.is_solved(value):
            self.steps_to_solve = self.global_step
            self.seconds_to_solve = self.training_seconds()
        held = self.val_history[-self.stop_after_solved :] if self.stop_after_solved else []
        if len(held) == self.stop_after_solved > 0 and all(
            self.objective.is_solved(v) for _, v in held
        ):
            self.trainer.should_stop = True  # solved and held: the rest would not change that

    def test_step(self, batch, batch_idx, dataloader_idx: int = 0):
        self._common_step(batch, "test", dataloader_idx)

    def on_test_epoch_end(self) -> None:
        self._log_eval_metrics("test")

    def configure_optimizers(self):
        return build_optimizer(self.optim, self.parameters())


class StepTimer(L.Callback):
    """Wall time of each optimizer step (forward, backward, update), data loading excluded."""

    # Not Lightning's Timer: that gives a stage's elapsed total, not per-step times (their
    # median, the epoch means) with the data loading left out.

    def __init__(self, warmup: int = 5) -> None:
        self.warmup = warmup
        self.times: list[float] = []
        self._start = 0.0
        self._epoch_first = 0

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        self._start = time.perf_counter()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self.times.append(time.perf_counter() - self._start)

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        self._epoch_first = len(self.times)

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        epoch = self.times[self._epoch_first :]
        if epoch:
            pl_module.log("train/step_time_ms", 1000 * sum(epoch) / len(epoch))

    def state_dict(self) -> dict[str, Any]:
        return {"times": list(self.times), "epoch_first": self._epoch_first}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.times = list(state_dict["times"])
        self._epoch_first = state_dict["epoch_first"]

    def median_ms(self) -> float:
        times = sorted(self.times[self.warmup :] or self.times)
        return 1000 * times[len(times) // 2] if times else math.nan
