"""The counting task (a^n b^n, a^n b^n c^n with length extrapolation): the docstring's example,
the chance level against a brute-force search over every symbol-blind predictor, the
evaluation split at larger n than training, determinism, the options' errors, and that a
small LSTM learns the training range (the registry's shared checks are in test_tasks.py)."""

from __future__ import annotations

import itertools

import pytest
import torch
import torch.nn.functional as F

from grubench.tasks import IGNORE_INDEX, batch_generator, build_task
from grubench.tasks.counting import CountingTask

TIER = "unit"


def symbols(inputs: torch.Tensor) -> list[str]:
    """Each string as letters, padding dropped: ``"aaabbb"``."""
    letters = "abc"
    return [
        "".join(letters[int(s)] for s, on in zip(row.argmax(-1), row.sum(-1)) if on)
        for row in inputs
    ]


def counts(inputs: torch.Tensor) -> torch.Tensor:
    """n of each string: its number of a's."""
    return inputs[..., 0].sum(dim=1).long()


def test_the_docstring_example():
    task = CountingTask(seq_len=8, train_max_n=2)  # evaluation n in 3..4, padded to 8 steps
    inputs, targets = task.generate(64, torch.Generator().manual_seed(0))
    assert inputs.shape == (64, 8, 2) and targets.shape == (64, 8)
    three = (counts(inputs) == 3).nonzero()[0].item()
    assert symbols(inputs[three : three + 1]) == ["aaabbb"]
    assert (inputs[three, 6:] == 0).all()  # padding: all-zero inputs
    assert targets[three].tolist() == [IGNORE_INDEX] * 3 + [0, 0, 1] + [IGNORE_INDEX] * 2


@pytest.mark.parametrize("letters", [2, 3])
def test_strings_and_targets(letters):
    task = CountingTask(seq_len=60, letters=letters)
    for train in (False, True):
        inputs, targets = task.generate(32, torch.Generator().manual_seed(1), train=train)
        for string, target, n in zip(symbols(inputs), targets, counts(inputs)):
            n = int(n)
            assert string == "".join(c * n for c in "abc"[:letters])
            expected = [IGNORE_INDEX] * n + ([0] * (n - 1) + [1]) * (letters - 1)
            expected += [IGNORE_INDEX] * (len(target) - letters * n)
            assert target.tolist() == expected


def test_evaluation_strings_are_longer_than_training_strings():
    task = CountingTask(seq_len=120)  # M = 60, N = 15
    assert (task.train_max_n, task.eval_n) == (15, (16, 60))
    train = torch.cat([counts(task.generate(64, batch_generator(0, "train", i), True)[0])
                       for i in range(20)])  # fmt: skip
    evaluation = torch.cat([counts(task.generate(64, batch_generator(0, s, i))[0])
                            for s in ("val", "test") for i in range(10)])  # fmt: skip
    assert set(train.tolist()) == set(range(1, 16))  # every training n, none beyond N
    assert set(evaluation.tolist()) == set(range(16, 61))  # every n beyond N that fits
    # another evaluation length keeps the training range and reaches further
    longer = task.with_seq_len(400)
    assert longer.train_max_n == 15 and longer.eval_n == (16, 200)


def test_deterministic_by_seed_and_split():
    task = build_task("counting", 80)
    a = task.generate(16, batch_generator(3, "test", 0))
    b = task.generate(16, batch_generator(3, "test", 0))
    assert all(torch.equal(x, y) for x, y in zip(a, b))
    assert not torch.equal(counts(a[0]), counts(task.generate(16, batch_generator(3, "val", 0))[0]))
    assert not torch.equal(
        counts(a[0]), counts(task.generate(16, batch_generator(4, "test", 0))[0])
    )


@pytest.mark.parametrize(
    ("seq_len", "letters", "train_max_n"), [(12, 2, 2), (14, 2, 1), (15, 3, 1)]
)
def test_chance_level_is_the_best_symbol_blind_predictor(seq_len, letters, train_max_n):
    """Every set of steps at which a predictor blind to the symbols can answer "ends", tried
    on every evaluation n: the best exact match equals chance_level()."""
    task = CountingTask(seq_len=seq_len, letters=letters, train_max_n=train_max_n)
    low, high = task.eval_n
    lengths = range(low, high + 1)
    best = 0
    for flagged in itertools.product((0, 1), repeat=seq_len):
        accepted = 0
        for n in lengths:
            scored = range(n, letters * n)  # the steps of the later blocks
            accepted += all(flagged[t] == ((t + 1) % n == 0) for t in scored)
        best = max(best, accepted)
    assert task.chance_level() == pytest.approx(best / len(lengths))
    assert not task.objective.is_solved(task.chance_level())


def test_a_model_that_never_says_ends_scores_high_accuracy_but_no_exact_match():
    task = CountingTask(seq_len=80)
    inputs, targets = task.generate(256, torch.Generator().manual_seed(2))
    never = F.one_hot(torch.zeros(targets.shape, dtype=torch.long), 2).float()
    values = task.metrics()(never, targets)
    assert values["exact_match"] == 0 and values["acc"] > 0.9


def test_bad_options_name_the_value_and_the_choices():
    with pytest.raises(ValueError, match=r"letters=4 is invalid for counting: choose from 2, 3"):
        build_task("counting", 40, letters=4)
    with pytest.raises(ValueError, match=r"train_max_n=0 is invalid for counting"):
        build_task("counting", 40, train_max_n=0)
    with pytest.raises(ValueError, match=r"seq_len=20 is too short .* it needs at least 22"):
        build_task("counting", 20, train_max_n=10)
    with pytest.raises(ValueError, match=r"seq_len=8 is too short .* letters=3 .* at least 9"):
        build_task("counting", 8, letters=3, train_max_n=2)
    with pytest.raises(ValueError, match=r"has no option 'max_n'; valid options: letters, "):
        build_task("counting", 40, max_n=5)


def test_an_evaluation_length_is_checked_against_the_training_range():
    """The fit evaluates ``task.with_seq_len(L)``, which keeps N: an extra length too short
    for strings longer than the training range is refused before the fit starts."""
    from grubench.training.config import TaskConfig, validate_task_config

    config = TaskConfig(name="counting", seq_len=80, eval_lengths=[320, 20])
    assert validate_task_config(config) == [
        "task.eval_lengths[1]: task.seq_len=20 is too short for counting with letters=2 and "
        "train_max_n=10: it needs at least 22 (evaluation strings are longer than training "
        "strings)"
    ]
