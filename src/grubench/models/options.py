"""Each model's own options and the choices they allow, declared without torch.

The registry (:mod:`grubench.models`) builds the command line's and the experiment files'
``ModelConfig`` from these dataclasses; ``grubench fit --help`` reads them, so this file
imports no torch (the model files import their options and choices from here). A model with
options of its own adds its dataclass here, next to the others.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from grubench.options import option

INITS: tuple[str, ...] = (
    "default",
    "xavier_uniform",
    "xavier_normal",
    "orthogonal",
    "identity",
    "chrono",
)
"""The named initializations of :mod:`grubench.models.init` (where each is described)."""

ACTIVATIONS = ("tanh", "relu")

GRU_BACKENDS = ("auto", "cpp", "python", "autograd")
"""How ``CustomGRU`` runs a reset-after layer: ``cpp`` the compiled loops (CPU, float32/64),
``python`` the same hand-written backward in PyTorch ops (any device), ``autograd`` the readable
step-by-step graph (the only form for ``reset_after=False`` and ``layer_norm``), and ``auto``
cpp where it applies and builds, else python."""

ENGINE_BACKENDS = ("auto", "cpp", "torch")
"""How :class:`~grubench.models.engine.LSTM` and :class:`~grubench.models.engine.RNN` run:
``cpp`` grubench's compiled loops (CPU, float32 or float64), ``torch`` PyTorch's own module
(oneDNN's LSTM, ATen's RNN), ``auto`` cpp where it applies and builds, else torch."""

SCANS = ("auto", "parallel", "sequential")
"""How a min-RNN layer runs its recurrence: ``parallel`` the log-space Heinsen scan (T-wide
kernels, for GPUs), ``sequential`` the loop in the ordinary domain (grubench's compiled loop on
CPU, :func:`grubench.models.engine.linear_recurrence`), ``auto`` sequential on CPU, parallel
elsewhere."""


@dataclass
class CustomGRUOptions:
    """custom_gru's options (the registry's ``ModelConfig`` takes them from here)."""

    reset_after: bool = option(
        True, "where the reset gate acts: true, cuDNN/PyTorch's form; false, Cho et al. v3"
    )
    activation: Literal[ACTIVATIONS] = option("tanh", "the candidate state's nonlinearity")
    layer_norm: bool = option(False, "haste's gain-only LayerNorm on the gate projections")
    backend: Literal[GRU_BACKENDS] = option(
        "auto", "how the default form runs (same numbers to float rounding): C++ loops, "
        "PyTorch ops or the step-by-step autograd graph; auto takes C++ where it builds"
    )  # fmt: skip


@dataclass
class LSTMOptions:
    """lstm's options."""

    forget_bias: float = option(
        1.0, "the forget gate's bias after initialization (Jozefowicz et al. 2015); chrono "
        "init sets its own"
    )  # fmt: skip
    backend: Literal[ENGINE_BACKENDS] = option(
        "auto", "who runs it on CPU (same numbers to float rounding): cpp, grubench's "
        "compiled loops; torch, nn.LSTM's oneDNN path; auto, cpp where it builds"
    )  # fmt: skip


@dataclass
class RNNOptions:
    """rnn's options."""

    activation: Literal["tanh", "relu"] = option("tanh", "the hidden state's nonlinearity")
    backend: Literal[ENGINE_BACKENDS] = option(
        "auto", "who runs it on CPU (same numbers to float rounding): cpp, grubench's "
        "compiled loops; torch, nn.RNN's ATen path; auto, cpp where it builds"
    )  # fmt: skip


@dataclass
class MinRNNOptions:
    """min_gru's and min_lstm's options."""

    scan: Literal[SCANS] = option(
        "auto", "how the recurrence runs (same function to float rounding): parallel, the "
        "paper's log-space scan (for GPUs); sequential, a loop (compiled on CPU); auto, "
        "sequential on CPU"
    )  # fmt: skip


__all__ = [
    "ACTIVATIONS",
    "ENGINE_BACKENDS",
    "GRU_BACKENDS",
    "INITS",
    "SCANS",
    "CustomGRUOptions",
    "LSTMOptions",
    "MinRNNOptions",
    "RNNOptions",
]
