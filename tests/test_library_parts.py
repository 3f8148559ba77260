"""Where a library part replaced a hand-written one, it gives the same result: TokenAccuracy
(torchmetrics' MulticlassAccuracy) against grubench's former counts, bit for bit, with its
state through a checkpoint (also one written with the former states), and the system's
logging decision (public Trainer attributes) against Lightning's private one, in a fit
stopped by a signal and resumed."""

from __future__ import annotations

import io
import os
import signal

import pytest
import torch
from torchmetrics import MetricCollection

from grubench.tasks import IGNORE_INDEX
from grubench.tasks.metrics import TokenAccuracy, _scored
from grubench.training.fit import run_fit
from grubench.training.module import RecurrentSystem
from grubench.training.resume import Interrupted
from tests.conftest import tiny_config
from tests.test_task_metrics import CLASSES, WINDOWS, random_batch

TIER = "unit"


def former_accuracy(batches, window, ignore_index):
    """grubench's TokenAccuracy before torchmetrics: summed hit and scored counts."""
    hits = count = torch.tensor(0)
    for logits, target in batches:
        hit, scored = _scored(logits, target, window, ignore_index)
        hits, count = hits + hit.sum(), count + scored.sum()
    return hits.float() / count


@pytest.mark.parametrize("window", WINDOWS)
@pytest.mark.parametrize("ignore_index", [IGNORE_INDEX, None])
def test_token_accuracy_equals_the_former_counts_bit_for_bit(window, ignore_index):
    for seed in range(20):
        sizes = (3 + seed % 5, 11, 1 + seed)
        batches = [random_batch(100 * seed + i, batch=n) for i, n in enumerate(sizes)]
        if ignore_index is None:
            batches = [(logits, target.clamp(min=0)) for logits, target in batches]
        expected = former_accuracy(batches, window, ignore_index)
        metric = TokenAccuracy(CLASSES, window=window, ignore_index=ignore_index)
        rank0 = TokenAccuracy(CLASSES, window=window, ignore_index=ignore_index)
        rank1 = TokenAccuracy(CLASSES, window=window, ignore_index=ignore_index)
        for i, (logits, target) in enumerate(batches):
            metric.update(logits, target)
            (rank0 if i % 2 else rank1).update(logits.argmax(-1), target)  # class indices
        rank0.merge_state(rank1)  # the DDP sum reduction
        assert torch.equal(metric.compute(), expected)
        assert torch.equal(rank0.compute(), expected)


def test_token_accuracy_of_nothing_scored_is_nan():
    metric = TokenAccuracy(3)
    metric.update(torch.zeros(2, 4, 3), torch.full((2, 4), IGNORE_INDEX))
    assert torch.isnan(metric.compute())


def round_trip(state: dict) -> dict:
    buffer = io.BytesIO()
    torch.save(state, buffer)
    buffer.seek(0)
    return torch.load(buffer, weights_only=True)  # as grubench resumes


def train_metrics():
    """As RecurrentSystem builds them: a prefixed clone whose states are checkpointed."""
    collection = MetricCollection({"acc": TokenAccuracy(CLASSES, window=(-3, None))})
    collection = collection.clone(prefix="train/")
    for metric in collection.values():
        metric.persistent(True)
    return torch.nn.ModuleDict({"train_metrics": collection})


def test_token_accuracy_state_survives_a_checkpoint():
    first, second = random_batch(7), random_batch(8)
    uninterrupted = train_metrics()
    for batch in (first, second):
        uninterrupted["train_metrics"].update(*batch)

    stopped = train_metrics()
    stopped["train_metrics"].update(*first)
    resumed = train_metrics()
    resumed.load_state_dict(round_trip(stopped.state_dict()))  # strict
    resumed["train_metrics"].update(*second)
    assert torch.equal(
        resumed["train_metrics"].compute()["train/acc"],
        uninterrupted["train_metrics"].compute()["train/acc"],
    )

    # a checkpoint written with the former states, "hits" and "count"
    hit, scored = _scored(*first, (-3, None), IGNORE_INDEX)
    former = {
        "train_metrics.acc.hits": hit.sum(),
        "train_metrics.acc.count": scored.sum(),
    }
    migrated = train_metrics()
    migrated.load_state_dict(round_trip(former))  # strict: no unexpected or missing key
    for name in ("tp", "fp", "tn", "fn"):
        assert torch.equal(
            getattr(migrated["train_metrics"]["acc"], name),
            getattr(stopped["train_metrics"]["acc"], name),
        ), name
    migrated["train_metrics"].update(*second)
    assert torch.equal(
        migrated["train_metrics"].compute()["train/acc"],
        uninterrupted["train_metrics"].compute()["train/acc"],
    )


@pytest.mark.integration
def test_logging_decision_equals_lightnings_through_a_resume(tracking_uri, monkeypatch):
    """``_logging_this_step`` (public attributes) against Lightning's private
    ``should_update_logs`` at every optimizer step of a fit stopped mid-epoch and resumed."""
    decisions: list[tuple[int, bool, bool]] = []
    real_decision = RecurrentSystem._logging_this_step

    def compared(self):
        ours = real_decision(self)
        lightnings = bool(self.trainer._logger_connector.should_update_logs)
        decisions.append((self.trainer.global_step, ours, lightnings))
        return ours

    monkeypatch.setattr(RecurrentSystem, "_logging_this_step", compared)
    real_step = RecurrentSystem.training_step

    def signal_once(self, *args, **kwargs):
        if self.trainer.global_step == 6:
            monkeypatch.setattr(RecurrentSystem, "training_step", real_step)
            os.kill(os.getpid(), signal.SIGTERM)  # the step completes, then the fit stops
        return real_step(self, *args, **kwargs)

    monkeypatch.setattr(RecurrentSystem, "training_step", signal_once)
    # log_every_n_steps 3 against epochs of 4 steps: the resumed step is not on a multiple
    config = dict(seed=3, trainer={"max_steps": 14, "log_every_n_steps": 3})
    with pytest.raises(Interrupted) as stopped:
        run_fit(tiny_config(tracking_uri, **config))
    run_fit(tiny_config(tracking_uri, **config), resume=stopped.value.run_id)
    steps = [step for step, _, _ in decisions]
    assert steps == list(range(14)), steps  # 0..6 before the stop, 7..13 resumed
    assert [(s, o) for s, o, lightning in decisions if o != lightning] == []
    assert {o for step, o, _ in decisions if step > 6} == {True, False}  # both, resumed
