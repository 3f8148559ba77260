"""How a recurrent module describes itself to the code around it.

The initializers (:mod:`grubench.models.init`) need a module's gate layout; the gradient-flow
diagnostics (:mod:`grubench.training.diagnostics`) need its single layers and, per layer, its gate
values. A model file provides both, so that neither module knows any model:

- ``gate_layout``: a :class:`GateLayout` (``None`` for a module without one, e.g. a stack of
  layers of different kinds);
- ``single_layers()``: the module's recurrent layers as single-layer, batch-first modules that
  share its ``nn.Parameter`` objects (no copy), in layer order; each is run one step at a time
  as ``layer(x_t, state)`` with ``x_t`` (B, 1, I) and ``state`` ``None`` or what the previous
  step returned (nn.GRU's ``(1, B, H)`` tensor or nn.LSTM's ``(h, c)`` tuple);
- ``layer_gates(x, h_prev)``: on a single-layer module, its gates at every step recomputed from
  its own weights, ``x`` (B, T, I) its input and ``h_prev`` (B, T, H) its state before each
  step; ``{name: (B, T, H)}``, ``{}`` for a module without gates.

:func:`describe` returns the module itself when it has all three, an adapter for PyTorch's own
``nn.GRU`` / ``nn.LSTM`` / ``nn.RNN`` (defined in :mod:`grubench.models.torch_rnns`, the
model file for them), or, for any other module with ``num_layers == 1``, a pass-through (one
layer, no gates, no layout).
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from torch import Tensor, nn


@dataclass(frozen=True)
class GateLayout:
    """The gate-stacked parameters of a recurrent module with PyTorch's parameter names.

    Per layer ``k`` and per matrix ``m`` in ``matrices`` the module holds ``weight_{m}_l{k}``
    of ``len(blocks) · H`` rows (one (H, cols) block per gate, in ``blocks``' order; ``ih``
    reads the layer's input, ``hh`` its previous state) and, with biases, ``bias_{m}_l{k}``.

    ``keep`` names the gate whose bias sets how long the old state is kept (chrono's target):
    with ``keep_sign`` +1 the gate's value is the fraction of the old state kept (nn.GRU's z,
    an LSTM's f), with -1 the fraction replaced (minGRU's z: ``h' = (1 − z) h + z h̃``).
    ``paired`` is a gate chrono sets to minus the keep gate's bias (an LSTM's input gate).
    ``default_fan_in`` selects the ``default`` init's bound: ``1/√fan_in`` (nn.Linear's, for
    models built from input projections only) instead of ``1/√H`` (torch's recurrent layers).
    """

    kind: str  # the layout's name in messages: "gru", "lstm", "rnn", "min_gru", ...
    blocks: tuple[str, ...]  # the gate row blocks, in order
    matrices: tuple[str, ...] = ("ih", "hh")
    keep: str | None = None
    keep_sign: float = 1.0
    paired: str | None = None
    default_fan_in: bool = False

    @property
    def gates(self) -> int:
        return len(self.blocks)

    @property
    def recurrent(self) -> bool:
        """Whether the gates read the previous state through a weight (``weight_hh``)."""
        return "hh" in self.matrices

    def block(self, name: str) -> int:
        return self.blocks.index(name)

    def parameter_count(self, input_size: int, hidden_size: int, bias: bool = True) -> int:
        """Parameters of one layer with this layout."""
        cols = {"ih": input_size, "hh": hidden_size}
        return sum(self.gates * hidden_size * (cols[m] + bias) for m in self.matrices)


@runtime_checkable
class DescribedLayers(Protocol):
    """What a recurrent module tells the initializers and the diagnostics (module docstring)."""

    gate_layout: GateLayout | None

    def single_layers(self) -> list[nn.Module]: ...

    def layer_gates(self, x: Tensor, h_prev: Tensor) -> dict[str, Tensor]: ...


class _PassThrough:
    """Any batch-first module with ``num_layers == 1``: its own single layer, no gates known."""

    gate_layout = None

    def __init__(self, module: nn.Module) -> None:
        self.module = module

    def single_layers(self) -> list[nn.Module]:
        return [self.module]

    def layer_gates(self, x: Tensor, h_prev: Tensor) -> dict[str, Tensor]:
        return {}


# functions that describe modules they know (PyTorch's own RNNs: grubench.models.torch_rnns),
# or None for others; a module that describes itself needs none
_DESCRIPTIONS: list[Callable[[nn.Module], DescribedLayers | None]] = []


def register_description(describe_known: Callable[[nn.Module], DescribedLayers | None]) -> None:
    """Add a describer of modules that cannot describe themselves (a library's classes)."""
    _DESCRIPTIONS.append(describe_known)


def describe(module: nn.Module) -> DescribedLayers:
    """``module``'s own description, or an adapter (module docstring); ValueError otherwise."""
    if isinstance(module, DescribedLayers):
        return module
    for describe_known in _DESCRIPTIONS:
        if (description := describe_known(module)) is not None:
            return description
    if getattr(module, "num_layers", None) == 1:
        return _PassThrough(module)
    raise ValueError(
        f"unsupported recurrent module {type(module).__name__}: give it gate_layout, "
        "single_layers() and layer_gates() (grubench.models.layers), or num_layers == 1"
    )


def share_layer(backbone: nn.Module, k: int, template: nn.Module) -> nn.Module:
    """Point every parameter (and submodule, e.g. a LayerNorm) of the single-layer ``template``,
    named ``*_l0``, at the same object of ``backbone`` named ``*_l{k}``; returns ``template``.

    Build the template on the meta device (``with torch.device("meta")``): it then allocates
    nothing and draws no random numbers."""
    for name in list(template._parameters):
        setattr(template, name, getattr(backbone, re.sub(r"_l0$", f"_l{k}", name)))
    for name in list(template._modules):
        setattr(template, name, getattr(backbone, re.sub(r"_l0$", f"_l{k}", name)))
    leftover = [n for n, p in template.named_parameters() if p.is_meta]
    if leftover:  # a parameter the backbone does not have: a layout this code does not know
        raise ValueError(f"single_layers: could not share {leftover} of {type(backbone).__name__}")
    template.train(backbone.training)
    return template


# --- nn.GRU's interface, for the modules written here (CustomGRU, MinGRU, MinLSTM) ---


def check_sizes(
    input_size: object, hidden_size: object, num_layers: object, dropout: object
) -> None:
    """Raise ValueError for sizes and dropout nn.GRU rejects; warn as nn.GRU does about dropout
    with a single layer (it acts between layers only)."""
    sizes = (("input_size", input_size), ("hidden_size", hidden_size), ("num_layers", num_layers))
    for name, value in sizes:
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    if isinstance(dropout, bool) or not isinstance(dropout, (int, float)):
        raise ValueError(f"dropout must be a number in [0, 1), got {dropout!r}")
    if not 0.0 <= dropout < 1.0:
        raise ValueError(f"dropout must lie in [0, 1), got {dropout!r}")
    if dropout > 0 and num_layers == 1:
        warnings.warn(
            "dropout option adds dropout after all but last recurrent layer, so non-zero "
            f"dropout expects num_layers greater than 1, but got dropout={dropout} and "
            f"num_layers={num_layers}",
            stacklevel=4,  # the caller of the module's __init__
        )


def check_call(module: nn.Module, input: Tensor, h0: Tensor | None) -> bool:
    """Raise ValueError unless ``module(input, h0)`` is a call nn.GRU accepts: ``input``
    (T, B, I), (B, T, I) with ``batch_first``, or unbatched (T, I); ``h0`` None or
    (num_layers, B, H) ((num_layers, H) unbatched). Returns whether ``input`` is batched."""
    name = type(module).__name__
    if input.dim() not in (2, 3):
        raise ValueError(
            f"{name}: expected a 3-D (batched) or 2-D (unbatched) input, "
            f"got {input.dim()}-D with shape {tuple(input.shape)}"
        )
    if input.size(-1) != module.input_size:
        raise ValueError(
            f"{name}: input.size(-1) must be input_size={module.input_size}, got {input.size(-1)}"
        )
    batched = input.dim() == 3
    if batched:
        batch = input.size(0 if module.batch_first else 1)
        state_shape: tuple[int, ...] = (module.num_layers, batch, module.hidden_size)
    else:
        state_shape = (module.num_layers, module.hidden_size)
    if h0 is not None and tuple(h0.shape) != state_shape:
        raise ValueError(f"{name}: expected h0 of shape {state_shape}, got {tuple(h0.shape)}")
    return batched


def rnn_repr(module: nn.Module) -> str:
    """The start of ``extra_repr`` that nn.GRU-like modules share (nn.GRU's own fields)."""
    text = f"{module.input_size}, {module.hidden_size}"
    if module.num_layers != 1:
        text += f", num_layers={module.num_layers}"
    if not module.bias:
        text += ", bias=False"
    if module.batch_first:
        text += ", batch_first=True"
    if module.dropout:
        text += f", dropout={module.dropout}"
    return text
