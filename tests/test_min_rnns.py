"""minGRU and minLSTM: the parallel log-space scan is the step-by-step recurrence (outputs,
final state, every gradient; fp32, tiny shapes), each is the paper's cell written out by hand,
and the module keeps nn.GRU's interface."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from grubench.models.layers import describe
from grubench.models.min_rnns import MinGRU, MinLSTM, g, heinsen_scan, log_g

TIER = "unit"

CLASSES = {"min_gru": MinGRU, "min_lstm": MinLSTM}
INPUT, HIDDEN, BATCH, T = 3, 5, 4, 9


def pair(cls, layers: int, **kwargs):
    """The same weights in parallel and in sequential mode."""
    torch.manual_seed(0)
    parallel = cls(INPUT, HIDDEN, layers, batch_first=True, scan="parallel", **kwargs)
    sequential = cls(INPUT, HIDDEN, layers, batch_first=True, scan="sequential", **kwargs)
    sequential.load_state_dict(parallel.state_dict())
    return parallel, sequential


def run(module, x, h0):
    for p in module.parameters():
        p.grad = None
    x = x.detach().clone().requires_grad_(True)
    h0 = None if h0 is None else h0.detach().clone().requires_grad_(True)
    output, h_n = module(x, h0)
    # weights on every output and on the final state, so each path carries gradient
    torch.manual_seed(1)
    loss = (output * torch.randn_like(output)).sum() + (h_n * torch.randn_like(h_n)).sum()
    loss.backward()
    grads = {name: p.grad for name, p in module.named_parameters()}
    grads["input"] = x.grad
    if h0 is not None:
        grads["h0"] = h0.grad
    return output, h_n, grads


@pytest.mark.parametrize("name", CLASSES)
@pytest.mark.parametrize("layers", [1, 3])
@pytest.mark.parametrize("with_h0", [False, True])
@pytest.mark.parametrize("bias", [True, False])
def test_parallel_scan_equals_the_sequential_recurrence(name, layers, with_h0, bias):
    parallel, sequential = pair(CLASSES[name], layers, bias=bias)
    torch.manual_seed(2)
    x = torch.randn(BATCH, T, INPUT) * 2  # pre-activations on both sides of g's kink
    h0 = torch.randn(layers, BATCH, HIDDEN) if with_h0 else None  # of both signs
    out_p, h_p, grads_p = run(parallel, x, h0)
    out_s, h_s, grads_s = run(sequential, x, h0)
    torch.testing.assert_close(out_p, out_s, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(h_p, h_s, rtol=1e-5, atol=1e-5)
    assert (
        set(grads_p)
        == set(grads_s)
        == {n for n, _ in parallel.named_parameters()} | ({"input", "h0"} if with_h0 else {"input"})
    )
    for key in grads_s:
        assert grads_s[key].abs().sum() > 0, key  # every gradient is exercised
        torch.testing.assert_close(grads_p[key], grads_s[key], rtol=1e-5, atol=1e-5, msg=key)


@pytest.mark.parametrize("scan", ["parallel", "sequential"])
def test_min_gru_is_the_papers_cell(scan):
    """One layer against the paper's sequential minGRU written out with two linear maps."""
    torch.manual_seed(3)
    gru = MinGRU(INPUT, HIDDEN, batch_first=True, scan=scan)
    x, h0 = torch.randn(BATCH, T, INPUT), torch.randn(1, BATCH, HIDDEN)
    w_z, w_h = gru.weight_ih_l0.split(HIDDEN)
    b_z, b_h = gru.bias_ih_l0.split(HIDDEN)
    h, outputs = h0[0], []
    for t in range(T):
        z = torch.sigmoid(x[:, t] @ w_z.T + b_z)
        h_tilde = x[:, t] @ w_h.T + b_h
        h_tilde = torch.where(h_tilde >= 0, h_tilde + 0.5, torch.sigmoid(h_tilde))
        h = (1 - z) * h + z * h_tilde
        outputs.append(h)
    out, h_n = gru(x, h0)
    torch.testing.assert_close(out, torch.stack(outputs, 1), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(h_n[0], h, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("scan", ["parallel", "sequential"])
def test_min_lstm_is_the_papers_cell(scan):
    torch.manual_seed(4)
    lstm = MinLSTM(INPUT, HIDDEN, batch_first=True, scan=scan)
    x, h0 = torch.randn(BATCH, T, INPUT), torch.randn(1, BATCH, HIDDEN)
    w_f, w_i, w_h = lstm.weight_ih_l0.split(HIDDEN)
    b_f, b_i, b_h = lstm.bias_ih_l0.split(HIDDEN)
    h, outputs = h0[0], []
    for t in range(T):
        f = torch.sigmoid(x[:, t] @ w_f.T + b_f)
        i = torch.sigmoid(x[:, t] @ w_i.T + b_i)
        f, i = f / (f + i), i / (f + i)
        h = f * h + i * g(x[:, t] @ w_h.T + b_h)
        outputs.append(h)
    out, h_n = lstm(x, h0)
    torch.testing.assert_close(out, torch.stack(outputs, 1), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(h_n[0], h, rtol=1e-5, atol=1e-5)


def test_log_g_and_the_scan():
    x = torch.linspace(-30, 30, 601, dtype=torch.float64, requires_grad=True)
    torch.testing.assert_close(log_g(x).exp(), g(x))
    log_g(x).sum().backward()
    assert torch.isfinite(x.grad).all()  # the unused branch of the where gives no NaN
    # a scan over a long run of small coefficients stays finite and matches the loop
    torch.manual_seed(5)
    log_a = -F.softplus(torch.randn(2, 500, 3) + 2)  # a_t ≈ 0.1: a* reaches about -1000
    log_b = torch.randn(2, 500, 3)
    h0 = torch.randn(2, 3)
    h, want = h0, []
    for a_t, b_t in zip(log_a.exp().unbind(1), log_b.exp().unbind(1)):
        h = a_t * h + b_t
        want.append(h)
    # to the precision the module docstring states: |a*| · 6e-8 relative, a few ulps of it
    bound = 4 * log_a.cumsum(1).abs().max().item() * 6e-8
    torch.testing.assert_close(
        heinsen_scan(log_a, log_b, h0), torch.stack(want, 1), rtol=bound, atol=1e-5
    )


@pytest.mark.parametrize("name", CLASSES)
def test_the_interface_of_nn_gru(name):
    cls = CLASSES[name]
    torch.manual_seed(6)
    batch_first = cls(INPUT, HIDDEN, 2, batch_first=True)
    time_first = cls(INPUT, HIDDEN, 2)
    time_first.load_state_dict(batch_first.state_dict())
    x, h0 = torch.randn(BATCH, T, INPUT), torch.randn(2, BATCH, HIDDEN)
    out, h_n = batch_first(x, h0)
    assert out.shape == (BATCH, T, HIDDEN) and h_n.shape == (2, BATCH, HIDDEN)
    torch.testing.assert_close(h_n[-1], out[:, -1])
    out_t, h_t = time_first(x.transpose(0, 1), h0)
    torch.testing.assert_close(out_t.transpose(0, 1), out)
    torch.testing.assert_close(h_t, h_n)
    out_u, h_u = batch_first(x[0], h0[:, 0])  # unbatched (T, I), (L, H)
    torch.testing.assert_close(out_u, out[0])
    torch.testing.assert_close(h_u, h_n[:, 0])
    # continuing from the returned state is one call over the whole sequence
    first, state = batch_first(x[:, :4], h0)
    second, state = batch_first(x[:, 4:], state)
    torch.testing.assert_close(torch.cat([first, second], 1), out, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(state, h_n, rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match=r"expected h0 of shape \(2, 4, 5\)"):
        batch_first(x, h0[:1])
    with pytest.raises(
        ValueError, match="unknown scan 'fast'; choose from: auto, parallel, sequential"
    ):
        cls(INPUT, HIDDEN, scan="fast")


@pytest.mark.parametrize("name", CLASSES)
def test_dropout_between_layers_in_training_only(name):
    torch.manual_seed(7)
    module = CLASSES[name](INPUT, HIDDEN, 2, batch_first=True, dropout=0.5)
    x = torch.randn(BATCH, T, INPUT)
    module.eval()
    assert torch.equal(module(x)[0], module(x)[0])
    module.train()
    assert not torch.equal(module(x)[0], module(x)[0])


@pytest.mark.parametrize("name", CLASSES)
def test_single_layers_share_parameters_and_give_the_gates(name):
    module = CLASSES[name](INPUT, HIDDEN, 3, batch_first=True, scan="sequential")
    layers = describe(module).single_layers()
    assert len(layers) == 3 and all(layer.num_layers == 1 and layer.batch_first for layer in layers)
    assert layers[2].weight_ih_l0 is module.weight_ih_l2 and layers[0].scan == "sequential"
    x = torch.randn(BATCH, T, INPUT)
    gates = layers[0].layer_gates(x, torch.zeros(BATCH, T, HIDDEN))
    pre = F.linear(x, module.weight_ih_l0, module.bias_ih_l0).split(HIDDEN, -1)
    if name == "min_gru":
        assert set(gates) == {"z"}
        torch.testing.assert_close(gates["z"], torch.sigmoid(pre[0]))
    else:
        f, i = torch.sigmoid(pre[0]), torch.sigmoid(pre[1])
        assert set(gates) == {"f", "i"}
        torch.testing.assert_close(gates["f"], f / (f + i))
        torch.testing.assert_close(gates["f"] + gates["i"], torch.ones_like(f))
