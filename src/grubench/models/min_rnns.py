r"""minGRU and minLSTM (Feng et al. 2024, "Were RNNs All We Needed?", arXiv:2410.01201).

Both drop the previous state from the gates, so every gate and candidate is a linear map of
``x_t`` alone and the recurrence is linear in h, ``h_t = a_t ⊙ h_{t−1} + b_t``, with ``a_t`` and
``b_t`` known for all t at once: training runs as a parallel scan over time instead of a loop.

.. code-block:: text

    minGRU:   z_t = σ(W_z x_t + b_z)              h̃_t = g(W_h x_t + b_h)
              h_t = (1 − z_t) ⊙ h_{t−1} + z_t ⊙ h̃_t
    minLSTM:  f_t = σ(W_f x_t + b_f)   i_t = σ(W_i x_t + b_i)   h̃_t = g(W_h x_t + b_h)
              f'_t, i'_t = f_t / (f_t + i_t), i_t / (f_t + i_t)
              h_t = f'_t ⊙ h_{t−1} + i'_t ⊙ h̃_t

    g(x) = x + 0.5 for x ≥ 0, σ(x) otherwise   (positive, so log g exists: the log-space form)

**Parallel mode** (``scan="parallel"``; ``auto``, the default, takes it off CPU) is the
paper's log-space version: with
``log a_t`` and ``log b_t`` computed stably (``log σ(k) = −softplus(−k)``, ``log(1 − σ(k)) =
−softplus(k)``, minLSTM's ``log f' = −softplus(log i − log f)``), Heinsen's scan (2023) gives
every step at once,

.. code-block:: text

    a*_t = Σ_{s≤t} log a_s                        (cumsum)
    h_t  = exp(a*_t + logcumsumexp_{s≤t}(log b_s − a*_s)) + exp(a*_t) ⊙ h_0

The paper takes ``log g(h_0)`` as the first term of the scan, which needs a positive h_0 and
changes the state it is given; here the state is nn.GRU's (what a call returns, a next call
continues from, of any sign), so h_0's term is added outside the log (its coefficient
``exp(a*_t)`` is exact). **Sequential mode** (``scan="sequential"``; ``auto`` on CPU) runs the
recurrence step by step in the ordinary domain (σ, the division, g; no logs; the loop is
grubench's compiled one on CPU, :mod:`grubench.models.engine`): the same function, to float rounding
(tests/test_min_rnns.py checks outputs, states and every gradient). In float32 the log-space
sum ``a*_t + logcumsumexp(·)`` loses about ``|a*_t| · 6e-8`` of relative precision, so very
long sequences with small ``a_t`` are less exact than the loop (the paper's trade-off).

The parameters follow nn.GRU's names, one row block per gate: ``weight_ih_l{k}`` (G·H, in) and
``bias_ih_l{k}`` (G·H) with blocks z, h (minGRU) or f, i, h (minLSTM), and no ``weight_hh``; the
initialization is the paper's nn.Linear one (U(±1/√in) for weights and biases). Inits that
apply: default, xavier_uniform, xavier_normal, chrono (grubench.models.init; orthogonal and
identity act on recurrent matrices, which these models do not have).

The interface is nn.GRU's: ``forward(input, h0=None) -> (output, h_n)``, ``input`` (T, B, I),
(B, T, I) with ``batch_first``, or unbatched (T, I); ``h0`` and ``h_n`` (num_layers, B, H);
``dropout`` between stacked layers in training. As in the paper's stacked models, a layer's
output h_t (positive after a few steps, as every b_t is) is the next layer's input.

Example:
    >>> gru = MinGRU(4, 8, num_layers=2, batch_first=True)
    >>> out, h_n = gru(torch.zeros(3, 5, 4))
    >>> tuple(out.shape), tuple(h_n.shape)
    ((3, 5, 8), (2, 3, 8))
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from grubench.models.engine import fused_min_rnn, input_projection, linear_recurrence
from grubench.models.layers import GateLayout, check_call, check_sizes, rnn_repr, share_layer
from grubench.models.options import SCANS


def g(x: Tensor) -> Tensor:
    """The paper's positive activation for the candidate state: x + 0.5 (x ≥ 0), σ(x)."""
    return torch.where(x >= 0, x + 0.5, torch.sigmoid(x))


def log_g(x: Tensor) -> Tensor:
    """log g(x), stably (relu keeps the unused branch finite, so its gradient is 0, not NaN)."""
    return torch.where(x >= 0, (F.relu(x) + 0.5).log(), -F.softplus(-x))


def heinsen_scan(log_a: Tensor, log_b: Tensor, h0: Tensor | None = None) -> Tensor:
    """``h_t = a_t ⊙ h_{t−1} + b_t`` for every t at once, from ``log a``, ``log b`` (B, T, H)
    and ``h0`` (B, H) of any sign, None for zeros (Heinsen 2023, "Efficient Parallelization of
    a Ubiquitous Sequential Computation"); returns (B, T, H)."""
    a_star = log_a.cumsum(1)  # (B, T, H): log of a_1 ⋯ a_t
    h = torch.exp(a_star + torch.logcumsumexp(log_b - a_star, 1))
    return h if h0 is None else torch.addcmul(h, a_star.exp(), h0.unsqueeze(1))


class _MinRNN(nn.Module):
    """What minGRU and minLSTM share: parameters, the interface, the layers, the description.
    A subclass sets ``gate_layout`` and the per-layer coefficients ``a_t``, ``b_t``."""

    gate_layout: GateLayout

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bias: bool = True,
        batch_first: bool = False,
        dropout: float = 0.0,
        scan: str = "auto",
    ) -> None:
        super().__init__()
        check_sizes(input_size, hidden_size, num_layers, dropout)
        if scan not in SCANS:
            raise ValueError(f"unknown scan {scan!r}; choose from: {', '.join(SCANS)}")
        self.input_size, self.hidden_size, self.num_layers = input_size, hidden_size, num_layers
        self.bias, self.batch_first, self.dropout = bias, batch_first, float(dropout)
        self.scan = scan
        self.bidirectional = False  # read by code written for nn.GRU
        rows = self.gate_layout.gates * hidden_size
        for k in range(num_layers):
            layer_in = input_size if k == 0 else hidden_size
            self.register_parameter(f"weight_ih_l{k}", nn.Parameter(torch.empty(rows, layer_in)))
            if bias:
                self.register_parameter(f"bias_ih_l{k}", nn.Parameter(torch.empty(rows)))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """nn.Linear's initialization, as the paper's code: U(±1/√in) for weight and bias."""
        for k in range(self.num_layers):
            bound = 1.0 / math.sqrt(self.input_size if k == 0 else self.hidden_size)
            nn.init.uniform_(getattr(self, f"weight_ih_l{k}"), -bound, bound)
            if self.bias:
                nn.init.uniform_(getattr(self, f"bias_ih_l{k}"), -bound, bound)

    def extra_repr(self) -> str:
        s = rnn_repr(self)
        if self.scan != "auto":
            s += f", scan={self.scan!r}"
        return s

    def flatten_parameters(self) -> None:
        """No-op, for code that calls ``nn.GRU.flatten_parameters()``."""

    # --- the per-layer coefficients of h_t = a_t ⊙ h_{t−1} + b_t (subclasses) ---

    def _log_coefficients(self, pre: Tensor) -> tuple[Tensor, Tensor]:
        """``log a``, ``log b`` from the pre-activations ``pre`` (B, T, G·H), in log space."""
        raise NotImplementedError

    def _coefficients(self, pre: Tensor) -> tuple[Tensor, Tensor]:
        """``a``, ``b`` from ``pre`` in the ordinary domain (the sequential mode's)."""
        raise NotImplementedError

    def _gates(self, pre: Tensor) -> dict[str, Tensor]:
        raise NotImplementedError

    # --- forward ---

    def _pre(self, k: int, x: Tensor) -> Tensor:
        bias = getattr(self, f"bias_ih_l{k}") if self.bias else None
        return input_projection(x, getattr(self, f"weight_ih_l{k}"), bias)  # (B, T, G·H)

    def _layer(self, k: int, x: Tensor, h: Tensor | None) -> Tensor:
        """One layer over the sequence: ``x`` (B, T, in), ``h`` (B, H) or None for zeros ->
        (B, T, H)."""
        pre = self._pre(k, x)
        scan = self.scan
        if scan == "auto":
            scan = "sequential" if x.device.type == "cpu" else "parallel"
        if scan == "parallel":
            return heinsen_scan(*self._log_coefficients(pre), h)
        fused = fused_min_rnn(pre, h, lstm=self.gate_layout.gates == 3)
        return fused if fused is not None else linear_recurrence(*self._coefficients(pre), h)

    def forward(self, input: Tensor, h0: Tensor | None = None) -> tuple[Tensor, Tensor]:
        batched = check_call(self, input, h0)
        if not batched:
            input = input.unsqueeze(0)  # (T, I) -> (1, T, I)
            if h0 is not None:
                h0 = h0.unsqueeze(1)  # (L, H) -> (L, 1, H)
        elif not self.batch_first:
            input = input.transpose(0, 1)  # (T, B, I) -> (B, T, I)

        x = input
        finals = []
        for k in range(self.num_layers):
            if k > 0 and self.dropout and self.training:
                x = F.dropout(x, self.dropout, training=True)
            x = self._layer(k, x, None if h0 is None else h0[k])  # (B, T, H)
            finals.append(x[:, -1])
        output, h_n = x, torch.stack(finals)  # (B, T, H), (L, B, H)
        if not batched:
            return output.squeeze(0), h_n.squeeze(1)
        if not self.batch_first:
            output = output.transpose(0, 1)  # (B, T, H) -> (T, B, H)
        return output, h_n

    # --- the description (grubench.models.layers) ---

    def single_layers(self) -> list[nn.Module]:
        layers = []
        for k in range(self.num_layers):
            with torch.device("meta"):
                template = type(self)(
                    self.input_size if k == 0 else self.hidden_size,
                    self.hidden_size,
                    1,
                    bias=self.bias,
                    batch_first=True,
                    scan=self.scan,
                )
            layers.append(share_layer(self, k, template))
        return layers

    def layer_gates(self, x: Tensor, h_prev: Tensor) -> dict[str, Tensor]:
        """A single layer's gates at every step (they read ``x`` (B, T, I) only; ``h_prev`` is
        ignored), each (B, T, H)."""
        if self.num_layers != 1:
            raise ValueError("layer_gates: call it on one of single_layers()")
        return self._gates(self._pre(0, x))


class MinGRU(_MinRNN):
    """minGRU (module docstring): ``h_t = (1 − z_t) ⊙ h_{t−1} + z_t ⊙ g(W_h x_t + b_h)``."""

    # z takes the new state (the paper's convention), so the kept fraction is 1 − z
    gate_layout = GateLayout(
        "min_gru", ("z", "h"), matrices=("ih",), keep="z", keep_sign=-1.0, default_fan_in=True
    )

    def _log_coefficients(self, pre: Tensor) -> tuple[Tensor, Tensor]:
        k_z, k_h = pre.chunk(2, -1)  # (B, T, H) each
        return -F.softplus(k_z), -F.softplus(-k_z) + log_g(k_h)  # log(1 − z), log z + log h̃

    def _coefficients(self, pre: Tensor) -> tuple[Tensor, Tensor]:
        k_z, k_h = pre.chunk(2, -1)
        z = torch.sigmoid(k_z)
        return 1 - z, z * g(k_h)

    def _gates(self, pre: Tensor) -> dict[str, Tensor]:
        return {"z": torch.sigmoid(pre.chunk(2, -1)[0])}


class MinLSTM(_MinRNN):
    """minLSTM (module docstring): ``h_t = f'_t ⊙ h_{t−1} + i'_t ⊙ g(W_h x_t + b_h)`` with
    f and i normalized to sum to 1."""

    gate_layout = GateLayout(
        "min_lstm", ("f", "i", "h"), matrices=("ih",), keep="f", paired="i", default_fan_in=True
    )

    def _log_coefficients(self, pre: Tensor) -> tuple[Tensor, Tensor]:
        k_f, k_i, k_h = pre.chunk(3, -1)  # (B, T, H) each
        diff = F.softplus(-k_f) - F.softplus(-k_i)  # log i − log f
        return -F.softplus(diff), -F.softplus(-diff) + log_g(k_h)  # log f', log i' + log h̃

    def _coefficients(self, pre: Tensor) -> tuple[Tensor, Tensor]:
        f, i = torch.sigmoid(pre[..., : 2 * self.hidden_size]).chunk(2, -1)
        total = f + i
        return f / total, i / total * g(pre[..., 2 * self.hidden_size :])

    def _gates(self, pre: Tensor) -> dict[str, Tensor]:
        f, i = torch.sigmoid(pre[..., : 2 * self.hidden_size]).chunk(2, -1)
        return {"f": f / (f + i), "i": i / (f + i)}


def build_min_gru(
    input_size: int, hidden_size: int, num_layers: int, dropout: float, scan: str = "auto"
) -> MinGRU:
    return MinGRU(input_size, hidden_size, num_layers, batch_first=True, dropout=dropout, scan=scan)


def build_min_lstm(
    input_size: int, hidden_size: int, num_layers: int, dropout: float, scan: str = "auto"
) -> MinLSTM:
    return MinLSTM(
        input_size, hidden_size, num_layers, batch_first=True, dropout=dropout, scan=scan
    )
