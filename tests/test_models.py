"""Every registered model: shapes, parameter counts, options and their validation."""

import pytest
import torch

from grubench.models import (
    MODELS,
    ModelConfig,
    build_model,
    count_parameters,
    validate_model_config,
)
from grubench.models.layers import describe

TIER = "unit"


@pytest.mark.parametrize("name", sorted(MODELS))
@pytest.mark.parametrize("mode", ["last", "sequence"])
def test_every_model_builds_and_runs(name, mode):
    cfg = ModelConfig(name=name, hidden_size=6, num_layers=2, dropout=0.1)
    model = build_model(cfg, input_size=3, output_size=5, output_mode=mode)
    out = model(torch.randn(4, 7, 3))
    assert out.shape == ((4, 5) if mode == "last" else (4, 7, 5))
    out.sum().backward()
    assert all(p.grad is not None for p in model.parameters())
    # the registry's layout is the built module's, and it counts the module's parameters
    layout = MODELS[name].layout
    assert describe(model.backbone).gate_layout == layout
    per_layer = layout.parameter_count
    assert count_parameters(model) == per_layer(3, 6) + per_layer(6, 6) + 6 * 5 + 5


def test_parameter_counts_by_hand():
    """The layouts' counts against the formulas: in·H + H·H + 2H per gate for torch's layers,
    in·H + H per gate (input projections only) for minGRU (z, h) and minLSTM (f, i, h)."""
    want = {"torch_gru": 3 * (3 * 6 + 36 + 12), "lstm": 4 * (3 * 6 + 36 + 12)}
    want |= {"min_gru": 2 * (3 * 6 + 6), "min_lstm": 3 * (3 * 6 + 6)}
    for name, count in want.items():
        model = build_model(ModelConfig(name=name, hidden_size=6), 3, 1, "last")
        assert count_parameters(model.backbone) == count, name


@pytest.mark.parametrize("name", ["min_gru", "min_lstm"])
def test_min_rnns_name_the_inits_that_apply(name):
    problems = validate_model_config(ModelConfig(name=name, init="orthogonal"))
    assert len(problems) == 1 and problems[0].endswith(
        "choose from: default, xavier_uniform, xavier_normal, chrono"
    )
    assert validate_model_config(ModelConfig(name=name, init="chrono"), seq_len=20) == []


def test_lstm_forget_bias_sums_to_the_option():
    model = build_model(ModelConfig(name="lstm", hidden_size=4, forget_bias=2.5), 2, 1, "last")
    lstm = model.backbone
    f = slice(4, 8)  # PyTorch LSTM gate order: i, f, g, o
    assert torch.allclose(lstm.bias_ih_l0[f] + lstm.bias_hh_l0[f], torch.full((4,), 2.5))


def test_rnn_activation_and_custom_gru_options():
    rnn = build_model(ModelConfig(name="rnn", activation="relu"), 2, 1, "last").backbone
    assert rnn.nonlinearity == "relu"
    gru = build_model(
        ModelConfig(name="custom_gru", reset_after=False, activation="relu"), 2, 1, "last"
    ).backbone
    assert gru.reset_after is False and gru.activation == "relu"
    gru = build_model(ModelConfig(name="custom_gru", backend="python"), 2, 1, "last").backbone
    assert gru.backend == "python"


def test_same_seed_same_weights():
    def weights(seed):
        torch.manual_seed(seed)
        return torch.cat(
            [p.flatten() for p in build_model(ModelConfig(), 2, 1, "last").parameters()]
        )

    assert torch.equal(weights(0), weights(0)) and not torch.equal(weights(0), weights(1))


@pytest.mark.parametrize(
    ("cfg", "message"),
    [
        (
            ModelConfig(name="gru"),
            f"unknown model 'gru'; choose from: {', '.join(sorted(MODELS))}",
        ),
        (ModelConfig(num_layers=0), "model.num_layers must be positive, got 0"),
        (ModelConfig(dropout=1.0), "model.dropout must lie in [0, 1), got 1.0"),
        (
            ModelConfig(dropout=0.5),
            "model.dropout=0.5 acts between stacked layers only and this model has one",
        ),
        (
            ModelConfig(name="custom_gru", activation="gelu"),
            "unknown activation 'gelu'; choose from: tanh, relu",
        ),
        (
            ModelConfig(name="lstm", layer_norm=True),
            "model.layer_norm=True does not apply to lstm; only custom_gru take it",
        ),
        (
            ModelConfig(name="torch_gru", forget_bias=0.0),
            "model.forget_bias=0.0 does not apply to torch_gru; only lstm take it",
        ),
        (
            ModelConfig(name="custom_gru", backend="fast"),
            "model.backend: unknown backend 'fast'; choose from: auto, cpp, python, autograd",
        ),
        (
            ModelConfig(name="lstm", backend="python"),
            "model.backend: unknown backend 'python'; choose from: auto, cpp, torch",
        ),
        (
            ModelConfig(name="torch_gru", activation="relu"),
            "model.activation='relu' does not apply to torch_gru; only custom_gru, rnn take it",
        ),
    ],
)
def test_invalid_options_are_named(cfg, message):
    problems = validate_model_config(cfg)
    assert any(message in p for p in problems), problems
    with pytest.raises(ValueError):
        build_model(cfg, 2, 1, "last")


@pytest.mark.parametrize("name", sorted(MODELS))
def test_stacked_layers_of_different_widths(name):
    """The classic tutorial stack: 128 units returning sequences, then 64, then the head."""
    cfg = ModelConfig(name=name, layer_sizes=[12, 5], dropout=0.2)
    model = build_model(cfg, input_size=3, output_size=2, output_mode="last")
    assert [layer.hidden_size for layer in model.backbone.layers] == [12, 5]
    assert model.backbone.layers[1].input_size == 12 and model.head.in_features == 5
    model.eval()
    x = torch.randn(4, 7, 3)
    # equals running the two layers by hand (no dropout in eval)
    by_hand = model.head(model.backbone.layers[1](model.backbone.layers[0](x)[0])[0][:, -1])
    assert torch.allclose(model(x), by_hand)
    per_layer = MODELS[name].layout.parameter_count
    expected = per_layer(3, 12) + per_layer(12, 5) + 5 * 2 + 2
    assert count_parameters(model) == expected
    assert validate_model_config(ModelConfig(layer_sizes=[4, 0]))[0].startswith(
        "model.layer_sizes must be positive widths"
    )


def test_matched_hidden_size_equalizes_parameter_counts():
    from grubench.models import matched_hidden_size

    gru = build_model(ModelConfig(name="torch_gru", hidden_size=64), 2, 1, "last")
    target = count_parameters(gru)  # 3 * (64*2 + 64*64 + 2*64) + 65 = 13121
    hidden = matched_hidden_size(ModelConfig(name="lstm"), target, 2, 1)
    assert hidden == 55  # 4 * (55*2 + 55*55 + 2*55) + 56 = 13036, the closest

    def count(h):
        return count_parameters(build_model(ModelConfig(name="lstm", hidden_size=h), 2, 1, "last"))  # noqa: E731

    assert abs(count(hidden) - target) <= min(
        abs(count(hidden - 1) - target), abs(count(hidden + 1) - target)
    )


def test_a_model_with_options_is_a_file_and_a_registry_line(monkeypatch):
    """What a new model file gives (a builder and an options dataclass) is all the config,
    the validation, the build and the README's table need: the registry's ModelConfig gains
    its option, a wrong choice and an option on another model are named, build passes it."""
    from dataclasses import dataclass, fields
    from typing import Literal

    from torch import nn

    import grubench.answers.docs
    import grubench.models as models
    from grubench.options import option

    @dataclass
    class ToyOptions:
        mode: Literal["a", "b"] = option("a", "the toy's mode")

    built = {}

    def build_toy(input_size, hidden_size, num_layers, dropout, mode="a"):
        built["mode"] = mode
        return nn.GRU(input_size, hidden_size, num_layers, batch_first=True, dropout=dropout)

    registry = {**MODELS, "toy": models.ModelSpec(build_toy, MODELS["torch_gru"].layout,
                                                  ToyOptions)}  # fmt: skip
    options = models.collect_options(registry)
    config = models.make_model_config(options)
    monkeypatch.setattr(models, "MODELS", registry)
    monkeypatch.setattr(models, "MODEL_OPTIONS", options)
    monkeypatch.setattr(grubench.answers.docs, "MODELS", registry)
    assert "mode" in {f.name for f in fields(config)}
    assert "toy: the toy's mode (choices: a, b)" in config.__doc__
    assert models.validate_model_config(config(name="toy", mode="b")) == []
    assert models.validate_model_config(config(name="toy", mode="c")) == [
        "model.mode: unknown mode 'c'; choose from: a, b"
    ]
    assert models.validate_model_config(config(name="lstm", mode="b")) == [
        "model.mode='b' does not apply to lstm; only toy take it"
    ]
    models.build_model(config(name="toy", mode="b"), 2, 1, "last")
    assert built == {"mode": "b"}
    assert "| `toy` | `mode` (a; a, b): the toy's mode |" in grubench.answers.docs.options_block()


def test_models_sharing_an_option_must_share_its_default():
    from dataclasses import dataclass

    import grubench.models as models
    from grubench.options import option

    @dataclass
    class Other:
        activation: str = option("relu", "another default")

    spec = models.ModelSpec(MODELS["rnn"].build, MODELS["rnn"].layout, Other)
    with pytest.raises(TypeError, match="option 'activation': other gives it the default 'relu'"):
        models.collect_options({**MODELS, "other": spec})


@pytest.mark.parametrize("name", sorted(MODELS))
def test_every_model_names_its_implementation(name):
    from grubench.models import ModelConfig, implementation

    assert implementation(ModelConfig(name=name)) != name, "add the model to implementation()"


def test_the_implementation_follows_the_backend_options():
    from grubench.models import ModelConfig, implementation

    def named(**model):
        return implementation(ModelConfig(**model))

    assert named(name="custom_gru") == "grubench engine"
    assert named(name="custom_gru", reset_after=False) == "grubench, autograd loop"
    assert named(name="custom_gru", layer_norm=True) == "grubench, autograd loop"
    assert named(name="custom_gru", backend="python") == "grubench, PyTorch ops"
    assert named(name="lstm") == named(name="rnn") == named(name="min_gru") == "grubench engine"
    assert named(name="lstm", backend="torch") == "torch nn.LSTM (oneDNN)"
    assert named(name="rnn", backend="torch") == "torch nn.RNN"
    assert named(name="min_lstm", scan="parallel") == "log-space scan"
    assert named(name="torch_gru") == "torch nn.GRU"
