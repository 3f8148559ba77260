"""Multi-query associative recall, MQAR (Arora, Eyuboglu et al. 2023, "Zoology: measuring and
improving recall in efficient language models"; its generator is ``multiquery_ar`` in
HazyResearch/zoology, ``zoology/data/multiquery_ar.py``).

Tokens of a ``vocab_size`` alphabet, split as in Zoology: 0 is filler, keys are
1 .. ``vocab_size // 2 - 1`` and values ``vocab_size // 2`` .. ``vocab_size - 1``. A sequence
of ``seq_len`` steps opens with ``n_pairs`` key-value pairs ``k1 v1 k2 v2 ...`` (keys distinct,
values distinct, both uniform). The rest is the query region: ``n_queries`` of the keys
(default: every key, as in Zoology; otherwise a uniform random subset), each at an even offset
``2 g`` of the region, the gaps ``g`` drawn without replacement with probability proportional
to ``(g + 1) ** (power_a - 1)`` (Zoology's power law: with the default 0.01 most queries come
soon after the pairs, a few far; ``power_a=1`` spaces them uniformly). Every other step of the
region is filler: with ``random_non_queries`` (Zoology's default) a token drawn uniformly from
the whole alphabet, else 0. At each query step the target is the value paired with the key;
every other step is :data:`IGNORE_INDEX`.

Worked example (``seq_len=12``, ``n_pairs=2``, ``vocab_size=12``: keys 1..5, values 6..11,
``random_non_queries=False``; query gaps 1 and 3; ``-`` is IGNORE_INDEX)::

    t        0  1  2  3    4  5  6  7  8  9 10 11
    input    2  8  4  7    0  0  4  0  0  0  2  0
    target   -  -  -  -    -  -  7  -  -  -  8  -

Inputs are one-hot, ``(B, seq_len, vocab_size)``; the model outputs logits over the whole
alphabet at every step, as Zoology's language-model head does, and the loss is the
cross-entropy at the query steps. Metrics: ``acc`` over the queries, ``exact_match`` the
fraction of sequences with every query right.

Chance: a uniform guess over the ``vocab_size - vocab_size // 2`` values scores ``acc``
1/64 at the defaults (:meth:`AssociativeRecallTask.chance_level`). (A guess among the
``n_pairs`` values present in the sequence would score 1/n_pairs; that already needs memory of
which values occurred.) The objective is ``acc``, solved at 0.99: attention reaches
near-perfect MQAR accuracy in Zoology, and 0.99 asks the same of a recurrent model with room
for a rare slip; with 1024 validation sequences of 8 queries the standard error at 0.99 is
about 0.001.

Deviations from Zoology: the default ``vocab_size`` is 128, for the cost of one-hot inputs to a
recurrent model (Zoology's default 8192 would make 8192-channel inputs), and so Zoology's check
``vocab_size > seq_len`` is dropped (the task is well defined without it, and ``seq_len`` must
reach 1000 here). ``n_queries`` below ``n_pairs`` is an extension (Zoology queries every key).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F

from grubench.tasks.base import IGNORE_INDEX, Objective, Task

if TYPE_CHECKING:  # torchmetrics is imported when a fit asks for metrics: help stays fast
    from torchmetrics import MetricCollection


FILLER = 0
DEFAULT_N_PAIRS = 8  # Zoology's MQARConfig default
DEFAULT_VOCAB_SIZE = 128
DEFAULT_POWER_A = 0.01  # Zoology's default
SOLVED_ACC = 0.99


def _invalid(option: str, value, why: str) -> ValueError:
    return ValueError(f"task.options.{option}={value!r} is invalid for associative_recall: {why}")


class AssociativeRecallTask(Task):
    name = "associative_recall"
    output_mode = "sequence"

    def __init__(
        self,
        seq_len: int,
        n_pairs: int = DEFAULT_N_PAIRS,
        n_queries: int | None = None,
        vocab_size: int = DEFAULT_VOCAB_SIZE,
        power_a: float = DEFAULT_POWER_A,
        random_non_queries: bool = True,
    ) -> None:
        if n_pairs < 1:
            raise _invalid("n_pairs", n_pairs, "it must be at least 1")
        if n_queries is not None and not 1 <= n_queries <= n_pairs:
            raise _invalid(
                "n_queries", n_queries, f"it must lie in [1, n_pairs={n_pairs}] or be None"
            )
        if vocab_size < 2 * n_pairs + 2:
            raise _invalid(
                "vocab_size",
                vocab_size,
                f"n_pairs={n_pairs} distinct keys in 1..vocab_size // 2 - 1 need "
                f"vocab_size >= {2 * n_pairs + 2}",
            )
        if not (math.isfinite(power_a) and power_a > 0):
            raise _invalid("power_a", power_a, "it must be positive and finite")
        if not isinstance(random_non_queries, bool):
            raise _invalid("random_non_queries", random_non_queries, "it must be a bool")
        # this check, which depends on the options, stands in for Task.__init__'s, which knows
        # only min_seq_len(), the minimum at the default options
        queries = n_pairs if n_queries is None else n_queries
        if seq_len < 2 * n_pairs + 2 * queries:
            raise ValueError(
                f"task.seq_len={seq_len} is too short for {self.name} with n_pairs={n_pairs} "
                f"and {queries} queries: it needs at least {2 * n_pairs + 2 * queries}"
            )
        self.seq_len = int(seq_len)
        self.n_pairs, self.n_queries, self.vocab_size = int(n_pairs), n_queries, int(vocab_size)
        self.power_a, self.random_non_queries = float(power_a), random_non_queries

    @classmethod
    def min_seq_len(cls) -> int:
        return 4 * DEFAULT_N_PAIRS  # the pairs, then a query region with room for every key

    @property
    def queries(self) -> int:
        return self.n_pairs if self.n_queries is None else self.n_queries

    @property
    def value_vocab(self) -> int:
        return self.vocab_size - self.vocab_size // 2

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
        B, T, k, q = batch_size, self.seq_len, self.n_pairs, self.queries
        half = self.vocab_size // 2
        # top-k of uniform noise: a uniformly random k-subset in uniformly random order
        keys = torch.rand(B, half - 1, generator=generator).topk(k, dim=1).indices + 1
        values = torch.rand(B, self.value_vocab, generator=generator).topk(k, dim=1).indices
        values = values + half  # (B, k) each
        asked = torch.rand(B, k, generator=generator).topk(q, dim=1).indices  # pairs queried
        space = (T - 2 * k) // 2  # even offsets available in the query region
        weights = torch.arange(1, space + 1, dtype=torch.float64) ** (self.power_a - 1)
        gaps = torch.multinomial(weights.expand(B, space), q, generator=generator)  # (B, q)
        positions = 2 * k + 2 * gaps

        tokens = torch.full((B, T), FILLER, dtype=torch.long)
        tokens[:, : 2 * k] = torch.stack([keys, values], dim=2).reshape(B, 2 * k)
        tokens.scatter_(1, positions, keys.gather(1, asked))
        targets = torch.full_like(tokens, IGNORE_INDEX)
        targets.scatter_(1, positions, values.gather(1, asked))
        if self.random_non_queries:
            noise = torch.randint(0, self.vocab_size, (B, T), generator=generator)
            tokens = torch.where(tokens == FILLER, noise, tokens)
        # one-hot by scatter: F.one_hot(...).float() goes through int64 and is ~9x slower here
        inputs = torch.zeros(*tokens.shape, self.vocab_size)
        inputs.scatter_(-1, tokens.unsqueeze(-1), 1.0)  # (B, T, vocab_size)
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
        return 1.0 / self.value_vocab  # a uniform guess over the value tokens
