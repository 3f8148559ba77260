"""The copy memory problem (Arjovsky, Shah & Bengio 2016, "Unitary evolution recurrent neural
networks", Sec. 4.1; after Hochreiter & Schmidhuber 1997).

Alphabet {0, ..., 9}: 1-8 are data symbols, 0 is the blank, 9 the delimiter. An input of
length T + 20 holds 10 symbols drawn uniformly and independently from 1..8, then T - 1 blanks,
the delimiter, then 10 blanks. The target is the blank for the first T + 10 steps, then the 10
symbols in their order: the model must hold 10 symbols (30 bits) across the T-step gap and
write them out after the delimiter. ``seq_len`` is the paper's T (the blank gap), so sequences
are T + 20 steps long.

Worked example (T = 3, so 23 steps)::

    t        0 1 2 3 4 5 6 7 8 9  10 11  12  13 14 15 16 17 18 19 20 21 22
    input    3 1 4 1 5 2 6 5 3 5   0  0   9   0  0  0  0  0  0  0  0  0  0
    target   0 0 0 0 0 0 0 0 0 0   0  0   0   3  1  4  1  5  2  6  5  3  5

Inputs are one-hot, ``(B, T + 20, 10)``; the model outputs logits over the 10 symbols at every
step and the loss is the cross-entropy averaged over all T + 20 steps, as in the paper (no step
is ignored; the blanks are targets too).

Baselines: the paper's memoryless strategy predicts the blank for the first T + 10 steps and a
uniform guess over 1..8 for the last 10. Its cross-entropy is 10 ln 8 / (T + 20)
(:meth:`CopyMemoryTask.memoryless_loss`; the loss curves of the paper are drawn against it) and
its accuracy on the 10 recall steps is 1/8 (:meth:`CopyMemoryTask.chance_level`, the value of
the objective).

Metrics: ``acc`` is the per-symbol accuracy over the 10 recall steps and ``exact_match`` the
fraction of sequences with all 10 right. The recall steps are selected by position (the last
10), not by target value: the blank targets elsewhere are trivial and would swamp the average.
The objective is ``acc``, solved at 0.99: the loss hardly separates a model that copies from
one that predicts blanks (T + 10 of the T + 20 steps are blank), while recall accuracy does. A
model that has learned to copy recalls essentially every symbol, whereas partial memory plateaus
far below (keeping only the first 5 symbols scores (5 + 5/8) / 10 = 0.56); 0.99 allows one
wrong symbol in a hundred and, with 1024 validation sequences (10240 symbols), lies about 10
standard errors (0.001 each) below a perfect score, so noise does not decide it.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F

from grubench.tasks.base import Objective, Task

if TYPE_CHECKING:  # torchmetrics is imported when a fit asks for metrics: help stays fast
    from torchmetrics import MetricCollection


ALPHABET = 10  # symbols 0..9
BLANK, DELIMITER = 0, 9
N_DATA = 8  # data symbols 1..8
COPY_LEN = 10  # symbols to remember
CHANCE_ACC = 1.0 / N_DATA  # a uniform guess over the data symbols at each recall step
SOLVED_ACC = 0.99


class CopyMemoryTask(Task):
    name = "copy_memory"
    output_mode = "sequence"

    @property
    def input_size(self) -> int:
        return ALPHABET

    @property
    def output_size(self) -> int:
        return ALPHABET

    @property
    def objective(self) -> Objective:
        return Objective(metric="acc", mode="max", solved_threshold=SOLVED_ACC)

    def generate(self, batch_size: int, generator: torch.Generator, train: bool = False):
        T = self.seq_len
        data = torch.randint(1, N_DATA + 1, (batch_size, COPY_LEN), generator=generator)
        tokens = torch.full((batch_size, T + 2 * COPY_LEN), BLANK, dtype=torch.long)
        tokens[:, :COPY_LEN] = data
        tokens[:, COPY_LEN + T - 1] = DELIMITER  # after the T - 1 blanks
        targets = torch.full_like(tokens, BLANK)
        targets[:, -COPY_LEN:] = data
        inputs = F.one_hot(tokens, ALPHABET).float()  # (B, T + 20, 10)
        return inputs, targets

    def loss(self, prediction, target):
        # (B, T + 20, C) logits against (B, T + 20) symbols, averaged over every step
        return F.cross_entropy(prediction.transpose(1, 2), target)

    def metrics(self) -> MetricCollection:
        from torchmetrics import MetricCollection

        from grubench.tasks.metrics import SequenceExactMatch, TokenAccuracy

        recall = (-COPY_LEN, None)  # the last 10 steps, whatever T is
        return MetricCollection(
            {
                "acc": TokenAccuracy(self.output_size, window=recall, ignore_index=None),
                "exact_match": SequenceExactMatch(window=recall, ignore_index=None),
            }
        )

    def chance_level(self) -> float:
        return CHANCE_ACC

    def memoryless_loss(self) -> float:
        """Cross-entropy of the memoryless strategy: ln 8 at each of the last 10 of T + 20."""
        return COPY_LEN * math.log(N_DATA) / (self.seq_len + 2 * COPY_LEN)
