"""A GRU written from its gate equations, a drop-in for ``torch.nn.GRU``.

It exists to vary what ``nn.GRU`` fixes: where the reset gate acts (``reset_after``), the
candidate nonlinearity (``activation``) and layer normalization (``layer_norm``). With the
defaults it computes what ``nn.GRU`` computes, with the same parameter names, shapes, order and
initialization, so state dicts load both ways; ``tests/test_custom_gru.py`` proves outputs,
final states and gradients agree to 1e-5.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from grubench.models.engine import input_projection
from grubench.models.gru_bptt import gru_layer
from grubench.models.layers import check_call, check_sizes, rnn_repr, share_layer
from grubench.models.options import ACTIVATIONS
from grubench.models.options import GRU_BACKENDS as BACKENDS
from grubench.models.torch_rnns import GRU_LAYOUT

GATES = 3  # r, z, n: the row blocks of weight_ih / weight_hh, in this order (as nn.GRU)

_ACTIVATION_FNS = {"tanh": torch.tanh, "relu": torch.relu}


class CustomGRU(nn.Module):
    r"""Multi-layer GRU, a drop-in for ``nn.GRU`` (unidirectional).

    Per layer and time step, with input ``x`` and previous state ``h`` (gate order r, z, n as
    the row blocks of ``weight_ih_l{k}`` / ``weight_hh_l{k}``):

    .. code-block:: text

        r  = σ(W_ir x + b_ir + W_hr h + b_hr)
        z  = σ(W_iz x + b_iz + W_hz h + b_hz)
        n  = act(W_in x + b_in + r ⊙ (W_hn h + b_hn))      reset_after=True  (default)
        n  = act(W_in x + b_in + W_hn (r ⊙ h) + b_hn)      reset_after=False
        h' = (1 − z) ⊙ n + z ⊙ h

    ``reset_after=True`` is PyTorch's and cuDNN's form; ``reset_after=False`` the original one.
    z is PyTorch's "keep the old state" gate, so weights load from and into ``nn.GRU``
    unchanged. ``layer_norm=True`` follows haste's ``LayerNormGRU``: gain-only LayerNorms
    ``ln_ih_l{k}`` over ``W_i x`` and ``ln_hh_l{k}`` over ``W_h h``, before the biases; with
    ``reset_after=False``, ``ln_hh_l{k}`` covers ``[W_hr h, W_hz h]`` and ``ln_hn_l{k}``
    covers ``W_hn (r ⊙ h)``. docs/design.md gives the reasons for each choice.

    Args mirror ``nn.GRU`` (no ``bidirectional`` / ``proj_size``): ``dropout`` is applied to
    the outputs of every layer except the last, in training only. ``activation`` is the
    candidate nonlinearity, ``"tanh"`` or ``"relu"``.

    **Speed.** The default form (reset-after, no layer norm, tanh or ReLU) runs each layer as one
    ``autograd.Function`` with a hand-written backward through time
    (:mod:`grubench.models.gru_bptt`): compiled C++ loops on CPU where a compiler is present
    (``backend="auto"`` or ``"cpp"``), the same algorithm in PyTorch ops otherwise
    (``"python"``). ``reset_after=False`` and ``layer_norm=True`` always run the step-by-step
    autograd loop below, as does ``backend="autograd"``; ``benchmarks/bench_custom_gru.py``
    measures each.

    Shapes (``forward(input, h0=None) -> (output, h_n)``): ``input`` is ``(T, B, I)``, or
    ``(B, T, I)`` with ``batch_first``, or unbatched ``(T, I)``; ``h0`` and ``h_n`` are
    ``(num_layers, B, H)`` (``(num_layers, H)`` unbatched); ``output`` is the last layer's
    state at every step, ``(T, B, H)`` / ``(B, T, H)`` / ``(T, H)``.

    Example:
        >>> gru = CustomGRU(4, 8, num_layers=2, batch_first=True)
        >>> out, h_n = gru(torch.zeros(3, 5, 4))
        >>> tuple(out.shape), tuple(h_n.shape)
        ((3, 5, 8), (2, 3, 8))
    """

    GATES = GATES
    gate_layout = GRU_LAYOUT  # nn.GRU's: r, z, n, z keeps the old state

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bias: bool = True,
        batch_first: bool = False,
        dropout: float = 0.0,
        reset_after: bool = True,
        activation: str = "tanh",
        layer_norm: bool = False,
        backend: str = "auto",
    ) -> None:
        super().__init__()
        check_sizes(input_size, hidden_size, num_layers, dropout)
        if activation not in _ACTIVATION_FNS:
            raise ValueError(
                f"unknown activation {activation!r}; choose from: {', '.join(ACTIVATIONS)}"
            )
        if backend not in BACKENDS:
            raise ValueError(f"unknown backend {backend!r}; choose from: {', '.join(BACKENDS)}")

        self.input_size = input_size
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.bias = bias
        self.batch_first = batch_first
        self.dropout = float(dropout)
        self.reset_after = reset_after
        self.activation = activation
        self.layer_norm = layer_norm
        self.backend = backend
        self.bidirectional = False  # read by code written for nn.GRU
        self._act = _ACTIVATION_FNS[activation]

        # Registered in nn.GRU's order (per layer: w_ih, w_hh, b_ih, b_hh) so that state dicts
        # match and reset_parameters() draws the same numbers as nn.GRU under the same seed.
        rows = GATES * hidden_size
        for k in range(num_layers):
            layer_in = input_size if k == 0 else hidden_size
            self.register_parameter(f"weight_ih_l{k}", nn.Parameter(torch.empty(rows, layer_in)))
            self.register_parameter(f"weight_hh_l{k}", nn.Parameter(torch.empty(rows, hidden_size)))
            if bias:
                self.register_parameter(f"bias_ih_l{k}", nn.Parameter(torch.empty(rows)))
                self.register_parameter(f"bias_hh_l{k}", nn.Parameter(torch.empty(rows)))
        if layer_norm:
            hh_width = rows if reset_after else 2 * hidden_size
            for k in range(num_layers):
                self.add_module(f"ln_ih_l{k}", nn.LayerNorm(rows, bias=False))
                self.add_module(f"ln_hh_l{k}", nn.LayerNorm(hh_width, bias=False))
                if not reset_after:
                    self.add_module(f"ln_hn_l{k}", nn.LayerNorm(hidden_size, bias=False))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """nn.GRU's initialization: every GRU parameter ~ U(−1/√H, 1/√H); LayerNorm gains 1."""
        bound = 1.0 / math.sqrt(self.hidden_size)
        for weight in self._parameters.values():  # GRU parameters only, in nn.GRU's order
            nn.init.uniform_(weight, -bound, bound)
        for module in self.children():
            module.reset_parameters()

    def single_layers(self) -> list[CustomGRU]:
        """Each layer as a single-layer, batch-first CustomGRU with every option of this one,
        sharing its parameters and LayerNorms (see :mod:`grubench.models.layers`)."""
        layers = []
        for k in range(self.num_layers):
            with torch.device("meta"):
                template = CustomGRU(
                    self.input_size if k == 0 else self.hidden_size,
                    self.hidden_size,
                    1,
                    bias=self.bias,
                    batch_first=True,
                    reset_after=self.reset_after,
                    activation=self.activation,
                    layer_norm=self.layer_norm,
                    backend=self.backend,
                )
            layers.append(share_layer(self, k, template))
        return layers

    def layer_gates(self, x: Tensor, h_prev: Tensor) -> dict[str, Tensor]:
        """A single layer's r and z at every step, recomputed as forward does (LayerNorms
        included): ``x`` (B, T, I), ``h_prev`` (B, T, H) -> ``{"r", "z"}``, each (B, T, H)."""
        if self.num_layers != 1:
            raise ValueError("layer_gates: call it on one of single_layers()")
        w_ih, w_hh = self.weight_ih_l0, self.weight_hh_l0
        b_ih = self.bias_ih_l0 if self.bias else None
        b_hh = self.bias_hh_l0 if self.bias else None
        H = self.hidden_size
        if self.layer_norm:
            x_proj = self.ln_ih_l0(F.linear(x, w_ih))
            x_proj = x_proj + b_ih if b_ih is not None else x_proj
            # reset_after=False normalizes the 2H block [W_hr h, W_hz h] on its own (as forward)
            w = w_hh if self.reset_after else w_hh[: 2 * H]
            h_proj = self.ln_hh_l0(F.linear(h_prev, w))
            h_proj = h_proj + b_hh[: h_proj.size(-1)] if b_hh is not None else h_proj
        else:
            x_proj = F.linear(x, w_ih, b_ih)
            h_proj = F.linear(h_prev, w_hh, b_hh)
        rz = torch.sigmoid(x_proj[..., : 2 * H] + h_proj[..., : 2 * H])  # (B, T, 2H)
        return {"r": rz[..., :H], "z": rz[..., H:]}

    def flatten_parameters(self) -> None:
        """No-op, for code that calls ``nn.GRU.flatten_parameters()`` (a cuDNN detail)."""

    def extra_repr(self) -> str:
        s = rnn_repr(self)
        if not self.reset_after:
            s += ", reset_after=False"
        if self.activation != "tanh":
            s += f", activation={self.activation!r}"
        if self.layer_norm:
            s += ", layer_norm=True"
        if self.backend != "auto":
            s += f", backend={self.backend!r}"
        return s

    def forward(self, input: Tensor, h0: Tensor | None = None) -> tuple[Tensor, Tensor]:
        batched = check_call(self, input, h0)
        if not batched:
            input = input.unsqueeze(1)  # (T, I) -> (T, 1, I)
            if h0 is not None:
                h0 = h0.unsqueeze(1)  # (L, H) -> (L, 1, H)
        elif self.batch_first:
            input = input.transpose(0, 1)  # (B, T, I) -> (T, B, I)
        if h0 is None:
            h0 = input.new_zeros(self.num_layers, input.size(1), self.hidden_size)

        layer_input = input
        finals = []
        for k in range(self.num_layers):
            layer_input, h_last = self._layer(k, layer_input, h0[k])
            finals.append(h_last)
            if self.dropout and self.training and k < self.num_layers - 1:
                layer_input = F.dropout(layer_input, self.dropout, training=True)
        output, h_n = layer_input, torch.stack(finals)  # (T, B, H), (L, B, H)

        if not batched:
            return output.squeeze(1), h_n.squeeze(1)
        if self.batch_first:
            output = output.transpose(0, 1)  # (T, B, H) -> (B, T, H)
        return output, h_n

    def _layer(self, k: int, x: Tensor, h: Tensor) -> tuple[Tensor, Tensor]:
        """One layer over the whole sequence: ``x`` (T, B, in), ``h`` (B, H)."""
        w_ih: Tensor = getattr(self, f"weight_ih_l{k}")
        w_hh: Tensor = getattr(self, f"weight_hh_l{k}")
        b_ih: Tensor | None = getattr(self, f"bias_ih_l{k}") if self.bias else None
        b_hh: Tensor | None = getattr(self, f"bias_hh_l{k}") if self.bias else None
        if self.layer_norm:
            ln_ih, ln_hh = getattr(self, f"ln_ih_l{k}"), getattr(self, f"ln_hh_l{k}")
            ln_hn = None if self.reset_after else getattr(self, f"ln_hn_l{k}")
        H = self.hidden_size
        act = self._act

        if self.reset_after and not self.layer_norm and self.backend != "autograd":
            x_proj = input_projection(x, w_ih, b_ih)  # (T, B, 3H)
            return gru_layer(x_proj, h, w_hh, b_hh, self.activation == "relu", self.backend)

        # The input projection for all T steps in one matmul: (T, B, 3H).
        if self.layer_norm:
            x_proj = ln_ih(F.linear(x, w_ih))
            if b_ih is not None:
                x_proj = x_proj + b_ih
        else:
            x_proj = F.linear(x, w_ih, b_ih)

        # unbind, not x_proj[t]: one UnbindBackward for the whole sequence instead of T
        # SelectBackwards that each materialize a full (T, B, 3H) gradient (quadratic in T).
        # split/chunk rather than slicing: one SplitBackward concatenates the gradients of the
        # parts, where each slice would scatter its own into a zero (B, 3H) tensor.
        outputs = []
        if self.reset_after:
            for xp in x_proj.unbind(0):  # xp: (B, 3H)
                if self.layer_norm:
                    hp = ln_hh(h.mm(w_hh.t()))
                    if b_hh is not None:
                        hp = hp + b_hh
                else:
                    hp = F.linear(h, w_hh, b_hh)  # (B, 3H)
                x_rz, x_n = xp.split([2 * H, H], 1)
                h_rz, h_n = hp.split([2 * H, H], 1)
                r, z = torch.sigmoid(x_rz + h_rz).chunk(2, 1)
                n = act(torch.addcmul(x_n, r, h_n))  # x_n + r ⊙ h_n
                h = torch.lerp(n, h, z)  # n + z ⊙ (h − n) = (1 − z) ⊙ n + z ⊙ h
                outputs.append(h)
        else:
            # Slice the weights once, outside the loop, so their gradients accumulate once.
            w_hrz, w_hn = w_hh.split([2 * H, H], 0)
            b_hrz, b_hn = b_hh.split([2 * H, H], 0) if b_hh is not None else (None, None)
            for xp in x_proj.unbind(0):  # xp: (B, 3H)
                if self.layer_norm:
                    h_rz = ln_hh(h.mm(w_hrz.t()))
                    if b_hrz is not None:
                        h_rz = h_rz + b_hrz
                else:
                    h_rz = F.linear(h, w_hrz, b_hrz)  # (B, 2H)
                x_rz, x_n = xp.split([2 * H, H], 1)
                r, z = torch.sigmoid(x_rz + h_rz).chunk(2, 1)
                if self.layer_norm:
                    h_n = ln_hn((r * h).mm(w_hn.t()))
                    if b_hn is not None:
                        h_n = h_n + b_hn
                else:
                    h_n = F.linear(r * h, w_hn, b_hn)  # (B, H)
                n = act(x_n + h_n)
                h = torch.lerp(n, h, z)
                outputs.append(h)
        return torch.stack(outputs), h  # (T, B, H), (B, H)


def build_custom_gru(
    input_size: int, hidden_size: int, num_layers: int, dropout: float, **options
) -> CustomGRU:
    """The registry's builder: a batch-first CustomGRU with its options
    (:class:`grubench.models.options.CustomGRUOptions`)."""
    return CustomGRU(
        input_size, hidden_size, num_layers, batch_first=True, dropout=dropout, **options
    )
