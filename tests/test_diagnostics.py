"""Gradient-flow diagnostics, checked against hand-computed Jacobian products, hand-written
cells and the real modules' internals; the callback through a real tiny fit."""

from __future__ import annotations

import json
import math

import lightning as L
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from lightning.pytorch.loggers import MLFlowLogger
from torch import nn

from grubench.models import MODELS, CustomGRU, ModelConfig, SequenceModel, StackedRNN, build_model
from grubench.tasks import build_task
from grubench.training.data import SyntheticDataModule
from grubench.training.diagnostics import (
    GradientDiagnostics,
    curve_summary,
    gate_statistics,
    hidden_grad_norms,
    single_layers,
    stepwise_forward,
)
from grubench.training.module import RecurrentSystem

TIER = "unit"


class LinearRecurrence(nn.Module):
    """h_t = W h_{t-1} + U x_t with nn.GRU's interface (batch-first, one layer)."""

    def __init__(self, input_size: int, hidden_size: int) -> None:
        super().__init__()
        self.input_size, self.hidden_size, self.num_layers = input_size, hidden_size, 1
        self.W = nn.Parameter(torch.randn(hidden_size, hidden_size) / math.sqrt(hidden_size))
        self.U = nn.Parameter(torch.randn(hidden_size, input_size))

    def forward(self, x, h0=None):
        h = x.new_zeros(x.size(0), self.hidden_size) if h0 is None else h0[0]
        outputs = []
        for t in range(x.size(1)):
            h = h @ self.W.T + x[:, t] @ self.U.T
            outputs.append(h)
        return torch.stack(outputs, 1), h.unsqueeze(0)


def sequence_model(backbone: nn.Module, output_size: int = 2, mode: str = "last"):
    return SequenceModel(backbone, backbone.hidden_size, output_size, mode)


# ------------------------------------------------------------------------------------------
# ∂L/∂h_t against hand computations
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["last", "sequence"])
def test_linear_recurrence_matches_hand_jacobian_products(mode):
    torch.manual_seed(0)
    T, H, n_out = 7, 4, 2
    model = sequence_model(LinearRecurrence(3, H), n_out, mode).double()
    x = torch.randn(1, T, 3, dtype=torch.float64)
    target = (
        torch.randn(1, n_out, dtype=torch.float64) if mode == "last" else torch.randn(1, T, n_out)
    )
    target = target.double()
    norms = hidden_grad_norms(model, F.mse_loss, x, target)
    assert norms.shape == (1, T)

    W, A = model.backbone.W.detach(), model.head.weight.detach()  # A: (O, H)
    y = model(x).detach()
    # L = mean of squared errors over every element: dL/dy = 2 (y - target) / numel
    dL_dy = 2 * (y - target)[0] / target.numel()
    grads = [None] * T
    if mode == "last":
        grads[T - 1] = A.T @ dL_dy
        for t in range(T - 1):  # (W^T)^(T-1-t) ∂L/∂h_{T-1}
            grads[t] = torch.linalg.matrix_power(W.T, T - 1 - t) @ grads[T - 1]
    else:  # every step also feeds the head: g_t = A^T dL/dy_t + W^T g_{t+1}
        g = torch.zeros(H, dtype=torch.float64)
        for t in reversed(range(T)):
            g = A.T @ dL_dy[t] + W.T @ g
            grads[t] = g
    expected = torch.stack([g.norm() for g in grads])
    torch.testing.assert_close(norms[0], expected, rtol=1e-6, atol=1e-12)


def test_tanh_rnn_with_small_recurrent_weights_decays_geometrically():
    torch.manual_seed(0)
    T, H, rho = 20, 8, 0.3
    rnn = nn.RNN(2, H, batch_first=True).double()
    with torch.no_grad():
        rnn.weight_hh_l0.copy_(rho * nn.init.orthogonal_(torch.empty(H, H)))
        rnn.bias_ih_l0.zero_()
        rnn.bias_hh_l0.zero_()
    model = sequence_model(rnn, 1).double()
    x = 0.01 * torch.randn(4, T, 2, dtype=torch.float64)
    norms = hidden_grad_norms(model, F.mse_loss, x, torch.ones(4, 1, dtype=torch.float64))[0]

    # g_t = W^T D_{t+1} g_{t+1} with D = diag(1 - h^2) and W = rho * orthogonal, so each
    # sample's norm shrinks by a factor in [rho * d_min, rho] per step back, d_min the
    # smallest tanh' on the path; small inputs keep h near 0, so d_min is close to 1.
    with torch.no_grad():
        d_min = float((1 - rnn(x)[0] ** 2).min())
    assert d_min > 0.999
    ratios = (norms[:-1] / norms[1:]).numpy()
    assert np.all(ratios >= rho * d_min - 1e-12) and np.all(ratios <= rho + 1e-12)
    summary = curve_summary(norms)
    # log10 of each factor lies within -log10(d_min) < 4.4e-4 of log10(rho): so does the slope
    assert summary["log_slope"] == pytest.approx(-math.log10(rho), abs=1e-3)
    assert summary["ratio_first_last"] == pytest.approx(rho ** (T - 1), rel=0.01)
    assert summary["ratio_first_last"] < 1e-9
    assert summary["horizon"] == 1  # 0.3 >= 0.1 one step back, 0.09 < 0.1 two steps back


def hand_gru(gru: nn.GRU, x: torch.Tensor):
    """nn.GRU's equations written out, keeping every h_t (with retain_grad), r_t and z_t."""
    H = gru.hidden_size
    layer_input = list(x.unbind(1))
    states, gates = [], []
    for k in range(gru.num_layers):
        w_ih, w_hh = getattr(gru, f"weight_ih_l{k}"), getattr(gru, f"weight_hh_l{k}")
        b_ih, b_hh = getattr(gru, f"bias_ih_l{k}"), getattr(gru, f"bias_hh_l{k}")
        h = x.new_zeros(x.size(0), H)
        hs, rs, zs = [], [], []
        for xt in layer_input:
            gi, gh = xt @ w_ih.T + b_ih, h @ w_hh.T + b_hh
            r = torch.sigmoid(gi[:, :H] + gh[:, :H])
            z = torch.sigmoid(gi[:, H : 2 * H] + gh[:, H : 2 * H])
            n = torch.tanh(gi[:, 2 * H :] + r * gh[:, 2 * H :])
            h = (1 - z) * n + z * h
            if h.requires_grad:
                h.retain_grad()
            hs.append(h)
            rs.append(r)
            zs.append(z)
        states.append(hs)
        gates.append({"r": torch.stack(rs, 1), "z": torch.stack(zs, 1)})  # (B, T, H)
        layer_input = hs
    return states, gates


def test_gru_grad_norms_match_a_hand_written_gru():
    torch.manual_seed(0)
    gru = nn.GRU(3, 5, num_layers=2, batch_first=True).double()
    model = sequence_model(gru, 2).double()
    x, target = torch.randn(4, 6, 3).double(), torch.randn(4, 2).double()

    states, _ = hand_gru(gru, x)
    torch.testing.assert_close(torch.stack(states[-1], 1), gru(x)[0])  # the hand GRU is nn.GRU
    F.mse_loss(model.head(states[-1][-1]), target).backward()
    expected = torch.stack([torch.stack([h.grad.norm(dim=-1).mean() for h in hs]) for hs in states])

    model.zero_grad(set_to_none=True)
    torch.testing.assert_close(hidden_grad_norms(model, F.mse_loss, x, target), expected)


def test_torch_gru_and_custom_gru_give_the_same_diagnostics():
    torch.manual_seed(0)
    torch_model = sequence_model(nn.GRU(3, 5, num_layers=2, batch_first=True), 2)
    custom_model = sequence_model(CustomGRU(3, 5, num_layers=2, batch_first=True), 2)
    custom_model.load_state_dict(torch_model.state_dict())
    x, target = torch.randn(4, 9, 3), torch.randn(4, 2)
    torch.testing.assert_close(
        hidden_grad_norms(custom_model, F.mse_loss, x, target),
        hidden_grad_norms(torch_model, F.mse_loss, x, target),
        rtol=1e-5,
        atol=1e-7,
    )
    torch_gates, custom_gates = gate_statistics(torch_model, x), gate_statistics(custom_model, x)
    assert set(torch_gates) == {"r_mean", "r_saturated", "z_mean", "z_saturated"}
    for key, value in torch_gates.items():
        torch.testing.assert_close(custom_gates[key], value, rtol=1e-5, atol=1e-6)


# ------------------------------------------------------------------------------------------
# Every registered model: the step-by-step pass is the model's forward
# ------------------------------------------------------------------------------------------

CONFIGS = [ModelConfig(name=name, hidden_size=6, num_layers=2, dropout=0.3) for name in MODELS]
CONFIGS += [
    ModelConfig(name="custom_gru", hidden_size=6, num_layers=2, reset_after=False),
    ModelConfig(name="custom_gru", hidden_size=6, num_layers=2, layer_norm=True),
    ModelConfig(name="custom_gru", hidden_size=6, num_layers=2, layer_norm=True, reset_after=False),
    ModelConfig(name="custom_gru", hidden_size=6, activation="relu"),
    ModelConfig(name="lstm", layer_sizes=[7, 5], dropout=0.3),  # a StackedRNN
    ModelConfig(name="custom_gru", layer_sizes=[7, 5], layer_norm=True),
]


def config_id(cfg: ModelConfig) -> str:
    parts = [cfg.name, f"L{cfg.num_layers}"]
    parts += ["stacked"] if cfg.layer_sizes else []
    parts += ["reset_before"] if not cfg.reset_after else []
    parts += ["ln"] if cfg.layer_norm else []
    parts += [cfg.activation] if cfg.activation != "tanh" else []
    return "-".join(parts)


@pytest.mark.parametrize("mode", ["last", "sequence"])
@pytest.mark.parametrize("cfg", CONFIGS, ids=config_id)
def test_stepwise_forward_is_the_model_forward(cfg, mode):
    torch.manual_seed(0)
    model = build_model(cfg, input_size=3, output_size=4, output_mode=mode, seq_len=8)
    x = torch.randn(5, 8, 3)
    model.eval()
    prediction, hiddens = stepwise_forward(model, x)
    torch.testing.assert_close(prediction, model(x), rtol=1e-5, atol=1e-5)
    assert len(hiddens) == len(cfg.widths) and all(len(hs) == 8 for hs in hiddens)
    assert [hs[0].shape[-1] for hs in hiddens] == cfg.widths

    model.train()  # the probe switches to eval itself (dropout > 0 in some configs)
    target = torch.randn(5, 4) if mode == "last" else torch.randint(0, 4, (5, 8))
    loss = F.mse_loss if mode == "last" else lambda p, y: F.cross_entropy(p.transpose(1, 2), y)
    norms = hidden_grad_norms(model, loss, x, target)
    assert norms.shape == (len(cfg.widths), 8)
    assert torch.isfinite(norms).all() and (norms > 0).all()


def test_single_layers_share_the_parameters_and_reject_unknown_modules():
    gru = nn.GRU(3, 4, num_layers=3, batch_first=True)
    layers = single_layers(gru)
    assert [type(layer) for layer in layers] == [nn.GRU] * 3
    assert all(layer.num_layers == 1 and layer.batch_first for layer in layers)
    assert layers[2].weight_hh_l0 is gru.weight_hh_l2  # the same Parameter, not a copy

    custom = CustomGRU(3, 4, num_layers=2, layer_norm=True, reset_after=False)
    second = single_layers(custom)[1]
    assert second.weight_ih_l0 is custom.weight_ih_l1 and second.ln_hn_l0 is custom.ln_hn_l1
    assert not second.reset_after and second.layer_norm

    stacked = StackedRNN([nn.LSTM(3, 4, num_layers=2), CustomGRU(4, 5)])
    assert [type(layer) for layer in single_layers(stacked)] == [nn.LSTM, nn.LSTM, CustomGRU]

    linear = LinearRecurrence(3, 4)  # unknown, but one layer: passes through as itself
    assert single_layers(linear) == [linear]
    with pytest.raises(ValueError, match="Linear"):
        single_layers(nn.Linear(3, 4))
    with pytest.raises(ValueError, match="bidirectional"):
        single_layers(nn.GRU(3, 4, bidirectional=True))


# ------------------------------------------------------------------------------------------
# curve_summary on hand-made curves
# ------------------------------------------------------------------------------------------


def test_curve_summary_on_hand_made_curves():
    T = 6
    growing = curve_summary(2.0 ** np.arange(T))  # 1, 2, 4, 8, 16, 32
    assert growing["ratio_first_last"] == pytest.approx(2.0 ** -(T - 1))
    assert growing["log_slope"] == pytest.approx(math.log10(2))
    # 0.1 * 32 = 3.2: lags 0, 1, 2, 3 hold 32, 16, 8, 4 >= 3.2; lag 4 holds 2 < 3.2
    assert growing["horizon"] == 3
    assert curve_summary(2.0 ** np.arange(T), fraction=0.5)["horizon"] == 1  # 32, 16 >= 16

    flat = curve_summary(torch.ones(T))
    assert flat == {"ratio_first_last": 1.0, "log_slope": 0.0, "horizon": T - 1}

    # every lag up to d must hold: the dip at lag 2 ends the horizon despite lag 3's value
    assert curve_summary([100.0, 5.0, 0.5, 8.0, 10.0], fraction=0.1)["horizon"] == 1

    with_zeros = curve_summary([0.0, 0.0, 1.0])  # floored at 1e-30: finite, 30 decades
    assert with_zeros["ratio_first_last"] == pytest.approx(1e-30)
    assert with_zeros["log_slope"] == pytest.approx(30 * 0.5)  # slope of (-30, -30, 0)
    assert with_zeros["horizon"] == 0
    # no gradient at the last step at all: every lag holds at least fraction * 0
    assert curve_summary([0.0, 0.0, 0.0])["horizon"] == 2

    single = curve_summary([3.0])
    assert single["ratio_first_last"] == 1.0 and math.isnan(single["log_slope"])
    assert single["horizon"] == 0
    assert math.isnan(curve_summary([1.0, float("nan")])["horizon"])
    with pytest.raises(ValueError, match="fraction"):
        curve_summary([1.0, 2.0], fraction=0.0)


# ------------------------------------------------------------------------------------------
# Gate statistics against hand computations and the modules' internals
# ------------------------------------------------------------------------------------------


def expected_stats(gate: torch.Tensor, saturation: float):
    """(T,) mean and saturated fraction of a (B, T, H) gate, over batch and units."""
    saturated = ((gate < saturation) | (gate > 1 - saturation)).double()
    return gate.mean(dim=(0, 2)), saturated.mean(dim=(0, 2))


def test_gate_statistics_of_torch_gru_match_a_hand_computation():
    torch.manual_seed(0)
    gru = nn.GRU(2, 3, num_layers=2, batch_first=True).double()
    with torch.no_grad():  # larger weights: some gates saturate, so the fraction is tested
        for p in gru.parameters():
            p.mul_(4)
    model = sequence_model(gru, 1).double()
    x = torch.randn(4, 5, 2, dtype=torch.float64)
    with torch.no_grad():
        states, gates = hand_gru(gru, x)
        torch.testing.assert_close(torch.stack(states[-1], 1), gru(x)[0])
    stats = gate_statistics(model, x, saturation=0.2)
    for k in range(2):
        for name in ("r", "z"):
            mean, saturated = expected_stats(gates[k][name], 0.2)
            torch.testing.assert_close(stats[f"{name}_mean"][k], mean)
            torch.testing.assert_close(stats[f"{name}_saturated"][k], saturated)
    assert stats["z_saturated"].max() > 0  # the saturated branch was exercised
    assert ((stats["z_mean"] > 0) & (stats["z_mean"] < 1)).all()


def test_gate_statistics_of_lstm_match_a_hand_computation():
    torch.manual_seed(0)
    lstm = nn.LSTM(2, 3, batch_first=True).double()
    model = sequence_model(lstm, 1).double()
    x = torch.randn(4, 5, 2, dtype=torch.float64)
    h = c = torch.zeros(4, 3, dtype=torch.float64)
    hs, gates = [], {"i": [], "f": [], "o": []}
    with torch.no_grad():
        for xt in x.unbind(1):
            pre = xt @ lstm.weight_ih_l0.T + lstm.bias_ih_l0 + h @ lstm.weight_hh_l0.T
            i, f, g, o = (pre + lstm.bias_hh_l0).chunk(4, 1)  # PyTorch's row order i, f, g, o
            i, f, g, o = torch.sigmoid(i), torch.sigmoid(f), torch.tanh(g), torch.sigmoid(o)
            c = f * c + i * g
            h = o * torch.tanh(c)
            hs.append(h)
            for name, value in (("i", i), ("f", f), ("o", o)):
                gates[name].append(value)
        torch.testing.assert_close(torch.stack(hs, 1), lstm(x)[0])
    stats = gate_statistics(model, x, saturation=0.3)
    assert set(stats) == {f"{g}_{s}" for g in "ifo" for s in ("mean", "saturated")}
    for name, values in gates.items():
        mean, saturated = expected_stats(torch.stack(values, 1), 0.3)
        torch.testing.assert_close(stats[f"{name}_mean"][0], mean)
        torch.testing.assert_close(stats[f"{name}_saturated"][0], saturated)


@pytest.mark.parametrize("reset_after", [True, False])
@pytest.mark.parametrize("layer_norm", [False, True])
def test_gate_statistics_of_custom_gru_match_its_own_sigmoids(monkeypatch, reset_after, layer_norm):
    """Record every ``torch.sigmoid`` CustomGRU's forward computes: per layer and step one
    (B, 2H) tensor [r, z]; the statistics must be computed from exactly those values. (The
    autograd backend calls torch.sigmoid from Python; the others compute the same gates.)"""
    torch.manual_seed(0)
    gru = CustomGRU(
        2,
        3,
        num_layers=2,
        batch_first=True,
        reset_after=reset_after,
        layer_norm=layer_norm,
        backend="autograd",
    )
    if layer_norm:  # non-unit gains, so a forgotten LayerNorm would show
        with torch.no_grad():
            for name, p in gru.named_parameters():
                if name.startswith("ln_"):
                    p.uniform_(0.5, 2.0)
    model = sequence_model(gru, 1)
    x = torch.randn(4, 5, 2)
    recorded, sigmoid = [], torch.sigmoid
    monkeypatch.setattr(torch, "sigmoid", lambda t: recorded.append(sigmoid(t)) or recorded[-1])
    with torch.no_grad():
        gru(x)
    monkeypatch.undo()
    assert len(recorded) == 2 * 5
    stats = gate_statistics(model, x)
    for k in range(2):
        rz = torch.stack(recorded[5 * k : 5 * (k + 1)], 1)  # (B, T, 2H)
        for name, gate in (("r", rz[..., :3]), ("z", rz[..., 3:])):
            mean, saturated = expected_stats(gate, 0.1)
            torch.testing.assert_close(stats[f"{name}_mean"][k], mean)
            torch.testing.assert_close(stats[f"{name}_saturated"][k], saturated.float())


def test_gate_statistics_without_gates_and_in_mixed_stacks():
    x = torch.randn(2, 4, 3)
    assert gate_statistics(sequence_model(nn.RNN(3, 4, batch_first=True)), x) == {}
    stacked = StackedRNN([nn.RNN(3, 4, batch_first=True), nn.LSTM(4, 5, batch_first=True)])
    stats = gate_statistics(SequenceModel(stacked, 5, 1, "last"), x)
    assert set(stats) == {f"{g}_{s}" for g in "ifo" for s in ("mean", "saturated")}
    assert stats["f_mean"].shape == (2, 4)
    assert torch.isnan(stats["f_mean"][0]).all()  # the RNN layer has no forget gate
    assert ((stats["f_mean"][1] > 0) & (stats["f_mean"][1] < 1)).all()


# ------------------------------------------------------------------------------------------
# The probe leaves training state alone
# ------------------------------------------------------------------------------------------


def test_probe_leaves_grads_and_modes_as_they_were():
    torch.manual_seed(0)
    cfg = ModelConfig(name="custom_gru", hidden_size=5, num_layers=2, dropout=0.5)
    model = build_model(cfg, input_size=3, output_size=2, output_mode="last", seq_len=6)
    model.train()
    model.head.eval()  # a mixed state must come back as it was, not as model.train()
    x, target = torch.randn(4, 6, 3), torch.randn(4, 2)
    F.mse_loss(model(x), target).backward()
    model.head.bias.grad = None
    before = {n: None if p.grad is None else p.grad.clone() for n, p in model.named_parameters()}
    modes = {n: m.training for n, m in model.named_modules()}
    rng = torch.get_rng_state()

    hidden_grad_norms(model, F.mse_loss, x, target)
    gate_statistics(model, x)

    for name, p in model.named_parameters():
        if before[name] is None:
            assert p.grad is None, name
        else:
            assert torch.equal(p.grad, before[name]), name
    assert {n: m.training for n, m in model.named_modules()} == modes
    assert torch.equal(torch.get_rng_state(), rng)


# ------------------------------------------------------------------------------------------
# The callback through a real tiny fit
# ------------------------------------------------------------------------------------------


def tiny_fit(cfg, tmp_path, callbacks):
    """The pieces fit.py builds, with our callbacks and a fresh MLflow run."""
    L.seed_everything(cfg.seed, workers=True, verbose=False)
    task = build_task(cfg.task.name, cfg.task.seq_len, **cfg.task.options)
    model = build_model(
        cfg.model, task.input_size, task.output_size, task.output_mode, task.seq_len
    )
    system = RecurrentSystem(model, task, cfg.optim)
    data = SyntheticDataModule(
        task,
        batch_size=cfg.task.batch_size,
        epoch_size=cfg.task.epoch_size,
        val_size=cfg.task.val_size,
        test_size=cfg.task.test_size,
        seed=cfg.seed,
    )
    logger = MLFlowLogger(tracking_uri=cfg.tracking_uri, experiment_name="diagnostics")
    trainer = L.Trainer(
        **cfg.trainer,
        logger=logger,
        callbacks=callbacks,
        enable_checkpointing=False,
        enable_model_summary=False,
        default_root_dir=str(tmp_path),
        use_distributed_sampler=False,
        accelerator="cpu",
    )
    trainer.fit(system, datamodule=data)
    return system, logger.run_id


@pytest.mark.integration
def test_callback_logs_metrics_and_artifacts_without_changing_training(
    tiny, tracking_uri, client, tmp_path
):
    # two layers with dropout: a probe that drew random numbers would change the masks
    cfg = tiny(tracking_uri, model={"num_layers": 2, "dropout": 0.5}, trainer={"max_steps": 8})
    diagnostics = GradientDiagnostics(every_n_steps=4, probe_size=8)
    system, run_id = tiny_fit(cfg, tmp_path, [diagnostics])
    baseline, _ = tiny_fit(cfg, tmp_path, [])
    for (name, p), q in zip(system.model.named_parameters(), baseline.model.parameters()):
        assert torch.equal(p, q), name
    assert system.model.training  # Lightning's mode, restored after every probe

    assert diagnostics.steps == [0, 4, 8]  # every 4 steps before the update, and at the end
    for k in range(2):
        for key in ("grad_ratio_first_last", "grad_log_slope", "grad_horizon", "grad_norm_last"):
            history = client.get_metric_history(run_id, f"diag/{key}/l{k}")
            assert sorted(m.step for m in history) == [0, 4, 8], key
            assert all(math.isfinite(m.value) for m in history)
        for gate in ("r", "z"):
            for stat in ("mean", "saturated"):
                history = client.get_metric_history(run_id, f"diag/{gate}_{stat}/l{k}")
                assert sorted(m.step for m in history) == [0, 4, 8]
                assert all(0 <= m.value <= 1 for m in history)

    names = {a.path for a in client.list_artifacts(run_id, "diagnostics")}
    assert names == {"diagnostics/grad_norms.json", "diagnostics/grad_norms.png"}
    local = client.download_artifacts(run_id, "diagnostics", str(tmp_path / "downloaded"))
    with open(f"{local}/grad_norms.json") as f:
        payload = json.load(f)
    T = cfg.task.seq_len
    assert payload["version"] == 1
    assert payload["steps"] == [0, 4, 8]
    assert (payload["layers"], payload["T"], payload["probe_size"]) == (2, T, 8)
    norms = np.array(payload["norms"], dtype=float)
    assert norms.shape == (3, 2, T) and np.isfinite(norms).all() and (norms > 0).all()
    assert set(payload["gates"]) == {"r_mean", "r_saturated", "z_mean", "z_saturated"}
    for values in payload["gates"].values():
        values = np.array(values, dtype=float)
        assert values.shape == (3, 2, T) and ((values >= 0) & (values <= 1)).all()
    assert set(payload["summary"]) == {"ratio_first_last", "log_slope", "horizon"}
    assert np.array(payload["summary"]["horizon"], dtype=float).shape == (3, 2)
    with open(f"{local}/grad_norms.png", "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"


def test_callback_rejects_bad_options():
    with pytest.raises(ValueError, match="every_n_steps"):
        GradientDiagnostics(every_n_steps=0)
    with pytest.raises(ValueError, match="fraction"):
        GradientDiagnostics(every_n_steps=1, fraction=1.5)
