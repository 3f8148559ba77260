"""What every synthetic task provides: a batch generator, its loss, metrics and chance level.

Tasks import torch (and torchmetrics for their metric objects) only. A task generates a whole
batch at once from a ``torch.Generator``; :func:`batch_seed` derives that generator's seed from
``(seed, split, index)`` so every batch of every split is reproducible and independent of how
many batches were drawn before it.
"""

from __future__ import annotations

import inspect
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar, Literal

import numpy as np
import torch

if TYPE_CHECKING:  # torchmetrics is imported when a fit asks for metrics: help stays fast
    from torchmetrics import MetricCollection


SPLITS = ("train", "val", "test")
IGNORE_INDEX = -100  # target value of positions a sequence task does not score


def batch_seed(seed: int, split: str, index: int) -> int:
    """A 63-bit seed for batch ``index`` of ``split``, mixed with SeedSequence.

    Different splits use different entropy words, so train, val and test streams never share a
    generator state (that is what keeps the splits disjoint for continuous-valued tasks).
    """
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; choose from: {', '.join(SPLITS)}")
    words = [int(seed), SPLITS.index(split), int(index)]
    state = np.random.SeedSequence(words).generate_state(2, dtype=np.uint32)
    return int((int(state[0]) << 31) ^ int(state[1])) & ((1 << 63) - 1)


def batch_generator(seed: int, split: str, index: int) -> torch.Generator:
    return torch.Generator().manual_seed(batch_seed(seed, split, index))


@dataclass(frozen=True)
class Objective:
    """How a run is judged: the validation metric, its direction and the solved threshold."""

    metric: str  # key in the task's metrics, e.g. "mse" (logged as "val/mse")
    mode: Literal["min", "max"]
    # None: the task has no "solved" point (language modelling); its docstring says why
    solved_threshold: float | None

    def is_solved(self, value: float) -> bool:
        if self.solved_threshold is None:
            return False
        if self.mode == "min":
            return value <= self.solved_threshold
        return value >= self.solved_threshold


class Samples:
    """A fixed split of a data set: ``len()`` samples, ``samples[indices]`` is a whole batch.

    ``indices`` is a list of ints or a slice; the result is ``(inputs, targets)`` shaped as
    :meth:`Task.generate` returns them. ``encode`` turns the stored rows into that form per
    batch (char_lm keeps character codes and one-hot encodes a batch at a time, so a split
    costs its characters, not characters x vocabulary floats).
    """

    def __init__(self, inputs: torch.Tensor, targets: torch.Tensor, encode=None) -> None:
        if len(inputs) != len(targets):
            raise ValueError(f"{len(inputs)} inputs but {len(targets)} targets")
        self.inputs, self.targets, self.encode = inputs, targets, encode

    def __len__(self) -> int:
        return len(self.inputs)

    def __getitem__(self, index: list[int] | slice) -> tuple[torch.Tensor, torch.Tensor]:
        inputs = self.inputs[index]
        return (self.encode(inputs) if self.encode else inputs), self.targets[index]


class Task(ABC):
    """A sequence task: synthetic (generated on the fly) or a fixed data set.

    Subclasses set ``name`` and implement the abstract members. ``output_mode`` says whether the
    model's head reads only the last time step (``"last"``: one prediction per sequence) or
    every step (``"sequence"``: one prediction per position; targets then are ``(B, T)`` class
    indices with :data:`IGNORE_INDEX` where nothing is scored).

    Options beyond ``seq_len`` are keyword arguments of the subclass constructor; they are
    validated by :func:`grubench.tasks.build_task` and must be stored as attributes of the same
    name (``options()`` reads them back). A task whose training batches vary in length sets
    ``variable_length_training`` (it then cannot have a finite ``train_size``).

    A task over a fixed data set (real data) returns its train, validation and test splits
    from :meth:`split`; the DataModule then trains in epochs over the training split and
    evaluates on the fixed others, and ``generate`` draws samples of a split at random (for
    the code that only needs example batches). Synthetic tasks return ``None``.
    """

    name: ClassVar[str]
    output_mode: ClassVar[Literal["last", "sequence"]]
    variable_length_training: ClassVar[bool] = False

    def __init__(self, seq_len: int) -> None:
        if seq_len < self.min_seq_len():
            raise ValueError(
                f"task.seq_len={seq_len} is too short for {self.name}: "
                f"it needs at least {self.min_seq_len()}"
            )
        longest = self.max_seq_len()
        if longest is not None and seq_len > longest:
            raise ValueError(
                f"task.seq_len={seq_len} is too long for {self.name}: it takes at most {longest}"
            )
        self.seq_len = int(seq_len)

    @classmethod
    def min_seq_len(cls) -> int:
        return 1

    @classmethod
    def max_seq_len(cls) -> int | None:
        """The longest length the task has (None: any); a data set may fix its length."""
        return None

    def split(self, name: str) -> Samples | None:
        """The fixed ``train``/``val``/``test`` split of a data-set task; None if synthetic."""
        return None

    @classmethod
    def option_names(cls) -> tuple[str, ...]:
        """The constructor's options besides ``seq_len``."""
        params = inspect.signature(cls.__init__).parameters
        return tuple(n for n in params if n not in ("self", "seq_len"))

    def options(self) -> dict:
        return {name: getattr(self, name) for name in self.option_names()}

    def with_seq_len(self, seq_len: int) -> Task:
        """The same task at another length (for evaluation at several lengths)."""
        return type(self)(seq_len=seq_len, **self.options())

    @property
    @abstractmethod
    def input_size(self) -> int: ...

    @property
    @abstractmethod
    def output_size(self) -> int: ...

    @property
    @abstractmethod
    def objective(self) -> Objective: ...

    @abstractmethod
    def generate(
        self, batch_size: int, generator: torch.Generator, train: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Return ``(inputs, targets)``; inputs are ``(B, T, input_size)`` float32.

        ``train=True`` marks training batches (a variable-length task draws their length);
        evaluation batches have exactly the task's length.
        """

    @abstractmethod
    def loss(self, prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor: ...

    @abstractmethod
    def metrics(self) -> MetricCollection:
        """Fresh torchmetrics objects, updated with ``(prediction, target)``."""

    @abstractmethod
    def chance_level(self) -> float:
        """The analytic value of the objective metric for the stated trivial predictor."""

    def normalized_score(self, value: float) -> float:
        """The objective on a common scale: 0 at :meth:`chance_level`, 1 when perfect (MSE 0,
        accuracy 1); see :func:`normalized_score`."""
        return normalized_score(value, self.chance_level(), self.objective.mode)


class DatasetTask(Task):
    """A task over a fixed data set: subclasses build the three splits in :meth:`load_split`.

    Splits are built once per task object and cached. ``generate`` draws ``batch_size``
    samples (with replacement) of the training split (``train=True``) or of the validation
    split; it never reads the test split.
    """

    def __init__(self, seq_len: int) -> None:
        super().__init__(seq_len)
        self._splits: dict[str, Samples] = {}

    @abstractmethod
    def load_split(self, name: str) -> Samples:
        """The split ``name`` (one of :data:`SPLITS`), built from the data."""

    def split(self, name: str) -> Samples:
        if name not in SPLITS:
            raise ValueError(f"unknown split {name!r}; choose from: {', '.join(SPLITS)}")
        if name not in self._splits:
            self._splits[name] = self.load_split(name)
        return self._splits[name]

    def generate(self, batch_size: int, generator: torch.Generator, train: bool = False):
        samples = self.split("train" if train else "val")
        index = torch.randint(len(samples), (batch_size,), generator=generator)
        return samples[index.tolist()]


def normalized_score(value: float, chance: float, mode: str, perfect: float | None = None) -> float:
    """0 at the chance level, 1 at the perfect value (0 for a "min" metric such as MSE, 1 for
    a "max" metric such as accuracy); negative when worse than chance.

    >>> round(normalized_score(1 / 60, chance=1 / 6, mode="min"), 6)  # a tenth of chance MSE
    0.9
    >>> normalized_score(0.125, chance=0.125, mode="max")  # copy memory's chance accuracy
    0.0
    """
    if perfect is None:
        perfect = 0.0 if mode == "min" else 1.0
    return (value - chance) / (perfect - chance)
