"""A sequence model: a recurrent backbone with nn.GRU's interface, plus a linear head."""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn

from grubench.models.layers import describe


class SequenceModel(nn.Module):
    """``backbone`` is any batch-first module returning ``(outputs, state)`` like nn.GRU.

    ``output_mode="last"`` reads the head from the final time step, ``(B, T, I) -> (B, O)``;
    ``"sequence"`` applies it at every step, ``(B, T, I) -> (B, T, O)``.
    """

    def __init__(
        self,
        backbone: nn.Module,
        hidden_size: int,
        output_size: int,
        output_mode: Literal["last", "sequence"],
    ) -> None:
        super().__init__()
        if output_mode not in ("last", "sequence"):
            raise ValueError(f"unknown output_mode {output_mode!r}; choose from: last, sequence")
        self.backbone = backbone
        self.head = nn.Linear(hidden_size, output_size)
        self.output_mode = output_mode

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        outputs = self.backbone(inputs)[0]  # (B, T, H); LSTM's state tuple is dropped too
        if self.output_mode == "last":
            outputs = outputs[:, -1]  # (B, H)
        return self.head(outputs)


class StackedRNN(nn.Module):
    """Single-layer recurrent modules of possibly different widths, run one after another,
    with dropout between them in training (as nn.GRU's ``dropout``).

    This is the classic tutorial stack ("a GRU of 128 units returning sequences, then a GRU of
    64 units"): ``(B, T, I) -> (B, T, H_last)``; returns ``(outputs, None)``.
    """

    gate_layout = None  # its layers may be of different kinds; each describes itself

    def __init__(self, layers: list[nn.Module], dropout: float = 0.0) -> None:
        super().__init__()
        self.layers = nn.ModuleList(layers)
        self.dropout = dropout

    def forward(self, inputs: torch.Tensor):
        outputs = inputs
        for i, layer in enumerate(self.layers):
            outputs = layer(outputs)[0]  # (B, T, H_i)
            if self.dropout and i < len(self.layers) - 1:
                outputs = nn.functional.dropout(outputs, self.dropout, self.training)
        return outputs, None

    def single_layers(self) -> list[nn.Module]:
        return [single for layer in self.layers for single in describe(layer).single_layers()]

    def layer_gates(self, x: torch.Tensor, h_prev: torch.Tensor) -> dict[str, torch.Tensor]:
        raise ValueError("layer_gates: call it on one of single_layers()")
