"""Named initializations for recurrent modules with PyTorch's parameter names.

Works on any module whose own parameters are named like ``nn.GRU``'s, ``nn.LSTM``'s and
``nn.RNN``'s: ``weight_ih_l{k}``, ``weight_hh_l{k}``, ``bias_ih_l{k}``, ``bias_hh_l{k}`` (and
the ``_reverse`` / ``weight_hr`` variants of bidirectional and projected modules), i.e.
``nn.GRU``, ``nn.LSTM``, ``nn.RNN`` and :class:`~grubench.models.custom_gru.CustomGRU`. The
weights stack one row block of H rows per gate, in PyTorch's gate order:

======  =====  ==========================  =========================================
kind    gates  order                       keeps the old state
======  =====  ==========================  =========================================
gru     3      r, z, n                     z (PyTorch: h' = (1 − z) ⊙ n + z ⊙ h)
lstm    4      i, f, g, o                  f (c' = f ⊙ c + i ⊙ g)
rnn     1      (one block)                 —
======  =====  ==========================  =========================================

Schemes (``INITS``):

- ``default``: PyTorch's ``reset_parameters()``, every parameter ~ U(−1/√H, 1/√H).
- ``xavier_uniform`` / ``xavier_normal``: Glorot & Bengio 2010, applied **per gate block**:
  each gate's (H, in) block of ``weight_ih`` and (H, H) block of ``weight_hh`` is its own
  linear map with fan_in = in, fan_out = H, so Var = 2 / (in + H). (Keras applies
  ``glorot_uniform`` to the whole (in, G·H) kernel, fan_out = G·H, a smaller variance.)
  Biases zero.
- ``orthogonal``: every (H, H) gate block of ``weight_hh`` orthogonal (Saxe et al. 2014);
  input weights Glorot uniform per block; biases zero: Keras' recurrent-layer defaults.
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
  ``bias_ih + bias_hh`` is as stated. Invalid for kind ``rnn`` (no gate). ``t_max`` must
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

INITS: tuple[str, ...] = (
    "default",
    "xavier_uniform",
    "xavier_normal",
    "orthogonal",
    "identity",
    "chrono",
)
GATES = {"gru": 3, "lstm": 4, "rnn": 1}

IRNN_INPUT_STD = 0.001  # Le et al. 2015: non-recurrent weights ~ N(0, 0.001²)

# The gate that keeps the old state: its row block index in PyTorch's gate order.
_KEEP_GATE = {"gru": 1, "lstm": 1}  # gru: r, [z], n; lstm: i, [f], g, o
_LSTM_INPUT_GATE = 0

_PARAM = re.compile(r"^(weight|bias)_(ih|hh|hr)_l(\d+)(_reverse)?$")


def check_init(scheme: str, kind: str, t_max: float | None = None) -> None:
    """Raise ``ValueError`` if ``scheme`` cannot initialize a ``kind`` network.

    ``t_max`` is used by ``chrono`` only (required there) and ignored by the others.
    """
    if scheme not in INITS:
        raise ValueError(f"unknown init {scheme!r}; choose from: {', '.join(INITS)}")
    if kind not in GATES:
        raise ValueError(f"unknown kind {kind!r}; choose from: {', '.join(GATES)}")
    if scheme == "identity" and kind != "rnn":
        raise ValueError(
            f"init 'identity' with kind {kind!r} is invalid: it is the IRNN initialization "
            "(Le et al. 2015) of a plain RNN, whose single recurrent matrix becomes I; "
            f"a {kind} has {GATES[kind]} gate blocks; use kind 'rnn'"
        )
    if scheme == "chrono":
        if kind == "rnn":
            raise ValueError(
                "init 'chrono' with kind 'rnn' is invalid: chrono sets the bias of the gate "
                "that keeps the old state (LSTM forget gate, GRU z gate) and a plain RNN has "
                "no gates; use kind 'gru' or 'lstm'"
            )
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
    kind: str,
    t_max: float | None = None,
    generator: torch.Generator | None = None,
) -> None:
    """Initialize ``rnn`` in place with ``scheme`` (see the module docstring).

    ``kind`` ("gru", "lstm" or "rnn") gives the gate layout and must match the module;
    ``t_max`` is chrono's longest dependency in steps (ignored by other schemes).
    """
    check_init(scheme, kind, t_max)
    params = _recurrent_params(rnn, kind)
    hidden = _hidden_size(rnn, params, kind)
    gates = GATES[kind]
    with torch.no_grad():
        if scheme in ("default", "chrono"):
            _default(params, hidden, generator)
            if scheme == "chrono":
                assert t_max is not None  # check_init made sure
                _chrono(params, hidden, kind, float(t_max), generator)
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
        elif scheme == "identity":  # kind "rnn": one block, weight_hh is (H, H)
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


def set_lstm_forget_bias(lstm: nn.Module, value: float) -> None:
    """Set every layer's effective LSTM forget-gate bias to ``value``.

    The f slice (rows ``[H:2H]``, gate order i, f, g, o) of ``bias_ih`` becomes ``value`` and
    that of ``bias_hh`` zero, so their sum, the bias the gate sees, is ``value``. Other slices
    are left as they are.
    """
    if isinstance(value, bool) or not isinstance(value, Real) or not math.isfinite(value):
        raise ValueError(f"forget bias must be a finite number, got {value!r}")
    params = _recurrent_params(lstm, "lstm")
    hidden = _hidden_size(lstm, params, "lstm")
    biases = {key: p for key, p in params.items() if key[1] == "bias"}
    if not biases:
        raise ValueError("set_lstm_forget_bias: the module has no biases (bias=False)")
    f = _KEEP_GATE["lstm"]
    with torch.no_grad():
        for (_, _, which), p in biases.items():
            p[f * hidden : (f + 1) * hidden] = value if which == "ih" else 0.0


def _recurrent_params(rnn: nn.Module, kind: str) -> dict[tuple[str, str, str], Tensor]:
    """The module's own recurrent parameters in registration order, keyed by
    (name, "weight" | "bias", "ih" | "hh" | "hr")."""
    if kind not in GATES:
        raise ValueError(f"unknown kind {kind!r}; choose from: {', '.join(GATES)}")
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


def _hidden_size(rnn: nn.Module, params: dict[tuple[str, str, str], Tensor], kind: str) -> int:
    """H, checking that every input and recurrent weight and bias stacks kind's gate blocks."""
    gates = GATES[kind]
    w_hh = next(p for (_, role, io), p in params.items() if role == "weight" and io == "hh")
    # Modules without a hidden_size attribute: assume no projection, weight_hh is (G·H, H).
    hidden = getattr(rnn, "hidden_size", w_hh.shape[1])
    if any(p.shape[0] != gates * hidden for (_, _, io), p in params.items() if io != "hr"):
        raise ValueError(
            f"kind {kind!r} expects {gates} gate block(s) of H={hidden} rows, i.e. "
            f"{gates * hidden} rows in every weight_ih/weight_hh/bias, but "
            f"{type(rnn).__name__}'s weight_hh_l0 has shape {tuple(w_hh.shape)}; "
            "is kind right for this module?"
        )
    return hidden


def _blocks(weight: Tensor, io: str, gates: int, hidden: int) -> list[Tensor]:
    """The per-gate row blocks of a gate-stacked weight, as views: ``gates`` × (H, cols).

    An LSTM's projection ``weight_hr`` (P, H) is not gate-stacked: one block."""
    return [weight] if io == "hr" else list(weight.split(hidden, dim=0))


def _default(params: dict, hidden: int, generator: torch.Generator | None) -> None:
    # What RNNBase.reset_parameters() does, in its order, but drawing from `generator`.
    bound = 1.0 / math.sqrt(hidden)
    for p in params.values():
        nn.init.uniform_(p, -bound, bound, generator=generator)


def _chrono(
    params: dict, hidden: int, kind: str, t_max: float, generator: torch.Generator | None
) -> None:
    biases = {key: p for key, p in params.items() if key[1] == "bias"}
    if not biases:
        raise ValueError("init 'chrono' sets gate biases, but the module has bias=False")
    keep = slice(_KEEP_GATE[kind] * hidden, (_KEEP_GATE[kind] + 1) * hidden)
    for (_, _, which), p in biases.items():
        p.zero_()
        if which != "ih":
            continue  # bias_hh stays zero: the effective bias is bias_ih alone
        p[keep].uniform_(1.0, t_max - 1.0, generator=generator).log_()
        if kind == "lstm":
            i = _LSTM_INPUT_GATE
            p[i * hidden : (i + 1) * hidden] = -p[keep]


def _reset_norms(rnn: nn.Module) -> None:
    for module in rnn.modules():
        if isinstance(module, nn.LayerNorm):
            module.reset_parameters()
