"""The adding problem (Hochreiter & Schmidhuber 1997, in the form of Le et al. 2015).

Each input has two channels. Channel 0 holds values drawn from U[0, 1]; channel 1 is a marker
that is 1 at exactly two positions, one in each half of the sequence, and 0 elsewhere. The
target is the sum of the two marked values, so the model must remember one number across up
to ``seq_len`` steps. Loss and metric: mean squared error.

Worked example (``seq_len=6``; markers at t=1 in the first half and t=4 in the second)::

    t          0     1     2     3     4     5
    value    0.12  0.71  0.40  0.93  0.05  0.66
    marker     0     1     0     0     1     0
    target = 0.71 + 0.05 = 0.76

Chance level: the sum of two independent U[0, 1] has mean 1 and variance 2 * 1/12 = 1/6, so the
predictor that always answers 1 (the best constant) scores MSE 1/6 ≈ 0.1667. A run counts as
solved when the validation MSE falls to 0.01, a sixteenth of that baseline.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F

from grubench.tasks.base import Objective, Task

if TYPE_CHECKING:  # torchmetrics is imported when a fit asks for metrics: help stays fast
    from torchmetrics import MetricCollection


CHANCE_MSE = 1.0 / 6.0  # MSE of always predicting 1 = Var(U1 + U2)
SOLVED_MSE = 0.01


class AddingTask(Task):
    name = "adding"
    output_mode = "last"

    @classmethod
    def min_seq_len(cls) -> int:
        return 2  # one marker in each half

    @property
    def input_size(self) -> int:
        return 2

    @property
    def output_size(self) -> int:
        return 1

    @property
    def objective(self) -> Objective:
        return Objective(metric="mse", mode="min", solved_threshold=SOLVED_MSE)

    def generate(self, batch_size: int, generator: torch.Generator, train: bool = False):
        T, half = self.seq_len, self.seq_len // 2
        values = torch.rand(batch_size, T, generator=generator)
        first = torch.randint(0, half, (batch_size,), generator=generator)
        second = torch.randint(half, T, (batch_size,), generator=generator)
        markers = torch.zeros(batch_size, T)
        rows = torch.arange(batch_size)
        markers[rows, first] = 1.0
        markers[rows, second] = 1.0
        inputs = torch.stack([values, markers], dim=-1)  # (B, T, 2)
        targets = (values[rows, first] + values[rows, second]).unsqueeze(-1)  # (B, 1)
        return inputs, targets

    def loss(self, prediction, target):
        return F.mse_loss(prediction, target)

    def metrics(self) -> MetricCollection:
        from torchmetrics import MeanSquaredError, MetricCollection

        return MetricCollection({"mse": MeanSquaredError()})

    def chance_level(self) -> float:
        return CHANCE_MSE
