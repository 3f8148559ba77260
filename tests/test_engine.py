"""grubench's engine (grubench.models.engine) against torch: nn.LSTM and nn.RNN with copied
weights (outputs, final states, every gradient), gradcheck in float64, and the min-RNNs'
compiled linear recurrence against the PyTorch loop and the log-space scan."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from grubench.models import gru_bptt
from grubench.models.engine import (
    LSTM,
    RNN,
    _LinearScan,
    _LSTMLayer,
    _MinRNNLayer,
    _RNNLayer,
    input_projection,
    linear_recurrence,
)
from grubench.models.min_rnns import MinGRU, MinLSTM

TIER = "unit"

pytestmark = pytest.mark.skipif(
    gru_bptt.load_extension() is None, reason="the compiled loops cannot be built here"
)
ATOL = 1e-5
INPUT, HIDDEN, BATCH, STEPS = 3, 5, 4, 7


def _pair(kind: str, **kwargs) -> tuple[nn.Module, nn.Module]:
    """torch's module and the engine's, with the same weights."""
    torch.manual_seed(0)
    if kind == "lstm":
        ref, ours = nn.LSTM(INPUT, HIDDEN, **kwargs), LSTM(INPUT, HIDDEN, backend="cpp", **kwargs)
    else:
        ref = nn.RNN(INPUT, HIDDEN, nonlinearity=kind, **kwargs)
        ours = RNN(INPUT, HIDDEN, nonlinearity=kind, backend="cpp", **kwargs)
    ours.load_state_dict(ref.state_dict())
    return ref, ours


def _run(module: nn.Module, x: torch.Tensor, state, weights) -> list[torch.Tensor | None]:
    """Forward and backward with a loss weighting every output and final-state entry; returns
    the outputs, final states and the gradients of the input, initial states and parameters."""
    x = x.clone().requires_grad_(True)
    if state is not None:
        state = tuple(s.clone().requires_grad_(True) for s in state)
        hx = state if isinstance(module, nn.LSTM) else state[0]
    out, final = module(x, None if state is None else hx)
    finals = final if isinstance(final, tuple) else (final,)
    loss = (out * weights[0]).sum() + sum((f * w).sum() for f, w in zip(finals, weights[1:]))
    loss.backward()
    grads = [x.grad] + ([s.grad for s in state] if state is not None else [])
    return [out, *finals, *grads, *(p.grad for p in module.parameters())]


KINDS = ["lstm", "tanh", "relu"]


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("with_state", [True, False])
@pytest.mark.parametrize("batch_first", [True, False])
@pytest.mark.parametrize("num_layers", [1, 2])
@pytest.mark.parametrize("kind", KINDS)
def test_matches_torch(kind, num_layers, batch_first, with_state, bias):
    ref, ours = _pair(kind, num_layers=num_layers, batch_first=batch_first, bias=bias)
    shape = (BATCH, STEPS, INPUT) if batch_first else (STEPS, BATCH, INPUT)
    x = torch.randn(shape)
    states = 2 if kind == "lstm" else 1
    state = tuple(torch.randn(num_layers, BATCH, HIDDEN) for _ in range(states))
    weights = [torch.randn(shape[:2] + (HIDDEN,))]
    weights += [torch.randn(num_layers, BATCH, HIDDEN) for _ in range(states)]
    want = _run(ref, x, state if with_state else None, weights)
    got = _run(ours, x, state if with_state else None, weights)
    assert len(want) == len(got)
    for index, (w, g) in enumerate(zip(want, got)):
        assert g is not None and g.shape == w.shape, index
        torch.testing.assert_close(g, w, atol=ATOL, rtol=0, msg=f"result {index}")


@pytest.mark.parametrize("kind", KINDS)
def test_unbatched_no_grad_and_inference_match(kind):
    ref, ours = _pair(kind, num_layers=2)
    x = torch.randn(STEPS, INPUT)  # unbatched
    for mode in (torch.no_grad, torch.inference_mode, torch.enable_grad):
        with mode():
            want, got = ref(x), ours(x)
        torch.testing.assert_close(got[0], want[0], atol=ATOL, rtol=0)
        for w, g in zip(
            want[1] if kind == "lstm" else [want[1]], got[1] if kind == "lstm" else [got[1]]
        ):
            torch.testing.assert_close(g, w, atol=ATOL, rtol=0)


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("kind", KINDS)
def test_a_large_batch_split_across_threads(kind, threads):
    # 64 rows run as row blocks on the intra-op threads, each with its own BLAS calls
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        ref, ours = _pair(kind, batch_first=True)
        x = torch.randn(64, 30, INPUT)
        weights = [torch.randn(64, 30, HIDDEN)] + [torch.randn(1, 64, HIDDEN)] * 2
        for w, g in zip(_run(ref, x, None, weights), _run(ours, x, None, weights)):
            torch.testing.assert_close(g, w, atol=1e-4, rtol=1e-4)
    finally:
        torch.set_num_threads(previous)


def test_gradcheck_in_float64():
    torch.manual_seed(1)
    T, B, H = 4, 3, 2

    def leaf(*shape):
        return torch.randn(*shape, dtype=torch.float64, requires_grad=True)

    lstm_args = (leaf(T, B, 4 * H), leaf(B, H), leaf(B, H), leaf(4 * H, H), leaf(4 * H))
    assert torch.autograd.gradcheck(_LSTMLayer.apply, lstm_args)
    for relu in (False, True):
        rnn_args = (leaf(T, B, H), leaf(B, H), leaf(H, H), leaf(H), relu)
        assert torch.autograd.gradcheck(_RNNLayer.apply, rnn_args)
    scan_args = (
        torch.rand(B, T, H, dtype=torch.float64, requires_grad=True),
        leaf(B, T, H),
        leaf(B, H),
    )
    assert torch.autograd.gradcheck(_LinearScan.apply, scan_args)
    for lstm, gates in ((False, 2), (True, 3)):  # pre-activations of both signs: g's branches
        min_args = (3 * leaf(B, T, gates * H), leaf(B, H), lstm)
        assert torch.autograd.gradcheck(_MinRNNLayer.apply, min_args)


def test_output_may_be_modified_in_place():
    # the states for the backward are kept apart from the returned output (nn.GRU's and
    # nn.RNN's allow this; oneDNN's nn.LSTM does not)
    for kind in KINDS:
        ref, ours = _pair(kind)
        x = torch.randn(STEPS, BATCH, INPUT)
        (2 * ref(x)[0]).sum().backward()
        out = ours(x)[0]
        out.mul_(2)
        out.sum().backward()
        for want, got in zip(ref.parameters(), ours.parameters()):
            torch.testing.assert_close(got.grad, want.grad, atol=ATOL, rtol=0)


def test_backends_and_where_the_engine_does_not_apply():
    ref, ours = _pair("lstm")
    x = torch.randn(STEPS, BATCH, INPUT)
    with pytest.raises(ValueError, match=r"LSTM backend 'cpp' cannot run torch.bfloat16 on cpu"):
        ours(x.bfloat16())
    packed = nn.utils.rnn.pack_sequence([torch.randn(5, INPUT), torch.randn(3, INPUT)])
    with pytest.raises(ValueError, match="PackedSequence input"):
        ours(packed)
    ours.backend = "auto"  # torch's forward takes what the engine does not
    torch.testing.assert_close(ours(packed)[0].data, ref(packed)[0].data)
    assert ours.bfloat16()(x.bfloat16())[0].dtype == torch.bfloat16
    with pytest.raises(ValueError, match="unknown backend 'fast'; choose from: auto, cpp, torch"):
        LSTM(INPUT, HIDDEN, backend="fast")
    assert "backend='torch'" in repr(RNN(INPUT, HIDDEN, backend="torch"))


def test_dropout_between_layers_in_training_only():
    torch.manual_seed(2)
    lstm = LSTM(INPUT, HIDDEN, 2, dropout=0.5)
    x = torch.randn(STEPS, BATCH, INPUT)
    assert not torch.equal(lstm(x)[0], lstm(x)[0])  # two dropout masks
    lstm.eval()
    torch.testing.assert_close(lstm(x)[0], nn.LSTM.forward(lstm, x)[0], atol=ATOL, rtol=0)


@pytest.mark.parametrize("with_h0", [True, False])
def test_linear_recurrence_compiled_equals_the_loop(with_h0):
    torch.manual_seed(3)
    a = torch.rand(BATCH, 50, HIDDEN, requires_grad=True)
    b = torch.randn(BATCH, 50, HIDDEN, requires_grad=True)
    h0 = torch.randn(BATCH, HIDDEN, requires_grad=True) if with_h0 else None
    weights = torch.randn(BATCH, 50, HIDDEN)
    results = []
    for compiled in (True, False):
        h = linear_recurrence(a, b, h0, compiled=compiled)
        leaves = [a, b] + ([h0] if with_h0 else [])
        grads = torch.autograd.grad((h * weights).sum(), leaves)
        results.append([h, *grads])
    for got, want in zip(*results):
        torch.testing.assert_close(got, want, atol=ATOL, rtol=1e-5)


@pytest.mark.parametrize("cls", [MinGRU, MinLSTM])
def test_min_rnns_on_the_engine_equal_the_log_space_scan(cls):
    torch.manual_seed(4)
    # in float64: the log-space scan's float32 rounding grows with |Σ log a| (min_rnns.py)
    parallel = cls(INPUT, HIDDEN, 2, batch_first=True, scan="parallel").double()
    engine = cls(INPUT, HIDDEN, 2, batch_first=True).double()  # auto: the compiled loop on CPU
    engine.load_state_dict(parallel.state_dict())
    x = torch.randn(BATCH, 40, INPUT, dtype=torch.float64)
    results = []
    for module in (parallel, engine):
        out, h_n = module(x)
        (out.sum() + h_n.square().sum()).backward()
        results.append([out, h_n, *(p.grad for p in module.parameters())])
    for got, want in zip(results[1], results[0]):
        torch.testing.assert_close(got, want, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("cls", [MinGRU, MinLSTM])
def test_min_rnns_fused_loop_equals_the_pytorch_loop(cls, monkeypatch):
    # float32, the fits' precision: the loop with its gates fused against the coefficients in
    # torch ops and the PyTorch loop (the fallback where the loop is not built)
    import grubench.models.min_rnns as min_rnns

    torch.manual_seed(5)
    module = cls(INPUT, HIDDEN, 2, batch_first=True)
    x, h0 = torch.randn(64, 30, INPUT) * 3, torch.randn(2, 64, HIDDEN)
    results = []
    for fused in (True, False):
        if not fused:
            monkeypatch.setattr(min_rnns, "fused_min_rnn", lambda *args, **kwargs: None)
        out, h_n = module(x, h0)
        grads = torch.autograd.grad(out.sum() + h_n.square().sum(), list(module.parameters()))
        results.append([out, h_n, *grads])
    for got, want in zip(*results):
        torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("inputs", [1, 2, 9])
def test_input_projection_equals_linear(bias, inputs):
    """The projection's own backward (weight gradient as (xᵀ g)ᵀ) against F.linear's autograd,
    and by gradcheck in float64, for the input, the weight and the bias."""
    torch.manual_seed(0)
    x = torch.randn(STEPS, BATCH, inputs, requires_grad=True)
    w = torch.randn(3 * HIDDEN, inputs, requires_grad=True)
    b = torch.randn(3 * HIDDEN, requires_grad=True) if bias else None
    weights = torch.randn(STEPS, BATCH, 3 * HIDDEN)
    leaves = [t for t in (x, w, b) if t is not None]
    ours = input_projection(x, w, b)
    grads = torch.autograd.grad((ours * weights).sum(), leaves)
    ref = torch.nn.functional.linear(x, w, b)
    ref_grads = torch.autograd.grad((ref * weights).sum(), leaves)
    torch.testing.assert_close(ours, ref, atol=ATOL, rtol=0)
    for got, want in zip(grads, ref_grads):
        torch.testing.assert_close(got, want, atol=ATOL, rtol=1e-5)
    doubles = [t.detach().double().requires_grad_(True) for t in (x, w, b) if t is not None]
    assert torch.autograd.gradcheck(
        lambda x, w, *b: input_projection(x, w, b[0] if b else None), doubles
    )
    with torch.no_grad():  # no graph: plain F.linear
        assert input_projection(x, w, b).grad_fn is None
