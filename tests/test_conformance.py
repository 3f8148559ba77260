"""The conformance suite: every check here runs on every entry of the model registry, so a
model is tested the day its registry line is added, with no test written for it (the idea of
scikit-learn's ``parametrize_with_checks``). The same idea for the other registries lives in
``tests/test_tasks.py`` (every task: chance level, splits, worked example), ``test_measures.py``
(every measure) and ``test_experiments.py`` (every question file).

The last tests register a model a newcomer might write (an IndRNN, whose recurrent weight is
one vector per layer) and show that the checks accept what applies to it and refuse, in one
line and before any run, what does not."""

from __future__ import annotations

import io
import math

import pytest
import torch
from torch import nn

from grubench.models import (
    INITS,
    MODELS,
    ModelConfig,
    ModelSpec,
    build_model,
    validate_model_config,
)
from grubench.models.layers import GateLayout, describe, share_layer
from grubench.training import diagnostics

TIER = "unit"


B, T, IN, H, L = 3, 6, 2, 5, 2


def config(name: str, **fields) -> ModelConfig:
    return ModelConfig(name=name, hidden_size=H, num_layers=L, **fields)


def check_interface(name: str) -> None:
    """nn.GRU's interface: batch-first (B, T, I) in, (B, T, H) out, a state of L layers, an
    initial state accepted, and a gradient reaching every parameter and the input."""
    backbone = build_model(config(name), IN, 1, "sequence", seq_len=T).backbone
    x = torch.randn(B, T, IN, requires_grad=True)
    out, state = backbone(x)
    assert out.shape == (B, T, H), name
    states = state if isinstance(state, tuple) else (state,)
    assert all(s.shape == (L, B, H) for s in states), name
    again, _ = backbone(x, state)  # an initial state of the shape it returned
    (out.sum() + again.sum()).backward()
    assert x.grad is not None and torch.isfinite(x.grad).all(), name
    for pname, p in backbone.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), f"{name}: {pname}"


def check_initializers(name: str) -> None:
    """Every scheme either initializes the model (finite parameters, and the same ones again
    from the same seed) or is refused by validation in one line naming the valid choices,
    and then by build_model too, before anything is built."""
    for scheme in INITS:
        cfg = config(name, init=scheme)
        problems = validate_model_config(cfg, seq_len=T)
        if problems:
            assert len(problems) == 1 and "\n" not in problems[0], (name, scheme, problems)
            assert problems[0].startswith("model.init: ") and "choose from: " in problems[0]
            assert scheme in problems[0], problems
            with pytest.raises(ValueError, match="choose from"):
                build_model(cfg, IN, 1, "last", seq_len=T)
            continue
        torch.manual_seed(0)
        first = build_model(cfg, IN, 1, "last", seq_len=T)
        torch.manual_seed(0)
        second = build_model(cfg, IN, 1, "last", seq_len=T)
        for (pname, p), q in zip(first.named_parameters(), second.parameters()):
            assert torch.isfinite(p).all(), f"{name} {scheme}: {pname}"
            assert torch.equal(p, q), f"{name} {scheme}: {pname} differs from the same seed"


def check_diagnostics(name: str) -> None:
    """The diagnostics read the model: its single layers reproduce its forward, the
    per-step gradient norms are finite, and the gate statistics are (num_layers, T) each."""
    torch.manual_seed(0)
    model = build_model(config(name), IN, 1, "last", seq_len=T).eval()
    x = torch.randn(B, T, IN)
    prediction, hiddens = diagnostics.stepwise_forward(model, x)
    torch.testing.assert_close(prediction, model(x), rtol=1e-4, atol=1e-5)
    assert len(hiddens) == L and all(len(steps) == T for steps in hiddens)
    norms = diagnostics.hidden_grad_norms(model, nn.functional.mse_loss, x, torch.zeros(B, 1))
    assert norms.shape == (L, T) and torch.isfinite(norms).all(), name
    gates = diagnostics.gate_statistics(model, x)
    assert all(v.shape == (L, T) for v in gates.values()), name
    layout = MODELS[name].layout
    if layout.keep is not None:  # a model that names a keep gate reports it
        assert any(key.endswith("_mean") for key in gates), name


def check_checkpoint(name: str) -> None:
    """A state dict saved and loaded into a model built from another seed gives the same
    outputs."""
    torch.manual_seed(0)
    model = build_model(config(name), IN, 1, "last", seq_len=T).eval()
    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    torch.manual_seed(1)
    other = build_model(config(name), IN, 1, "last", seq_len=T).eval()
    buffer.seek(0)
    other.load_state_dict(torch.load(buffer, weights_only=True))
    x = torch.randn(B, T, IN)
    assert torch.equal(model(x), other(x)), name


CHECKS = [check_interface, check_initializers, check_diagnostics, check_checkpoint]


@pytest.mark.parametrize("check", CHECKS, ids=lambda c: c.__name__)
@pytest.mark.parametrize("name", sorted(MODELS))
def test_every_model_conforms(name, check):
    check(name)


# ----------------------------------------------------------------------------------------------
# A new entry, as a newcomer might add it
# ----------------------------------------------------------------------------------------------


class IndRNN(nn.Module):
    """Li et al. 2018: h_t = relu(W x_t + u ⊙ h_{t−1} + b), u one vector per layer."""

    gate_layout = GateLayout("ind_rnn", ("h",))

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1) -> None:
        super().__init__()
        self.input_size, self.hidden_size, self.num_layers = input_size, hidden_size, num_layers
        for k in range(num_layers):
            width = input_size if k == 0 else hidden_size
            self.register_parameter(
                f"weight_ih_l{k}", nn.Parameter(torch.empty(hidden_size, width))
            )
            self.register_parameter(f"weight_hh_l{k}", nn.Parameter(torch.empty(hidden_size)))
            self.register_parameter(f"bias_ih_l{k}", nn.Parameter(torch.empty(hidden_size)))
            self.register_parameter(f"bias_hh_l{k}", nn.Parameter(torch.empty(hidden_size)))
        bound = 1 / math.sqrt(hidden_size)
        for p in self.parameters():
            nn.init.uniform_(p, -bound, bound)

    def _weights(self, k: int) -> tuple[torch.Tensor, ...]:
        return tuple(getattr(self, f"{w}_l{k}") for w in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"))  # fmt: skip

    def forward(self, x, h0=None):
        states = []
        for k in range(self.num_layers):
            w_ih, u, b_ih, b_hh = self._weights(k)
            h = x.new_zeros(x.size(0), self.hidden_size) if h0 is None else h0[k]
            outs = []
            for x_t in (x @ w_ih.T + b_ih + b_hh).unbind(1):
                h = torch.relu(x_t + u * h)
                outs.append(h)
            x = torch.stack(outs, 1)
            states.append(h)
        return x, torch.stack(states)

    def single_layers(self) -> list[nn.Module]:
        layers = []
        for k in range(self.num_layers):
            width = self.input_size if k == 0 else self.hidden_size
            with torch.device("meta"):
                template = IndRNN(width, self.hidden_size, 1)
            layers.append(share_layer(self, k, template))
        return layers

    def layer_gates(self, x, h_prev):
        return {}


def build_ind_rnn(input_size: int, hidden_size: int, num_layers: int, dropout: float) -> IndRNN:
    return IndRNN(input_size, hidden_size, num_layers)


@pytest.fixture
def ind_rnn(monkeypatch):
    monkeypatch.setitem(MODELS, "ind_rnn", ModelSpec(build_ind_rnn, IndRNN.gate_layout))
    return "ind_rnn"


def test_a_new_model_with_a_vector_recurrent_weight_conforms(ind_rnn):
    assert describe(build_ind_rnn(2, 3, 1, 0.0)).gate_layout == IndRNN.gate_layout
    for check in CHECKS:
        check(ind_rnn)


@pytest.mark.parametrize("scheme", ["orthogonal", "xavier_uniform", "xavier_normal", "identity"])
def test_matrix_inits_are_refused_in_one_line_for_it(ind_rnn, scheme):
    """Torch's initializers would fail on a vector ("Only tensors with 2 or more dimensions");
    the refusal comes from the parameters the model has, with the schemes that apply."""
    problems = validate_model_config(config(ind_rnn, init=scheme), seq_len=T)
    assert problems == [
        f"model.init: init {scheme!r} does not apply to IndRNN: it sets gate blocks as "
        "matrices and its weight_hh_l0 has shape (4,); choose from: default"
    ]


def test_the_probe_leaves_the_global_rng_alone(ind_rnn):
    torch.manual_seed(3)
    expected = torch.rand(2)
    torch.manual_seed(3)
    validate_model_config(config(ind_rnn, init="orthogonal"), seq_len=T)
    assert torch.equal(torch.rand(2), expected)
