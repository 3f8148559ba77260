"""Builders for PyTorch's own recurrent layers (cuDNN on GPU, oneDNN for LSTM on CPU)."""

from __future__ import annotations

from torch import nn


def build_torch_gru(input_size: int, hidden_size: int, num_layers: int, dropout: float) -> nn.GRU:
    return nn.GRU(input_size, hidden_size, num_layers, batch_first=True, dropout=dropout)


def build_lstm(input_size: int, hidden_size: int, num_layers: int, dropout: float) -> nn.LSTM:
    return nn.LSTM(input_size, hidden_size, num_layers, batch_first=True, dropout=dropout)


def build_rnn(
    input_size: int, hidden_size: int, num_layers: int, dropout: float, activation: str = "tanh"
) -> nn.RNN:
    return nn.RNN(
        input_size,
        hidden_size,
        num_layers,
        nonlinearity=activation,
        batch_first=True,
        dropout=dropout,
    )
