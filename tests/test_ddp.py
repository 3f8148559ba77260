"""A two-process DDP fit on CPU (gloo), launched as a subprocess: never start an in-process
strategy="ddp" Trainer inside pytest (Lightning re-executes the command line for rank 1)."""

import subprocess
import sys

import pytest

from tests.test_cli import TINY

TIER = "system"


@pytest.mark.slow  # ~25 s; the torchrun test covers the same one-run rule
def test_two_process_ddp_fit_makes_one_run(tracking_uri, client):
    command = [
        sys.executable, "-m", "grubench", "fit", *TINY,
        "--tracking_uri", tracking_uri, "--experiment_name", "ddp",
        "--trainer.accelerator", "cpu", "--trainer.devices", "2",
        "--trainer.strategy", "ddp", "--trainer.max_steps", "8",
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    experiment = client.get_experiment_by_name("ddp")
    (run,) = client.search_runs([experiment.experiment_id])  # exactly one run for two ranks
    assert run.info.status == "FINISHED"
    metrics = run.data.metrics
    assert metrics["global_batch_size"] == 2 * 16  # two ranks of batch 16
    assert metrics["steps"] == 8 and metrics["final/val/mse"] > 0
    assert len(client.get_metric_history(run.info.run_id, "val/mse")) == 2  # epoch_size 4


def test_torchrun_two_processes_make_one_run(tracking_uri):
    """torchrun starts every rank at once: only rank 0 may open the (fresh) store."""
    from mlflow.tracking import MlflowClient

    command = [
        sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
        "-m", "grubench", "fit", *TINY,
        "--tracking_uri", tracking_uri, "--experiment_name", "torchrun",
        "--trainer.accelerator", "cpu", "--trainer.devices", "2",
        "--trainer.strategy", "ddp", "--trainer.max_steps", "8",
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    client = MlflowClient(tracking_uri)  # only now: the store must not exist before the ranks
    (run,) = client.search_runs([client.get_experiment_by_name("torchrun").experiment_id])
    assert run.info.status == "FINISHED" and run.data.metrics["global_batch_size"] == 32
