"""Builders for PyTorch's recurrent layers, and their description for the initializers and
diagnostics (see :mod:`grubench.models.layers`). ``torch_gru`` is ``nn.GRU`` itself (cuDNN on
GPU, ATen on CPU); ``lstm`` and ``rnn`` are ``nn.LSTM`` and ``nn.RNN`` run by grubench's engine on
CPU (:mod:`grubench.models.engine`) unless ``backend="torch"`` (oneDNN's LSTM, ATen's RNN)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from grubench.models.engine import LSTM, RNN
from grubench.models.init import set_gate_bias
from grubench.models.layers import GateLayout, register_description, share_layer
from grubench.models.options import LSTMOptions

# PyTorch's gate order; GRU: h' = (1 − z) ⊙ n + z ⊙ h, so z keeps the old state.
GRU_LAYOUT = GateLayout("gru", ("r", "z", "n"), keep="z")
LSTM_LAYOUT = GateLayout("lstm", ("i", "f", "g", "o"), keep="f", paired="i")  # c' = f c + i g
RNN_LAYOUT = GateLayout("rnn", ("h",))  # one block, no gate

_LAYOUTS = {nn.GRU: GRU_LAYOUT, nn.LSTM: LSTM_LAYOUT, nn.RNN: RNN_LAYOUT}


def build_torch_gru(input_size: int, hidden_size: int, num_layers: int, dropout: float) -> nn.GRU:
    return nn.GRU(input_size, hidden_size, num_layers, batch_first=True, dropout=dropout)


def build_lstm(
    input_size: int, hidden_size: int, num_layers: int, dropout: float, backend: str = "auto"
) -> nn.LSTM:
    return LSTM(
        input_size, hidden_size, num_layers, batch_first=True, dropout=dropout, backend=backend
    )


def lstm_after_init(lstm: nn.Module, init: str, options: LSTMOptions) -> None:
    """The forget bias goes on after the initializer (chrono sets its own)."""
    if init != "chrono":
        set_lstm_forget_bias(lstm, options.forget_bias)


def set_lstm_forget_bias(lstm: nn.Module, value: float) -> None:
    """Set every layer's effective LSTM forget-gate bias to ``value``: the f slice (rows
    ``[H:2H]``, gate order i, f, g, o) of ``bias_ih`` becomes ``value``, that of ``bias_hh``
    zero (:func:`grubench.models.init.set_gate_bias`)."""
    set_gate_bias(lstm, LSTM_LAYOUT, "f", value)


def build_rnn(
    input_size: int,
    hidden_size: int,
    num_layers: int,
    dropout: float,
    activation: str = "tanh",
    backend: str = "auto",
) -> nn.RNN:
    return RNN(
        input_size,
        hidden_size,
        num_layers,
        nonlinearity=activation,
        batch_first=True,
        dropout=dropout,
        backend=backend,
    )


class TorchRNNLayers:
    """The description of an ``nn.GRU``, ``nn.LSTM`` or ``nn.RNN`` (unidirectional, no
    ``proj_size`` for its layers and gates; any for its layout)."""

    def __init__(self, module: nn.RNNBase, layout: GateLayout) -> None:
        self.module, self.gate_layout = module, layout

    def single_layers(self) -> list[nn.Module]:
        rnn = self.module
        if rnn.bidirectional or getattr(rnn, "proj_size", 0):
            raise ValueError(
                f"single_layers: {type(rnn).__name__} with bidirectional=True or "
                "proj_size > 0 is not supported"
            )
        layers = []
        for k in range(rnn.num_layers):
            in_size = rnn.input_size if k == 0 else rnn.hidden_size
            kwargs = {"bias": rnn.bias, "batch_first": True}
            if hasattr(rnn, "backend"):  # grubench's engine classes
                kwargs["backend"] = rnn.backend
            if isinstance(rnn, nn.RNN):
                kwargs["nonlinearity"] = rnn.nonlinearity
            with torch.device("meta"):
                template = type(rnn)(in_size, rnn.hidden_size, 1, **kwargs)
            layers.append(share_layer(rnn, k, template))
        return layers

    def layer_gates(self, x: Tensor, h_prev: Tensor) -> dict[str, Tensor]:
        layer = self.module
        if self.gate_layout is RNN_LAYOUT:
            return {}
        pre = F.linear(x, layer.weight_ih_l0, getattr(layer, "bias_ih_l0", None))
        pre = pre + F.linear(h_prev, layer.weight_hh_l0, getattr(layer, "bias_hh_l0", None))
        if self.gate_layout is LSTM_LAYOUT:  # (B, T, 4H): i, f, g, o
            i, f, _, o = pre.chunk(4, -1)
            return {"i": torch.sigmoid(i), "f": torch.sigmoid(f), "o": torch.sigmoid(o)}
        r, z, _ = pre.chunk(3, -1)  # (B, T, 3H): r, z, n; n is not a gate
        return {"r": torch.sigmoid(r), "z": torch.sigmoid(z)}


def describe_torch(module: nn.Module) -> TorchRNNLayers | None:
    """The description of PyTorch's recurrent modules (and subclasses); None for others."""
    for cls, layout in _LAYOUTS.items():
        if isinstance(module, cls):
            return TorchRNNLayers(module, layout)
    return None


register_description(describe_torch)
