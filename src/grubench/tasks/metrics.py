"""Metrics the token tasks share: accuracy over scored positions, whole-sequence exact match
and cross-entropy.

Both take ``(prediction, target)`` as the system passes them: ``prediction`` is either logits
with one more (last) axis than ``target`` (``(B, T, C)`` against ``(B, T)``; the class is the
argmax) or class indices of ``target``'s shape. A position is scored when it lies in the
optional ``window`` (``(start, stop)`` along the time axis, the last axis of ``target``, in
Python slice semantics, so ``(-10, None)`` means the last ten steps whatever the length) and
its target is not ``ignore_index``.

States are integer counts summed over updates (``dist_reduce_fx="sum"``), so accumulating
batches, and reducing over DDP ranks, gives exactly the one-shot value on the concatenation.

>>> logits = torch.tensor([[[0.1, 0.9], [0.8, 0.2], [0.3, 0.7]]])  # (B=1, T=3, C=2)
>>> target = torch.tensor([[1, 1, -100]])  # the last position is not scored
>>> TokenAccuracy()(logits, target)
tensor(0.5000)
>>> SequenceExactMatch()(logits, target)
tensor(0.)
>>> TokenAccuracy(window=(0, 1))(logits, target)  # only the first step
tensor(1.)
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torchmetrics import Metric

from grubench.tasks.base import IGNORE_INDEX


def _scored(
    prediction: torch.Tensor,
    target: torch.Tensor,
    window: tuple[int | None, int | None] | None,
    ignore_index: int | None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(hit, scored)`` boolean tensors of the (windowed) target's shape."""
    if prediction.ndim == target.ndim + 1 and prediction.is_floating_point():
        logits = True
        if prediction.shape[:-1] != target.shape:
            raise ValueError(
                f"logits of shape {tuple(prediction.shape)} do not match "
                f"target of shape {tuple(target.shape)}"
            )
    elif prediction.shape == target.shape:
        logits = False
    else:
        raise ValueError(
            f"prediction of shape {tuple(prediction.shape)} is neither logits nor class "
            f"indices for target of shape {tuple(target.shape)}"
        )
    if target.ndim == 0:
        raise ValueError("target must have a batch axis")
    if window is not None:
        if target.ndim < 2:
            raise ValueError(f"a window needs a time axis; target has shape {tuple(target.shape)}")
        steps = slice(*window)
        target = target[..., steps]
        # slice the time axis before the argmax: a window is usually a few steps of many
        prediction = prediction[..., steps, :] if logits else prediction[..., steps]
    if logits:
        prediction = prediction.argmax(dim=-1)
    scored = torch.ones_like(target, dtype=torch.bool)
    if ignore_index is not None:
        scored = target != ignore_index
    return (prediction == target) & scored, scored


class _CountingMetric(Metric):
    """A ratio of two counts over scored positions; sum states, so DDP-correct."""

    is_differentiable = False
    higher_is_better = True
    full_state_update = False

    def __init__(
        self,
        window: tuple[int | None, int | None] | None = None,
        ignore_index: int | None = IGNORE_INDEX,
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        self.window, self.ignore_index = window, ignore_index
        self.add_state("hits", default=torch.tensor(0), dist_reduce_fx="sum")
        self.add_state("count", default=torch.tensor(0), dist_reduce_fx="sum")

    def compute(self) -> torch.Tensor:
        return self.hits.float() / self.count  # nan before anything was scored


class TokenAccuracy(_CountingMetric):
    """Fraction of scored positions whose predicted class equals the target."""

    def update(self, prediction: torch.Tensor, target: torch.Tensor) -> None:
        hit, scored = _scored(prediction, target, self.window, self.ignore_index)
        self.hits += hit.sum()
        self.count += scored.sum()


class SequenceExactMatch(_CountingMetric):
    """Fraction of sequences whose scored positions are all right.

    A sequence is one index of the first (batch) axis; one with no scored position is not
    counted. With ``(B,)`` targets (one prediction per sequence) it equals accuracy.
    """

    def update(self, prediction: torch.Tensor, target: torch.Tensor) -> None:
        hit, scored = _scored(prediction, target, self.window, self.ignore_index)
        hits = hit.reshape(len(hit), -1).sum(dim=1)  # (B,)
        counts = scored.reshape(len(scored), -1).sum(dim=1)  # (B,)
        self.hits += ((hits == counts) & (counts > 0)).sum()
        self.count += (counts > 0).sum()


class CrossEntropy(Metric):
    """Mean cross-entropy of the scored positions' logits, in nats or (``bits=True``) bits.

    In bits over characters this is a language model's bits per character. ``prediction`` are
    logits, ``(B, C)`` against ``(B,)`` targets or ``(B, T, C)`` against ``(B, T)``; positions
    whose target is ``ignore_index`` are not scored. The states are the summed loss (float64)
    and the count, so accumulation and DDP reduction give the one-shot value.

    >>> logits = torch.zeros(2, 3, 4)  # a uniform guess over 4 classes
    >>> CrossEntropy(bits=True)(logits, torch.tensor([[0, 1, 2], [3, 0, -100]]))
    tensor(2.)
    """

    is_differentiable = False
    higher_is_better = False
    full_state_update = False

    def __init__(self, bits: bool = False, ignore_index: int | None = IGNORE_INDEX, **kwargs):
        super().__init__(**kwargs)
        self.bits, self.ignore_index = bits, ignore_index
        self.add_state("total", default=torch.tensor(0.0, dtype=torch.float64),
                       dist_reduce_fx="sum")  # fmt: skip
        self.add_state("count", default=torch.tensor(0), dist_reduce_fx="sum")

    def update(self, prediction: torch.Tensor, target: torch.Tensor) -> None:
        logits = prediction.reshape(-1, prediction.shape[-1]).float()
        target = target.reshape(-1)
        scored = torch.ones_like(target, dtype=torch.bool)
        if self.ignore_index is not None:
            scored = target != self.ignore_index
        losses = F.cross_entropy(logits[scored], target[scored], reduction="sum")
        self.total += losses.double()
        self.count += scored.sum()

    def compute(self) -> torch.Tensor:
        mean = self.total / self.count  # nan before anything was scored
        return (mean / math.log(2) if self.bits else mean).float()
