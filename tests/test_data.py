import pytest
import torch

import grubench.training.data as data_module
from grubench.tasks import batch_seed, build_task
from grubench.training.data import (
    EpochSampler,
    ShuffledBatches,
    StridedSampler,
    SyntheticDataModule,
)

TIER = "unit"


def make(seed=0, **kwargs):
    options = dict(batch_size=8, epoch_size=3, val_size=20, test_size=20)
    return SyntheticDataModule(build_task("adding", 12), seed=seed, **{**options, **kwargs})


def batches(loader):
    if isinstance(loader, list):  # evaluation: one loader per length, the training length first
        loader = loader[0]
    return [tuple(t.clone() for t in batch) for batch in loader]


def test_same_seed_same_batches_different_seed_differs():
    a, b, c = make(0), make(0), make(1)
    for name in ("train_dataloader", "val_dataloader", "test_dataloader"):
        left, right, other = (batches(getattr(m, name)()) for m in (a, b, c))
        assert all(torch.equal(x[0], y[0]) for x, y in zip(left, right))
        assert not torch.equal(left[0][0], other[0][0])


def test_fixed_eval_sets_with_short_last_batch():
    dm = make()
    val = batches(dm.val_dataloader())
    assert [len(x) for x, _ in val] == [8, 8, 4]  # 20 samples exactly
    assert all(torch.equal(x[0], y[0]) for x, y in zip(val, batches(dm.val_dataloader())))


def test_splits_are_disjoint():
    dm = make(val_size=64, test_size=64)
    rows = {
        split: {tuple(row.flatten().tolist()) for x, _ in batches(loader) for row in x}
        for split, loader in (
            ("train", dm.train_dataloader()),
            ("val", dm.val_dataloader()),
            ("test", dm.test_dataloader()),
        )
    }
    assert not rows["train"] & rows["val"]
    assert not rows["train"] & rows["test"]
    assert not rows["val"] & rows["test"]
    assert len({batch_seed(0, s, 0) for s in ("train", "val", "test")}) == 3


def test_one_evaluation_loader_per_length():
    dm = make(eval_lengths=(30, 60))
    loaders = dm.val_dataloader()
    assert [next(iter(loader))[0].shape[1] for loader in loaders] == [12, 30, 60]
    assert len(dm.test_dataloader()) == 3


def test_training_stream_moves_on_each_epoch():
    loader = make().train_dataloader()
    first = batches(loader)
    loader.sampler.set_epoch(1)
    second = batches(loader)
    assert len(first) == 3
    assert not any(torch.equal(a[0], b[0]) for a in first for b in second)


def test_finite_train_set_keeps_the_epoch_size():
    dm = make(train_size=10, epoch_size=5)  # 2 batches a pass (8 + 2), 5 batches an epoch
    sizes = [len(x) for x, _ in batches(dm.train_dataloader())]
    assert sizes == [8, 2, 8, 2, 8]


def test_finite_train_set_reshuffles_the_same_samples():
    dm = make(train_size=20)
    loader = dm.train_dataloader()
    epoch0 = torch.cat([x for x, _ in batches(loader)])
    loader.batch_sampler.set_epoch(1)
    epoch1 = torch.cat([x for x, _ in batches(loader)])
    assert len(epoch0) == len(epoch1) == 20
    key = lambda t: sorted(tuple(r.flatten().tolist()) for r in t)  # noqa: E731
    assert key(epoch0) == key(epoch1)
    assert not torch.equal(epoch0, epoch1)


@pytest.mark.parametrize("world", [1, 2, 3])
def test_ranks_split_data_without_overlap(monkeypatch, world):
    seen_val, seen_train, seen_fixed = [], [], []
    for rank in range(world):
        monkeypatch.setattr(data_module, "_rank_world", lambda r=rank: (r, world))
        seen_val += list(StridedSampler(7))
        sampler = EpochSampler(4)
        sampler.set_epoch(2)
        seen_train += list(sampler)
        # 10 samples in batches of 3 = 4 batches a pass; 4 batches an epoch on each rank
        seen_fixed += [i for batch in ShuffledBatches(10, 3, seed=0, epoch_size=4) for i in batch]
    assert sorted(seen_val) == list(range(7))  # validation covered exactly once
    assert sorted(seen_train) == list(range(8 * world, 12 * world))
    assert sorted(seen_fixed) == sorted(list(range(10)) * world)  # W whole passes, no overlap
