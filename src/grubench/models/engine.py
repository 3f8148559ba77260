"""grubench's engine for the LSTM, the vanilla RNN and the min-RNNs' linear recurrence on CPU.

The same design as the GRU's (:mod:`grubench.models.gru_bptt`): each layer's input projection
``W_i x + b_i`` is one matmul over the whole sequence (autograd's), then one
``autograd.Function`` runs the time loop and its hand-written backward in compiled C++
(``csrc/cells.cpp``, ``csrc/linear_scan.cpp``): the pointwise work of a step fused into one
vectorized pass, the step's recurrent matmul called straight into BLAS (no ATen op dispatch per
time step), the recurrent weight's gradient one matmul over all steps afterwards. Since the
pre-activations are ``x_proj + W_h h + b_h``, ∂L/∂x_proj is the pre-activations' gradient and
∂L/∂b_h its sum.

- :class:`LSTM` and :class:`RNN` are ``nn.LSTM`` and ``nn.RNN`` (same parameters, state dicts,
  initialization, interface) whose ``forward`` runs the engine where it applies (CPU, float32
  or float64, a plain tensor input, unidirectional, no ``proj_size``) and their own ``forward``
  (oneDNN's or ATen's) otherwise. ``backend``: ``auto`` (the engine where it applies and builds),
  ``cpp`` (the engine, else an error) or ``torch`` (always torch's).
- :func:`linear_recurrence` computes ``h_t = a_t ⊙ h_{t−1} + b_t`` sequentially (compiled on
  CPU, a PyTorch loop elsewhere); the min-RNNs' ``scan="sequential"`` runs on it.

tests/test_engine.py checks outputs, final states and every gradient against torch's modules
and loops, in float32 and by gradcheck in float64.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.autograd.function import once_differentiable

from grubench.models.gru_bptt import load_extension
from grubench.models.options import ENGINE_BACKENDS

BACKENDS = ENGINE_BACKENDS  # how LSTM and RNN run (grubench.models.options)


def engine_ops(backend: str, input: object, module: nn.Module) -> object | None:
    """``torch.ops.grubench_rnn`` when ``module`` (an LSTM or RNN of this file) runs ``input``
    on the engine, else None; ``cpp`` raises where the engine cannot run it."""
    if backend == "torch":
        return None
    name = type(module).__name__
    why = None
    if not isinstance(input, Tensor):
        why = f"a {type(input).__name__} input (packed sequences run on torch's)"
    elif input.device.type != "cpu" or input.dtype not in (torch.float32, torch.float64):
        why = f"{input.dtype} on {input.device} (float32/float64 CPU tensors only)"
    elif module.bidirectional or getattr(module, "proj_size", 0):
        why = "bidirectional=True or proj_size > 0"
    if why is None and load_extension() is None:
        why = "the compiled loops are not available (GRUBENCH_GRU_EXT=0, or the build failed)"
    if why is None:
        return torch.ops.grubench_rnn
    if backend == "cpp":
        raise ValueError(f"{name} backend 'cpp' cannot run {why}; use backend 'auto' or 'torch'")
    return None


class _LSTMLayer(torch.autograd.Function):
    """``(x_proj (T, B, 4H), h0, c0 (B, H), w_hh (4H, H), b_hh | None) -> (out (T, B, H), h_n,
    c_n)``."""

    @staticmethod
    def forward(ctx, x_proj, h0, c0, w_hh, b_hh):  # noqa: ANN001, ANN205
        ops = torch.ops.grubench_rnn
        out, states, cells, saved = ops.lstm_forward(x_proj, h0, c0, w_hh, b_hh, True)
        ctx.has_bias = b_hh is not None
        ctx.save_for_backward(h0, c0, states, cells, saved, w_hh)
        return out, states[-1].clone(), cells[-1].clone()

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_out, grad_hn, grad_cn):  # noqa: ANN001, ANN205
        h0, c0, states, cells, saved, w_hh = ctx.saved_tensors
        d, grad_h0, grad_c0, grad_w = torch.ops.grubench_rnn.lstm_backward(
            grad_out, grad_hn, grad_cn, h0, c0, states, cells, saved, w_hh
        )
        grad_b = d.sum((0, 1)) if ctx.has_bias else None
        return d, grad_h0, grad_c0, grad_w, grad_b


class _RNNLayer(torch.autograd.Function):
    """``(x_proj (T, B, H), h0 (B, H), w_hh (H, H), b_hh | None, relu) -> (out, h_n)``."""

    @staticmethod
    def forward(ctx, x_proj, h0, w_hh, b_hh, relu):  # noqa: ANN001, ANN205
        out, states = torch.ops.grubench_rnn.rnn_forward(x_proj, h0, w_hh, b_hh, relu, True)
        ctx.has_bias, ctx.relu = b_hh is not None, relu
        ctx.save_for_backward(h0, states, w_hh)
        return out, states[-1].clone()

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_out, grad_hn):  # noqa: ANN001, ANN205
        h0, states, w_hh = ctx.saved_tensors
        d, grad_h0, grad_w = torch.ops.grubench_rnn.rnn_backward(
            grad_out, grad_hn, h0, states, w_hh, ctx.relu
        )
        grad_b = d.sum((0, 1)) if ctx.has_bias else None
        return d, grad_h0, grad_w, grad_b, None


class _InputProjection(torch.autograd.Function):
    """``x (..., I) W (N, I)ᵀ + b`` over a whole sequence, as ``F.linear``, with the weight's
    gradient computed as ``(xᵀ g)ᵀ``, not autograd's ``gᵀ x``: the same sums, but with few
    inputs (the adding problem's 2, a digit's 1) MKL runs the second form 2-7x slower
    ((B·T, N)ᵀ (B·T, I) at B·T = 16,384, I = 2, N = 128: 3.4-3.9 ms against 0.45-2.0 ms,
    cache-warm and cold; at I = 64 the two take the same time). Appending a column of ones to
    x so that the bias rides in the matmuls was measured too: slower (10.2 → 12.6 ms for
    minGRU's step at H = 64, T = 256)."""

    @staticmethod
    def forward(ctx, x, weight, bias):  # noqa: ANN001, ANN205
        x2 = x.reshape(-1, x.size(-1))  # (B·T, I)
        out = torch.addmm(bias, x2, weight.t()) if bias is not None else x2.mm(weight.t())
        ctx.save_for_backward(x2, weight)
        ctx.has_bias = bias is not None
        return out.view(*x.shape[:-1], weight.size(0))

    @staticmethod
    @once_differentiable
    def backward(ctx, grad):  # noqa: ANN001, ANN205
        x2, weight = ctx.saved_tensors
        g2 = grad.reshape(-1, weight.size(0))  # (B·T, N)
        grad_x = grad_w = grad_b = None
        if ctx.needs_input_grad[0]:
            grad_x = g2.mm(weight).view(*grad.shape[:-1], weight.size(1))
        if ctx.needs_input_grad[1]:
            grad_w = x2.t().mm(g2).t().contiguous()
        if ctx.has_bias and ctx.needs_input_grad[2]:
            grad_b = g2.sum(0)
        return grad_x, grad_w, grad_b


def input_projection(x: Tensor, weight: Tensor, bias: Tensor | None) -> Tensor:
    """``F.linear(x, weight, bias)`` for a layer's whole input sequence (``x`` (..., I)), with
    the weight gradient in the form BLAS runs fast for few inputs (:class:`_InputProjection`)."""
    if not _needs_grad(x, weight, bias):
        return F.linear(x, weight, bias)
    return _InputProjection.apply(x, weight, bias)


def _needs_grad(*tensors: Tensor | None) -> bool:
    return torch.is_grad_enabled() and any(t is not None and t.requires_grad for t in tensors)


class _EngineMixin:
    """The part of ``nn.LSTM`` / ``nn.RNN``'s forward the engine takes over: shapes, the initial
    state, the layers and the dropout between them."""

    backend: str

    def _set_backend(self, backend: str) -> None:
        if backend not in BACKENDS:
            raise ValueError(f"unknown backend {backend!r}; choose from: {', '.join(BACKENDS)}")
        self.backend = backend

    def extra_repr(self) -> str:
        s = super().extra_repr()  # type: ignore[misc]
        return s if self.backend == "auto" else f"{s}, backend={self.backend!r}"

    def _params(self, k: int) -> tuple[Tensor, Tensor, Tensor | None, Tensor | None]:
        names = (f"weight_ih_l{k}", f"weight_hh_l{k}", f"bias_ih_l{k}", f"bias_hh_l{k}")
        return tuple(getattr(self, n) if self.bias or n.startswith("w") else None for n in names)

    def _run(self, input: Tensor, states: tuple[Tensor, ...] | None, layer) -> tuple:  # noqa: ANN001
        """``input`` as nn.LSTM / nn.RNN take it; ``states`` their initial ones ((L, B, H) each,
        or (L, H) unbatched), None for zeros; ``layer(k, x (T, B, in), states of layer k)`` ->
        ``(out (T, B, H), final states of layer k)``. Returns ``(output, final states)``."""
        batched = input.dim() == 3
        if input.dim() not in (2, 3):
            raise ValueError(f"{type(self).__name__}: expected input of 2 or 3 dimensions, "
                             f"got {input.dim()}")  # fmt: skip
        if not batched:
            input = input.unsqueeze(1)  # (T, I) -> (T, 1, I)
            states = None if states is None else tuple(s.unsqueeze(1) for s in states)
        elif self.batch_first:
            input = input.transpose(0, 1)  # (B, T, I) -> (T, B, I)
        if input.size(-1) != self.input_size:
            raise RuntimeError(
                f"input.size(-1) must be equal to input_size. Expected {self.input_size}, "
                f"got {input.size(-1)}"
            )
        L, B, H = self.num_layers, input.size(1), self.hidden_size
        if states is None:
            states = (input.new_zeros(L, B, H),) * self._state_count
        for s in states:
            if s.shape != (L, B, H):
                raise RuntimeError(f"Expected hidden size {(L, B, H)}, got {tuple(s.shape)}")
        x, finals = input, []
        for k in range(L):
            if k > 0 and self.dropout and self.training:
                x = F.dropout(x, self.dropout, training=True)
            x, last = layer(k, x, tuple(s[k] for s in states))
            finals.append(last)
        output = x  # (T, B, H)
        final = tuple(torch.stack(parts) for parts in zip(*finals))  # (L, B, H) each
        if not batched:
            return output.squeeze(1), tuple(f.squeeze(1) for f in final)
        if self.batch_first:
            output = output.transpose(0, 1)  # (T, B, H) -> (B, T, H)
        return output, final


class LSTM(_EngineMixin, nn.LSTM):
    """``nn.LSTM`` whose CPU forward and backward run grubench's engine (module docstring)."""

    _state_count = 2

    def __init__(self, *args, backend: str = "auto", **kwargs) -> None:  # noqa: ANN002, ANN003
        super().__init__(*args, **kwargs)
        self._set_backend(backend)

    def forward(self, input, hx=None):  # noqa: ANN001, ANN201 - nn.LSTM's signature
        ops = engine_ops(self.backend, input, self)
        if ops is None:
            return super().forward(input, hx)

        def layer(k: int, x: Tensor, state: tuple[Tensor, Tensor]) -> tuple:
            w_ih, w_hh, b_ih, b_hh = self._params(k)
            x_proj = input_projection(x, w_ih, b_ih)  # (T, B, 4H)
            h0, c0 = state
            if _needs_grad(x_proj, h0, c0, w_hh, b_hh):
                out, h_n, c_n = _LSTMLayer.apply(x_proj, h0, c0, w_hh, b_hh)
            else:
                out, _, cells, _ = ops.lstm_forward(x_proj, h0, c0, w_hh, b_hh, False)
                h_n, c_n = out[-1], cells[-1]
            return out, (h_n, c_n)

        output, (h_n, c_n) = self._run(input, hx, layer)
        return output, (h_n, c_n)


class RNN(_EngineMixin, nn.RNN):
    """``nn.RNN`` (tanh or ReLU) whose CPU forward and backward run grubench's engine."""

    _state_count = 1

    def __init__(self, *args, backend: str = "auto", **kwargs) -> None:  # noqa: ANN002, ANN003
        super().__init__(*args, **kwargs)
        self._set_backend(backend)

    def forward(self, input, hx=None):  # noqa: ANN001, ANN201 - nn.RNN's signature
        ops = engine_ops(self.backend, input, self)
        if ops is None:
            return super().forward(input, hx)
        relu = self.nonlinearity == "relu"

        def layer(k: int, x: Tensor, state: tuple[Tensor]) -> tuple:
            w_ih, w_hh, b_ih, b_hh = self._params(k)
            x_proj = input_projection(x, w_ih, b_ih)  # (T, B, H)
            if _needs_grad(x_proj, state[0], w_hh, b_hh):
                out, h_n = _RNNLayer.apply(x_proj, state[0], w_hh, b_hh, relu)
            else:
                out = ops.rnn_forward(x_proj, state[0], w_hh, b_hh, relu, False)[0]
                h_n = out[-1]
            return out, (h_n,)

        output, (h_n,) = self._run(input, None if hx is None else (hx,), layer)
        return output, h_n


class _LinearScan(torch.autograd.Function):
    """``(a, b (B, T, H), h0 (B, H)) -> h (B, T, H)``, ``h_t = a_t ⊙ h_{t−1} + b_t``."""

    @staticmethod
    def forward(ctx, a, b, h0):  # noqa: ANN001, ANN205
        h = torch.ops.grubench_rnn.linear_scan_forward(a, b, h0)
        ctx.save_for_backward(a, h, h0)
        return h

    @staticmethod
    @once_differentiable
    def backward(ctx, grad):  # noqa: ANN001, ANN205
        a, h, h0 = ctx.saved_tensors
        return torch.ops.grubench_rnn.linear_scan_backward(grad, a, h, h0)


def linear_recurrence(a: Tensor, b: Tensor, h0: Tensor | None, compiled: bool = True) -> Tensor:
    """``h_t = a_t ⊙ h_{t−1} + b_t`` step by step: ``a``, ``b`` (B, T, H), ``h0`` (B, H) or None
    for zeros; returns (B, T, H). The compiled loop where ``compiled`` and it applies (CPU,
    float32/float64, built), else one ``addcmul`` per step."""
    if h0 is None:
        h0 = a.new_zeros(a.size(0), a.size(2))
    tensors = (a, b, h0)
    if (
        compiled
        and all(
            t.device.type == "cpu" and t.dtype in (torch.float32, torch.float64) for t in tensors
        )
        and len({t.dtype for t in tensors}) == 1
        and load_extension() is not None
    ):
        if _needs_grad(*tensors):
            return _LinearScan.apply(a, b, h0)
        return torch.ops.grubench_rnn.linear_scan_forward(a, b, h0)
    h, outputs = h0, []
    for a_t, b_t in zip(a.unbind(1), b.unbind(1)):  # (B, H) each
        h = torch.addcmul(b_t, a_t, h)  # a_t ⊙ h + b_t
        outputs.append(h)
    return torch.stack(outputs, 1)


class _MinRNNLayer(torch.autograd.Function):
    """``(pre (B, T, G·H), h0 (B, H), lstm) -> h (B, T, H)``: a minGRU (G = 2) or minLSTM
    (G = 3) layer from its pre-activations, coefficients fused into the loop."""

    @staticmethod
    def forward(ctx, pre, h0, lstm):  # noqa: ANN001, ANN205
        h = torch.ops.grubench_rnn.min_rnn_forward(pre, h0, lstm)
        ctx.lstm = lstm
        ctx.save_for_backward(pre, h, h0)
        return h

    @staticmethod
    @once_differentiable
    def backward(ctx, grad):  # noqa: ANN001, ANN205
        pre, h, h0 = ctx.saved_tensors
        grad_pre, grad_h0 = torch.ops.grubench_rnn.min_rnn_backward(grad, pre, h, h0, ctx.lstm)
        return grad_pre, grad_h0, None


def fused_min_rnn(pre: Tensor, h0: Tensor | None, lstm: bool) -> Tensor | None:
    """A minGRU / minLSTM layer's recurrence from its pre-activations ``pre`` (B, T, G·H) on the
    compiled loop, gates and coefficients computed inside it (one pass over the sequence each
    way, where the coefficients in torch ops take about fifteen); None where it does not apply
    (not CPU float32/float64, or not built): the caller then runs :func:`linear_recurrence`."""
    if pre.device.type != "cpu" or pre.dtype not in (torch.float32, torch.float64):
        return None
    if load_extension() is None:
        return None
    if h0 is None:
        h0 = pre.new_zeros(pre.size(0), pre.size(2) // (3 if lstm else 2))
    elif h0.dtype != pre.dtype or h0.device != pre.device:
        return None
    if _needs_grad(pre, h0):
        return _MinRNNLayer.apply(pre, h0, lstm)
    return torch.ops.grubench_rnn.min_rnn_forward(pre, h0, lstm)
