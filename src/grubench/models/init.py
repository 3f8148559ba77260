"""Named initializations for recurrent modules with PyTorch's parameter names.

Works on any module whose own parameters are named like ``nn.GRU``'s, ``nn.LSTM``'s and
``nn.RNN``'s: ``weight_ih_l{k}``, ``weight_hh_l{k}``, ``bias_ih_l{k}``, ``bias_hh_l{k}`` (and
the ``_reverse`` / ``weight_hr`` variants of bidirectional and projected modules). The weights
stack one row block of H rows per gate; the module says which, in its
:class:`~grubench.models.layers.GateLayout` (``gate_layout``; PyTorch's own modules are
described in :mod:`grubench.models.torch_rnns`), so nothing here knows a model:

==========  =====  ==========================  =====================================
layout      gates  order                       keeps the old state
==========  =====  ==========================  =====================================
gru         3      r, z, n                     z (PyTorch: h' = (1 − z) ⊙ n + z ⊙ h)
lstm        4      i, f, g, o                  f (c' = f ⊙ c + i ⊙ g)
rnn         1      (one block)                 —
min_gru     2      z, h (input weights only)   1 − z (h' = (1 − z) ⊙ h + z ⊙ g(h̃))
min_lstm    3      f, i, h (input weights      f, normalized: f / (f + i)
                   only)
==========  =====  ==========================  =====================================

Schemes (``INITS``):

- ``default``: the module's own ``reset_parameters()``: every parameter ~ U(−1/√H, 1/√H)
  (PyTorch's recurrent layers), or, for a layout with ``default_fan_in`` (minGRU, minLSTM,
  built from linear maps of x_t as in Feng et al. 2024), nn.Linear's U(−1/√fan_in, 1/√fan_in)
  with fan_in the layer's input width.
- ``xavier_uniform`` / ``xavier_normal``: Glorot & Bengio 2010, applied **per gate block**:
  each gate's (H, in) block of ``weight_ih`` and (H, H) block of ``weight_hh`` is its own
  linear map with fan_in = in, fan_out = H, so Var = 2 / (in + H). (Keras applies
  ``glorot_uniform`` to the whole (in, G·H) kernel, fan_out = G·H, a smaller variance.)
  Biases zero.
- ``orthogonal``: every (H, H) gate block of ``weight_hh`` orthogonal (Saxe et al. 2014);
  input weights Glorot uniform per block; biases zero: Keras' recurrent-layer defaults.
  Invalid for layouts without ``weight_hh`` (minGRU, minLSTM: their gates read x_t only).
- ``identity``: kind ``rnn`` only, the IRNN of Le, Jaitly & Hinton 2015 ("A Simple Way to
  Initialize Recurrent Networks of Rectified Linear Units"): ``weight_hh = I``, biases zero,
  and the non-recurrent (input) weights ~ N(0, 0.001²), the scale of the paper's experiments
  (also what Keras' ``mnist_irnn`` reproduction of them uses: ``RandomNormal(stddev=0.001)``).
- ``chrono``: Tallec & Ollivier 2018 ("Can recurrent neural networks warp time?"), for
  dependencies up to ``t_max`` steps: weights as ``default``; the bias of the gate that keeps
  the old state is ``b = log u``, ``u ~ U[1, t_max − 1]``, so the initial memory time
  ``1 / (1 − σ(b)) = 1 + u`` spreads over [2, t_max]. LSTM: ``b_f = log u``, ``b_i = −b_f``,
  g and o biases zero. GRU: in PyTorch's convention the keep gate is z (block 1 of 3, rows
  ``[H:2H]``), so ``b_z = +log u`` (in the classic convention, where z takes the new state,
  the same init reads ``b_z = −log u``); r and n biases zero. The values go into
  ``bias_ih``; the matching slices of ``bias_hh`` are zeroed, so the effective bias
  ``bias_ih + bias_hh`` is as stated. minGRU, whose z takes the *new* state
  (``h' = (1 − z) h + z h̃``), gets ``b_z = −log u`` (memory time ``1/z = 1 + u``); minLSTM gets
  the LSTM's ``b_f = log u``, ``b_i = −log u``, so f + i = 1 and its normalized forget gate
  ``f / (f + i)`` is f itself. Invalid for kind ``rnn`` (no gate). ``t_max`` must
  exceed 2: ``U[1, t_max − 1]`` is empty for t_max < 2 and a single point (every bias
  log 1 = 0, no chrono at all) at t_max = 2.

Every scheme also resets LayerNorm submodules (``CustomGRU(layer_norm=True)``) to gain 1, so
the whole module ends in a defined state. With ``generator`` every draw comes from it and the
global RNG is untouched, so an init is reproducible on its own.
"""

from __future__ import annotations

import math
import re
from numbers import Real

import torch
from torch import Tensor, nn

from grubench.models.layers import GateLayout, describe
from grubench.models.options import INITS  # declared with the options: --help lists them

IRNN_INPUT_STD = 0.001  # Le et al. 2015: non-recurrent weights ~ N(0, 0.001²)

_PARAM = re.compile(r"^(weight|bias)_(ih|hh|hr)_l(\d+)(_reverse)?$")


def _inapplicable(scheme: str, layout: GateLayout) -> str | None:
    """Why ``scheme`` cannot initialize a module of ``layout``; None if it can."""
    kind = layout.kind
    if scheme == "identity" and not (layout.recurrent and layout.gates == 1):
        return (
            f"init 'identity' with kind {kind!r} is invalid: it is the IRNN initialization "
            "(Le et al. 2015) of a plain RNN, whose single recurrent matrix becomes I; "
            f"a {kind} has {layout.gates} gate blocks"
            + ("" if layout.recurrent else " and no recurrent matrix")
            + "; use kind 'rnn'"
        )
    if scheme == "orthogonal" and not layout.recurrent:
        return (
            f"init 'orthogonal' with kind {kind!r} is invalid: it makes the recurrent "
            "(hidden-to-hidden) gate blocks orthogonal (Saxe et al. 2014) and a "
            f"{kind} has none: its gates read the input only"
        )
    if scheme == "chrono" and layout.keep is None:
        return (
            f"init 'chrono' with kind {kind!r} is invalid: chrono sets the bias of the gate "
            "that keeps the old state (LSTM forget gate, GRU z gate) and "
            + ("a plain RNN has no gates" if layout.gates == 1 else f"a {kind} names none")
        )
    return None


# the schemes that treat each weight's gate blocks as matrices (torch's initializers need 2-D)
_MATRIX_SCHEMES = ("xavier_uniform", "xavier_normal", "orthogonal", "identity")


def _unfit_parameters(scheme: str, rnn: nn.Module) -> str | None:
    """Why ``scheme`` cannot initialize the parameters ``rnn`` actually has; None if it can.

    Decided from the parameters, not from a list of models: a new model whose recurrent
    weight is, say, one vector per layer is refused here in one line, before torch's
    initializers would fail on it."""
    if scheme not in _MATRIX_SCHEMES:
        return None
    for name, p in rnn.named_parameters(recurse=False):
        match = _PARAM.match(name)
        if match is None or match.group(1) != "weight":
            continue
        if p.dim() != 2:
            return (
                f"init {scheme!r} does not apply to {type(rnn).__name__}: it sets gate blocks "
                f"as matrices and its {name} has shape {tuple(p.shape)}"
            )
        if scheme == "identity" and match.group(2) == "hh" and p.shape[0] != p.shape[1]:
            return (
                f"init 'identity' does not apply to {type(rnn).__name__}: its {name} of shape "
                f"{tuple(p.shape)} is not square"
            )
    return None


def _reason(scheme: str, layout: GateLayout, rnn: nn.Module | None) -> str | None:
    reason = _inapplicable(scheme, layout)
    if reason is None and rnn is not None:
        reason = _unfit_parameters(scheme, rnn)
    return reason


def applicable_inits(layout: GateLayout, rnn: nn.Module | None = None) -> tuple[str, ...]:
    """The schemes of ``INITS`` that can initialize a module of ``layout`` (and, given the
    module ``rnn``, the parameters it has)."""
    return tuple(scheme for scheme in INITS if _reason(scheme, layout, rnn) is None)


def check_init(
    scheme: str, layout: GateLayout, t_max: float | None = None, rnn: nn.Module | None = None
) -> None:
    """Raise ``ValueError`` (one line, naming the valid choices) if ``scheme`` cannot
    initialize a module of ``layout`` (or, given ``rnn``, that module's parameters).

    ``t_max`` is used by ``chrono`` only (required there) and ignored by the others.
    """
    if scheme not in INITS:
        raise ValueError(f"unknown init {scheme!r}; choose from: {', '.join(INITS)}")
    if not isinstance(layout, GateLayout):
        raise ValueError(f"layout must be a GateLayout, got {layout!r}")
    reason = _reason(scheme, layout, rnn)
    if reason is not None:
        valid = ", ".join(applicable_inits(layout, rnn))
        raise ValueError(f"{reason}; choose from: {valid}")
    if scheme == "chrono":
        if t_max is None:
            raise ValueError("init 'chrono' needs t_max, the longest dependency in steps")
        if isinstance(t_max, bool) or not isinstance(t_max, Real) or not math.isfinite(t_max):
            raise ValueError(f"init 'chrono' needs a finite number t_max, got {t_max!r}")
        if not t_max > 2:
            raise ValueError(
                f"init 'chrono' needs t_max > 2, got {t_max!r}: its biases are "
                "log U[1, t_max − 1], an empty range for t_max < 2 and all zeros at t_max = 2"
            )


def initialize(
    rnn: nn.Module,
    scheme: str,
    *,
    layout: GateLayout | None = None,
    t_max: float | None = None,
    generator: torch.Generator | None = None,
) -> None:
    """Initialize ``rnn`` in place with ``scheme`` (see the module docstring).

    ``layout`` is the module's gate layout, by default the one it describes
    (:func:`grubench.models.layers.describe`); it must match the module's parameters.
    ``t_max`` is chrono's longest dependency in steps (ignored by other schemes).
    """
    params = _recurrent_params(rnn)
    if layout is None:
        layout = describe(rnn).gate_layout
        if layout is None:
            raise ValueError(f"{type(rnn).__name__} describes no gate layout; pass layout=")
    check_init(scheme, layout, t_max, rnn)
    hidden = _hidden_size(rnn, params, layout)
    gates = layout.gates
    with torch.no_grad():
        if scheme in ("default", "chrono"):
            _default(params, hidden, layout, generator)
            if scheme == "chrono":
                assert t_max is not None  # check_init made sure
                _chrono(params, hidden, layout, float(t_max), generator)
        elif scheme in ("xavier_uniform", "xavier_normal"):
            glorot = (
                nn.init.xavier_uniform_ if scheme == "xavier_uniform" else nn.init.xavier_normal_
            )
            for (_, role, io), p in params.items():
                if role == "bias":
                    p.zero_()
                else:
                    for block in _blocks(p, io, gates, hidden):
                        glorot(block, generator=generator)
        elif scheme == "orthogonal":
            for (_, role, io), p in params.items():
                if role == "bias":
                    p.zero_()
                elif io == "ih":
                    for block in _blocks(p, io, gates, hidden):
                        nn.init.xavier_uniform_(block, generator=generator)
                else:  # hh, and an LSTM's projection hr
                    for block in _blocks(p, io, gates, hidden):
                        nn.init.orthogonal_(block, generator=generator)
        elif scheme == "identity":  # one block, weight_hh is (H, H)
            for (_, role, io), p in params.items():
                if role == "bias":
                    p.zero_()
                elif io == "hh":
                    p.copy_(torch.eye(*p.shape, dtype=p.dtype, device=p.device))
                else:
                    nn.init.normal_(p, 0.0, IRNN_INPUT_STD, generator=generator)
        else:  # unreachable: check_init rejects unknown schemes
            raise AssertionError(scheme)
    _reset_norms(rnn)


def set_gate_bias(rnn: nn.Module, layout: GateLayout, gate: str, value: float) -> None:
    """Set every layer's effective bias of ``gate`` (a block of ``layout``) to ``value``.

    The gate's slice of ``bias_ih`` becomes ``value`` and that of ``bias_hh`` zero, so their
    sum, the bias the gate sees, is ``value``. Other slices are left as they are.
    """
    if isinstance(value, bool) or not isinstance(value, Real) or not math.isfinite(value):
        raise ValueError(f"{gate} gate bias must be a finite number, got {value!r}")
    params = _recurrent_params(rnn)
    hidden = _hidden_size(rnn, params, layout)
    biases = {key: p for key, p in params.items() if key[1] == "bias"}
    if not biases:
        raise ValueError(f"{type(rnn).__name__} has no biases (bias=False) to set")
    f = layout.block(gate)
    with torch.no_grad():
        for (_, _, which), p in biases.items():
            p[f * hidden : (f + 1) * hidden] = value if which == "ih" else 0.0


def _recurrent_params(rnn: nn.Module) -> dict[tuple[str, str, str], Tensor]:
    """The module's own recurrent parameters in registration order, keyed by
    (name, "weight" | "bias", "ih" | "hh" | "hr")."""
    params = {}
    for name, p in rnn.named_parameters(recurse=False):
        match = _PARAM.match(name)
        if match:
            params[(name, match.group(1), match.group(2))] = p
    if not params:
        raise ValueError(
            f"{type(rnn).__name__} has no parameters named like nn.GRU's (weight_ih_l0, ...); "
            "pass the recurrent module itself"
        )
    return params


def _hidden_size(
    rnn: nn.Module, params: dict[tuple[str, str, str], Tensor], layout: GateLayout
) -> int:
    """H, checking that the module holds exactly the layout's matrices and that every input
    and recurrent weight and bias stacks the layout's gate blocks."""
    gates = layout.gates
    hidden = getattr(rnn, "hidden_size", None)
    if hidden is None:  # without a hidden_size attribute: assume no projection, (G·H, H)
        w_hh = [p for (_, role, io), p in params.items() if role == "weight" and io == "hh"]
        hidden = w_hh[0].shape[1] if w_hh else -1
    held = sorted({io for (_, _, io) in params} - {"hr"})
    wrong = [
        (n, p) for (n, _, io), p in params.items() if io != "hr" and p.shape[0] != gates * hidden
    ]
    if held != sorted(layout.matrices) or wrong:
        name, p = wrong[0] if wrong else next(iter((n, p) for (n, _, _), p in params.items()))
        raise ValueError(
            f"kind {layout.kind!r} expects weights {'/'.join(layout.matrices)} of {gates} gate "
            f"block(s) of H={hidden} rows, i.e. {gates * hidden} rows in every weight and bias, "
            f"but {type(rnn).__name__} holds {'/'.join(held)} and its {name} has shape "
            f"{tuple(p.shape)}; is the layout right for this module?"
        )
    return hidden


def _blocks(weight: Tensor, io: str, gates: int, hidden: int) -> list[Tensor]:
    """The per-gate row blocks of a gate-stacked weight, as views: ``gates`` × (H, cols).

    An LSTM's projection ``weight_hr`` (P, H) is not gate-stacked: one block."""
    return [weight] if io == "hr" else list(weight.split(hidden, dim=0))


def _default(
    params: dict, hidden: int, layout: GateLayout, generator: torch.Generator | None
) -> None:
    # What the module's reset_parameters() does, in its order, but drawing from `generator`:
    # RNNBase's U(±1/√H), or nn.Linear's U(±1/√fan_in) per layer (its weight_ih's columns).
    fan_in = {
        _PARAM.match(name).group(3, 4): p.shape[1]
        for (name, role, io), p in params.items()
        if role == "weight" and io == "ih"
    }
    for (name, _, _), p in params.items():
        width = fan_in[_PARAM.match(name).group(3, 4)] if layout.default_fan_in else hidden
        bound = 1.0 / math.sqrt(width)
        nn.init.uniform_(p, -bound, bound, generator=generator)


def _chrono(
    params: dict, hidden: int, layout: GateLayout, t_max: float, generator: torch.Generator | None
) -> None:
    biases = {key: p for key, p in params.items() if key[1] == "bias"}
    if not biases:
        raise ValueError("init 'chrono' sets gate biases, but the module has bias=False")
    rows = lambda gate: slice(layout.block(gate) * hidden, (layout.block(gate) + 1) * hidden)  # noqa: E731
    keep = rows(layout.keep)
    for (_, _, which), p in biases.items():
        p.zero_()
        if which != "ih":
            continue  # bias_hh stays zero: the effective bias is bias_ih alone
        p[keep].uniform_(1.0, t_max - 1.0, generator=generator).log_()
        if layout.keep_sign < 0:  # the gate takes the new state: its bias is −log u
            p[keep].neg_()
        if layout.paired is not None:
            p[rows(layout.paired)] = -p[keep]


def _reset_norms(rnn: nn.Module) -> None:
    for module in rnn.modules():
        if isinstance(module, nn.LayerNorm):
            module.reset_parameters()
