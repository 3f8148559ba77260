"""CustomGRU against nn.GRU (weights copied: outputs, states, every gradient) and against a
deliberately naive step-by-step reference for the variants nn.GRU does not have."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from grubench.models import gru_bptt
from grubench.models.custom_gru import GATES, CustomGRU

TIER = "unit"

ATOL = 1e-5
# Every implementation of the default form: compiled loops, the same backward in PyTorch ops,
# and the step-by-step autograd graph. "cpp" is skipped only where nothing can compile it.
NO_COMPILER = gru_bptt.extension_disabled() or shutil.which("c++") is None
BACKENDS = [
    pytest.param(
        "cpp", marks=pytest.mark.skipif(NO_COMPILER, reason="no C++ compiler / GRUBENCH_GRU_EXT=0")
    ),
    "python",
    "autograd",
]
NAMES = ("output", "h_n", "x.grad", "h0.grad")
INPUT, HIDDEN, BATCH, STEPS = 3, 5, 4, 7


def _grads(module: nn.Module) -> dict[str, torch.Tensor]:
    return {name: p.grad for name, p in module.named_parameters()}


def _run(module, x, h0, out_weight, h_weight):
    """Forward and backward with a loss that weights every output and final-state entry."""
    x = x.clone().requires_grad_(True)
    h0 = None if h0 is None else h0.clone().requires_grad_(True)
    out, h_n = module(x, h0)
    ((out * out_weight).sum() + (h_n * h_weight).sum()).backward()
    return out, h_n, x.grad, None if h0 is None else h0.grad


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("with_h0", [True, False])
@pytest.mark.parametrize("batch_first", [True, False])
@pytest.mark.parametrize("num_layers", [1, 2])
@pytest.mark.parametrize("backend", BACKENDS)
def test_matches_nn_gru(backend, num_layers, batch_first, with_h0, bias):
    torch.manual_seed(0)
    ref = nn.GRU(INPUT, HIDDEN, num_layers, bias=bias, batch_first=batch_first)
    custom = CustomGRU(
        INPUT, HIDDEN, num_layers, bias=bias, batch_first=batch_first, backend=backend
    )
    custom.load_state_dict(ref.state_dict())

    shape = (BATCH, STEPS, INPUT) if batch_first else (STEPS, BATCH, INPUT)
    x = torch.randn(shape)
    h0 = torch.randn(num_layers, BATCH, HIDDEN) if with_h0 else None
    out_shape = shape[:2] + (HIDDEN,)
    out_weight = torch.randn(out_shape)
    h_weight = torch.randn(num_layers, BATCH, HIDDEN)

    ref_results = _run(ref, x, h0, out_weight, h_weight)
    custom_results = _run(custom, x, h0, out_weight, h_weight)
    for name, want, got in zip(NAMES, ref_results, custom_results, strict=True):
        if want is None:
            assert got is None, name
            continue
        assert got.shape == want.shape, name
        torch.testing.assert_close(got, want, atol=ATOL, rtol=0, msg=name)

    ref_grads, custom_grads = _grads(ref), _grads(custom)
    assert ref_grads.keys() == custom_grads.keys()
    for name, want in ref_grads.items():
        torch.testing.assert_close(custom_grads[name], want, atol=ATOL, rtol=0, msg=name)


def test_parameters_named_shaped_and_ordered_like_nn_gru():
    for bias in (True, False):
        ref = nn.GRU(INPUT, HIDDEN, 3, bias=bias)
        custom = CustomGRU(INPUT, HIDDEN, 3, bias=bias)
        want = [(name, p.shape) for name, p in ref.named_parameters()]
        assert [(name, p.shape) for name, p in custom.named_parameters()] == want
    assert not any("bias" in name for name, _ in CustomGRU(2, 3, 2, bias=False).named_parameters())
    assert GATES == CustomGRU.GATES == 3


def test_state_dict_loads_into_nn_gru():
    torch.manual_seed(1)
    custom = CustomGRU(INPUT, HIDDEN, 2, batch_first=True)
    ref = nn.GRU(INPUT, HIDDEN, 2, batch_first=True)
    ref.load_state_dict(custom.state_dict())
    x = torch.randn(BATCH, STEPS, INPUT)
    for want, got in zip(ref(x), custom(x), strict=True):
        torch.testing.assert_close(got, want, atol=ATOL, rtol=0)


def test_default_init_is_nn_grus():
    torch.manual_seed(2)
    ref = nn.GRU(INPUT, HIDDEN, 2)
    torch.manual_seed(2)
    custom = CustomGRU(INPUT, HIDDEN, 2)
    for (name, want), got in zip(
        ref.state_dict().items(), custom.state_dict().values(), strict=True
    ):
        assert torch.equal(got, want), name


def test_unbatched_input_matches_nn_gru():
    torch.manual_seed(3)
    ref = nn.GRU(INPUT, HIDDEN, 2, batch_first=True)  # batch_first is moot for 2-D input
    custom = CustomGRU(INPUT, HIDDEN, 2, batch_first=True)
    custom.load_state_dict(ref.state_dict())
    x, h0 = torch.randn(STEPS, INPUT), torch.randn(2, HIDDEN)
    for h in (None, h0):
        for want, got in zip(ref(x, h), custom(x, h), strict=True):
            assert got.shape == want.shape
            torch.testing.assert_close(got, want, atol=ATOL, rtol=0)


def test_dropout_eval_matches_and_train_drops_between_layers_only():
    torch.manual_seed(4)
    ref = nn.GRU(INPUT, HIDDEN, 3, dropout=0.5)
    custom = CustomGRU(INPUT, HIDDEN, 3, dropout=0.5)
    custom.load_state_dict(ref.state_dict())
    x = torch.randn(STEPS, BATCH, INPUT)
    ref.eval()
    custom.eval()
    eval_out, eval_h = custom(x)
    for want, got in zip(ref(x), (eval_out, eval_h), strict=True):
        torch.testing.assert_close(got, want, atol=ATOL, rtol=0)

    custom.train()
    train_out, train_h = custom(x)
    assert not torch.allclose(train_out, eval_out)
    # The first layer's final state is before any dropout; the last layer's output is not
    # dropped (dropout would leave exact zeros).
    torch.testing.assert_close(train_h[0], eval_h[0], atol=ATOL, rtol=0)
    assert not torch.allclose(train_h[1:], eval_h[1:])
    assert (train_out == 0).sum() == 0


# --- the variants nn.GRU lacks, against a naive reference --------------------------------


def _layer_norm(v: torch.Tensor, gain: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    mean = v.mean(-1, keepdim=True)
    var = ((v - mean) ** 2).mean(-1, keepdim=True)
    return (v - mean) / torch.sqrt(var + eps) * gain


def naive_gru(module: CustomGRU, x: torch.Tensor, h0: torch.Tensor) -> tuple:
    """Step by step, one matmul per gate, from the equations in the classic layout.

    ``x`` is (T, B, I), ``h0`` (L, B, H); no dropout. The layer norm follows haste
    (reset_after: LN over the 3H input and 3H recurrent projections before the biases) and
    CustomGRU's documented split for reset_before (2H for r, z; H for W_hn (r ⊙ h)).
    """
    act = {"tanh": torch.tanh, "relu": torch.relu}[module.activation]
    H = module.hidden_size
    layer_input, finals = x, []
    for k in range(module.num_layers):
        W_ir, W_iz, W_in = getattr(module, f"weight_ih_l{k}").split(H)
        W_hr, W_hz, W_hn = getattr(module, f"weight_hh_l{k}").split(H)
        if module.bias:
            b_ir, b_iz, b_in = getattr(module, f"bias_ih_l{k}").split(H)
            b_hr, b_hz, b_hn = getattr(module, f"bias_hh_l{k}").split(H)
        else:
            b_ir = b_iz = b_in = b_hr = b_hz = b_hn = torch.zeros(H)
        h = h0[k]
        outputs = []
        for t in range(x.shape[0]):
            x_t = layer_input[t]
            xr, xz, xn = x_t @ W_ir.T, x_t @ W_iz.T, x_t @ W_in.T
            if module.layer_norm:
                gain = getattr(module, f"ln_ih_l{k}").weight
                xr, xz, xn = _layer_norm(torch.cat([xr, xz, xn], -1), gain).split(H, -1)
            hr, hz = h @ W_hr.T, h @ W_hz.T
            if module.reset_after:
                hn = h @ W_hn.T
                if module.layer_norm:
                    gain = getattr(module, f"ln_hh_l{k}").weight
                    hr, hz, hn = _layer_norm(torch.cat([hr, hz, hn], -1), gain).split(H, -1)
            elif module.layer_norm:
                gain = getattr(module, f"ln_hh_l{k}").weight
                hr, hz = _layer_norm(torch.cat([hr, hz], -1), gain).split(H, -1)
            r = torch.sigmoid(xr + b_ir + hr + b_hr)
            z = torch.sigmoid(xz + b_iz + hz + b_hz)
            if module.reset_after:
                n = act(xn + b_in + r * (hn + b_hn))
            else:
                hn = (r * h) @ W_hn.T
                if module.layer_norm:
                    hn = _layer_norm(hn, getattr(module, f"ln_hn_l{k}").weight)
                n = act(xn + b_in + hn + b_hn)
            h = (1 - z) * n + z * h
            outputs.append(h)
        layer_input = torch.stack(outputs)
        finals.append(h)
    return layer_input, torch.stack(finals)


def _perturb_norms(module: nn.Module) -> None:
    # LayerNorm gains start at 1; move them so the test sees whether each one is applied.
    with torch.no_grad():
        for name, p in module.named_parameters():
            if name.startswith("ln_"):
                p.uniform_(0.5, 1.5)


VARIANTS = [
    dict(reset_after=False),
    dict(reset_after=False, bias=False),
    dict(activation="relu"),
    dict(activation="relu", reset_after=False),
    dict(layer_norm=True),
    dict(layer_norm=True, reset_after=False),
    dict(layer_norm=True, bias=False),
    dict(layer_norm=True, activation="relu", reset_after=False),
]


@pytest.mark.parametrize(
    "options",
    VARIANTS + [dict(activation="relu", backend=b) for b in ("cpp", "python", "autograd")],
    ids=lambda o: ",".join(f"{k}={v}" for k, v in o.items()),
)
def test_variants_match_naive_reference(options):
    if options.get("backend") == "cpp" and NO_COMPILER:
        pytest.skip("no C++ compiler / GRUBENCH_GRU_EXT=0")
    torch.manual_seed(5)
    custom = CustomGRU(INPUT, HIDDEN, 2, batch_first=True, **options)
    _perturb_norms(custom)
    x = torch.randn(BATCH, STEPS, INPUT)
    h0 = torch.randn(2, BATCH, HIDDEN)
    out_weight, h_weight = torch.randn(BATCH, STEPS, HIDDEN), torch.randn(2, BATCH, HIDDEN)

    out, h_n = custom(x, h0)
    ((out * out_weight).sum() + (h_n * h_weight).sum()).backward()
    got_grads = {name: p.grad.clone() for name, p in custom.named_parameters()}
    custom.zero_grad()

    ref_out, ref_h = naive_gru(custom, x.transpose(0, 1), h0)
    ref_out = ref_out.transpose(0, 1)
    ((ref_out * out_weight).sum() + (ref_h * h_weight).sum()).backward()

    torch.testing.assert_close(out, ref_out, atol=ATOL, rtol=0)
    torch.testing.assert_close(h_n, ref_h, atol=ATOL, rtol=0)
    # Gradients through a layer norm reach ~50 here, so the fp32 rounding error is judged
    # relative to each gradient's largest entry (a normwise tolerance).
    for name, p in custom.named_parameters():
        error = (got_grads[name] - p.grad).abs().max().item()
        assert error <= ATOL * max(1.0, p.grad.abs().max().item()), (name, error)


def test_naive_reference_agrees_with_nn_gru():
    # The reference itself, checked on the one variant nn.GRU has.
    torch.manual_seed(6)
    ref = nn.GRU(INPUT, HIDDEN, 2)
    custom = CustomGRU(INPUT, HIDDEN, 2)
    custom.load_state_dict(ref.state_dict())
    x, h0 = torch.randn(STEPS, BATCH, INPUT), torch.randn(2, BATCH, HIDDEN)
    for want, got in zip(ref(x, h0), naive_gru(custom, x, h0), strict=True):
        torch.testing.assert_close(got, want, atol=ATOL, rtol=0)


@pytest.mark.parametrize(
    "options", [dict(reset_after=False), dict(activation="relu"), dict(layer_norm=True)]
)
def test_variants_differ_from_nn_gru(options):
    torch.manual_seed(7)
    ref = nn.GRU(INPUT, HIDDEN)
    custom = CustomGRU(INPUT, HIDDEN, **options)
    custom.load_state_dict(ref.state_dict(), strict=False)  # layer_norm adds its gains
    x = torch.randn(STEPS, BATCH, INPUT)
    assert not torch.allclose(custom(x)[0], ref(x)[0], atol=1e-3)


def test_layer_norm_modules_are_named_and_start_at_one():
    custom = CustomGRU(INPUT, HIDDEN, 2, layer_norm=True)
    norms = {k: v for k, v in custom.state_dict().items() if k.startswith("ln_")}
    assert set(norms) == {f"ln_{p}_l{k}.weight" for p in ("ih", "hh") for k in (0, 1)}
    assert all(
        v.shape == (GATES * HIDDEN,) and torch.equal(v, torch.ones_like(v)) for v in norms.values()
    )
    split = CustomGRU(INPUT, HIDDEN, layer_norm=True, reset_after=False).state_dict()
    assert split["ln_hh_l0.weight"].shape == (2 * HIDDEN,)
    assert split["ln_hn_l0.weight"].shape == (HIDDEN,)


# --- validation ---------------------------------------------------------------------------


def test_bad_activation_names_value_and_choices():
    with pytest.raises(ValueError, match=r"'gelu'.*tanh, relu"):
        CustomGRU(INPUT, HIDDEN, activation="gelu")


@pytest.mark.parametrize(
    "kwargs, words",
    [
        (dict(hidden_size=0), ["hidden_size", "0"]),
        (dict(hidden_size=-3), ["hidden_size", "-3"]),
        (dict(num_layers=0), ["num_layers", "0"]),
        (dict(input_size=0), ["input_size", "0"]),
        (dict(dropout=-0.1), ["dropout", "-0.1", "[0, 1)"]),
        (dict(dropout=1.0), ["dropout", "1.0", "[0, 1)"]),
    ],
)
def test_bad_sizes_raise(kwargs, words):
    args = dict(input_size=INPUT, hidden_size=HIDDEN, num_layers=2) | kwargs
    with pytest.raises(ValueError) as err:
        CustomGRU(**args)
    for word in words:
        assert word in str(err.value)


def test_bad_input_shapes_raise():
    gru = CustomGRU(INPUT, HIDDEN, 2)
    with pytest.raises(ValueError, match="input_size=3"):
        gru(torch.randn(STEPS, BATCH, INPUT + 1))
    with pytest.raises(ValueError, match="h0 of shape"):
        gru(torch.randn(STEPS, BATCH, INPUT), torch.randn(1, BATCH, HIDDEN))
    with pytest.raises(ValueError, match="3-D"):
        gru(torch.randn(1, STEPS, BATCH, INPUT))


def test_dropout_without_layers_warns_like_nn_gru():
    with pytest.warns(UserWarning, match="num_layers greater than 1"):
        CustomGRU(INPUT, HIDDEN, 1, dropout=0.2)


def test_relu_is_used():
    # Not only "differs from tanh": the candidate state is never negative with relu, so with
    # h0 = 0 the state (a convex mix of such candidates) is not either.
    torch.manual_seed(8)
    custom = CustomGRU(INPUT, HIDDEN, activation="relu")
    out, _ = custom(torch.randn(STEPS, BATCH, INPUT) * 3)
    assert out.min() >= 0
    assert F.relu(out).equal(out)


# --- the hand-written backward through time (grubench.models.gru_bptt) --------------------


@pytest.mark.parametrize("backend", BACKENDS[:2])
@pytest.mark.parametrize("relu", [False, True])
@pytest.mark.parametrize("bias", [True, False])
def test_bptt_gradcheck(backend, relu, bias):
    # float64 finite differences against the hand-written backward, every input at once.
    torch.manual_seed(9)
    steps, batch, hidden = 6, 3, 4
    x_proj = torch.randn(steps, batch, 3 * hidden, dtype=torch.float64, requires_grad=True)
    h0 = torch.randn(batch, hidden, dtype=torch.float64, requires_grad=True)
    w_hh = (torch.randn(3 * hidden, hidden, dtype=torch.float64) / 2).requires_grad_()
    b_hh = torch.randn(3 * hidden, dtype=torch.float64, requires_grad=True) if bias else None
    inputs = (x_proj, h0, w_hh) + ((b_hh,) if bias else ())

    def layer(x_proj, h0, w_hh, b_hh=None):
        return gru_bptt.gru_layer(x_proj, h0, w_hh, b_hh, relu, backend)

    assert torch.autograd.gradcheck(layer, inputs)


@pytest.mark.parametrize("backend", BACKENDS[:2])
def test_bptt_paths_agree_at_training_size(backend):
    # A realistic shape (several vector widths, threads splitting the batch, odd H) against
    # nn.GRU: sums over hundreds of steps, so the tolerance is normwise.
    torch.manual_seed(10)
    ref = nn.GRU(8, 67, batch_first=True)
    custom = CustomGRU(8, 67, batch_first=True, backend=backend)
    custom.load_state_dict(ref.state_dict())
    x = torch.randn(32, 120, 8)
    weight = torch.randn(32, 120, 67)
    for module in (ref, custom):
        out, _ = module(x)
        (out * weight).sum().backward()
    torch.testing.assert_close(custom(x)[0], ref(x)[0], atol=ATOL, rtol=0)
    for (name, want), got in zip(ref.named_parameters(), custom.parameters()):
        error = (got.grad - want.grad).abs().max().item()
        assert error <= ATOL * max(1.0, want.grad.abs().max().item()), (name, error)


@pytest.mark.parametrize("backend", BACKENDS[:2])
def test_bptt_buffers_never_alias_live_results(backend):
    # The compiled path reuses its large buffers between calls: results still held must not
    # change, whatever the order of lengths (a shorter call fits in a longer one's buffer).
    torch.manual_seed(11)
    ref = nn.GRU(INPUT, HIDDEN)
    custom = CustomGRU(INPUT, HIDDEN, backend=backend)
    custom.load_state_dict(ref.state_dict())
    held = []
    for steps in (9, 4, 9, 12, 3):
        x = torch.randn(steps, BATCH, INPUT, requires_grad=True)
        out, h_n = custom(x)
        out.sum().backward()
        held.append((x, out, h_n, x.grad))
    with torch.no_grad():
        for x, out, h_n, _ in held:
            want_out, want_h = ref(x)
            torch.testing.assert_close(out, want_out, atol=ATOL, rtol=0)
            torch.testing.assert_close(h_n, want_h, atol=ATOL, rtol=0)
    for x, _, _, grad in held:
        x = x.detach().requires_grad_(True)
        ref(x)[0].sum().backward()
        torch.testing.assert_close(grad, x.grad, atol=ATOL, rtol=0)


@pytest.mark.parametrize("backend", BACKENDS[:2])
def test_bptt_inference_without_grad(backend):
    torch.manual_seed(12)
    ref = nn.GRU(INPUT, HIDDEN, 2)
    custom = CustomGRU(INPUT, HIDDEN, 2, backend=backend)
    custom.load_state_dict(ref.state_dict())
    x = torch.randn(STEPS, BATCH, INPUT)
    with torch.no_grad():
        out, h_n = custom(x)
        want_out, want_h = ref(x)
    assert not out.requires_grad
    torch.testing.assert_close(out, want_out, atol=ATOL, rtol=0)
    torch.testing.assert_close(h_n, want_h, atol=ATOL, rtol=0)


def test_bad_backend_names_value_and_choices():
    with pytest.raises(ValueError, match=r"'fast'.*auto, cpp, python, autograd"):
        CustomGRU(INPUT, HIDDEN, backend="fast")


def test_cpp_backend_refuses_what_it_cannot_run():
    custom = CustomGRU(INPUT, HIDDEN, backend="cpp").to(torch.bfloat16)
    with pytest.raises(ValueError, match=r"float32/float64 CPU tensors only.*bfloat16"):
        custom(torch.randn(STEPS, BATCH, INPUT, dtype=torch.bfloat16))
    # auto takes the PyTorch loops instead
    custom.backend = "auto"
    assert custom(torch.randn(STEPS, BATCH, INPUT, dtype=torch.bfloat16))[0].isfinite().all()


FALLBACK = textwrap.dedent(
    """
    import warnings, torch
    from torch import nn
    from grubench.models import gru_bptt
    from grubench.models.custom_gru import CustomGRU
    {setup}
    torch.manual_seed(0)
    ref, custom = nn.GRU(3, 5), CustomGRU(3, 5)
    custom.load_state_dict(ref.state_dict())
    x = torch.randn(7, 4, 3)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = custom(x)[0]
    torch.testing.assert_close(out, ref(x)[0], atol=1e-5, rtol=0)
    assert gru_bptt.load_extension() is None
    assert not hasattr(torch.ops.grubench_gru, "forward")
    print("WARNINGS", [str(w.message) for w in caught])
    """
)


def _run_fallback(setup: str, tmp_path, **env) -> str:
    result = subprocess.run(
        [sys.executable, "-c", FALLBACK.format(setup=setup)],
        env={**os.environ, "TORCH_EXTENSIONS_DIR": str(tmp_path), **env},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.mark.system
def test_no_extension_when_disabled_uses_pytorch_loops(tmp_path):
    out = _run_fallback("", tmp_path, GRUBENCH_GRU_EXT="0")
    assert "WARNINGS []" in out  # switched off on purpose: nothing to warn about


@pytest.mark.system
def test_failed_build_warns_and_uses_pytorch_loops(tmp_path):
    # A compiler error stands for any failure to build (no compiler, no ninja): the model still
    # runs, on the PyTorch loops, and says so once.
    broken = tmp_path / "broken.cpp"
    broken.write_text("this is not C++\n")
    out = _run_fallback(f"gru_bptt._SOURCES = ({str(broken)!r},)", tmp_path)
    assert "could not build the compiled recurrent loops" in out and "PyTorch paths" in out


@pytest.mark.parametrize("backend", BACKENDS)
def test_output_may_be_modified_in_place_as_nn_grus(backend):
    # nn.GRU's output is a tensor of its own: `out.mul_(2)` before backward is allowed and
    # gives the gradients of 2·out. The fast paths save their states apart from it.
    torch.manual_seed(13)
    ref = nn.GRU(INPUT, HIDDEN)
    custom = CustomGRU(INPUT, HIDDEN, backend=backend)
    custom.load_state_dict(ref.state_dict())
    x = torch.randn(STEPS, BATCH, INPUT)
    for module in (ref, custom):
        out, h_n = module(x)
        assert out._base is None
        out.mul_(2)
        (out.sum() + h_n.sum()).backward()
    for want, got in zip(ref.parameters(), custom.parameters()):
        torch.testing.assert_close(got.grad, want.grad, atol=ATOL, rtol=0)


@pytest.mark.parametrize("backend", BACKENDS[:2])
def test_bptt_across_inference_no_grad_and_training(backend):
    # Lightning validates under torch.inference_mode and trains outside it. A batch of 64
    # splits across threads in the compiled loops, whose workers must run in the caller's mode,
    # and buffers made in one mode must not be reused (written) in the other.
    torch.manual_seed(14)
    ref = nn.GRU(INPUT, HIDDEN, batch_first=True)
    custom = CustomGRU(INPUT, HIDDEN, batch_first=True, backend=backend)
    custom.load_state_dict(ref.state_dict())
    x = torch.randn(64, STEPS, INPUT)
    for mode in (torch.inference_mode, torch.enable_grad, torch.no_grad, torch.inference_mode):
        with mode():
            for want, got in zip(ref(x), custom(x)):
                torch.testing.assert_close(got, want, atol=ATOL, rtol=0)
        if mode is torch.enable_grad:
            custom(x)[0].sum().backward()
            ref(x)[0].sum().backward()
            for want, got in zip(ref.parameters(), custom.parameters()):
                error = (got.grad - want.grad).abs().max().item()
                assert error <= ATOL * max(1.0, want.grad.abs().max().item()), error


def test_subnormals_flushed_in_every_pool_thread_then_restored():
    # A large elementwise product runs on every thread of the intra-op pool: inside the
    # context each one reads the subnormal input as zero, outside none does.
    tiny = torch.full((1 << 20,), 1e-39)  # subnormal in float32
    torch.randn(512, 512) @ torch.randn(512, 512)  # the pool exists before the switch

    def survivors() -> int:
        return int(((tiny * 1.0) != 0).sum())

    assert survivors() == tiny.numel()
    with gru_bptt.subnormals_flushed(True):
        assert survivors() == 0
    assert survivors() == tiny.numel()
    with gru_bptt.subnormals_flushed(False):
        assert survivors() == tiny.numel()


LOAD = textwrap.dedent(
    """
    import time
    from grubench.models import gru_bptt
    start = time.perf_counter()
    ops = gru_bptt.load_extension()
    print("LOADED", ops is not None and hasattr(ops, "forward"), time.perf_counter() - start)
    """
)


def _load_in(extensions: Path, timeout: float) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", LOAD], env={**os.environ, "TORCH_EXTENSIONS_DIR": str(extensions)},
        capture_output=True, text=True, timeout=timeout,
    )  # fmt: skip


@pytest.mark.system
def test_stale_lock_files_do_not_block_loading_the_built_loops(tmp_path):
    # torch's own build lock, left by a killed process, made every later load wait forever;
    # grubench loads a built library without taking any lock
    if gru_bptt.load_extension() is None:
        pytest.skip("the compiled loops cannot be built here")
    built = gru_bptt.library_path()
    target = tmp_path / built.parent.name / built.name
    target.parent.mkdir()
    shutil.copy(built, target)
    (target.parent / "lock").write_text("")
    (tmp_path / f"py311_cpu/{built.stem}").mkdir(parents=True)
    (tmp_path / f"py311_cpu/{built.stem}/lock").write_text("")  # where torch would look
    result = _load_in(tmp_path, timeout=120)
    assert "LOADED True" in result.stdout, result.stderr
    assert "compiling" not in result.stderr


@pytest.mark.system
def test_a_process_killed_while_compiling_does_not_block_the_next_load(tmp_path):
    if gru_bptt.load_extension() is None:
        pytest.skip("the compiled loops cannot be built here")
    env = {**os.environ, "TORCH_EXTENSIONS_DIR": str(tmp_path)}
    builder = subprocess.Popen([sys.executable, "-c", LOAD], env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)  # fmt: skip
    deadline = time.monotonic() + 120
    locks: list[Path] = []
    while not locks and time.monotonic() < deadline and builder.poll() is None:
        locks = list(tmp_path.glob("*/build-*/lock"))  # torch's lock, inside its own folder
        time.sleep(0.05)
    assert locks, "the build never took its lock"
    builder.kill()  # -9 while it holds the lock
    builder.communicate()
    result = _load_in(tmp_path, timeout=300)
    assert "LOADED True" in result.stdout, result.stderr
    assert not list(tmp_path.glob("*/build-*"))  # the killed build's folder is gone
