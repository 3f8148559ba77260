"""Parity with length generalization (Delétang et al. 2023, "Neural networks and the Chomsky
hierarchy", the Parity Check task of the regular class).

The input is a string of uniform random bits; the target is its parity, the number of ones mod
2 (two classes, cross-entropy on the last step's logits). As in the paper, training batches
have variable length: each one draws a single length uniformly from [1, ``seq_len``] (every
sequence of the batch shares it), while evaluation batches (``train=False``) are exactly
``seq_len`` long; the paper trains on lengths up to N = 40 and tests on longer strings, which
here is ``task.with_seq_len(L)`` at the evaluation lengths. A model that has found the two-state
automaton keeps its accuracy at any length.

Worked example (an evaluation batch at ``seq_len=6``)::

    t        0 1 2 3 4 5
    bits     1 0 1 1 0 1
    input    one-hot bits, (6, 2)
    target   1 0 1 1 0 1 -> 4 ones -> parity 0

Input encoding, kept minimal: one-hot bits (``input_size`` 2) and the prediction read at the
last bit. The paper's models read their answer one step later, at an appended empty (all-zero)
input; for a recurrent model that is one extra update with no new information, so it is left
out.

Chance: the parity of uniform bits is a fair coin at every length, so any predictor that
ignores the input (always answering 0, say) scores accuracy 0.5. The objective is ``acc``,
solved at 0.99: parity has no partial solutions (a rule that ignores any one bit is right half
the time), so learning curves jump from 0.5 to about 1 and the exact threshold matters little;
0.99 leaves room for a rare error and lies about 3 standard errors (0.003) below a perfect score
on 1024 validation strings.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F

from grubench.tasks.base import Objective, Task

if TYPE_CHECKING:  # torchmetrics is imported when a fit asks for metrics: help stays fast
    from torchmetrics import MetricCollection


CHANCE_ACC = 0.5
SOLVED_ACC = 0.99


class ParityTask(Task):
    name = "parity"
    output_mode = "last"
    variable_length_training = True

    @property
    def input_size(self) -> int:
        return 2

    @property
    def output_size(self) -> int:
        return 2

    @property
    def objective(self) -> Objective:
        return Objective(metric="acc", mode="max", solved_threshold=SOLVED_ACC)

    def generate(self, batch_size: int, generator: torch.Generator, train: bool = False):
        length = self.seq_len
        if train:  # one length for the whole batch, uniform in [1, seq_len]
            length = int(torch.randint(1, self.seq_len + 1, (1,), generator=generator))
        bits = torch.randint(0, 2, (batch_size, length), generator=generator)
        inputs = F.one_hot(bits, 2).float()  # (B, length, 2)
        targets = bits.sum(dim=1) % 2  # (B,)
        return inputs, targets

    def loss(self, prediction, target):
        return F.cross_entropy(prediction, target)

    def metrics(self) -> MetricCollection:
        from torchmetrics import MetricCollection

        from grubench.tasks.metrics import TokenAccuracy

        return MetricCollection({"acc": TokenAccuracy(self.output_size, ignore_index=None)})

    def chance_level(self) -> float:
        return CHANCE_ACC
