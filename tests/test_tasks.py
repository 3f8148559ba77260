"""Every registered task, parametrized over the registry (a new task is tested the day it is
added), then hand-checked examples of each token task.

Chance levels are checked statistically: the task's stated trivial predictor (``TRIVIAL``
below; a new task must add its own) is scored by the task's own metric objects on 32
independent batches, and the overall value must lie within 4 standard errors of
``chance_level()``, the standard error estimated from the spread of the 32 batch values (each
batch scores the same number of positions, so the overall value is their mean).
"""

import hashlib
import math
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from grubench.tasks import IGNORE_INDEX, TASKS, batch_generator, build_task, char_lm
from grubench.tasks.associative_recall import AssociativeRecallTask
from grubench.tasks.copy_memory import BLANK, DELIMITER, CopyMemoryTask
from grubench.tasks.parity import ParityTask
from grubench.tasks.selective_copy import SelectiveCopyTask
from grubench.tasks.sequential_digits import (
    PERMUTATION,
    SequentialDigitsTask,
    _load_digits,
    split_indices,
)

TIER = "unit"

NAMES = sorted(TASKS)
SHORT = 40  # the length the registry tests use, where a task accepts it


def length(name, wanted=SHORT):
    """``wanted``, or the nearest length task ``name`` accepts (digits have exactly 64)."""
    cls = TASKS[name]
    return max(cls.min_seq_len(), min(wanted, cls.max_seq_len() or wanted))


def fixed_length(name):
    return TASKS[name].max_seq_len() == TASKS[name].min_seq_len()


def gen(task, batch=8, seed=0, index=0, train=False):
    return task.generate(batch, batch_generator(seed, "train" if train else "val", index), train)


def model_shaped(task, inputs, generator=None):
    """Random float output of the shape the model gives for ``inputs``."""
    B, L, _ = inputs.shape
    shape = (B, L, task.output_size) if task.output_mode == "sequence" else (B, task.output_size)
    return torch.randn(shape, generator=generator)


# ---- the trivial predictors the chance levels are stated for -----------------------------------


def guess_logits(task, classes):
    return F.one_hot(classes, task.output_size).float()


def always_one(task, inputs, g):  # adding: the mean of the target
    return torch.ones(len(inputs), 1)


def memoryless(task, inputs, g):  # copy_memory: blank, then a uniform guess over 1..8
    guess = torch.zeros(inputs.shape[:2], dtype=torch.long)
    guess[:, -10:] = torch.randint(1, 9, (len(inputs), 10), generator=g)
    return guess_logits(task, guess)


def uniform_data_symbol(task, inputs, g):  # selective_copy
    return guess_logits(task, torch.randint(1, task.vocab_size - 1, inputs.shape[:2], generator=g))


def uniform_value(task, inputs, g):  # associative_recall
    values = torch.randint(task.vocab_size // 2, task.vocab_size, inputs.shape[:2], generator=g)
    return guess_logits(task, values)


def always_even(task, inputs, g):  # parity
    return guess_logits(task, torch.zeros(len(inputs), dtype=torch.long))


def always_zero(task, inputs, g):  # sequential_digits: one class, whatever the image
    return guess_logits(task, torch.zeros(len(inputs), dtype=torch.long))


def blind_chain(task, inputs, g):  # counting: "ends" at fixed steps, whatever the symbols
    low, high = task.eval_n
    steps = torch.zeros(inputs.shape[1], dtype=torch.long)
    n = low
    while n <= high:  # n, k n, k^2 n, ...: no flagged step falls inside another's later blocks
        for block in range(2, task.letters + 1):
            steps[block * n - 1] = 1  # the last step of the block
        n *= task.letters
    return guess_logits(task, steps.expand(len(inputs), -1))


def training_unigram(task, inputs, g):  # char_lm: the training block's character frequencies
    counts = torch.bincount(task.split("train").targets.flatten(), minlength=task.output_size)
    log_p = (counts.double() / counts.sum()).log().float()
    return log_p.expand(*inputs.shape[:2], task.output_size)


TRIVIAL = {
    "adding": always_one,
    "associative_recall": uniform_value,
    "char_lm": training_unigram,
    "copy_memory": memoryless,
    "counting": blind_chain,
    "parity": always_even,
    "selective_copy": uniform_data_symbol,
    "sequential_digits": always_zero,
}
# the split a chance level is stated on, where it is not the validation split: char_lm's is the
# unigram entropy of the training block (its validation block's mix of characters differs)
CHANCE_ON_TRAIN = {"char_lm"}


# ---- the whole registry ------------------------------------------------------------------------


@pytest.mark.parametrize("train", [False, True])
@pytest.mark.parametrize("name", NAMES)
def test_deterministic_from_the_generator(name, train):
    task = build_task(name, length(name))
    a, b = gen(task, 16, seed=1, train=train), gen(task, 16, seed=1, train=train)
    c = gen(task, 16, seed=2, train=train)
    for left, right in zip(a, b):
        assert torch.equal(left, right)
    assert not torch.equal(a[0], c[0])


@pytest.mark.parametrize("name", NAMES)
def test_shapes_and_dtypes(name):
    task = build_task(name, length(name))
    for train in (False, True):
        inputs, targets = gen(task, 8, train=train)
        B, L, size = inputs.shape
        assert (B, size) == (8, task.input_size) and inputs.dtype == torch.float32
        assert torch.isfinite(inputs).all()
        if task.output_mode == "sequence":
            assert targets.shape == (B, L) and targets.dtype == torch.int64
            scored = targets != IGNORE_INDEX
            assert scored.any(dim=1).all()  # every sequence has something to score
            assert ((targets[scored] >= 0) & (targets[scored] < task.output_size)).all()
        elif targets.dtype == torch.int64:  # one class per sequence
            assert targets.shape == (B,)
            assert ((targets >= 0) & (targets < task.output_size)).all()
        else:  # one regression target per sequence
            assert targets.shape == (B, task.output_size) and targets.dtype == torch.float32


@pytest.mark.parametrize("name", NAMES)
def test_with_seq_len(name):
    task = build_task(name, length(name))
    if fixed_length(name):  # a data set of fixed length has no other
        with pytest.raises(ValueError, match=rf"task.seq_len=\d+ is too long for {name}"):
            task.with_seq_len(task.seq_len + 1)
        return
    longer = task.with_seq_len(3 * SHORT)
    assert type(longer) is type(task) and longer.seq_len == 3 * SHORT
    assert longer.options() == task.options()
    # eval sequences grow by exactly the change of seq_len (some tasks add fixed steps)
    assert gen(longer)[0].shape[1] - gen(task)[0].shape[1] == 2 * SHORT


@pytest.mark.parametrize("name", NAMES)
def test_eval_and_train_lengths(name):
    task = build_task(name, length(name))
    eval_length = gen(task)[0].shape[1]
    assert eval_length >= SHORT
    train_lengths = {gen(task, 2, index=i, train=True)[0].shape[1] for i in range(30)}
    if task.variable_length_training:  # one length per batch, from 1 to seq_len
        assert len(train_lengths) > 1 and min(train_lengths) >= 1
        assert max(train_lengths) <= task.seq_len
        assert eval_length == task.seq_len
    else:
        assert train_lengths == {eval_length}


@pytest.mark.parametrize("name", NAMES)
def test_random_prediction_through_loss_and_metrics(name):
    task = build_task(name, length(name))
    inputs, targets = gen(task, 16)
    prediction = model_shaped(task, inputs).requires_grad_()
    loss = task.loss(prediction, targets)
    assert loss.ndim == 0 and torch.isfinite(loss)
    loss.backward()
    assert torch.isfinite(prediction.grad).all() and prediction.grad.abs().sum() > 0
    collection = task.metrics()
    collection.update(prediction.detach(), targets)
    values = collection.compute()
    assert task.objective.metric in values
    assert all(k.isidentifier() and len(k) <= 12 for k in values)  # short keys: "acc", "mse"
    assert all(torch.isfinite(v) for v in values.values())
    assert task.metrics() is not task.metrics()  # fresh objects every call


@pytest.mark.parametrize("name", NAMES)
def test_chance_level(name):
    assert name in TRIVIAL, f"add {name}'s trivial predictor to TRIVIAL in {__file__}"
    task = build_task(name, length(name))
    metric = task.metrics()[task.objective.metric]
    g = torch.Generator().manual_seed(0)
    per_batch = []
    for index in range(32):
        inputs, targets = gen(task, 256, seed=7, index=index, train=name in CHANCE_ON_TRAIN)
        per_batch.append(float(metric(TRIVIAL[name](task, inputs, g), targets)))
    overall = float(metric.compute())
    stderr = torch.tensor(per_batch).std().item() / math.sqrt(len(per_batch))
    assert overall == pytest.approx(sum(per_batch) / len(per_batch))
    assert 0 < stderr < 0.01
    assert abs(overall - task.chance_level()) < 4 * stderr
    assert not task.objective.is_solved(task.chance_level())


@pytest.mark.parametrize("name", NAMES)
def test_long_sequences(name):
    if (TASKS[name].max_seq_len() or 1000) < 1000:
        with pytest.raises(ValueError, match=rf"task.seq_len=1000 is too long for {name}"):
            build_task(name, 1000)
        return
    task = build_task(name, 1000)
    for train in (False, True):
        inputs, targets = gen(task, 4, train=train)
        assert inputs.shape[0] == len(targets) == 4 and inputs.shape[2] == task.input_size
    assert gen(task, 4)[0].shape[1] >= 1000


@pytest.mark.parametrize("name", NAMES)
def test_too_short_raises_and_the_minimum_works(name):
    shortest = TASKS[name].min_seq_len()
    with pytest.raises(ValueError, match=rf"task.seq_len={shortest - 1} is too short for {name}"):
        build_task(name, shortest - 1)
    inputs, _ = gen(build_task(name, shortest), 2)
    assert inputs.shape[1] >= shortest


# ---- copy_memory ---------------------------------------------------------------------------------


def test_copy_memory_hand_checked():
    T = 5
    inputs, targets = CopyMemoryTask(seq_len=T).generate(3, torch.Generator().manual_seed(3))
    assert inputs.shape == (3, T + 20, 10) and targets.shape == (3, T + 20)
    assert (inputs.sum(-1) == 1).all()  # one-hot
    for tokens, target in zip(inputs.argmax(-1), targets):
        data = tokens[:10]
        assert ((1 <= data) & (data <= 8)).all()
        assert (tokens[10 : 10 + T - 1] == BLANK).all()  # T - 1 blanks
        assert tokens[T + 9] == DELIMITER and (tokens == DELIMITER).sum() == 1
        assert (tokens[T + 10 :] == BLANK).all() and len(tokens[T + 10 :]) == 10
        assert (target[: T + 10] == BLANK).all()
        assert torch.equal(target[T + 10 :], data)  # the symbols, in order


def test_copy_memory_memoryless_cross_entropy():
    """The memoryless strategy's CE is 10 ln 8 / (T + 20) on every sample, so the check is
    exact on a large sample (tolerance: float32 rounding); a blank target in a recall step, or
    a non-blank one elsewhere, would make it infinite."""
    T = 50
    task = CopyMemoryTask(seq_len=T)
    _, targets = task.generate(4096, torch.Generator().manual_seed(0))
    logits = torch.full((len(targets), T + 20, 10), -math.inf)
    logits[:, : T + 10, BLANK] = 0.0  # certain of the blank
    logits[:, T + 10 :, 1:9] = 0.0  # uniform over the data symbols
    assert task.loss(logits, targets).item() == pytest.approx(10 * math.log(8) / (T + 20), rel=1e-6)
    assert task.memoryless_loss() == pytest.approx(10 * math.log(8) / (T + 20))


def test_copy_memory_scores_the_last_ten_steps_by_position():
    task = CopyMemoryTask(seq_len=8)
    _, targets = task.generate(4, torch.Generator().manual_seed(1))
    guess = targets.clone()
    guess[0, -1] = 9 - guess[0, -1]  # one recall symbol wrong (1..8 -> 8..1, never itself)
    guess[1, :-10] = 5  # errors outside the recall steps do not count
    values = task.metrics()(F.one_hot(guess, 10).float(), targets)
    assert values["acc"].item() == pytest.approx(39 / 40)
    assert values["exact_match"].item() == pytest.approx(3 / 4)


# ---- selective_copy ------------------------------------------------------------------------------


def test_selective_copy_hand_checked():
    task = SelectiveCopyTask(seq_len=8, n_tokens=3, vocab_size=6)  # the docstring's example
    inputs, targets = task.generate(50, torch.Generator().manual_seed(0))
    assert inputs.shape == (50, 11, 6) and (inputs.sum(-1) == 1).all()
    tokens = inputs.argmax(-1)
    for row, target in zip(tokens, targets):
        region, markers = row[:8], row[8:]
        data = region[region != 0]
        assert len(data) == 3 and ((1 <= data) & (data <= 4)).all()
        assert (markers == 5).all() and (region != 5).all()
        assert torch.equal(target[8:], data)  # the data tokens, in the order they came
        assert (target[:8] == IGNORE_INDEX).all()
    first_positions = {int((row[:8] != 0).nonzero()[0]) for row in tokens}
    assert len(first_positions) > 1  # the spacing changes from sequence to sequence


def test_selective_copy_options():
    assert SelectiveCopyTask(seq_len=20, n_tokens=4, vocab_size=5).options() == {
        "n_tokens": 4,
        "vocab_size": 5,
    }
    with pytest.raises(ValueError, match=r"n_tokens=0 is invalid for selective_copy"):
        SelectiveCopyTask(seq_len=20, n_tokens=0)
    with pytest.raises(ValueError, match=r"vocab_size=2 is invalid for selective_copy"):
        SelectiveCopyTask(seq_len=20, vocab_size=2)
    with pytest.raises(ValueError, match=r"seq_len=18 is too short .* it needs at least 20"):
        SelectiveCopyTask(seq_len=18, n_tokens=20)
    assert SelectiveCopyTask(seq_len=4, n_tokens=4).seq_len == 4  # shorter than the default's


# ---- associative_recall --------------------------------------------------------------------------


def test_associative_recall_hand_checked():
    options = dict(n_pairs=2, vocab_size=12, random_non_queries=False)  # the docstring's example
    task = AssociativeRecallTask(seq_len=12, **options)
    inputs, targets = task.generate(50, torch.Generator().manual_seed(0))
    assert inputs.shape == (50, 12, 12) and (inputs.sum(-1) == 1).all()
    for row, target in zip(inputs.argmax(-1), targets):
        keys, values = row[0:4:2], row[1:4:2]
        assert ((1 <= keys) & (keys <= 5)).all() and keys.unique().numel() == 2
        assert ((6 <= values) & (values <= 11)).all() and values.unique().numel() == 2
        queries = (target != IGNORE_INDEX).nonzero().flatten()
        assert len(queries) == 2 and (queries >= 4).all() and (queries % 2 == 0).all()
        assert sorted(row[queries].tolist()) == sorted(keys.tolist())  # every key asked once
        for t in queries:
            assert target[t] == values[keys == row[t]].item()  # the paired value
        rest = torch.ones(12, dtype=torch.bool)
        rest[:4], rest[queries] = False, False
        assert (row[rest] == 0).all()  # filler


def test_associative_recall_random_filler_keeps_pairs_and_queries():
    kwargs = dict(seq_len=64, n_pairs=4)
    plain, plain_y = AssociativeRecallTask(random_non_queries=False, **kwargs).generate(
        8, torch.Generator().manual_seed(5)
    )
    noisy, noisy_y = AssociativeRecallTask(**kwargs).generate(8, torch.Generator().manual_seed(5))
    assert torch.equal(plain_y, noisy_y)  # the filler is drawn last
    kept = plain.argmax(-1) != 0
    assert torch.equal(plain.argmax(-1)[kept], noisy.argmax(-1)[kept])
    assert (noisy.argmax(-1)[~kept] != 0).float().mean() > 0.9  # uniform over 128 tokens


def test_associative_recall_query_subset_and_gap_law():
    task = AssociativeRecallTask(seq_len=200, n_pairs=8, n_queries=3)
    inputs, targets = task.generate(64, torch.Generator().manual_seed(2))
    scored = targets != IGNORE_INDEX
    assert (scored.sum(1) == 3).all()
    # which pairs are asked varies (not always the first three of the context)
    keys = inputs.argmax(-1)[:, 0:16:2]
    asked = [
        tuple(sorted((keys[b] == k).nonzero().item() for k in inputs.argmax(-1)[b][scored[b]]))
        for b in range(64)
    ]
    assert len(set(asked)) > 10

    def mean_offset(power_a):
        t = AssociativeRecallTask(seq_len=400, power_a=power_a)
        _, y = t.generate(256, torch.Generator().manual_seed(0))
        return (y != IGNORE_INDEX).nonzero()[:, 1].float().mean().item()

    # power law: queries near the pairs with Zoology's 0.01; uniform spacing at 1 (mean ~200)
    assert mean_offset(0.01) < 120 < 180 < mean_offset(1.0)


def test_associative_recall_options():
    with pytest.raises(ValueError, match=r"n_pairs=0 is invalid"):
        AssociativeRecallTask(seq_len=64, n_pairs=0)
    with pytest.raises(ValueError, match=r"n_queries=9 is invalid .* \[1, n_pairs=8\]"):
        AssociativeRecallTask(seq_len=64, n_queries=9)
    with pytest.raises(ValueError, match=r"vocab_size=17 is invalid .* vocab_size >= 18"):
        AssociativeRecallTask(seq_len=64, vocab_size=17)
    with pytest.raises(ValueError, match=r"power_a=0.0 is invalid"):
        AssociativeRecallTask(seq_len=64, power_a=0.0)
    with pytest.raises(ValueError, match=r"seq_len=40 is too short .* at least 48"):
        AssociativeRecallTask(seq_len=40, n_pairs=12)
    with pytest.raises(ValueError, match=r"has no option 'num_kv_pairs'; valid options: n_pairs"):
        build_task("associative_recall", 64, num_kv_pairs=8)
    assert AssociativeRecallTask(seq_len=12, n_pairs=2, vocab_size=12).seq_len == 12
    assert AssociativeRecallTask(seq_len=32).chance_level() == 1 / 64


# ---- parity --------------------------------------------------------------------------------------


def test_parity_hand_checked():
    inputs, targets = ParityTask(seq_len=6).generate(64, torch.Generator().manual_seed(0))
    assert inputs.shape == (64, 6, 2) and targets.shape == (64,)
    assert (inputs.sum(-1) == 1).all()
    bits = inputs.argmax(-1)
    first = bits[0].tolist()
    assert set(first) <= {0, 1} and targets[0].item() == first.count(1) % 2
    assert torch.equal(targets, bits.sum(1) % 2)
    assert 0 < targets.float().mean() < 1  # both classes occur


def test_parity_train_lengths_cover_one_to_seq_len():
    task = ParityTask(seq_len=5)
    lengths = [gen(task, 4, index=i, train=True)[0].shape[1] for i in range(200)]
    assert set(lengths) == {1, 2, 3, 4, 5}
    longer = task.with_seq_len(50)
    x, y = gen(longer, 4)
    assert x.shape[1] == 50 and torch.equal(y, x.argmax(-1).sum(1) % 2)


# ---- sequential_digits ---------------------------------------------------------------------------


def test_sequential_digits_splits_are_fixed_disjoint_and_stratified():
    labels = _load_digits()[1]
    splits = split_indices(labels)
    sizes = {name: len(index) for name, index in splits.items()}
    assert sizes == {"train": 1085, "val": 357, "test": 355}
    every = splits["train"] + splits["val"] + splits["test"]
    assert sorted(every) == list(range(1797))  # disjoint, and together the whole data set
    for name, share in (("train", 0.6), ("val", 0.2), ("test", 0.2)):
        counts = torch.bincount(torch.as_tensor(labels[splits[name]]), minlength=10)
        for c, total in enumerate(torch.bincount(torch.as_tensor(labels), minlength=10)):
            assert abs(int(counts[c]) - share * int(total)) < 2  # stratified
    a, b = SequentialDigitsTask(), SequentialDigitsTask()
    for split in ("train", "val", "test"):  # deterministic: no seed, no shuffle
        x1, y1 = a.split(split)[:]
        x2, y2 = b.split(split)[:]
        assert torch.equal(x1, x2) and torch.equal(y1, y2)


def test_sequential_digits_worked_example_and_scaling():
    inputs, targets = SequentialDigitsTask().split("train")[[0]]  # the data set's first image
    assert inputs.shape == (1, 64, 1) and int(targets[0]) == 0
    row0 = [0, 0, 5, 13, 9, 1, 0, 0]
    assert inputs[0, :8, 0].tolist() == [v / 16 for v in row0]
    x, _ = SequentialDigitsTask().split("val")[:]
    assert 0.0 <= x.min() and x.max() <= 1.0 and x.max() == 1.0


def test_sequential_digits_permutation_is_fixed_and_shared():
    assert sorted(PERMUTATION) == list(range(64)) and list(PERMUTATION) != list(range(64))
    assert PERMUTATION[:8] == (55, 51, 39, 49, 9, 50, 46, 53)  # pinned: runs stay comparable
    plain, permuted = SequentialDigitsTask(), SequentialDigitsTask(permuted=True)
    for split in ("train", "test"):
        x, y = plain.split(split)[:]
        xp, yp = permuted.split(split)[:]
        assert torch.equal(xp, x[:, list(PERMUTATION)]) and torch.equal(y, yp)


def test_sequential_digits_uniform_cross_entropy_and_a_linear_classifier():
    from sklearn.linear_model import LogisticRegression

    task = SequentialDigitsTask()
    x, y = task.split("test")[:]
    metrics = task.metrics()
    metrics.update(torch.zeros(len(y), 10), y)  # the uniform prediction
    assert float(metrics.compute()["ce"]) == pytest.approx(math.log(10), rel=1e-6)
    # the solved threshold's reference: a linear classifier that sees the whole image
    xt, yt = task.split("train")[:]
    model = LogisticRegression(max_iter=5000).fit(xt.flatten(1).numpy(), yt.numpy())
    accuracy = model.score(x.flatten(1).numpy(), y.numpy())
    assert 0.93 < accuracy < 0.99 and task.objective.is_solved(0.93)


def test_sequential_digits_length_and_train_size_errors():
    from grubench.training.config import validate_task_config
    from grubench.training.data import TaskConfig

    with pytest.raises(ValueError, match="task.seq_len=100 is too long for sequential_digits"):
        build_task("sequential_digits", 100)
    with pytest.raises(ValueError, match="task.options.permuted must be true or false, got 3"):
        build_task("sequential_digits", 64, permuted=3)
    problems = validate_task_config(TaskConfig(name="sequential_digits", seq_len=64,
                                               train_size=100))  # fmt: skip
    assert problems == [
        "task.train_size: sequential_digits trains on its data set's fixed training split, "
        "so train_size does not apply; leave train_size null"
    ]


# ---- char_lm -------------------------------------------------------------------------------------


def test_char_lm_corpus_is_pinned():
    text = char_lm.corpus()
    assert len(text) == 402_983 and len(char_lm.CORPUS_FILES) == 38
    assert hashlib.sha256(text.encode()).hexdigest()[:16] == "0f30c11600da1164"
    assert set(text) <= set(char_lm.VOCAB) and len(char_lm.VOCAB) == 96


def test_char_lm_blocks_are_contiguous_and_disjoint():
    text = char_lm.corpus()
    blocks = [char_lm.block(name) for name in ("train", "val", "test")]
    assert "".join(blocks) == text
    assert [len(b) for b in blocks] == [322_386, 40_298, 40_299]


@pytest.mark.parametrize("seq_len", [8, 128])
def test_char_lm_windows_cover_each_block_once(seq_len):
    task = build_task("char_lm", seq_len)
    for split in ("train", "val", "test"):
        samples = task.split(split)
        inputs, targets = samples[:]
        codes = inputs.argmax(-1)  # (N, T)
        assert torch.equal(codes[:, 1:], targets[:, :-1])  # the target is the input shifted
        assert torch.equal(codes[1:, 0], targets[:-1, -1])  # windows meet, never overlap
        text = "".join(char_lm.VOCAB[c] for c in targets.flatten().tolist())
        block = char_lm.block(split)
        assert text == block[1 : 1 + len(text)] and len(block) - 1 - len(text) < seq_len


def test_char_lm_worked_example():
    inputs, targets = build_task("char_lm", 8).split("train")[[254]]
    assert "".join(char_lm.VOCAB[c] for c in inputs[0].argmax(-1)) == "def clos"
    assert "".join(char_lm.VOCAB[c] for c in targets[0]) == "ef close"
    assert inputs.shape == (1, 8, 96) and (inputs.sum(-1) == 1).all()


def test_char_lm_baselines():
    task = build_task("char_lm", 128)
    assert char_lm.uniform_bpc() == pytest.approx(6.584963, abs=1e-6)
    assert task.chance_level() == char_lm.unigram_bpc("train") == pytest.approx(4.63196, abs=1e-5)
    for split, value in (("val", 4.52982), ("test", 4.66222)):
        assert char_lm.unigram_bpc(split) == pytest.approx(value, abs=1e-5)
    # the metric agrees: the uniform guess and the unigram model over every test window
    inputs, targets = task.split("test")[:]
    for logits, expected in (
        (torch.zeros(*targets.shape, 96), char_lm.uniform_bpc()),
        (training_unigram(task, inputs, None), char_lm.unigram_bpc("test")),
    ):
        metrics = task.metrics()
        metrics.update(logits, targets)
        assert float(metrics.compute()["bpc"]) == pytest.approx(expected, abs=2e-3)
    assert task.objective.solved_threshold is None and not task.objective.is_solved(0.0)


def test_char_lm_refuses_a_different_text(tmp_path):
    import sysconfig

    stdlib = Path(sysconfig.get_paths()["stdlib"])
    for name in char_lm.CORPUS_FILES:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes((stdlib / name).read_bytes())
    assert char_lm.read_corpus(tmp_path) == char_lm.corpus()
    (tmp_path / "difflib.py").write_text("changed\n")
    with pytest.raises(char_lm.CorpusUnavailable, match=r"difflib.py differs from the pinned"):
        char_lm.read_corpus(tmp_path)
    (tmp_path / "difflib.py").unlink()
    with pytest.raises(char_lm.CorpusUnavailable, match=r"has no difflib.py"):
        char_lm.read_corpus(tmp_path)


@pytest.mark.system
def test_real_data_loads_with_no_network():
    code = (
        "import socket\n"
        "def refuse(*a, **k): raise OSError('no network in this test')\n"
        "socket.socket.connect = refuse; socket.create_connection = refuse\n"
        "from grubench.tasks import build_task\n"
        "for t in (build_task('char_lm', 64), build_task('sequential_digits', 64, permuted=True)):\n"
        "    print(t.name, [len(t.split(s)) for s in ('train', 'val', 'test')])\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split("\n")[:2] == [
        "char_lm [5037, 629, 629]",
        "sequential_digits [1085, 357, 355]",
    ]
