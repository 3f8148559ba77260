import math

import pytest
import torch

from grubench.tasks import batch_generator, build_task
from grubench.tasks.adding import CHANCE_MSE, AddingTask

TIER = "unit"


def test_hand_checked_example():
    task = AddingTask(seq_len=6)
    x, y = task.generate(4, torch.Generator().manual_seed(3))
    assert x.shape == (4, 6, 2) and y.shape == (4, 1)
    for values, markers, target in zip(x[..., 0], x[..., 1], y[:, 0]):
        first, second = torch.nonzero(markers).flatten().tolist()
        assert first < 3 <= second  # exactly one marker in each half
        assert markers.sum() == 2
        assert target == pytest.approx(float(values[first] + values[second]))
        assert ((0 <= values) & (values <= 1)).all()


def test_chance_level_is_one_sixth():
    """Always answering 1 (the mean of the target) scores MSE 1/6 = Var(U1 + U2)."""
    task = AddingTask(seq_len=20)
    _, y = task.generate(200_000, torch.Generator().manual_seed(0))
    mse = torch.mean((y - 1.0) ** 2).item()
    # Var((S - 1)^2) = E[(S - 1)^4] - (1/6)^2 = 1/15 - 1/36 = 7/180 for the triangular sum
    stderr = math.sqrt(7 / 180 / len(y))
    assert task.chance_level() == CHANCE_MSE == pytest.approx(1 / 6)
    assert abs(mse - 1 / 6) < 4 * stderr
    assert abs(y.mean().item() - 1.0) < 4 * math.sqrt(1 / 6 / len(y))  # 1 is the best constant


def test_long_sequences():
    x, y = AddingTask(seq_len=1000).generate(8, batch_generator(0, "train", 0))
    assert x.shape == (8, 1000, 2)
    assert (x[..., 1].sum(dim=1) == 2).all()


def test_too_short_and_unknown():
    with pytest.raises(ValueError, match="seq_len=1 is too short for adding"):
        AddingTask(seq_len=1)
    with pytest.raises(ValueError, match=r"unknown task 'add'; choose from: adding"):
        build_task("add", 10)
