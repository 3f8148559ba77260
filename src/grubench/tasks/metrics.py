"""Metrics the token tasks share: accuracy over scored positions, whole-sequence exact match
and cross-entropy.

Both take ``(prediction, target)`` as the system passes them: ``prediction`` is either logits
with one more (last) axis than ``target`` (``(B, T, C)`` against ``(B, T)``; the class is the
argmax) or class indices of ``target``'s shape. A position is scored when it lies in the
optional ``window`` (``(start, stop)`` along the time axis, the last axis of ``target``, in
Python slice semantics, so ``(-10, None)`` means the last ten steps whatever the length) and
its target is not ``ignore_index``.

:class:`TokenAccuracy` is torchmetrics' micro-averaged ``MulticlassAccuracy`` on the windowed
class predictions; :class:`SequenceExactMatch` and :class:`CrossEntropy` are grubench's own.
States are integer counts (or a float64 sum) summed over updates (``dist_reduce_fx="sum"``),
so accumulating batches, and reducing over DDP ranks, gives exactly the one-shot value on the
concatenation.

>>> logits = torch.tensor([[[0.1, 0.9], [0.8, 0.2], [0.3, 0.7]]])  # (B=1, T=3, C=2)
>>> target = torch.tensor([[1, 1, -100]])  # the last position is not scored
>>> TokenAccuracy(num_classes=2)(logits, target)
tensor(0.5000)
>>> SequenceExactMatch()(logits, target)
tensor(0.)
>>> TokenAccuracy(num_classes=2, window=(0, 1))(logits, target)  # only the first step
tensor(1.)
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torchmetrics import Metric
from torchmetrics.classification import MulticlassAccuracy

from grubench.tasks.base import IGNORE_INDEX

Window = tuple[int | None, int | None] | None


def _windowed(
    prediction: torch.Tensor, target: torch.Tensor, window: Window
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(predicted class, target)`` of the (windowed) target's shape."""
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
    return prediction, target


def _scored(
    prediction: torch.Tensor, target: torch.Tensor, window: Window, ignore_index: int | None
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(hit, scored)`` boolean tensors of the (windowed) target's shape."""
    prediction, target = _windowed(prediction, target, window)
    scored = torch.ones_like(target, dtype=torch.bool)
    if ignore_index is not None:
        scored = target != ignore_index
    return (prediction == target) & scored, scored


class TokenAccuracy(MulticlassAccuracy):
    """Fraction of scored positions whose predicted class equals the target.

    torchmetrics' ``MulticlassAccuracy(num_classes, average="micro", ignore_index=...)`` on
    the windowed class predictions (its class axis is 1, these logits' the last: the argmax is
    taken here). Two differences, both kept from grubench's own count: nothing scored gives
    nan, not 0; the inputs' values are not validated (``validate_args=False``: the shapes are
    checked here, and the check of the values costs a device sync per update).
    """

    def __init__(
        self,
        num_classes: int,
        window: Window = None,
        ignore_index: int | None = IGNORE_INDEX,
        **kwargs,
    ) -> None:
        kwargs.setdefault("validate_args", False)
        super().__init__(num_classes, average="micro", ignore_index=ignore_index, **kwargs)
        self.window = window

    def update(self, prediction: torch.Tensor, target: torch.Tensor) -> None:
        super().update(*_windowed(prediction, target, self.window))

    def compute(self) -> torch.Tensor:
        value = super().compute()
        return torch.where(self.tp.sum() + self.fn.sum() > 0, value, math.nan)

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs) -> None:
        # a checkpoint written before TokenAccuracy was MulticlassAccuracy holds the counts
        # ``hits`` and ``count``: the same states, as micro-averaged stat scores
        if prefix + "hits" in state_dict and prefix + "tp" not in state_dict:
            hits = state_dict.pop(prefix + "hits").reshape(1)
            count = state_dict.pop(prefix + "count").reshape(1)
            misses = count - hits
            state_dict[prefix + "tp"], state_dict[prefix + "fn"] = hits, misses
            state_dict[prefix + "fp"] = misses.clone()
            state_dict[prefix + "tn"] = self.num_classes * count - (hits + 2 * misses)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)


class SequenceExactMatch(Metric):
    """Fraction of sequences whose scored positions are all right.

    A sequence is one index of the first (batch) axis; one with no scored position is not
    counted. With ``(B,)`` targets (one prediction per sequence) it equals accuracy.
    """

    # not torchmetrics' MulticlassExactMatch: that counts a sequence with no scored position
    # as matched (and in the total), and gives 0, not nan, when nothing was scored

    is_differentiable = False
    higher_is_better = True
    full_state_update = False

    def __init__(
        self, window: Window = None, ignore_index: int | None = IGNORE_INDEX, **kwargs
    ) -> None:
        super().__init__(**kwargs)
        self.window, self.ignore_index = window, ignore_index
        self.add_state("hits", default=torch.tensor(0), dist_reduce_fx="sum")
        self.add_state("count", default=torch.tensor(0), dist_reduce_fx="sum")

    def update(self, prediction: torch.Tensor, target: torch.Tensor) -> None:
        hit, scored = _scored(prediction, target, self.window, self.ignore_index)
        hits = hit.reshape(len(hit), -1).sum(dim=1)  # (B,)
        counts = scored.reshape(len(scored), -1).sum(dim=1)  # (B,)
        self.hits += ((hits == counts) & (counts > 0)).sum()
        self.count += (counts > 0).sum()

    def compute(self) -> torch.Tensor:
        return self.hits.float() / self.count  # nan before anything was scored


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
