"""A tracking server that stops in the middle of a fit (a real ``mlflow server``, stopped and
started again on the same port and store): back within MLflow's retry window, the fit finishes
and every metric step is in the store once; away for longer, the fit ends in one line naming
the server, its run and the checkpoint kept, and ``grubench fit --resume`` finishes the same run
once the server is back."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from tests.faults import tiny_fit
from tests.servers import RestartableServer as Server

TIER = "system"

FIT = tiny_fit(seed=4, max_steps=400)


@pytest.fixture
def server(tmp_path):
    server = Server(tmp_path)
    server.start()
    yield server
    server.stop()


def fit(server: Server, *extra: str, env: dict | None = None) -> subprocess.Popen:
    command = [sys.executable, "-m", "grubench", "fit", *FIT, "--tracking_uri", server.uri]
    return subprocess.Popen([*command, *extra], env={**os.environ, **(env or {})},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip


def training(server: Server) -> str | None:
    """The id of the run once it has logged a training loss, else None."""
    client = MlflowClient(server.uri)
    for experiment in client.search_experiments():
        for run in client.search_runs([experiment.experiment_id]):
            if client.get_metric_history(run.info.run_id, "train/loss"):
                return run.info.run_id
    return None


def wait_for_training(server: Server, process: subprocess.Popen) -> str:
    """The run's id once it has logged a loss and written its first checkpoint (the fit runs
    in this test's folder: checkpoints of a server's runs go to ./mlruns/checkpoints)."""
    deadline = time.monotonic() + 180
    while (run_id := training(server)) is None or not checkpoint(run_id).is_file():
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, "the fit never logged a loss and a checkpoint"
        time.sleep(0.3)
    return run_id


def checkpoint(run_id: str) -> Path:
    return Path("mlruns") / "checkpoints" / run_id / "last.ckpt"


def assert_each_step_once(client: MlflowClient, run_id: str) -> None:
    history = client.get_metric_history(run_id, "train/loss")
    steps = [m.step for m in history]
    assert len(steps) == len(set(steps)), "a step logged twice"
    assert max(steps) >= 390


def test_a_server_back_within_the_window_loses_nothing(server):
    process = fit(server)
    run_id = wait_for_training(server, process)
    server.stop()
    time.sleep(8)  # the fit's logging waits in MLflow's retries (about 4 minutes of them)
    server.start()
    out, err = process.communicate(timeout=300)
    assert process.returncode == 0, err
    client = MlflowClient(server.uri)
    run = client.get_run(run_id)
    assert run.info.status == "FINISHED" and run.data.metrics["steps"] == 400
    assert_each_step_once(client, run_id)


def test_a_server_gone_too_long_is_one_line_and_resume_finishes_the_run(server):
    # a short retry window, so that the test need not wait MLflow's four minutes
    short = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2", "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
             "MLFLOW_HTTP_REQUEST_BACKOFF_JITTER": "0", "MLFLOW_HTTP_REQUEST_TIMEOUT": "5"}  # fmt: skip
    process = fit(server, env=short)
    run_id = wait_for_training(server, process)
    server.stop()
    out, err = process.communicate(timeout=300)
    assert process.returncode == 1, err
    lines = [line for line in err.splitlines() if line.startswith("grubench fit")]
    assert len(lines) == 1 and "Traceback" not in err, err
    assert f"the tracking server at {server.uri} stopped answering" in lines[0]
    assert f"grubench fit --resume {run_id} --tracking_uri {server.uri}" in lines[0]
    assert "its checkpoint at step " in lines[0]
    server.start()
    resumed = subprocess.run(
        [sys.executable, "-m", "grubench", "fit", "--resume", run_id, "--tracking_uri", server.uri],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert resumed.returncode == 0, resumed.stderr
    client = MlflowClient(server.uri)
    run = client.get_run(run_id)
    assert run.info.status == "FINISHED" and run.data.metrics["steps"] == 400
    assert_each_step_once(client, run_id)
