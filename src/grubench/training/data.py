"""The DataModule shared by every task: batches generated on the fly, reproducibly.

Batch ``i`` of split ``s`` is ``task.generate(B, Generator(batch_seed(seed, s, i)))``, so a batch
depends only on ``(seed, split, i)``: the same seed gives the same stream on any machine and
with any number of workers, validation and test sets are fixed, and resuming at batch ``i``
needs no replay. Training is an endless stream cut into epochs of ``epoch_size`` batches
(validation runs after each epoch), or, with ``train_size``, a finite set (what the
regularization question needs: data a model can overfit) reshuffled on every pass over it and
also served ``epoch_size`` batches per epoch. A task over a fixed data set (its ``split``
returns samples: sequential digits, char_lm) trains the same way on its training split, and
validates and tests on the first ``val_size`` / ``test_size`` samples of its fixed splits.

Validation and test run at the training length and at each of ``eval_lengths`` (one loader
per length, in that order), so length generalization is measured in the same run.

Multi-process: the samplers read the rank and world size from ``torch.distributed`` when they
are iterated. Rank ``r`` of ``W`` trains on global batches ``r, r + W, ...`` and validates on
batches ``r, r + W, ...`` of the fixed set, so every validation sample is seen exactly once.
Use ``Trainer(use_distributed_sampler=False)`` so Lightning does not wrap them again.

Resuming: the DataModule's ``state_dict`` (saved in every checkpoint) holds the training
position, ``(epoch, batches already trained in it)``; after ``load_state_dict`` the next training
loader starts there, so an interrupted fit reads exactly the batches an uninterrupted one would.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import lightning as L
import torch
import torch.distributed as dist
from torch.utils.data import DataLoader, Dataset, Sampler

from grubench.tasks import Task, batch_generator
from grubench.training.config import TaskConfig  # defined without Lightning, for fast --help


def _rank_world() -> tuple[int, int]:
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


class StreamBatches(Dataset):
    """Item ``i`` is the whole batch ``i`` of ``split``; the last one may be short."""

    def __init__(
        self, task: Task, seed: int, split: str, batch_size: int, total: int | None = None
    ) -> None:
        self.task, self.seed, self.split = task, seed, split
        self.batch_size, self.total = batch_size, total

    def __len__(self) -> int:
        if self.total is None:
            raise TypeError("an endless stream has no length; iterate it with EpochSampler")
        return math.ceil(self.total / self.batch_size)

    def __getitem__(self, index: int):
        size = self.batch_size
        if self.total is not None:
            size = min(size, self.total - index * self.batch_size)
        generator = batch_generator(self.seed, self.split, index)
        return self.task.generate(size, generator, train=self.split == "train")


class _ResumableEpochs:
    """``epoch`` (Lightning calls ``set_epoch``) and a one-time start offset within an epoch.

    ``resume_at(epoch, offset)``: the first pass over ``epoch`` skips its first ``offset``
    batches (trained before the checkpoint); every later pass is whole. Lightning creates the
    first training iterator before it calls ``set_epoch``, hence the epoch is set here too.
    """

    epoch_size: int

    def __init__(self) -> None:
        self.epoch, self._offset = 0, 0

    def set_epoch(self, epoch: int) -> None:
        if epoch != self.epoch:
            self._offset = 0
        self.epoch = epoch

    def resume_at(self, epoch: int, offset: int) -> None:
        self.epoch, self._offset = epoch, offset

    def _positions(self) -> range:
        offset, self._offset = self._offset, 0
        return range(offset, self.epoch_size)

    def __len__(self) -> int:  # Lightning's epoch length: the offset is a resume detail
        return self.epoch_size


class EpochSampler(_ResumableEpochs, Sampler[int]):
    """Endless training stream: epoch ``e`` on rank ``r`` of ``W`` reads global batches
    ``(e * epoch_size + i) * W + r`` for ``i < epoch_size``."""

    def __init__(self, epoch_size: int) -> None:
        super().__init__()
        self.epoch_size = epoch_size

    def __iter__(self) -> Iterator[int]:
        rank, world = _rank_world()
        start = self.epoch * self.epoch_size
        return iter((start + i) * world + rank for i in self._positions())


class StridedSampler(Sampler[int]):
    """Rank ``r`` of ``W`` takes items ``r, r + W, ...``: each item is seen exactly once."""

    def __init__(self, n: int) -> None:
        self.n = n

    def __len__(self) -> int:
        rank, world = _rank_world()
        return len(range(rank, self.n, world))

    def __iter__(self) -> Iterator[int]:
        rank, world = _rank_world()
        return iter(range(rank, self.n, world))


class ShuffledBatches(_ResumableEpochs, Sampler[list[int]]):
    """Batches of a finite set of ``n`` samples, ``epoch_size`` per epoch (as for the endless
    stream, so validation keeps its cadence whatever the set's size).

    The batches are an endless sequence of passes over the set, pass ``p`` in the order of a
    permutation drawn from ``(seed, p)``; global batch ``g`` of that sequence goes to rank
    ``g % W``, like the stream's, so ranks never share a batch.
    """

    def __init__(self, n: int, batch_size: int, seed: int, epoch_size: int) -> None:
        super().__init__()
        self.n, self.batch_size, self.seed = n, batch_size, seed
        self.epoch_size = epoch_size
        self.per_pass = math.ceil(n / batch_size)
        self._order: tuple[int, list[int]] | None = None  # (pass, permutation), cached

    def _permutation(self, pass_index: int) -> list[int]:
        if self._order is None or self._order[0] != pass_index:
            generator = batch_generator(self.seed, "train", pass_index)
            self._order = (pass_index, torch.randperm(self.n, generator=generator).tolist())
        return self._order[1]

    def __iter__(self) -> Iterator[list[int]]:
        rank, world = _rank_world()
        for i in self._positions():
            batch = (self.epoch * self.epoch_size + i) * world + rank
            order = self._permutation(batch // self.per_pass)
            start = (batch % self.per_pass) * self.batch_size
            yield order[start : start + self.batch_size]


class SplitBatches(Dataset):
    """Item ``i`` is batch ``i`` of the first ``total`` samples of a data set's split."""

    def __init__(self, samples, batch_size: int, total: int) -> None:
        self.samples, self.batch_size, self.total = samples, batch_size, total

    def __len__(self) -> int:
        return math.ceil(self.total / self.batch_size)

    def __getitem__(self, index: int):
        start = index * self.batch_size
        return self.samples[start : min(start + self.batch_size, self.total)]


class TensorSamples(Dataset):
    def __init__(self, *tensors: torch.Tensor) -> None:
        self.tensors = tensors

    def __len__(self) -> int:
        return len(self.tensors[0])

    def __getitem__(self, index):
        return tuple(t[index] for t in self.tensors)


_DEFAULT = TaskConfig()


class SyntheticDataModule(L.LightningDataModule):
    def __init__(
        self,
        task: Task,
        batch_size: int = _DEFAULT.batch_size,
        epoch_size: int = _DEFAULT.epoch_size,
        val_size: int = _DEFAULT.val_size,
        test_size: int = _DEFAULT.test_size,
        train_size: int | None = _DEFAULT.train_size,
        seed: int = 0,
        num_workers: int = _DEFAULT.num_workers,
        eval_lengths: tuple[int, ...] = (),
    ) -> None:
        super().__init__()
        self.task = task
        # validation and test run at the training length first, then at each extra length
        self.eval_tasks = [task] + [task.with_seq_len(n) for n in eval_lengths]
        self.batch_size, self.epoch_size = batch_size, epoch_size
        self.val_size, self.test_size, self.train_size = val_size, test_size, train_size
        self.seed, self.num_workers = seed, num_workers
        self._train_set: TensorSamples | None = None
        self._train_sampler: EpochSampler | ShuffledBatches | None = None
        self._resume_at: tuple[int, int] | None = None  # (epoch, batches done), from a checkpoint

    def _loader(self, dataset: Dataset, **kwargs) -> DataLoader:
        return DataLoader(
            dataset,
            num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0,
            **kwargs,
        )

    def train_dataloader(self) -> DataLoader:
        fixed = self.task.split("train")
        if fixed is not None:  # a data set: epochs over its training split
            self._train_sampler = ShuffledBatches(
                len(fixed), self.batch_size, self.seed, self.epoch_size
            )
            loader = self._loader(fixed, batch_size=None, sampler=self._train_sampler)
        elif self.train_size is None:
            stream = StreamBatches(self.task, self.seed, "train", self.batch_size)
            self._train_sampler = EpochSampler(self.epoch_size)
            loader = self._loader(stream, batch_size=None, sampler=self._train_sampler)
        else:
            if self._train_set is None:
                fixed = StreamBatches(
                    self.task, self.seed, "train", self.batch_size, self.train_size
                )
                parts = [fixed[i] for i in range(len(fixed))]
                self._train_set = TensorSamples(*(torch.cat(p) for p in zip(*parts)))
            self._train_sampler = ShuffledBatches(
                self.train_size, self.batch_size, self.seed, self.epoch_size
            )
            loader = self._loader(self._train_set, batch_sampler=self._train_sampler)
        if self._resume_at is not None:
            self._train_sampler.resume_at(*self._resume_at)
            self._resume_at = None
        return loader

    def state_dict(self) -> dict[str, int]:
        """The training position: the epoch and the batches of it already trained.

        Read from the Trainer's loop when a checkpoint is saved; grubench saves them only
        between two training steps (see :class:`grubench.training.resume.RunCheckpoint`). A finished
        epoch is position ``(epoch + 1, 0)``.
        """
        if self._train_sampler is None or self.trainer is None:
            return {}
        done = self.trainer.fit_loop.epoch_loop.batch_progress.current.completed
        epoch = self._train_sampler.epoch
        if done >= self.epoch_size:
            epoch, done = epoch + 1, 0
        return {"epoch": epoch, "batches_done": done}

    def load_state_dict(self, state_dict: dict[str, int]) -> None:
        if state_dict:
            self._resume_at = (state_dict["epoch"], state_dict["batches_done"])

    def _fixed_loaders(self, split: str, total: int) -> list[DataLoader]:
        loaders = []
        for task in self.eval_tasks:
            samples = task.split(split)
            if samples is not None:  # a data set: the first ``total`` samples of its split
                batches = SplitBatches(samples, self.batch_size, min(total, len(samples)))
            else:
                batches = StreamBatches(task, self.seed, split, self.batch_size, total)
            loaders.append(
                self._loader(batches, batch_size=None, sampler=StridedSampler(len(batches)))
            )
        return loaders

    def val_dataloader(self) -> list[DataLoader]:
        return self._fixed_loaders("val", self.val_size)

    def test_dataloader(self) -> list[DataLoader]:
        return self._fixed_loaders("test", self.test_size)
