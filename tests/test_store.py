"""Several processes on one store: a fresh embedded SQLite store, and a real `mlflow server`."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from grubench.answers.report import build_report
from grubench.sweeps.question import Question
from grubench.sweeps.runner import run_sweep
from tests.servers import free_port, rest, served
from tests.test_cli import TINY

TIER = "integration"


def grubench(*args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "grubench", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)  # fmt: skip


@pytest.mark.system
def test_three_concurrent_fits_on_a_fresh_embedded_store(tracking_uri):
    from mlflow.tracking import MlflowClient

    assert not Path(tracking_uri.removeprefix("sqlite:///")).exists()
    workers = [
        grubench("fit", *TINY, "--tracking_uri", tracking_uri, "--seed", str(seed))
        for seed in range(3)
    ]
    outputs = [worker.communicate(timeout=300)[0] for worker in workers]
    assert [w.returncode for w in workers] == [0, 0, 0], outputs
    client = MlflowClient(tracking_uri)
    experiment = client.get_experiment_by_name("grubench")
    runs = client.search_runs([experiment.experiment_id])
    assert len(runs) == 3 and {r.info.status for r in runs} == {"FINISHED"}
    assert sorted(r.data.params["seed"] for r in runs) == ["0", "1", "2"]


@pytest.mark.system
def test_fit_and_a_parallel_sweep_against_a_tracking_server(tmp_path):
    port = free_port()
    (tmp_path / "server").mkdir()
    command = [
        sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(port),
        "--backend-store-uri", f"sqlite:///{tmp_path / 'server' / 'mlflow.db'}",
        "--artifacts-destination", str(tmp_path / "server" / "artifacts"),
    ]  # fmt: skip
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
    with served(command, port, **quiet) as (_, base):
        # a fit in a subprocess, the URI from the environment
        env = {**os.environ, "MLFLOW_TRACKING_URI": base}
        fit = subprocess.run([sys.executable, "-m", "grubench", "fit", *TINY],
                             env=env, capture_output=True, text=True, timeout=300)  # fmt: skip
        assert fit.returncode == 0, fit.stdout[-2000:] + fit.stderr[-2000:]
        # a sweep on two worker processes, each writing to the server
        experiment = Question(
            name="served", text="two workers, one server",
            arms={"gru": {"model": {"name": "torch_gru"}}, "rnn": {"model": {"name": "rnn"}}},
            base={"model": {"hidden_size": 8},
                  "task": {"seq_len": 10, "batch_size": 16, "epoch_size": 3, "val_size": 32,
                           "test_size": 32},
                  "trainer": {"max_steps": 3, "enable_progress_bar": False}},
            seeds={"quick": [0, 1, 2], "full": [0]},
        )  # fmt: skip
        result = run_sweep(experiment, "quick", base, echo=lambda _: None, workers=2)
        assert (result.ran, result.failed) == (6, [])
        # read back over the REST API
        experiments = rest(base, "experiments/search", {"max_results": 100})["experiments"]
        ids = {e["name"]: e["experiment_id"] for e in experiments}
        fit_runs = rest(base, "runs/search", {"experiment_ids": [ids["grubench"]]})["runs"]
        assert [r["info"]["status"] for r in fit_runs] == ["FINISHED"]
        sweep = rest(base, "runs/search", {"experiment_ids": [ids["served"]],
                                           "max_results": 100})["runs"]  # fmt: skip
        children = [r for r in sweep if {"key": "grubench.role", "value": "child"}
                    in r["data"]["tags"]]  # fmt: skip
        assert len(children) == 6 and len(sweep) == 7  # 6 children, one parent
        assert build_report(experiment, "quick", base).missing == []


def test_a_child_that_cannot_reach_its_store_fails_with_a_message(monkeypatch):
    from grubench.sweeps.children import Where, fit_child
    from grubench.sweeps.question import expand

    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    experiment = Question(name="gone", text="?", arms={"gru": {}},
                            seeds={"quick": [0], "full": [0]})  # fmt: skip
    (child,) = expand(experiment, "quick")
    uri = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    outcome = fit_child(child, Where(uri, "0", "parent", "gone:quick"))
    assert outcome.status == "failed"
    assert outcome.summary.startswith(f"FAILED: cannot reach the tracking store {uri}: ")
    assert "\n" not in outcome.summary


def test_a_sweeps_time_is_the_union_of_its_parents_and_a_dead_driver_counts_to_its_last_child(
    client,
):
    """Two drivers at once count once; a parent left RUNNING by a driver that died (no end
    time) counts until its last child ended, not zero."""
    from grubench.answers.report import sweep_seconds
    from grubench.store.schema import PROFILE, ROLE, SWEEP
    from grubench.sweeps.question import Question

    experiment = Question(name="timed", text="?", arms={"a": {}})
    eid = client.create_experiment("timed")
    tags = {ROLE: "parent", SWEEP: "timed:quick", PROFILE: "quick"}

    def parent(start, end=None):  # seconds after an epoch of 10,000 s (MLflow takes 0 as now)
        run = client.create_run(eid, start_time=(10_000 + start) * 1000, tags=tags).info.run_id
        if end is not None:
            client.set_terminated(run, "FINISHED", end_time=(10_000 + end) * 1000)
        return run

    parent(0, 100)
    parent(50, 150)  # overlaps the first: 150 s in all so far
    dead = parent(1000)  # its driver died: RUNNING, no end time
    child_tags = {"mlflow.parentRunId": dead, ROLE: "child", SWEEP: "timed:quick"}
    child = client.create_run(eid, start_time=11_000_000, tags=child_tags)
    client.set_terminated(child.info.run_id, "FINISHED", end_time=11_040_000)
    assert sweep_seconds(client, experiment, "quick") == 150 + 40


def test_a_sweeps_time_leaves_out_drivers_whose_runs_the_report_does_not_use(client):
    """A driver whose children all had settings the question no longer has (a search whose
    ranges changed) ran another sweep: its time is not this one's."""
    from grubench.answers.report import sweep_seconds
    from grubench.store.schema import PROFILE, ROLE, SWEEP
    from grubench.sweeps.question import Question

    experiment = Question(name="redrawn", text="?", arms={"a": {}})
    eid = client.create_experiment("redrawn")
    tags = {ROLE: "parent", SWEEP: "redrawn:quick", PROFILE: "quick"}
    runs = []
    for start, end in ((0, 3000), (5000, 5600)):  # the old protocol's driver, then the new
        parent = client.create_run(eid, start_time=(10_000 + start) * 1000, tags=tags)
        client.set_terminated(parent.info.run_id, "FINISHED", end_time=(10_000 + end) * 1000)
        child_tags = {"mlflow.parentRunId": parent.info.run_id, ROLE: "child",
                      SWEEP: "redrawn:quick"}  # fmt: skip
        child = client.create_run(eid, start_time=(10_000 + start + 1) * 1000, tags=child_tags)
        client.set_terminated(child.info.run_id, "FINISHED")
        runs.append(client.get_run(child.info.run_id))
    assert sweep_seconds(client, experiment, "quick") == 3000 + 600
    assert sweep_seconds(client, experiment, "quick", used=[runs[1]]) == 600
    assert sweep_seconds(client, experiment, "quick", used=runs) == 3000 + 600
