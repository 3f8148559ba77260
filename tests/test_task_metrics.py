"""The shared token metrics against independent references (plain numpy loops), and the
torchmetrics habits: accumulating batches, or merging ranks' states as DDP's sum reduction
does, equals one computation on the concatenation; the docstring examples run."""

import doctest

import pytest
import torch
from torchmetrics.utilities.data import dim_zero_sum

from grubench.tasks import IGNORE_INDEX, metrics
from grubench.tasks.metrics import CrossEntropy, SequenceExactMatch, TokenAccuracy

TIER = "unit"

WINDOWS = [None, (-3, None), (2, 5)]
CLASSES = 4  # random_batch's


def random_batch(seed, batch=12, steps=7, classes=CLASSES, ignore_rate=0.3):
    """Logits and targets where predictions are right often enough for exact matches."""
    g = torch.Generator().manual_seed(seed)
    target = torch.randint(0, classes, (batch, steps), generator=g)
    guess = torch.where(
        torch.rand(batch, steps, generator=g) < 0.8,
        target,
        torch.randint(0, classes, (batch, steps), generator=g),
    )
    logits = torch.nn.functional.one_hot(guess, classes).float()
    logits += 0.1 * torch.rand(batch, steps, classes, generator=g)  # argmax stays `guess`
    ignored = torch.rand(batch, steps, generator=g) < ignore_rate
    ignored[0] = True  # one sequence with nothing scored
    target[ignored] = IGNORE_INDEX
    return logits, target


def reference(logits, target, window, ignore_index):
    """(accuracy, exact match) by explicit loops over sequences and steps."""
    pred = logits.numpy().argmax(-1)
    tgt = target.numpy()
    steps = range(tgt.shape[1])[slice(*window)] if window else range(tgt.shape[1])
    correct = total = matched = sequences = 0
    for b in range(tgt.shape[0]):
        scored = [t for t in steps if ignore_index is None or tgt[b, t] != ignore_index]
        hits = sum(int(pred[b, t] == tgt[b, t]) for t in scored)
        correct, total = correct + hits, total + len(scored)
        if scored:
            sequences += 1
            matched += hits == len(scored)
    return correct / total, matched / sequences


@pytest.mark.parametrize("window", WINDOWS)
@pytest.mark.parametrize("ignore_index", [IGNORE_INDEX, None])
def test_against_reference(window, ignore_index):
    logits, target = random_batch(0)
    if ignore_index is None:
        target = target.clamp(min=0)  # every step scored
    acc, exact = reference(logits, target, window, ignore_index)
    kwargs = dict(window=window, ignore_index=ignore_index)
    assert TokenAccuracy(CLASSES, **kwargs)(logits, target).item() == pytest.approx(acc)
    assert SequenceExactMatch(**kwargs)(logits, target).item() == pytest.approx(exact)
    assert 0 < exact < acc < 1  # the batch exercises both outcomes
    # class indices give the same as logits
    assert TokenAccuracy(CLASSES, **kwargs)(logits.argmax(-1), target).item() == pytest.approx(acc)


@pytest.mark.parametrize("window", WINDOWS)
@pytest.mark.parametrize("metric_class", [TokenAccuracy, SequenceExactMatch])
def test_accumulation_equals_one_shot(metric_class, window):
    def make():
        if metric_class is TokenAccuracy:
            return TokenAccuracy(CLASSES, window=window)
        return metric_class(window=window)

    batches = [random_batch(seed, batch=size) for seed, size in ((1, 5), (2, 9), (3, 16))]
    accumulated = make()
    for logits, target in batches:
        accumulated.update(logits, target)
    logits, target = (torch.cat(parts) for parts in zip(*batches))
    one_shot = make()(logits, target)
    assert accumulated.compute().item() == pytest.approx(one_shot.item())
    assert one_shot.item() == pytest.approx(
        reference(logits, target, window, IGNORE_INDEX)[metric_class is SequenceExactMatch]
    )

    # two "ranks" merged by summing their states, as the DDP reduction does
    rank0, rank1 = make(), make()
    for i, (logits, target) in enumerate(batches):
        (rank0 if i % 2 == 0 else rank1).update(logits, target)
    rank0.merge_state(rank1)
    assert rank0.compute().item() == pytest.approx(one_shot.item())
    assert all(rank0._reductions[name] is dim_zero_sum for name in rank0._defaults)


def test_one_prediction_per_sequence():
    """(B, C) logits against (B,) targets, as last-mode classification tasks give them."""
    logits = torch.tensor([[2.0, 0.0], [0.0, 1.0], [3.0, 1.0], [0.0, 5.0]])
    target = torch.tensor([0, 0, 0, 1])
    assert TokenAccuracy(2, ignore_index=None)(logits, target).item() == pytest.approx(0.75)
    assert SequenceExactMatch(ignore_index=None)(logits, target).item() == pytest.approx(0.75)


def test_sequences_without_scored_steps_are_not_counted():
    logits = torch.nn.functional.one_hot(torch.tensor([[1, 1], [0, 0]]), 2).float()
    target = torch.tensor([[1, IGNORE_INDEX], [IGNORE_INDEX, IGNORE_INDEX]])
    assert SequenceExactMatch()(logits, target).item() == 1.0
    assert TokenAccuracy(2)(logits, target).item() == 1.0
    with pytest.warns(UserWarning, match="called before the ``update``"):
        assert torch.isnan(TokenAccuracy(2).compute())  # nothing seen yet


def test_bad_shapes():
    with pytest.raises(ValueError, match=r"logits of shape \(2, 3, 4\) do not match target"):
        TokenAccuracy(4)(torch.randn(2, 3, 4), torch.zeros(2, 4, dtype=torch.long))
    with pytest.raises(ValueError, match="neither logits nor class indices"):
        TokenAccuracy(4)(torch.zeros(2, 5, dtype=torch.long), torch.zeros(2, 4, dtype=torch.long))
    with pytest.raises(ValueError, match="a window needs a time axis"):
        TokenAccuracy(4, window=(-1, None))(torch.randn(2, 3), torch.zeros(2, dtype=torch.long))


def test_docstring_examples():
    result = doctest.testmod(metrics, extraglobs={"torch": torch})
    assert result.attempted > 0 and result.failed == 0


def reference_cross_entropy(logits, target, ignore_index):
    """Mean of -log softmax at the target over scored positions, in float64 numpy loops."""
    import numpy as np

    flat_logits = logits.reshape(-1, logits.shape[-1]).double().numpy()
    total, count = 0.0, 0
    for row, t in zip(flat_logits, target.reshape(-1).tolist()):
        if ignore_index is not None and t == ignore_index:
            continue
        shifted = row - row.max()
        total += -(shifted[t] - np.log(np.exp(shifted).sum()))
        count += 1
    return total / count


@pytest.mark.parametrize("bits", [False, True])
def test_cross_entropy_against_reference_and_accumulation(bits):
    import math

    batches = [random_batch(seed, batch=size) for seed, size in ((4, 5), (5, 9), (6, 16))]
    accumulated = CrossEntropy(bits=bits)
    rank0, rank1 = CrossEntropy(bits=bits), CrossEntropy(bits=bits)
    for i, (logits, target) in enumerate(batches):
        accumulated.update(logits, target)
        (rank0 if i % 2 == 0 else rank1).update(logits, target)
    logits, target = (torch.cat(parts) for parts in zip(*batches))
    expected = reference_cross_entropy(logits, target, IGNORE_INDEX) / (math.log(2) if bits else 1)
    assert CrossEntropy(bits=bits)(logits, target).item() == pytest.approx(expected, rel=1e-5)
    assert accumulated.compute().item() == pytest.approx(expected, rel=1e-5)
    rank0.merge_state(rank1)
    assert rank0.compute().item() == pytest.approx(expected, rel=1e-5)
    # (B, C) against (B,): one prediction per sequence, nothing ignored
    last = torch.randn(6, 3, generator=torch.Generator().manual_seed(0))
    labels = torch.tensor([0, 1, 2, 2, 1, 0])
    reference = reference_cross_entropy(last, labels, None) / (math.log(2) if bits else 1)
    assert CrossEntropy(bits=bits, ignore_index=None)(last, labels).item() == pytest.approx(
        reference, rel=1e-5
    )
