"""Each initialization has its defining property, on every module type it applies to."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from grubench.models.custom_gru import CustomGRU
from grubench.models.init import (
    INITS,
    IRNN_INPUT_STD,
    applicable_inits,
    check_init,
    initialize,
)
from grubench.models.min_rnns import MinGRU, MinLSTM
from grubench.models.torch_rnns import GRU_LAYOUT, LSTM_LAYOUT, RNN_LAYOUT, set_lstm_forget_bias

TIER = "unit"

INPUT, HIDDEN, LAYERS = 3, 6, 2

KINDS = {
    "gru": GRU_LAYOUT,
    "lstm": LSTM_LAYOUT,
    "rnn": RNN_LAYOUT,
    "min_gru": MinGRU.gate_layout,
    "min_lstm": MinLSTM.gate_layout,
}

# (name, kind, factory(input, hidden, layers))
MODULES = {
    "nn.GRU": ("gru", lambda i, h, n: nn.GRU(i, h, n)),
    "CustomGRU": ("gru", lambda i, h, n: CustomGRU(i, h, n)),
    "CustomGRU-ln": ("gru", lambda i, h, n: CustomGRU(i, h, n, layer_norm=True)),
    "nn.LSTM": ("lstm", lambda i, h, n: nn.LSTM(i, h, n)),
    "nn.RNN": ("rnn", lambda i, h, n: nn.RNN(i, h, n)),
    "MinGRU": ("min_gru", lambda i, h, n: MinGRU(i, h, n)),
    "MinLSTM": ("min_lstm", lambda i, h, n: MinLSTM(i, h, n)),
}
# torch's recurrent layers: default is U(±1/√H) and every layer has recurrent weights
RECURRENT = [name for name, (kind, _) in MODULES.items() if KINDS[kind].recurrent]


def build(name: str, input_size=INPUT, hidden=HIDDEN, layers=LAYERS) -> tuple[nn.Module, str]:
    kind, factory = MODULES[name]
    return factory(input_size, hidden, layers), kind


def weights(module: nn.Module, which: str):
    """(layer, tensor) for weight_{which}_l{k}."""
    if not hasattr(module, f"weight_{which}_l0"):  # minGRU/minLSTM: no weight_hh
        return []
    return [(k, getattr(module, f"weight_{which}_l{k}")) for k in range(module.num_layers)]


def biases(module: nn.Module):
    return [p for name, p in module.named_parameters() if name.startswith("bias_")]


def blocks(weight: torch.Tensor, hidden: int) -> tuple[torch.Tensor, ...]:
    return weight.detach().split(hidden)


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def chrono_t_max_applies(scheme: str, kind: str) -> float | None:
    return 50.0 if scheme == "chrono" else None


def valid(scheme: str, kind: str) -> bool:
    try:
        check_init(scheme, KINDS[kind], chrono_t_max_applies(scheme, kind))
    except ValueError:
        return False
    return True


# --- default ------------------------------------------------------------------------------


@pytest.mark.parametrize("name", RECURRENT)
def test_default_is_pytorch_uniform_bound(name):
    module, kind = build(name, hidden=64)
    initialize(module, "default", layout=KINDS[kind], generator=gen())
    bound = 1 / math.sqrt(64)
    drawn = []
    for pname, p in module.named_parameters():
        if pname.startswith("ln_"):
            assert torch.equal(p, torch.ones_like(p)), pname
        else:
            assert p.abs().max() <= bound, pname
            drawn.append(p.detach().flatten())
    drawn = torch.cat(drawn)  # U(−b, b): sd b / √3, and it fills the range
    assert drawn.std().item() == pytest.approx(bound / math.sqrt(3), rel=0.05)
    assert drawn.abs().max() > 0.99 * bound


@pytest.mark.parametrize("name", MODULES)
def test_default_without_generator_is_reset_parameters(name):
    module, kind = build(name)
    torch.manual_seed(11)
    module.reset_parameters()
    want = {k: v.clone() for k, v in module.state_dict().items()}
    torch.manual_seed(11)
    initialize(module, "default", layout=KINDS[kind])
    for key, value in module.state_dict().items():
        assert torch.equal(value, want[key]), key


# --- Glorot -------------------------------------------------------------------------------


@pytest.mark.parametrize("scheme", ["xavier_uniform", "xavier_normal"])
@pytest.mark.parametrize("name", ["nn.GRU", "CustomGRU", "nn.LSTM", "nn.RNN", "MinGRU", "MinLSTM"])
def test_glorot_per_block_variance(name, scheme):
    hidden, input_size = 256, 64
    module, kind = build(name, input_size, hidden, 2)
    initialize(module, scheme, layout=KINDS[kind], generator=gen(1))
    for which in ("ih", "hh"):
        for k, w in weights(module, which):
            assert w.shape[0] == KINDS[kind].gates * hidden
            for block in blocks(w, hidden):
                fan_in, fan_out = block.shape[1], hidden
                want = 2.0 / (fan_in + fan_out)
                # >= 16k samples each: the sample variance is within ~1% (sd) of the truth.
                assert block.var().item() == pytest.approx(want, rel=0.06), (which, k)
                assert block.mean().abs().item() < 0.05 * math.sqrt(want)
                if scheme == "xavier_uniform":
                    assert block.abs().max() <= math.sqrt(6.0 / (fan_in + fan_out))
    assert all(torch.equal(b, torch.zeros_like(b)) for b in biases(module))


def test_glorot_is_per_block_not_whole_kernel():
    # Whole-kernel Glorot (Keras) would give Var = 2 / (in + 3H); per block it is 2 / (in + H).
    hidden, input_size = 256, 256
    gru = nn.GRU(input_size, hidden)
    initialize(gru, "xavier_normal", layout=KINDS["gru"], generator=gen(2))
    var = gru.weight_ih_l0.detach().var().item()
    assert var == pytest.approx(2.0 / (input_size + hidden), rel=0.05)
    assert var > 1.5 * 2.0 / (input_size + 3 * hidden)


# --- orthogonal ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", RECURRENT)
def test_orthogonal_blocks(name):
    module, kind = build(name, hidden=16)
    initialize(module, "orthogonal", layout=KINDS[kind], generator=gen(3))
    eye = torch.eye(16)
    for k, w in weights(module, "hh"):
        assert len(blocks(w, 16)) == KINDS[kind].gates
        for g, block in enumerate(blocks(w, 16)):
            torch.testing.assert_close(block.T @ block, eye, atol=1e-5, rtol=0, msg=f"l{k} g{g}")
    for k, w in weights(module, "ih"):
        for block in blocks(w, 16):
            assert block.abs().max() <= math.sqrt(6.0 / (block.shape[1] + 16)), k
    assert all(torch.equal(b, torch.zeros_like(b)) for b in biases(module))


def test_orthogonal_handles_bidirectional_and_projection():
    lstm = nn.LSTM(INPUT, 8, 2, bidirectional=True, proj_size=4)
    initialize(lstm, "orthogonal", layout=KINDS["lstm"], generator=gen(4))
    for suffix in ("", "_reverse"):
        w_hh = getattr(lstm, f"weight_hh_l1{suffix}").detach()  # (4·8, 4): semi-orthogonal
        for block in w_hh.split(8):
            torch.testing.assert_close(block.T @ block, torch.eye(4), atol=1e-5, rtol=0)
        w_hr = getattr(lstm, f"weight_hr_l0{suffix}").detach()  # (4, 8): orthonormal rows
        torch.testing.assert_close(w_hr @ w_hr.T, torch.eye(4), atol=1e-5, rtol=0)
        assert torch.equal(getattr(lstm, f"bias_ih_l1{suffix}"), torch.zeros(32))


# --- identity (IRNN) ----------------------------------------------------------------------


def test_identity_irnn():
    hidden = 256
    rnn = nn.RNN(INPUT, hidden, 2, nonlinearity="relu")
    initialize(rnn, "identity", layout=KINDS["rnn"], generator=gen(5))
    for _, w in weights(rnn, "hh"):
        assert torch.equal(w, torch.eye(hidden))
    input_weights = torch.cat([w.detach().flatten() for _, w in weights(rnn, "ih")])
    assert input_weights.std().item() == pytest.approx(IRNN_INPUT_STD, rel=0.02)
    assert IRNN_INPUT_STD == 0.001
    assert all(torch.equal(b, torch.zeros_like(b)) for b in biases(rnn))


# --- chrono -------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["nn.GRU", "CustomGRU", "CustomGRU-ln"])
def test_chrono_gru_sets_exactly_the_z_rows(name):
    t_max = 100.0
    module, kind = build(name, hidden=64)
    with torch.no_grad():  # start from nonzero biases: chrono must own the effective bias
        for b in biases(module):
            b.fill_(5.0)
    initialize(module, "chrono", layout=KINDS[kind], t_max=t_max, generator=gen(6))
    H = 64
    for k in range(LAYERS):
        b_ih = getattr(module, f"bias_ih_l{k}").detach()
        b_hh = getattr(module, f"bias_hh_l{k}").detach()
        assert torch.equal(b_hh, torch.zeros(3 * H))
        effective = b_ih + b_hh
        r, z, n = effective.split(H)
        # Exactly rows [H:2H] (z, the keep gate in PyTorch's convention) carry the values,
        # all positive; slicing 3H rows into 4 blocks (a public bug) would miss part of z.
        assert torch.equal(r, torch.zeros(H)) and torch.equal(n, torch.zeros(H))
        assert (z > 0).all()
        assert z.max() <= math.log(t_max - 1) + 1e-6
        assert z.max() > math.log(t_max - 1) - 1.0  # the spread reaches the long end
        assert len(torch.unique(z)) == H  # drawn, not constant
    # weights keep PyTorch's default
    for pname, p in module.named_parameters():
        if pname.startswith("weight_"):
            assert p.abs().max() <= 1 / math.sqrt(H)


@pytest.mark.parametrize("with_generator", [True, False])
def test_chrono_lstm(with_generator):
    t_max, H = 30.0, 64
    lstm = nn.LSTM(INPUT, H, LAYERS)
    with torch.no_grad():
        for b in biases(lstm):
            b.fill_(5.0)
    generator = gen(7) if with_generator else None
    initialize(lstm, "chrono", layout=KINDS["lstm"], t_max=t_max, generator=generator)
    for k in range(LAYERS):
        b_ih = getattr(lstm, f"bias_ih_l{k}").detach()
        b_hh = getattr(lstm, f"bias_hh_l{k}").detach()
        assert torch.equal(b_hh, torch.zeros(4 * H))
        i, f, g, o = (b_ih + b_hh).split(H)
        assert (f >= 0).all() and (f <= math.log(t_max - 1) + 1e-6).all()
        assert f.std() > 0.1
        assert torch.equal(i, -f)
        assert torch.equal(g, torch.zeros(H)) and torch.equal(o, torch.zeros(H))


def test_chrono_log_uniform_distribution():
    # b = log u with u ~ U[1, t_max − 1]: exp(b) is uniform, mean t_max / 2.
    t_max = 21.0
    gru = nn.GRU(INPUT, 4096)
    initialize(gru, "chrono", layout=KINDS["gru"], t_max=t_max, generator=gen(8))
    u = gru.bias_ih_l0.detach()[4096:8192].exp()
    assert u.min() >= 1 - 1e-5 and u.max() <= t_max - 1 + 1e-4
    assert u.mean().item() == pytest.approx(t_max / 2, rel=0.02)


def test_chrono_needs_biases():
    with pytest.raises(ValueError, match="bias=False"):
        initialize(nn.GRU(INPUT, HIDDEN, bias=False), "chrono", layout=KINDS["gru"], t_max=10)


@pytest.mark.parametrize("name", ["MinGRU", "MinLSTM"])
def test_min_rnn_default_is_nn_linear_fan_in_bound(name):
    """The paper's init: each layer's weight and bias ~ U(±1/√fan_in), fan_in its input width."""
    module, kind = build(name, input_size=4, hidden=64)
    initialize(module, "default", layout=KINDS[kind], generator=gen())
    for k, fan_in in ((0, 4), (1, 64)):
        for p in (getattr(module, f"weight_ih_l{k}"), getattr(module, f"bias_ih_l{k}")):
            bound = 1 / math.sqrt(fan_in)
            assert p.abs().max() <= bound and p.abs().max() > 0.9 * bound, k


@pytest.mark.parametrize("with_generator", [True, False])
def test_chrono_min_gru_sets_z_to_minus_log_u(with_generator):
    """minGRU's z takes the new state: b_z = −log u, so the memory time 1/z is 1 + u."""
    t_max, H = 30.0, 64
    gru = MinGRU(INPUT, H, LAYERS)
    initialize(gru, "chrono", t_max=t_max, generator=gen(7) if with_generator else None)
    for k in range(LAYERS):
        z, h = getattr(gru, f"bias_ih_l{k}").detach().split(H)
        memory = 1 / torch.sigmoid(z)  # steps until the old state has decayed by e
        assert (memory >= 2 - 1e-5).all() and (memory <= t_max + 1e-3).all()
        assert z.std() > 0.1 and torch.equal(h, torch.zeros(H))


def test_chrono_min_lstm_is_the_lstm_one_and_normalizes_to_itself():
    t_max, H = 30.0, 64
    lstm = MinLSTM(INPUT, H, LAYERS)
    initialize(lstm, "chrono", t_max=t_max, generator=gen(7))
    for k in range(LAYERS):
        f, i, h = getattr(lstm, f"bias_ih_l{k}").detach().split(H)
        assert (f >= 0).all() and (f <= math.log(t_max - 1) + 1e-6).all() and f.std() > 0.1
        assert torch.equal(i, -f) and torch.equal(h, torch.zeros(H))
        sf, si = torch.sigmoid(f), torch.sigmoid(i)  # σ(b) + σ(−b) = 1: f' = f / (f + i) = f
        torch.testing.assert_close(sf / (sf + si), sf)


# --- forget bias --------------------------------------------------------------------------


@pytest.mark.parametrize("value", [1.0, -2.5, 0.0])
def test_set_lstm_forget_bias(value):
    H = HIDDEN
    lstm = nn.LSTM(INPUT, H, LAYERS)
    before = {n: p.detach().clone() for n, p in lstm.named_parameters()}
    set_lstm_forget_bias(lstm, value)
    for k in range(LAYERS):
        b_ih = getattr(lstm, f"bias_ih_l{k}").detach()
        b_hh = getattr(lstm, f"bias_hh_l{k}").detach()
        assert torch.equal(b_ih[H : 2 * H], torch.full((H,), value))
        assert torch.equal(b_hh[H : 2 * H], torch.zeros(H))
        torch.testing.assert_close((b_ih + b_hh)[H : 2 * H], torch.full((H,), value))
        for name, b in (("ih", b_ih), ("hh", b_hh)):  # i, g, o untouched
            old = before[f"bias_{name}_l{k}"]
            assert torch.equal(b[:H], old[:H]) and torch.equal(b[2 * H :], old[2 * H :])


def test_set_lstm_forget_bias_rejects_other_modules():
    with pytest.raises(ValueError, match="kind 'lstm'"):
        set_lstm_forget_bias(nn.GRU(INPUT, 8), 1.0)
    with pytest.raises(ValueError, match="bias=False"):
        set_lstm_forget_bias(nn.LSTM(INPUT, 8, bias=False), 1.0)


# --- reproducibility ----------------------------------------------------------------------

CASES = [(s, n) for s in INITS for n in MODULES if valid(s, MODULES[n][0])]


@pytest.mark.parametrize("scheme, name", CASES)
def test_generator_makes_inits_reproducible(scheme, name):
    kind = MODULES[name][0]
    t_max = chrono_t_max_applies(scheme, kind)
    first, _ = build(name)
    second, _ = build(name)
    rng_before = torch.get_rng_state()
    initialize(first, scheme, layout=KINDS[kind], t_max=t_max, generator=gen(9))
    initialize(second, scheme, layout=KINDS[kind], t_max=t_max, generator=gen(9))
    assert torch.equal(torch.get_rng_state(), rng_before)  # the global RNG is not used
    for (key, a), b in zip(first.state_dict().items(), second.state_dict().values(), strict=True):
        assert torch.equal(a, b), key
    third, _ = build(name)
    initialize(third, scheme, layout=KINDS[kind], t_max=t_max, generator=gen(10))
    assert not torch.equal(third.weight_ih_l0, first.weight_ih_l0)


def test_every_scheme_resets_layer_norm_gains():
    for scheme in ("default", "xavier_uniform", "xavier_normal", "orthogonal", "chrono"):
        gru = CustomGRU(INPUT, HIDDEN, layer_norm=True)
        with torch.no_grad():
            gru.ln_ih_l0.weight.fill_(3.0)
        initialize(gru, scheme, layout=KINDS["gru"], t_max=10)
        assert torch.equal(gru.ln_ih_l0.weight, torch.ones(3 * HIDDEN)), scheme


# --- validation ---------------------------------------------------------------------------


def test_unknown_scheme_and_kind_list_the_choices():
    with pytest.raises(
        ValueError, match=r"unknown init 'foo'; choose from: default, xavier_uniform"
    ):
        check_init("foo", "gru", None)
    with pytest.raises(ValueError, match=r"layout must be a GateLayout, got 'gru'"):
        check_init("default", "gru", None)
    with pytest.raises(ValueError, match="unknown init"):
        initialize(nn.GRU(INPUT, HIDDEN), "foo", layout=KINDS["gru"])


@pytest.mark.parametrize(
    "scheme, kind, t_max, words",
    [
        ("identity", "gru", None, ["identity", "'gru'", "rnn"]),
        ("identity", "lstm", None, ["identity", "'lstm'", "rnn"]),
        ("chrono", "rnn", 10, ["chrono", "'rnn'", "no gates"]),
        ("chrono", "gru", None, ["needs t_max"]),
        ("chrono", "lstm", 2, ["t_max > 2", "2"]),
        ("chrono", "gru", 1.5, ["t_max > 2", "1.5"]),
        ("chrono", "gru", float("inf"), ["finite"]),
        (
            "orthogonal",
            "min_gru",
            None,
            [
                "orthogonal",
                "'min_gru'",
                "choose from: default, xavier_uniform, xavier_normal, chrono",
            ],
        ),
        (
            "identity",
            "min_lstm",
            None,
            [
                "identity",
                "no recurrent matrix",
                "choose from: default, xavier_uniform, xavier_normal, chrono",
            ],
        ),
        (
            "chrono",
            "rnn",
            10,
            ["choose from: default, xavier_uniform, xavier_normal, orthogonal, identity"],
        ),
    ],
)
def test_invalid_combinations(scheme, kind, t_max, words):
    with pytest.raises(ValueError) as err:
        check_init(scheme, KINDS[kind], t_max)
    for word in words:
        assert word in str(err.value)


def test_valid_combinations_pass_and_t_max_is_ignored_elsewhere():
    invalid = {"identity": {"gru", "lstm", "min_gru", "min_lstm"}, "chrono": {"rnn"}}
    invalid["orthogonal"] = {"min_gru", "min_lstm"}  # no recurrent matrix
    for scheme in INITS:
        for kind, layout in KINDS.items():
            if kind in invalid.get(scheme, ()):
                assert scheme not in applicable_inits(layout)
                continue
            check_init(scheme, layout, 10.0)
            assert scheme in applicable_inits(layout)
    check_init("default", KINDS["gru"], None)
    check_init("orthogonal", KINDS["lstm"], 1)  # t_max only matters to chrono


@pytest.mark.parametrize(
    "module, kind",
    [
        (nn.LSTM(INPUT, 6), "gru"),
        (nn.RNN(INPUT, 6), "gru"),
        (nn.GRU(INPUT, 6), "lstm"),
        (MinGRU(INPUT, 6), "gru"),  # no weight_hh
        (MinLSTM(INPUT, 6), "min_gru"),  # 3 blocks, not 2
    ],
)
def test_kind_must_match_module(module, kind):
    with pytest.raises(ValueError, match=f"kind '{kind}'"):
        initialize(module, "default", layout=KINDS[kind])


def test_rejects_module_without_rnn_parameters():
    with pytest.raises(ValueError, match="weight_ih_l0"):
        initialize(nn.Sequential(nn.GRU(INPUT, HIDDEN)), "default", layout=KINDS["gru"])
