"""The model registry: plain ``nn.Module``s that know nothing of Lightning, MLflow or tasks.

Adding a model: a file with a builder ``(input_size, hidden_size, num_layers, dropout,
**options) -> module`` whose module has nn.GRU's interface (batch-first, returns
``(outputs, state)``, takes an initial state ``(num_layers, B, H)``) and describes its layers
and gates (:mod:`grubench.models.layers`), and one :class:`ModelSpec` line in ``MODELS``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Literal

from torch import nn

from grubench.models.custom_gru import CustomGRU
from grubench.models.gru_bptt import BACKENDS
from grubench.models.init import INITS, check_init, initialize, set_lstm_forget_bias
from grubench.models.layers import GateLayout
from grubench.models.min_rnns import MinGRU, MinLSTM, build_min_gru, build_min_lstm
from grubench.models.sequence import SequenceModel, StackedRNN
from grubench.models.torch_rnns import (
    GRU_LAYOUT,
    LSTM_LAYOUT,
    RNN_LAYOUT,
    build_lstm,
    build_rnn,
    build_torch_gru,
)

ACTIVATIONS = ("tanh", "relu")


@dataclass
class ModelConfig:
    """Every model option; options a model does not take must stay at their defaults."""

    name: str = "torch_gru"
    hidden_size: int = 64
    num_layers: int = 1
    dropout: float = 0.0  # between stacked layers, as in nn.GRU
    init: str = "default"
    chrono_t_max: float | None = None  # chrono init's T_max; None means the task's seq_len
    forget_bias: float = 1.0  # lstm: forget-gate bias (Jozefowicz et al. 2015)
    reset_after: bool = True  # custom_gru: cuDNN/PyTorch form (True) or Cho et al. v3 (False)
    activation: str = "tanh"  # custom_gru and rnn: candidate-state / hidden nonlinearity
    layer_norm: bool = False  # custom_gru: LayerNorm on the gate pre-activations
    # custom_gru: how the default form runs (auto, cpp, python, autograd; same numbers to
    # float rounding, see grubench.models.gru_bptt)
    backend: str = "auto"
    # Widths of stacked layers that may differ, e.g. [128, 64]; replaces hidden_size and
    # num_layers when set (dropout then acts between these layers).
    layer_sizes: list[int] | None = None

    @property
    def widths(self) -> list[int]:
        return list(self.layer_sizes) if self.layer_sizes else [self.hidden_size] * self.num_layers


def _build_custom_gru(
    input_size: int,
    hidden_size: int,
    num_layers: int,
    dropout: float,
    reset_after: bool = True,
    activation: str = "tanh",
    layer_norm: bool = False,
    backend: str = "auto",
) -> CustomGRU:
    return CustomGRU(
        input_size,
        hidden_size,
        num_layers,
        batch_first=True,
        dropout=dropout,
        reset_after=reset_after,
        activation=activation,
        layer_norm=layer_norm,
        backend=backend,
    )


@dataclass(frozen=True)
class ModelSpec:
    build: Callable[..., nn.Module]
    layout: GateLayout  # the built module's gate layout, for validating an init before building
    options: tuple[str, ...] = ()  # ModelConfig fields this model takes beyond the shared ones


MODELS: dict[str, ModelSpec] = {
    "custom_gru": ModelSpec(
        _build_custom_gru,
        CustomGRU.gate_layout,
        ("reset_after", "activation", "layer_norm", "backend"),
    ),
    "torch_gru": ModelSpec(build_torch_gru, GRU_LAYOUT),
    "lstm": ModelSpec(build_lstm, LSTM_LAYOUT, ("forget_bias",)),
    "rnn": ModelSpec(build_rnn, RNN_LAYOUT, ("activation",)),
    "min_gru": ModelSpec(build_min_gru, MinGRU.gate_layout),
    "min_lstm": ModelSpec(build_min_lstm, MinLSTM.gate_layout),
}

# Options that belong to some models only; the shared ones are always allowed.
_SPECIFIC = ("reset_after", "activation", "layer_norm", "backend", "forget_bias")


def validate_model_config(cfg: ModelConfig, seq_len: int | None = None) -> list[str]:
    """Every problem with ``cfg``, one line each (empty when valid)."""
    if cfg.name not in MODELS:
        return [f"model.name: unknown model {cfg.name!r}; choose from: {', '.join(sorted(MODELS))}"]
    problems = []
    if cfg.hidden_size <= 0:
        problems.append(f"model.hidden_size must be positive, got {cfg.hidden_size}")
    if cfg.num_layers <= 0:
        problems.append(f"model.num_layers must be positive, got {cfg.num_layers}")
    if cfg.layer_sizes is not None and (
        not cfg.layer_sizes or any(size <= 0 for size in cfg.layer_sizes)
    ):
        problems.append(f"model.layer_sizes must be positive widths, got {cfg.layer_sizes}")
    if not 0.0 <= cfg.dropout < 1.0:
        problems.append(f"model.dropout must lie in [0, 1), got {cfg.dropout}")
    elif cfg.dropout > 0 and len(cfg.widths) == 1:
        problems.append(
            f"model.dropout={cfg.dropout} acts between stacked layers only and this model has "
            "one; set model.num_layers > 1 (or model.layer_sizes), or dropout 0"
        )
    if cfg.activation not in ACTIVATIONS:
        problems.append(
            f"model.activation: unknown activation {cfg.activation!r}; "
            f"choose from: {', '.join(ACTIVATIONS)}"
        )
    if cfg.backend not in BACKENDS:
        problems.append(
            f"model.backend: unknown backend {cfg.backend!r}; choose from: {', '.join(BACKENDS)}"
        )
    spec = MODELS[cfg.name]
    defaults = ModelConfig()
    for option in _SPECIFIC:
        if option not in spec.options and getattr(cfg, option) != getattr(defaults, option):
            takers = sorted(n for n, s in MODELS.items() if option in s.options)
            problems.append(
                f"model.{option}={getattr(cfg, option)!r} does not apply to {cfg.name}; "
                f"only {', '.join(takers)} take it"
            )
    if cfg.init not in INITS:
        problems.append(f"model.init: unknown init {cfg.init!r}; choose from: {', '.join(INITS)}")
    else:
        t_max = cfg.chrono_t_max if cfg.chrono_t_max is not None else seq_len
        try:
            check_init(cfg.init, spec.layout, t_max)
        except ValueError as err:
            problems.append(f"model.init: {err}")
    return problems


def build_model(
    cfg: ModelConfig,
    input_size: int,
    output_size: int,
    output_mode: Literal["last", "sequence"],
    seq_len: int | None = None,
) -> SequenceModel:
    """Build and initialize a model (call under a fixed torch seed for reproducible weights)."""
    problems = validate_model_config(cfg, seq_len)
    if problems:
        raise ValueError("; ".join(problems))
    spec = MODELS[cfg.name]
    options = {name: getattr(cfg, name) for name in spec.options if name != "forget_bias"}
    t_max = cfg.chrono_t_max if cfg.chrono_t_max is not None else seq_len

    def recurrent(in_size: int, hidden: int, layers: int, dropout: float) -> nn.Module:
        module = spec.build(in_size, hidden, layers, dropout, **options)
        initialize(module, cfg.init, layout=spec.layout, t_max=t_max)
        if "forget_bias" in spec.options and cfg.init != "chrono":  # chrono sets it itself
            set_lstm_forget_bias(module, cfg.forget_bias)
        return module

    if cfg.layer_sizes:
        sizes = [input_size, *cfg.layer_sizes]
        layers = [recurrent(sizes[i], sizes[i + 1], 1, 0.0) for i in range(len(sizes) - 1)]
        backbone: nn.Module = StackedRNN(layers, cfg.dropout)
    else:
        backbone = recurrent(input_size, cfg.hidden_size, cfg.num_layers, cfg.dropout)
    return SequenceModel(backbone, cfg.widths[-1], output_size, output_mode)


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


def matched_hidden_size(cfg: ModelConfig, target: int, input_size: int, output_size: int) -> int:
    """The hidden size at which ``cfg``'s model has the parameter count closest to ``target``
    (for comparisons at equal parameter count; the count grows with H, so bisect)."""

    def params(hidden: int) -> int:
        probe = replace(cfg, hidden_size=hidden, layer_sizes=None, init="default")
        return count_parameters(build_model(probe, input_size, output_size, "last"))

    low, high = 1, 1
    while params(high) < target:
        low, high = high, high * 2
    while high - low > 1:
        middle = (low + high) // 2
        low, high = (middle, high) if params(middle) < target else (low, middle)
    return min((low, high), key=lambda h: abs(params(h) - target))


__all__ = [
    "ACTIVATIONS",
    "CustomGRU",
    "INITS",
    "MODELS",
    "MinGRU",
    "MinLSTM",
    "ModelConfig",
    "ModelSpec",
    "SequenceModel",
    "StackedRNN",
    "build_model",
    "count_parameters",
    "matched_hidden_size",
    "validate_model_config",
]
