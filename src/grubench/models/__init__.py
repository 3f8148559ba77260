"""The model registry: plain ``nn.Module``s that know nothing of Lightning, MLflow or tasks.

Adding a model: a file with a builder ``(input_size, hidden_size, num_layers, dropout,
**options) -> module`` whose module has nn.GRU's interface (batch-first, returns
``(outputs, state)``, takes an initial state ``(num_layers, B, H)``) and describes its layers
and gates (:mod:`grubench.models.layers`), a dataclass of its own options if it has any (in
:mod:`grubench.models.options`, which imports no torch), and one :class:`ModelSpec` line in
``MODELS``. The command line's and the experiment files' ``ModelConfig``, its validation and
the README's options tables come from those definitions.

This module imports no torch: the registry names each builder as ``"file:name"``, imported at
the first build, so ``ModelConfig`` and ``grubench fit --help`` cost no torch import. The
modules (``CustomGRU``, ``SequenceModel``, ...) are importable from here as before; they load
torch when first named.
"""

from __future__ import annotations

import dataclasses
import importlib
import inspect
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Literal

from grubench.models.options import (
    ACTIVATIONS,
    INITS,
    CustomGRUOptions,
    LSTMOptions,
    MinRNNOptions,
    RNNOptions,
)
from grubench.options import choices, help_of, option, option_fields

if TYPE_CHECKING:
    from torch import nn

    from grubench.models.custom_gru import CustomGRU
    from grubench.models.layers import GateLayout
    from grubench.models.min_rnns import MinGRU, MinLSTM
    from grubench.models.sequence import SequenceModel, StackedRNN

# the torch modules this package re-exports, imported when first named (PEP 562)
_LAZY = {
    "CustomGRU": "custom_gru",
    "MinGRU": "min_rnns",
    "MinLSTM": "min_rnns",
    "SequenceModel": "sequence",
    "StackedRNN": "sequence",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _resolve(ref: Any) -> Any:
    """``"file:name"`` (``name`` may be dotted) -> that object of ``grubench.models.file``;
    anything else is returned as it is."""
    if not isinstance(ref, str):
        return ref
    module, _, path = ref.partition(":")
    found: Any = importlib.import_module(f"{__name__}.{module}")
    for part in path.split("."):
        found = getattr(found, part)
    return found


class ModelSpec:
    """A registered model. ``build`` ``(input_size, hidden_size, num_layers, dropout,
    **options) -> nn.Module``; ``layout`` the built module's gate layout, for validating an init
    before building; ``options`` the dataclass of the model's own options; ``after_init``
    ``(module, init, options) -> None``, what the model sets after its initializer ran (the
    builder receives the options its signature names, this hook all of them).

    ``build``, ``layout`` and ``after_init`` are the objects or ``"file:name"`` references
    under grubench.models, imported when first used (the options are read without torch)."""

    def __init__(
        self,
        build: Callable[..., nn.Module] | str,
        layout: GateLayout | str,
        options: type | None = None,
        after_init: Callable[[nn.Module, str, Any], None] | str | None = None,
    ) -> None:
        self._build, self._layout, self._after_init = build, layout, after_init
        self.options = options

    @property
    def build(self) -> Callable[..., nn.Module]:
        return _resolve(self._build)

    @property
    def layout(self) -> GateLayout:
        return _resolve(self._layout)

    @property
    def after_init(self) -> Callable[[nn.Module, str, Any], None] | None:
        return _resolve(self._after_init)

    def __repr__(self) -> str:
        return (f"ModelSpec({self._build!r}, {self._layout!r}, {self.options!r}, "
                f"{self._after_init!r})")  # fmt: skip


MODELS: dict[str, ModelSpec] = {
    "custom_gru": ModelSpec(
        "custom_gru:build_custom_gru", "custom_gru:CustomGRU.gate_layout", CustomGRUOptions
    ),
    "torch_gru": ModelSpec("torch_rnns:build_torch_gru", "torch_rnns:GRU_LAYOUT"),
    "lstm": ModelSpec("torch_rnns:build_lstm", "torch_rnns:LSTM_LAYOUT", LSTMOptions,
                      "torch_rnns:lstm_after_init"),
    "rnn": ModelSpec("torch_rnns:build_rnn", "torch_rnns:RNN_LAYOUT", RNNOptions),
    "min_gru": ModelSpec("min_rnns:build_min_gru", "min_rnns:MinGRU.gate_layout", MinRNNOptions),
    "min_lstm": ModelSpec(
        "min_rnns:build_min_lstm", "min_rnns:MinLSTM.gate_layout", MinRNNOptions
    ),
}  # fmt: skip


@dataclass
class SharedOptions:
    """The options every model takes."""

    name: str = option("torch_gru", f"the model: {', '.join(MODELS)}")
    hidden_size: int = option(64, "the state's width")
    num_layers: int = option(1, "stacked layers")
    dropout: float = option(0.0, "dropout between stacked layers, as in nn.GRU")
    init: str = option("default", f"the recurrent weights' initialization: {', '.join(INITS)}")
    chrono_t_max: float | None = option(None, "chrono init's T_max; null: the task's seq_len")
    layer_sizes: list[int] | None = option(
        None, "widths of stacked single layers, e.g. [128, 64]; replaces hidden_size and "
        "num_layers (dropout then acts between them)"
    )  # fmt: skip


@dataclass(frozen=True)
class ModelOption:
    """One model-specific option of the flat ``ModelConfig``, as its models define it."""

    name: str
    default: Any
    annotation: Any
    takers: tuple[str, ...]  # the models that take it
    help: dict[str, str]  # model -> its help
    choices: dict[str, tuple]  # model -> the values it allows (models with a Literal type)


def collect_options(models: dict[str, ModelSpec]) -> dict[str, ModelOption]:
    """Each model-specific option of ``models``; models sharing one must share its default."""
    found: dict[str, ModelOption] = {}
    for model, spec in models.items():
        if spec.options is None:
            continue
        for name, (field, annotation) in option_fields(spec.options).items():
            allowed = {model: values} if (values := choices(annotation)) else {}
            known = found.get(name)
            if known is None:
                found[name] = ModelOption(
                    name, field.default, annotation, (model,), {model: help_of(field)}, allowed
                )
                continue
            if known.default != field.default:
                raise TypeError(
                    f"option {name!r}: {model} gives it the default {field.default!r}, "
                    f"{', '.join(known.takers)} {known.default!r}"
                )
            found[name] = replace(
                known,
                takers=(*known.takers, model),
                help={**known.help, model: help_of(field)},
                choices={**known.choices, **allowed},
            )
    return found


MODEL_OPTIONS: dict[str, ModelOption] = collect_options(MODELS)


def _config_field(option: ModelOption) -> tuple[str, Any, dataclasses.Field]:
    # A choice travels as a plain str, so that a wrong one gets validate_model_config's line
    annotation = str if option.choices else option.annotation
    helps = "; ".join(f"{model}: {text}" for model, text in option.help.items())
    allowed = sorted({v for values in option.choices.values() for v in values}, key=str)
    if allowed:
        helps += f" (choices: {', '.join(map(str, allowed))})"
    return (
        option.name,
        annotation,
        dataclasses.field(default=option.default, metadata={"help": helps}),
    )


def _widths(self) -> list[int]:
    return list(self.layer_sizes) if self.layer_sizes else [self.hidden_size] * self.num_layers


def make_model_config(options: dict[str, ModelOption]) -> type:
    """The flat config of the command line and the experiment files: the shared options, then
    each model-specific one (a choice as a plain str: validate_model_config names a wrong
    one with its model's choices)."""
    shared = option_fields(SharedOptions)
    specs = [(name, hint, dataclasses.field(default=f.default, metadata=f.metadata))
             for name, (f, hint) in shared.items()]  # fmt: skip
    specs += [_config_field(option) for option in options.values()]
    doc = ["Every model option; an option a model does not take must stay at its default.",
           "", "Args:"]  # fmt: skip
    doc += [f"    {name}: {f.metadata['help']}" for name, _, f in specs]
    cls = dataclasses.make_dataclass(
        "ModelConfig", specs, namespace={"widths": property(_widths), "__doc__": "\n".join(doc)}
    )
    cls.__module__ = __name__  # picklable as grubench.models.ModelConfig
    return cls


ModelConfig = make_model_config(MODEL_OPTIONS)

# Options hashed for every model since the first stores were written, so that their runs keep
# their settings hash (grubench.sweeps.question.Child.config_hash); an option added since is hashed
# only for the models that take it.
_ALWAYS_HASHED = ("forget_bias", "reset_after", "activation", "layer_norm")


def computed_settings(model: dict[str, Any]) -> dict[str, Any]:
    """What of a model's config (as a dict) changes what its run computes."""
    takes = {n for n, o in MODEL_OPTIONS.items() if model.get("name") in o.takers}
    return {k: v for k, v in model.items()
            if k not in MODEL_OPTIONS or k in takes or k in _ALWAYS_HASHED}  # fmt: skip


def model_options(cfg) -> Any:
    """The options dataclass of ``cfg``'s model, filled from ``cfg`` (None if it has none)."""
    spec = MODELS[cfg.name]
    if spec.options is None:
        return None
    return spec.options(**{f.name: getattr(cfg, f.name) for f in dataclasses.fields(spec.options)})


def _builder_kwargs(build: Callable[..., nn.Module], options) -> dict[str, Any]:
    """The options a builder's signature names (all of them if it takes ``**options``)."""
    values = vars(options) if options is not None else {}
    parameters = inspect.signature(build).parameters
    if any(p.kind is p.VAR_KEYWORD for p in parameters.values()):
        return dict(values)
    return {name: value for name, value in values.items() if name in parameters}


def validate_model_config(cfg, seq_len: int | None = None) -> list[str]:
    """Every problem with ``cfg``, one line each (empty when valid)."""
    if cfg.name not in MODELS:
        return [f"model.name: unknown model {cfg.name!r}; choose from: {', '.join(sorted(MODELS))}"]
    problems = []
    if cfg.hidden_size <= 0:
        problems.append(f"model.hidden_size must be positive, got {cfg.hidden_size}")
    if cfg.num_layers <= 0:
        problems.append(f"model.num_layers must be positive, got {cfg.num_layers}")
    if cfg.layer_sizes is not None and (
        not cfg.layer_sizes or any(size <= 0 for size in cfg.layer_sizes)
    ):
        problems.append(f"model.layer_sizes must be positive widths, got {cfg.layer_sizes}")
    if not 0.0 <= cfg.dropout < 1.0:
        problems.append(f"model.dropout must lie in [0, 1), got {cfg.dropout}")
    elif cfg.dropout > 0 and len(cfg.widths) == 1:
        problems.append(
            f"model.dropout={cfg.dropout} acts between stacked layers only and this model has "
            "one; set model.num_layers > 1 (or model.layer_sizes), or dropout 0"
        )
    for name, opt in MODEL_OPTIONS.items():
        value = getattr(cfg, name)
        if cfg.name not in opt.takers:
            if value != opt.default:
                problems.append(
                    f"model.{name}={value!r} does not apply to {cfg.name}; "
                    f"only {', '.join(sorted(opt.takers))} take it"
                )
        elif cfg.name in opt.choices and value not in opt.choices[cfg.name]:
            allowed = ", ".join(map(str, opt.choices[cfg.name]))
            problems.append(f"model.{name}: unknown {name} {value!r}; choose from: {allowed}")
    spec = MODELS[cfg.name]
    if cfg.init not in INITS:
        problems.append(f"model.init: unknown init {cfg.init!r}; choose from: {', '.join(INITS)}")
    else:
        t_max = cfg.chrono_t_max if cfg.chrono_t_max is not None else seq_len
        # the built module's parameters are checked too once the rest is valid to build
        probe = None if problems else _probe(cfg.name, model_options(cfg))
        from grubench.models.init import check_init

        try:
            check_init(cfg.init, spec.layout, t_max, probe)
        except ValueError as err:
            problems.append(f"model.init: {err}")
    return problems


_PROBES: dict[tuple[str, str], nn.Module] = {}


def _probe(name: str, options) -> nn.Module:
    """A small module of model ``name`` with ``options``, so that an init is checked against
    the parameters the model really has (built once per model and options; the global RNG is
    left as it was)."""
    import torch

    key = (name, repr(options))
    if key not in _PROBES:
        spec = MODELS[name]
        with torch.random.fork_rng(devices=[]):
            _PROBES[key] = spec.build(3, 4, 1, 0.0, **_builder_kwargs(spec.build, options))
    return _PROBES[key]


def build_model(
    cfg,
    input_size: int,
    output_size: int,
    output_mode: Literal["last", "sequence"],
    seq_len: int | None = None,
) -> SequenceModel:
    """Build and initialize a model (call under a fixed torch seed for reproducible weights)."""
    from grubench.models.init import initialize
    from grubench.models.sequence import SequenceModel, StackedRNN

    problems = validate_model_config(cfg, seq_len)
    if problems:
        raise ValueError("; ".join(problems))
    spec = MODELS[cfg.name]
    options = model_options(cfg)
    kwargs = _builder_kwargs(spec.build, options)
    t_max = cfg.chrono_t_max if cfg.chrono_t_max is not None else seq_len

    def recurrent(in_size: int, hidden: int, layers: int, dropout: float) -> nn.Module:
        module = spec.build(in_size, hidden, layers, dropout, **kwargs)
        initialize(module, cfg.init, layout=spec.layout, t_max=t_max)
        if spec.after_init is not None:
            spec.after_init(module, cfg.init, options)
        return module

    if cfg.layer_sizes:
        sizes = [input_size, *cfg.layer_sizes]
        layers = [recurrent(sizes[i], sizes[i + 1], 1, 0.0) for i in range(len(sizes) - 1)]
        backbone = StackedRNN(layers, cfg.dropout)
    else:
        backbone = recurrent(input_size, cfg.hidden_size, cfg.num_layers, cfg.dropout)
    return SequenceModel(backbone, cfg.widths[-1], output_size, output_mode)


def implementation(cfg) -> str:
    """Who runs ``cfg``'s recurrence on CPU, in a few words, for the report's tables: an
    answer about the GRU and the LSTM says whether both ran on one engine. ``auto`` is
    grubench's engine (its compiled loops) wherever the C++ extension builds."""
    name, backend = cfg.name, getattr(cfg, "backend", "auto")
    if name == "custom_gru":
        if not cfg.reset_after or cfg.layer_norm or backend == "autograd":
            return "grubench, autograd loop"
        return "grubench, PyTorch ops" if backend == "python" else "grubench engine"
    if name == "torch_gru":
        return "torch nn.GRU"
    if name in ("lstm", "rnn"):
        torch_name = {"lstm": "torch nn.LSTM (oneDNN)", "rnn": "torch nn.RNN"}[name]
        return torch_name if backend == "torch" else "grubench engine"
    if name in ("min_gru", "min_lstm"):
        return "log-space scan" if cfg.scan == "parallel" else "grubench engine"
    return name  # a model added to the registry without an entry here


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


def matched_hidden_size(cfg, target: int, input_size: int, output_size: int) -> int:
    """The hidden size at which ``cfg``'s model has the parameter count closest to ``target``
    (for comparisons at equal parameter count; the count grows with H, so bisect)."""

    def params(hidden: int) -> int:
        probe = replace(cfg, hidden_size=hidden, layer_sizes=None, init="default")
        return count_parameters(build_model(probe, input_size, output_size, "last"))

    low, high = 1, 1
    while params(high) < target:
        low, high = high, high * 2
    while high - low > 1:
        middle = (low + high) // 2
        low, high = (middle, high) if params(middle) < target else (low, middle)
    return min((low, high), key=lambda h: abs(params(h) - target))


__all__ = [
    "implementation",
    "ACTIVATIONS",
    "CustomGRU",
    "INITS",
    "MODELS",
    "MinGRU",
    "MinLSTM",
    "MODEL_OPTIONS",
    "ModelConfig",
    "ModelOption",
    "ModelSpec",
    "SharedOptions",
    "SequenceModel",
    "StackedRNN",
    "build_model",
    "collect_options",
    "computed_settings",
    "count_parameters",
    "make_model_config",
    "matched_hidden_size",
    "model_options",
    "validate_model_config",
]
