"""Sequential digits: scikit-learn's 8x8 handwritten digits read one pixel per step, the
small-scale cousin of sequential MNIST (Le, Jaitly & Hinton 2015, "A simple way to initialize
recurrent networks of rectified linear units", Sec. 4.1) and of its permuted variant.

Data: ``sklearn.datasets.load_digits``, 1,797 images of 8x8 pixels with gray levels 0..16 and
labels 0-9, shipped inside scikit-learn (nothing is downloaded). A digit's 64 pixels are fed
in row-major order, one per step (T = 64, one input channel, gray level / 16 in [0, 1]); the
class is predicted from the last step's output (10 logits, cross-entropy).

``permuted=True`` reorders the 64 pixels of every image by one fixed permutation (the same for
all splits and runs; :data:`PERMUTATION`), as permuted MNIST does: neighbouring pixels then lie
far apart in time, so the model must carry information across the whole sequence instead of
within one row.

Worked example (the first digit of the data set, a 0; rows of the image are steps 0-7, 8-15,
...)::

    image row 0    0  0  5 13  9  1  0  0     ->  steps 0..7:  0 0 .3125 .8125 .5625 .0625 0 0
    image row 1    0  0 13 15 10 15  5  0     ->  steps 8..15: 0 0 .8125 .9375 .625 .9375 ...
    ...
    input          (64, 1) gray levels / 16
    target         0

Splits: fixed and stratified, with no randomness: within each class, in the data set's order,
the k-th image goes to the training split when k mod 5 is 0, 1 or 2, to validation when it is
3 and to test when it is 4 (60/20/20: 1,085 / 357 / 355 images, each class within two images
of its share). Training runs in epochs over the training split (see :mod:`grubench.training.data`);
``task.val_size`` and ``task.test_size`` cap how many of a split's images are evaluated (the
first ones, in the split's fixed order), and ``train_size`` does not apply.

Chance: a predictor that ignores the input and always answers one class scores the share of
that class, 1/10 up to the classes' imbalance (174 to 183 images per class; in the validation
and test splits every class holds 34 to 36 of the 357 or 355 images); the objective is ``acc``
with chance level 0.1. The uniform prediction's cross-entropy is ln 10 = 2.303 nats (metric
``ce``). Solved at accuracy 0.9: nine digits in ten, well clear of chance, and below what a
multinomial logistic regression on the 64 pixels of the whole image reaches on the same test
split (0.95 to 0.96 for C from 0.1 to 10; ``tests/test_tasks.py`` fits one), so a recurrent
model that reads the pixels one at a time and matches a linear classifier that sees them all
at once has solved the sequential problem. The threshold sits about 3 standard errors (0.016
each at accuracy 0.9 on 357 images) below 0.95.
"""

from __future__ import annotations

import hashlib
import math
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F

from grubench.tasks.base import DatasetTask, Objective, Samples

if TYPE_CHECKING:  # torchmetrics is imported when a fit asks for metrics: help stays fast
    from torchmetrics import MetricCollection

PIXELS = 64  # 8 x 8, one per step
CLASSES = 10
CHANCE_ACC = 1.0 / CLASSES
UNIFORM_CE = math.log(CLASSES)
SOLVED_ACC = 0.9
SPLIT_OF_REMAINDER = {0: "train", 1: "train", 2: "train", 3: "val", 4: "test"}  # k mod 5

# The fixed pixel order of the permuted variant: pixels sorted by the SHA-256 of their index,
# which no library version can change (a seeded shuffle could, with the generator's algorithm).
PERMUTATION = tuple(sorted(range(PIXELS), key=lambda i: hashlib.sha256(b"%d" % i).digest()))


def _load_digits():
    from sklearn.datasets import load_digits  # scikit-learn ships the data file

    return load_digits(return_X_y=True)


def split_indices(labels) -> dict[str, list[int]]:
    """The fixed stratified split: the images of each split, in the data set's order."""
    seen = [0] * CLASSES
    splits: dict[str, list[int]] = {"train": [], "val": [], "test": []}
    for index, label in enumerate(labels):
        splits[SPLIT_OF_REMAINDER[seen[label] % 5]].append(index)
        seen[label] += 1
    return splits


class SequentialDigitsTask(DatasetTask):
    name = "sequential_digits"
    output_mode = "last"

    def __init__(self, seq_len: int = PIXELS, permuted: bool = False) -> None:
        super().__init__(seq_len)
        if not isinstance(permuted, bool):
            raise ValueError(f"task.options.permuted must be true or false, got {permuted!r}")
        self.permuted = permuted

    @classmethod
    def min_seq_len(cls) -> int:
        return PIXELS

    @classmethod
    def max_seq_len(cls) -> int:
        return PIXELS

    @property
    def input_size(self) -> int:
        return 1

    @property
    def output_size(self) -> int:
        return CLASSES

    @property
    def objective(self) -> Objective:
        return Objective(metric="acc", mode="max", solved_threshold=SOLVED_ACC)

    def load_split(self, name: str) -> Samples:
        images, labels = _load_digits()
        index = split_indices(labels)[name]
        pixels = torch.as_tensor(images[index], dtype=torch.float32) / 16.0  # (N, 64)
        if self.permuted:
            pixels = pixels[:, list(PERMUTATION)]
        return Samples(pixels.unsqueeze(-1), torch.as_tensor(labels[index], dtype=torch.long))

    def loss(self, prediction, target):
        return F.cross_entropy(prediction, target)

    def metrics(self) -> MetricCollection:
        from torchmetrics import MetricCollection

        from grubench.tasks.metrics import CrossEntropy, TokenAccuracy

        return MetricCollection(
            {
                "acc": TokenAccuracy(self.output_size, ignore_index=None),
                "ce": CrossEntropy(ignore_index=None),
            }
        )

    def chance_level(self) -> float:
        return CHANCE_ACC
