"""Selective copying (Gu & Dao 2023, "Mamba: linear-time sequence modeling with selective state
spaces", Sec. 3.1 and Appendix E.1).

The token layout follows the authors' generator, ``torch_copying_data(..., variable=True)`` in
the state-spaces S4 repository (``src/dataloaders/datasets/copying.py``). Of an alphabet of
``vocab_size`` tokens, 0 is the noise token, 1 .. ``vocab_size - 2`` are data symbols and
``vocab_size - 1`` is the marker. A region of ``seq_len`` steps holds ``n_tokens`` data
symbols (uniform, with replacement) at distinct uniformly random positions, kept in increasing
order, and noise everywhere else; then come ``n_tokens`` markers. At the marker steps the model
must output the data symbols in the order they appeared; no other step is scored (targets
:data:`IGNORE_INDEX`). Unlike the copy memory problem the spacing varies from sequence to
sequence, so a model cannot count time steps: it must select the data tokens by content and
skip the noise. Sequences are ``seq_len + n_tokens`` steps long. The paper's setting is
sequences of length 4096, a vocabulary of 16 tokens "including the noise token" (with the
marker, 14 data symbols: ``vocab_size`` counts the whole alphabet, as there) and 16 data tokens.

Worked example (``seq_len=8``, ``n_tokens=3``, ``vocab_size=6``: data 1..4, noise 0, marker 5;
``-`` is IGNORE_INDEX)::

    t        0 1 2 3 4 5 6 7   8 9 10
    input    0 3 0 0 1 0 3 0   5 5  5
    target   - - - - - - - -   3 1  3

Inputs are one-hot, ``(B, seq_len + n_tokens, vocab_size)``; the model outputs logits over the
whole alphabet at every step (as in S4's setup), and the loss is the cross-entropy at the
``n_tokens`` marker steps. Metrics: ``acc`` per copied token, ``exact_match`` per sequence.

Chance: a uniform guess over the ``vocab_size - 2`` data symbols scores ``acc`` 1/14 at the
defaults. The objective is ``acc``, solved at 0.99: in the paper's Table 1 the models with a
selective (S6) layer reach 97-99.8 % token accuracy and the others stay at 18-57 %; 0.99 is
the level of a model that selects every token, with room for a rare slip (with 1024 validation
sequences of 16 tokens the standard error at 0.99 is under 0.001).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F

from grubench.tasks.base import IGNORE_INDEX, Objective, Task

if TYPE_CHECKING:  # torchmetrics is imported when a fit asks for metrics: help stays fast
    from torchmetrics import MetricCollection


NOISE = 0
DEFAULT_N_TOKENS = 16  # the paper's 16 data tokens
DEFAULT_VOCAB_SIZE = 16  # the paper's alphabet: noise, 14 data symbols, marker
SOLVED_ACC = 0.99


class SelectiveCopyTask(Task):
    name = "selective_copy"
    output_mode = "sequence"

    def __init__(
        self, seq_len: int, n_tokens: int = DEFAULT_N_TOKENS, vocab_size: int = DEFAULT_VOCAB_SIZE
    ) -> None:
        if n_tokens < 1:
            raise ValueError(
                f"task.options.n_tokens={n_tokens} is invalid for {self.name}: "
                "it must be at least 1"
            )
        if vocab_size < 3:
            raise ValueError(
                f"task.options.vocab_size={vocab_size} is invalid for {self.name}: it must be "
                "at least 3 (noise, marker and one data symbol)"
            )
        # this check, which depends on n_tokens, stands in for Task.__init__'s, which knows
        # only min_seq_len(), the minimum at the default options
        if seq_len < n_tokens:
            raise ValueError(
                f"task.seq_len={seq_len} is too short for {self.name} with "
                f"n_tokens={n_tokens}: it needs at least {n_tokens}"
            )
        self.seq_len = int(seq_len)
        self.n_tokens, self.vocab_size = int(n_tokens), int(vocab_size)

    @classmethod
    def min_seq_len(cls) -> int:
        return DEFAULT_N_TOKENS  # room for the data tokens at distinct positions

    @property
    def marker(self) -> int:
        return self.vocab_size - 1

    @property
    def input_size(self) -> int:
        return self.vocab_size

    @property
    def output_size(self) -> int:
        return self.vocab_size

    @property
    def objective(self) -> Objective:
        return Objective(metric="acc", mode="max", solved_threshold=SOLVED_ACC)

    def generate(self, batch_size: int, generator: torch.Generator, train: bool = False):
        T, k = self.seq_len, self.n_tokens
        data = torch.randint(1, self.marker, (batch_size, k), generator=generator)
        # k distinct positions per row, in increasing order (the order to copy them in)
        noise = torch.rand(batch_size, T, generator=generator)
        positions = noise.topk(k, dim=1).indices.sort(dim=1).values  # (B, k)
        tokens = torch.full((batch_size, T + k), NOISE, dtype=torch.long)
        tokens.scatter_(1, positions, data)
        tokens[:, T:] = self.marker
        targets = torch.full_like(tokens, IGNORE_INDEX)
        targets[:, T:] = data
        # one-hot by scatter: F.one_hot(...).float() goes through int64 and is ~9x slower here
        inputs = torch.zeros(*tokens.shape, self.vocab_size)
        inputs.scatter_(-1, tokens.unsqueeze(-1), 1.0)  # (B, T + k, vocab_size)
        return inputs, targets

    def loss(self, prediction, target):
        return F.cross_entropy(prediction.transpose(1, 2), target, ignore_index=IGNORE_INDEX)

    def metrics(self) -> MetricCollection:
        from torchmetrics import MetricCollection

        from grubench.tasks.metrics import SequenceExactMatch, TokenAccuracy

        return MetricCollection(
            {
                "acc": TokenAccuracy(self.output_size),
                "exact_match": SequenceExactMatch(),
            }
        )

    def chance_level(self) -> float:
        return 1.0 / (self.vocab_size - 2)  # a uniform guess over the data symbols
