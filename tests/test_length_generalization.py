"""Length generalization as a measure: a fit with ``task.eval_lengths`` logs the normalized
test score at each extra length and at the longest, and the ``length_generalization`` measure
reads it from the stored run; a fit without extra lengths has no such value. Also: a tiny LSTM
learns the counting task's training range (the task's learning check)."""

from __future__ import annotations

import math

import pytest

from grubench.models import ModelConfig
from grubench.store.measures import LENGTH_GENERALIZATION
from grubench.store.schema import LENGTH_SCORE, OUTCOME, TEST_SCORE
from grubench.tasks import build_task
from grubench.training.config import FitConfig
from grubench.training.data import TaskConfig
from grubench.training.fit import run_fit
from grubench.training.module import OptimConfig

TIER = "integration"


def test_a_fit_logs_its_score_at_each_extra_length_and_the_measure_reads_it(
    tiny, tracking_uri, client
):
    result = run_fit(tiny(tracking_uri, task={"eval_lengths": [20, 40]}))
    run = client.get_run(result.run_id)
    metrics = run.data.metrics
    for length in (20, 40):
        task = build_task("adding", length)
        expected = task.normalized_score(metrics[f"test/mse_L{length}"])
        assert metrics[f"test/score_L{length}"] == pytest.approx(expected)
    assert metrics[LENGTH_SCORE] == metrics["test/score_L40"]  # the longest extra length
    measure = LENGTH_GENERALIZATION
    assert measure.key == LENGTH_SCORE and measure.higher_is_better
    assert measure.read(run) == max(0.0, metrics["test/score_L40"])


def test_a_fit_without_extra_lengths_has_no_length_score(tiny, tracking_uri, client):
    run = client.get_run(run_fit(tiny(tracking_uri)).run_id)
    assert TEST_SCORE in run.data.metrics
    assert not any(key.startswith("test/score_L") for key in run.data.metrics)
    assert LENGTH_SCORE not in run.data.metrics
    assert LENGTH_GENERALIZATION.read(run) is None


def test_the_counting_task_scores_each_length_against_its_own_chance_level(
    tiny, tracking_uri, client
):
    config = tiny(tracking_uri, task={"name": "counting", "seq_len": 20, "eval_lengths": [60]})
    run = client.get_run(run_fit(config).run_id)
    metrics = run.data.metrics
    longer = build_task("counting", 60, train_max_n=build_task("counting", 20).train_max_n)
    assert longer.chance_level() != build_task("counting", 20).chance_level()
    expected = longer.normalized_score(metrics["test/exact_match_L60"])
    assert metrics[LENGTH_SCORE] == pytest.approx(expected)


def test_a_tiny_lstm_learns_the_counting_training_range(tracking_uri):
    """Calibration (seed 0, 2026-12): the last epoch's training strings (steps 100-150) were
    all accepted (exact match 1.0), in 17 s on 2 busy cores."""
    result = run_fit(
        FitConfig(
            model=ModelConfig(name="lstm", hidden_size=16),
            task=TaskConfig(name="counting", seq_len=40, batch_size=32, epoch_size=50,
                            val_size=64, test_size=64),
            optim=OptimConfig(name="adam", lr=1e-2),
            trainer={"max_steps": 150, "enable_progress_bar": False},
            tracking_uri=tracking_uri,
        )
    )  # fmt: skip
    # the last epoch's training batches: n from 1 to N = 5
    assert result.metrics["final/train/exact_match"] > 0.95, result.metrics
    assert math.isfinite(result.metrics["test/score"])


def test_a_diverged_run_scores_zero_only_where_it_had_extra_lengths():
    def run(eval_lengths: str):
        class data:  # the attributes a stored run's reader touches
            metrics: dict = {}
            tags = {OUTCOME: "diverged"}
            params = {"task.eval_lengths": eval_lengths}

        return type("Run", (), {"data": data})

    assert LENGTH_GENERALIZATION.read(run("[40, 80]")) == 0.0
    assert LENGTH_GENERALIZATION.read(run("[]")) is None
