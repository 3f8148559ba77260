r"""Counting with length extrapolation: a^n b^n (or a^n b^n c^n), trained on n up to N and
evaluated on larger n only (Weiss, Goldberg & Yahav 2018, "On the Practical Computational
Power of Finite Precision RNNs for Language Recognition"; the next-symbol form of Gers &
Schmidhuber 2001).

Weiss et al. show that the LSTM and the ReLU RNN can count with finite precision and the GRU
and the tanh RNN cannot; in their experiments LSTMs trained on a^n b^n and a^n b^n c^n went on
recognizing the language well beyond the largest training n, and GRUs did not.

The strings are a^n b^n (``letters=2``) or a^n b^n c^n (``letters=3``), one-hot over the
letters (``input_size`` = ``letters``), padded with all-zero inputs to the batch's length. At
every step of the second and later blocks the model says whether that block ends here (class 1:
the next symbol is the next letter or the end of the string) or goes on (class 0). Those are the
steps whose next symbol the prefix determines; the steps of the first block are not scored
(target :data:`IGNORE_INDEX`), since after a^k either letter may follow. A string is
*accepted* when every scored step is right: at a^n b^k the model must answer "ends" exactly when
k = n, which a finite automaton can do only up to a fixed n (a counter modulo q, say, also
flags k = n - q). This is recognition in the form Gers & Schmidhuber's and Suzgun et al.'s
(2019) experiments use: sampling negative strings needs no choice of near misses, whose
distribution would decide what a non-counting shortcut scores (with negatives a^n b^m, m != n
drawn from a range, the length's parity alone is right on three strings in four).

Lengths: ``seq_len`` is the evaluation length T; evaluation strings have n drawn uniformly from
N + 1 .. M, M = T // ``letters`` (the longest that fits), padded to exactly T steps. Training
batches draw n uniformly from 1 .. N (``train_max_n``; default M // 4, so evaluation reaches four
times the training range) and are as long as their longest string, so training never sees an n
it is evaluated on. ``task.with_seq_len(L)`` keeps N and evaluates n up to L // ``letters``.

Worked example (``letters=2``; one string with n = 3, padded to T = 8; ``-`` is IGNORE_INDEX)::

    t        0 1 2 3 4 5 6 7
    symbol   a a a b b b . .      (. = padding, an all-zero input)
    target   - - - 0 0 1 - -      (after the third b the block ends)

Metrics: ``exact_match``, the fraction of strings accepted (the objective), and ``acc``, the
accuracy over the scored steps (high even for a model that never says "ends": use it to see
near misses, not to judge).

Chance: a predictor blind to the symbols sees only the time step, so it answers "ends" at a
fixed set of steps. It accepts a^n b^n when it flags step 2n - 1 (the last b) and no step from n
to 2n - 2; two n it accepts therefore differ at least twofold (the smaller one's flag would
fall inside the larger one's b block), threefold for a^n b^n c^n. The best such predictor
accepts the chain N + 1, 2(N + 1), 4(N + 1), ... up to M: exact match (chain length) / (M - N),
about 2 / (3N) at the defaults (:meth:`CountingTask.chance_level`; the tests check it against
every blind predictor on short strings). Solved at 0.99: counting is all or nothing per string
(a model that has the counter accepts every n), while an approximate counter that breaks down
at some n accepts only the n below it, a fraction of the range; 0.99 leaves room for a rare
slip (the standard error at 0.99 with 1024 validation strings is 0.003).

Calibration (2026-12, a CPU pilot of one or two seeds per arm, not a verdict): T = 80, so
training n <= 10 and evaluation n 11..40 (chance 0.067); the LSTM arm was fitted with the
command below, the others with their own ``--model.*`` flags (``rnn`` with
``--model.activation relu --model.init identity``, for instance)::

    grubench fit --model.name lstm --model.init chrono --model.hidden_size 16 \
      --task.name counting --task.seq_len 80 --task.batch_size 64 --task.epoch_size 250 \
      --task.val_size 256 --optim.lr 0.01 --optim.grad_clip 1.0 \
      --trainer '{max_steps: 1500}' --seed 0 --tracking_uri sqlite:////tmp/pilot/mlflow3.db

    arm (seed)                    test exact_match   every n accepted up to (*)
    lstm, chrono init (0, 1)      0.329, 0.213       20, 16
    lstm, default init (0)        0.126              14
    torch_gru, chrono init (0, 1) 0.069, 0.041       12, 11
    torch_gru, default init (0)   0.069              12
    rnn relu, identity init (0)   0.069              12
    rnn tanh (0)                  0.034              11

(*) the final model on one string per n, n = 1, 2, ...: the first n it rejects, minus one.
Every arm accepted its training strings (the ReLU RNN 91 % of them). The LSTM extrapolated
further than the GRU in each of the three pairs, up to twice N with chrono init, the paper's
direction; the GRU and both plain RNNs stayed at chance beyond N + 2, and nothing came near
solved. At T = 200 (N = 25, width 10, lr 0.003, 2000 steps, default init) neither the LSTM
(0.039) nor the GRU (0.055) extrapolated.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F

from grubench.tasks.base import IGNORE_INDEX, Objective, Task

if TYPE_CHECKING:  # torchmetrics is imported when a fit asks for metrics: help stays fast
    from torchmetrics import MetricCollection


LETTERS = (2, 3)  # a^n b^n, a^n b^n c^n
DEFAULT_EXTRAPOLATION = 4  # the default N is M // 4: evaluation reaches four times N
SOLVED_EXACT_MATCH = 0.99
GOES_ON, ENDS = 0, 1  # the classes: the block goes on, or ends at this step


class CountingTask(Task):
    name = "counting"
    output_mode = "sequence"
    variable_length_training = True

    def __init__(self, seq_len: int, letters: int = 2, train_max_n: int | None = None) -> None:
        if letters not in LETTERS:
            raise ValueError(
                f"task.options.letters={letters!r} is invalid for {self.name}: choose from "
                f"{', '.join(map(str, LETTERS))} (a^n b^n, a^n b^n c^n)"
            )
        longest = seq_len // letters  # M: the largest n an evaluation string of T steps holds
        if train_max_n is None:
            train_max_n = max(1, longest // DEFAULT_EXTRAPOLATION)
        if not isinstance(train_max_n, int) or train_max_n < 1:
            raise ValueError(
                f"task.options.train_max_n={train_max_n!r} is invalid for {self.name}: "
                "it must be a whole number of at least 1 (or null: seq_len // letters // 4)"
            )
        # this check, which depends on the options, stands in for Task.__init__'s, which knows
        # only min_seq_len(), the minimum at the default options
        needed = letters * (train_max_n + 1)
        if seq_len < needed:
            raise ValueError(
                f"task.seq_len={seq_len} is too short for {self.name} with letters={letters} "
                f"and train_max_n={train_max_n}: it needs at least {needed} (evaluation strings "
                "are longer than training strings)"
            )
        self.seq_len = int(seq_len)
        self.letters, self.train_max_n = letters, train_max_n

    @classmethod
    def min_seq_len(cls) -> int:
        return 2 * 2  # letters=2, N=1: one evaluation n (2), one training n (1)

    @property
    def eval_n(self) -> tuple[int, int]:
        """The evaluation range of n, inclusive: ``(N + 1, M)``."""
        return self.train_max_n + 1, self.seq_len // self.letters

    @property
    def input_size(self) -> int:
        return self.letters

    @property
    def output_size(self) -> int:
        return 2

    @property
    def objective(self) -> Objective:
        return Objective(metric="exact_match", mode="max", solved_threshold=SOLVED_EXACT_MATCH)

    def generate(self, batch_size: int, generator: torch.Generator, train: bool = False):
        low, high = (1, self.train_max_n) if train else self.eval_n
        n = torch.randint(low, high + 1, (batch_size, 1), generator=generator)  # (B, 1)
        T = self.letters * int(n.max()) if train else self.seq_len
        t = torch.arange(T).unsqueeze(0)  # (1, T)
        block, within = t // n, t % n  # (B, T): which letter, the step inside its block
        inside = block < self.letters  # the string, not the padding
        letter = torch.where(inside, block, 0)
        inputs = F.one_hot(letter, self.letters).float() * inside.unsqueeze(-1)  # (B, T, k)
        ends = (within == n - 1).long()
        targets = torch.where(inside & (block > 0), ends, IGNORE_INDEX)  # (B, T)
        return inputs, targets

    def loss(self, prediction, target):
        return F.cross_entropy(prediction.transpose(1, 2), target, ignore_index=IGNORE_INDEX)

    def metrics(self) -> MetricCollection:
        from torchmetrics import MetricCollection

        from grubench.tasks.metrics import SequenceExactMatch, TokenAccuracy

        return MetricCollection(
            {"exact_match": SequenceExactMatch(), "acc": TokenAccuracy(self.output_size)}
        )

    def chance_level(self) -> float:
        """Exact match of the best predictor blind to the symbols: the n of the longest chain
        N + 1, k(N + 1), k^2(N + 1), ... <= M (k = ``letters``) over the M - N values of n."""
        low, high = self.eval_n
        chain, n = 0, low
        while n <= high:
            chain, n = chain + 1, n * self.letters
        return chain / (high - low + 1)
