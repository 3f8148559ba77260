"""Gradient-flow diagnostics: how much of the loss's gradient reaches each time step.

A recurrent model learns a dependency across ``d`` steps only if the loss's gradient survives
``d`` steps of backpropagation through time. This module measures that directly, on a fixed
probe batch:

- :func:`hidden_grad_norms`: for every layer ``k`` and step ``t`` the norm of the *total*
  derivative ``∂L/∂h_t^(k)`` (through every later step and every layer above), a
  ``(num_layers, T)`` tensor. Vanishing gradients show as norms that fall geometrically going
  back from the last step; exploding ones as norms that grow.
- :func:`curve_summary`: three numbers per curve (first/last ratio, log-slope, horizon).
- :func:`gate_statistics`: per layer and step, the mean of each gate and the fraction of its
  values that are saturated (a saturated sigmoid passes almost no gradient through itself).
- :class:`GradientDiagnostics`: a Lightning callback that runs both every ``n`` steps, logs
  the summaries as ``diag/...`` metrics and uploads the full curves as artifacts.

How: :func:`single_layers` splits the backbone into single-layer modules that share the
original ``nn.Parameter`` objects (no copy), and :func:`stepwise_forward` runs them one step at
a time, ``layer(x[:, t:t+1], state)``, feeding each step the ``h_t`` it just returned, so each
``h_t`` is one node of the graph whose gradient collects every path to the loss. Its output
equals ``model(inputs)`` in eval mode (tested to 1e-5 for every registered model). The probe
always runs in eval mode (no dropout) and never touches the parameters' ``.grad``.

Run it by hand (CPU, a few seconds)::

    from grubench.training.diagnostics import hidden_grad_norms, curve_summary
    norms = hidden_grad_norms(model, task.loss, inputs, targets)  # (layers, T)
    print(curve_summary(norms[-1]))

Artifacts of the callback, under ``diagnostics/`` in the MLflow run:

``grad_norms.json`` (schema version 1; non-finite numbers are written as ``null``)::

    {
      "version": 1,
      "steps": [0, 100, ...],        # global steps at which the probe ran (S of them)
      "layers": K, "T": T,           # probe shape: K recurrent layers, T time steps
      "probe_size": B,               # samples in the probe batch
      "fraction": 0.1,               # curve_summary's horizon fraction
      "saturation": 0.1,             # gate_statistics' saturation margin
      "norms": [[[...T...]...K...]...S...],   # norms[s][k][t]: hidden_grad_norms
      "gates": {"z_mean": [[[...]]], ...},    # gates[name][s][k][t]; {} for non-gated models
      "summary": {"ratio_first_last": [[...K...]...S...], "log_slope": ..., "horizon": ...}
    }

``grad_norms.png``: the last layer's ``∂L/∂h_t`` norm against ``t`` on a log scale, one line
per recorded step, and (for gated models) the last layer's gate means against ``t`` at the
last recorded step.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import lightning as L
import numpy as np
import torch
from torch import Tensor, nn

from grubench.models.layers import describe
from grubench.models.sequence import SequenceModel

FLOOR = 1e-30  # norms are floored here before logs and ratios, so zeros stay finite
SCHEMA_VERSION = 1


# ----------------------------------------------------------------------------------------------
# Splitting a backbone into single layers
# ----------------------------------------------------------------------------------------------


def single_layers(backbone: nn.Module) -> list[nn.Module]:
    """The backbone's recurrent layers as single-layer, batch-first modules, in layer order,
    as the backbone describes them (:mod:`grubench.models.layers`): every registered model,
    :class:`StackedRNN` (each of its layers split in turn), and any other batch-first module
    with ``num_layers == 1`` as its own single layer. The layers share the backbone's
    ``nn.Parameter`` objects (not copied). Inter-layer dropout is not reproduced: the layers
    are for eval-mode probes. Anything else raises ValueError naming the type.
    """
    return describe(backbone).single_layers()


# ----------------------------------------------------------------------------------------------
# The step-by-step pass
# ----------------------------------------------------------------------------------------------


@contextmanager
def _eval_mode(model: nn.Module) -> Iterator[None]:
    """Eval mode for the block; every submodule's own mode is restored after it."""
    modes = [(module, module.training) for module in model.modules()]
    model.eval()
    try:
        yield
    finally:
        for module, mode in modes:
            module.training = mode


def _run_layer(layer: nn.Module, steps: list[Tensor]) -> list[Tensor]:
    """One layer over the sequence, one step per call: ``steps`` are T tensors (B, I); returns
    T tensors (B, H). The next step's state is built from the returned ``h_t`` itself, so the
    gradient of ``h_t`` collects both the recurrent path and the path to the layer above."""
    state = None
    hiddens = []
    for x in steps:
        out, state = layer(x.unsqueeze(1), state)  # (B, 1, H)
        h = out[:, 0]  # (B, H)
        hiddens.append(h)
        # LSTM: the cell state c_t goes on as returned; h_t is what is measured
        state = (h.unsqueeze(0), state[1]) if isinstance(state, tuple) else h.unsqueeze(0)
    return hiddens


def stepwise_forward(model: SequenceModel, inputs: Tensor) -> tuple[Tensor, list[list[Tensor]]]:
    """``model``'s forward run one layer and one step at a time: ``(prediction, hiddens)``
    with ``hiddens[k][t]`` the (B, H_k) state of layer k after step t. ``prediction`` equals
    ``model(inputs)`` in eval mode (inter-layer dropout is never applied here)."""
    steps = list(inputs.unbind(1))  # T tensors (B, I); one UnbindBackward, not T slices
    hiddens = []
    for layer in single_layers(model.backbone):
        steps = _run_layer(layer, steps)
        hiddens.append(steps)
    if model.output_mode == "last":
        prediction = model.head(steps[-1])  # (B, O)
    else:
        prediction = model.head(torch.stack(steps, 1))  # (B, T, O)
    return prediction, hiddens


def hidden_grad_norms(
    model: SequenceModel,
    loss_fn: Callable[[Tensor, Tensor], Tensor],
    inputs: Tensor,
    targets: Tensor,
) -> Tensor:
    """``(num_layers, T)``: entry ``[k, t]`` is the mean over the batch of the per-sample L2
    norm ``‖∂L/∂h_t^(k)[b]‖₂``, where ``L = loss_fn(model(inputs), targets)`` is the task's
    batch-mean loss and the derivative is total: through every later step and every layer
    above (for an LSTM, ``h_t``'s own adjoint; the cell-state path is ``c_t``'s).

    Because ``L`` averages over the batch, each per-sample gradient carries a factor 1/B
    (multiply by B for the gradient of that sample's own loss); the summaries of
    :func:`curve_summary` are scale-free. The model runs in eval mode and its mode and the
    parameters' ``.grad`` are left as they were (``torch.autograd.grad`` on the states only).
    """
    with _eval_mode(model), torch.inference_mode(False), torch.enable_grad():
        x = inputs.detach().clone().requires_grad_(True)  # a graph even if weights are frozen
        prediction, hiddens = stepwise_forward(model, x)
        loss = loss_fn(prediction, targets)
        flat = [h for layer in hiddens for h in layer]
        grads = torch.autograd.grad(loss, flat, allow_unused=True, materialize_grads=True)
    T = len(hiddens[0])
    norms = [
        torch.stack(grads[k * T : (k + 1) * T]).norm(dim=-1).mean(dim=-1)  # (T, B, H) -> (T,)
        for k in range(len(hiddens))
    ]
    return torch.stack(norms).detach()  # (K, T)


# ----------------------------------------------------------------------------------------------
# Summaries of a curve
# ----------------------------------------------------------------------------------------------


def curve_summary(norms_1d, fraction: float = 0.1) -> dict[str, float]:
    """Three numbers for one gradient-norm curve ``n[0..T-1]`` (norms floored at 1e-30 first):

    - ``ratio_first_last``: ``n[0] / n[T-1]``; far below 1 means the gradient vanishes on its
      way back to the first step, far above 1 that it explodes.
    - ``log_slope``: least-squares slope of ``log10 n[t]`` against ``t``, per step (NaN when
      T < 2). A curve that decays by a factor ``ρ`` per step going *back* in time,
      ``n[t] ∝ ρ^(T-1-t)``, has slope ``-log10 ρ``: positive for vanishing gradients.
    - ``horizon``: the largest lag ``d`` in ``[0, T-1]`` such that
      ``n[T-1-j] >= fraction * n[T-1]`` for every ``j <= d``: how many steps back from the
      last one the gradient stays within ``fraction`` of its value there (T-1: everywhere).
      Returned as a float; NaN if ``n[T-1]`` is not finite.
    """
    if not 0 < fraction <= 1:
        raise ValueError(f"fraction must lie in (0, 1], got {fraction}")
    if isinstance(norms_1d, Tensor):
        norms_1d = norms_1d.detach().cpu().double().numpy()
    n = np.maximum(np.asarray(norms_1d, dtype=np.float64), FLOOR)
    if n.ndim != 1 or n.size == 0:
        raise ValueError(f"curve_summary needs a non-empty 1-D curve, got shape {n.shape}")
    T = n.size
    if T >= 2:
        t = np.arange(T, dtype=np.float64)
        y = np.log10(n)
        slope = float(((t - t.mean()) * (y - y.mean())).sum() / ((t - t.mean()) ** 2).sum())
    else:
        slope = math.nan
    if np.isfinite(n[-1]):
        reached = n[::-1] >= fraction * n[-1]  # reached[d]: lag d; reached[0] is True
        horizon = float(T - 1 if reached.all() else np.argmin(reached) - 1)
    else:
        horizon = math.nan
    return {"ratio_first_last": float(n[0] / n[-1]), "log_slope": slope, "horizon": horizon}


# ----------------------------------------------------------------------------------------------
# Gates
# ----------------------------------------------------------------------------------------------


@torch.no_grad()
def gate_statistics(
    model: SequenceModel, inputs: Tensor, saturation: float = 0.1
) -> dict[str, Tensor]:
    """Per layer and step, each gate's mean and saturated fraction, over batch and units.

    Gates: each layer's own ``layer_gates`` (:mod:`grubench.models.layers`). GRU kinds
    (nn.GRU, CustomGRU; PyTorch's order r, z, n) give the reset gate ``r`` and the update gate
    ``z`` (PyTorch's "keep the old state" gate); nn.LSTM gives the input ``i``, forget ``f``
    and output ``o`` gates; minGRU its ``z`` (the fraction of the new state taken) and minLSTM
    its normalized ``f`` and ``i`` (they sum to 1). A value is saturated when it lies below
    ``saturation`` or above ``1 - saturation``. Keys: ``"<gate>_mean"`` and
    ``"<gate>_saturated"``, each a ``(num_layers, T)`` tensor; rows of layers without that gate
    (a StackedRNN mixing kinds) are NaN. Models without gates (nn.RNN) return ``{}``.

    The gates are recomputed from each layer's own weights (and CustomGRU's LayerNorms, as its
    forward applies them) along :func:`stepwise_forward`'s states, in eval mode.
    """
    if not 0 <= saturation < 0.5:
        raise ValueError(f"saturation must lie in [0, 0.5), got {saturation}")
    with _eval_mode(model), torch.inference_mode(False):
        _, hiddens = stepwise_forward(model, inputs)
        layers = single_layers(model.backbone)
        x = inputs
        per_layer: list[dict[str, tuple[Tensor, Tensor]]] = []
        for layer, steps in zip(layers, hiddens):
            h = torch.stack(steps, 1)  # (B, T, H)
            h_prev = torch.cat([torch.zeros_like(h[:, :1]), h[:, :-1]], 1)  # (B, T, H)
            stats = {}
            for name, g in describe(layer).layer_gates(x, h_prev).items():
                saturated = ((g < saturation) | (g > 1 - saturation)).to(g.dtype)
                stats[name] = (g.mean(dim=(0, 2)), saturated.mean(dim=(0, 2)))  # (T,) each
            per_layer.append(stats)
            x = h
    names = list(dict.fromkeys(name for stats in per_layer for name in stats))
    T = inputs.size(1)
    result = {}
    for name in names:
        for which, key in ((0, f"{name}_mean"), (1, f"{name}_saturated")):
            rows = [
                stats[name][which] if name in stats else inputs.new_full((T,), math.nan)
                for stats in per_layer
            ]
            result[key] = torch.stack(rows)  # (K, T)
    return result


# ----------------------------------------------------------------------------------------------
# The callback
# ----------------------------------------------------------------------------------------------


def _jsonable(values) -> object:
    """Nested lists of floats, non-finite numbers as None (JSON has no NaN)."""
    if isinstance(values, (list, tuple, np.ndarray)):
        return [_jsonable(v) for v in values]
    value = float(values)
    return value if math.isfinite(value) else None


class GradientDiagnostics(L.Callback):
    """Probe the gradient flow of ``pl_module.model`` every ``every_n_steps`` optimizer steps.

    On fit start it fixes a probe batch: the first ``probe_size`` samples of the datamodule's
    first validation loader (fewer if that loader holds fewer). At global steps 0,
    ``every_n_steps``, ``2 * every_n_steps``, ... (before that step's update) and once more at
    the end of training it runs :func:`hidden_grad_norms` with ``pl_module.task.loss`` and
    :func:`gate_statistics` on it, and logs, for every layer k:

    - ``diag/grad_ratio_first_last/l{k}``, ``diag/grad_log_slope/l{k}``,
      ``diag/grad_horizon/l{k}``: :func:`curve_summary` of that layer's curve;
    - ``diag/grad_norm_last/l{k}``: the norm at the last step (the curve's scale);
    - ``diag/<gate>_mean/l{k}``, ``diag/<gate>_saturated/l{k}``: the gate statistics averaged
      over time (gated models only; gates ``r``, ``z`` or ``i``, ``f``, ``o``).

    Every curve is kept (``steps``, ``norms``, ``gates``) and at the end of training written as
    ``diagnostics/grad_norms.json`` and ``diagnostics/grad_norms.png`` (see the module
    docstring for the schema) to the MLflow run of an ``MLFlowLogger``, or, without one, to
    ``<default_root_dir>/diagnostics/``. Rank 0 only. Training is unaffected: the probe runs in
    eval mode and restores every module's mode, leaves ``.grad`` alone and restores the RNG.
    """

    def __init__(
        self,
        every_n_steps: int,
        probe_size: int = 64,
        fraction: float = 0.1,
        saturation: float = 0.1,
    ) -> None:
        if isinstance(every_n_steps, bool) or not isinstance(every_n_steps, int):
            raise ValueError(f"every_n_steps must be a positive integer, got {every_n_steps!r}")
        if every_n_steps <= 0:
            raise ValueError(f"every_n_steps must be a positive integer, got {every_n_steps!r}")
        if probe_size <= 0:
            raise ValueError(f"probe_size must be positive, got {probe_size!r}")
        if not 0 < fraction <= 1:
            raise ValueError(f"fraction must lie in (0, 1], got {fraction!r}")
        if not 0 <= saturation < 0.5:
            raise ValueError(f"saturation must lie in [0, 0.5), got {saturation!r}")
        self.every_n_steps, self.probe_size = every_n_steps, probe_size
        self.fraction, self.saturation = fraction, saturation
        self.steps: list[int] = []
        self.norms: list[np.ndarray] = []  # one (K, T) array per recorded step
        self.gates: list[dict[str, np.ndarray]] = []  # one {name: (K, T)} per recorded step
        self.summaries: list[list[dict[str, float]]] = []  # [step][layer] curve_summary
        self.artifact_paths: list[str] = []  # local files written (uploaded ones are temporary)
        self._probe: tuple[Tensor, Tensor] | None = None

    # --- the probe batch ---

    def _take_probe(self, trainer: L.Trainer) -> tuple[Tensor, Tensor]:
        datamodule = trainer.datamodule
        if datamodule is None:
            raise RuntimeError(
                "GradientDiagnostics takes its probe from the datamodule's first validation "
                "loader; pass a LightningDataModule to trainer.fit"
            )
        loaders = datamodule.val_dataloader()
        loader = loaders[0] if isinstance(loaders, (list, tuple)) else loaders
        inputs, targets, count = [], [], 0
        # creating a DataLoader iterator draws a base seed from the global RNG: keep it intact
        with torch.random.fork_rng(devices=[]):
            for batch_inputs, batch_targets in loader:
                inputs.append(batch_inputs)
                targets.append(batch_targets)
                count += len(batch_inputs)
                if count >= self.probe_size:
                    break
        if not inputs:
            raise RuntimeError("GradientDiagnostics: the first validation loader is empty")
        return torch.cat(inputs)[: self.probe_size], torch.cat(targets)[: self.probe_size]

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.is_global_zero:
            self._probe = self._take_probe(trainer)

    # --- recording ---

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if trainer.global_step % self.every_n_steps == 0:
            self._record(trainer, pl_module)

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._record(trainer, pl_module)
        if trainer.is_global_zero and self.steps:
            self._save(trainer)

    def _record(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        step = trainer.global_step
        if not trainer.is_global_zero or self._probe is None:
            return
        if self.steps and self.steps[-1] == step:  # gradient accumulation, or the end step
            return
        model = pl_module.model
        device = next(model.parameters()).device
        inputs, targets = (t.to(device) for t in self._probe)
        rng_devices = [device.index or 0] if device.type == "cuda" else []
        with torch.random.fork_rng(devices=rng_devices):  # eval mode draws none; be sure
            norms = hidden_grad_norms(model, pl_module.task.loss, inputs, targets)
            gates = gate_statistics(model, inputs, self.saturation)
        norms_np = norms.cpu().double().numpy()
        gates_np = {name: v.cpu().double().numpy() for name, v in gates.items()}
        summaries = [curve_summary(curve, self.fraction) for curve in norms_np]
        self.steps.append(step)
        self.norms.append(norms_np)
        self.gates.append(gates_np)
        self.summaries.append(summaries)

        metrics = {}
        for k, summary in enumerate(summaries):
            metrics[f"diag/grad_ratio_first_last/l{k}"] = summary["ratio_first_last"]
            metrics[f"diag/grad_log_slope/l{k}"] = summary["log_slope"]
            metrics[f"diag/grad_horizon/l{k}"] = summary["horizon"]
            metrics[f"diag/grad_norm_last/l{k}"] = float(norms_np[k, -1])
            for name, values in gates_np.items():
                if not np.isnan(values[k]).all():  # a layer without this gate logs nothing
                    metrics[f"diag/{name}/l{k}"] = float(values[k].mean())
        for logger in trainer.loggers:
            logger.log_metrics(metrics, step=step)

    # --- checkpointing: a resumed fit keeps the curves recorded before the stop ---

    def state_dict(self) -> dict:
        return {
            "steps": list(self.steps),
            "norms": [torch.from_numpy(n) for n in self.norms],
            "gates": [{k: torch.from_numpy(v) for k, v in g.items()} for g in self.gates],
            "summaries": self.summaries,
        }

    def load_state_dict(self, state_dict: dict) -> None:
        self.steps = list(state_dict["steps"])
        self.norms = [n.numpy() for n in state_dict["norms"]]
        self.gates = [{k: v.numpy() for k, v in g.items()} for g in state_dict["gates"]]
        self.summaries = state_dict["summaries"]

    # --- artifacts ---

    def payload(self) -> dict:
        """The JSON document of every recorded curve (schema in the module docstring)."""
        K, T = self.norms[0].shape
        keys = ("ratio_first_last", "log_slope", "horizon")
        return {
            "version": SCHEMA_VERSION,
            "steps": list(self.steps),
            "layers": int(K),
            "T": int(T),
            "probe_size": int(len(self._probe[0])) if self._probe is not None else None,
            "fraction": self.fraction,
            "saturation": self.saturation,
            "norms": _jsonable(self.norms),
            "gates": {name: _jsonable([g[name] for g in self.gates]) for name in self.gates[0]},
            "summary": {
                key: _jsonable([[s[key] for s in per_step] for per_step in self.summaries])
                for key in keys
            },
        }

    def plot(self, path: str) -> None:
        """The PNG: last layer's norms against t per recorded step, and gate means at the end."""
        from matplotlib import colormaps
        from matplotlib.figure import Figure  # no pyplot: no global backend or figure state

        gate_means = {n: v for n, v in self.gates[-1].items() if n.endswith("_mean")}
        fig = Figure(figsize=(11 if gate_means else 6, 4), layout="constrained")
        axes = fig.subplots(1, 2 if gate_means else 1, squeeze=False)[0]
        K, T = self.norms[0].shape
        t = np.arange(T)
        cmap = colormaps["viridis"]
        for i, (step, norms) in enumerate(zip(self.steps, self.norms)):
            color = cmap(i / max(len(self.steps) - 1, 1))
            axes[0].semilogy(t, np.maximum(norms[-1], FLOOR), color=color, label=f"step {step}")
        axes[0].set_xlabel("time step t")
        axes[0].set_ylabel(f"mean ‖∂L/∂h_t‖ (layer {K - 1})")
        axes[0].set_title("gradient reaching each step")
        if len(self.steps) <= 12:
            axes[0].legend(fontsize="small")
        else:  # too many lines to name: show the first and last colors only
            handles, labels = axes[0].get_legend_handles_labels()
            axes[0].legend([handles[0], handles[-1]], [labels[0], labels[-1]], fontsize="small")
        if gate_means:
            for name, values in gate_means.items():
                axes[1].plot(t, values[-1], label=name.removesuffix("_mean"))
            axes[1].set_ylim(0, 1)
            axes[1].set_xlabel("time step t")
            axes[1].set_ylabel(f"gate mean (layer {K - 1})")
            axes[1].set_title(f"gates at step {self.steps[-1]}")
            axes[1].legend(fontsize="small")
        fig.savefig(path, dpi=100)

    def _write(self, directory: str) -> list[str]:
        os.makedirs(directory, exist_ok=True)
        json_path = os.path.join(directory, "grad_norms.json")
        with open(json_path, "w") as f:
            json.dump(self.payload(), f)
        png_path = os.path.join(directory, "grad_norms.png")
        self.plot(png_path)
        return [json_path, png_path]

    def _save(self, trainer: L.Trainer) -> None:
        from lightning.pytorch.loggers import MLFlowLogger

        mlflow_loggers = [lg for lg in trainer.loggers if isinstance(lg, MLFlowLogger)]
        if not mlflow_loggers:
            self.artifact_paths = self._write(os.path.join(trainer.default_root_dir, "diagnostics"))
            return
        with tempfile.TemporaryDirectory() as tmp:
            for path in self._write(tmp):
                for logger in mlflow_loggers:
                    logger.experiment.log_artifact(logger.run_id, path, "diagnostics")


__all__ = [
    "GradientDiagnostics",
    "curve_summary",
    "gate_statistics",
    "hidden_grad_norms",
    "single_layers",
    "stepwise_forward",
]
