"""Sweeps as Ray tasks: a real Ray head started as its own processes (127.0.0.1, 2 CPUs) and
a real `mlflow server`, both stopped after the tests, pass or fail."""

import os
import subprocess
import sys

import pytest
from mlflow.tracking import MlflowClient

from grubench.sweeps.children import sweep_runs
from grubench.sweeps.question import load_question
from grubench.sweeps.runner import run_sweep
from tests.faults import WorkerKiller, alive
from tests.servers import free_port, ray_head, served

TIER = "system"

TINY = """
from grubench.sweeps.question import Question

QUESTION = Question(
    name="{name}", text="?",
    arms={{"gru": {{"model": {{"name": "torch_gru"}}}}, "rnn": {{"model": {{"name": "rnn"}}}}}},
    seeds={{"quick": {seeds}, "full": [0]}},
    base={{"model": {{"hidden_size": 8}},
          "task": {{"seq_len": 10, "batch_size": 16, "epoch_size": 10, "val_size": 32,
                   "test_size": 32}},
          "trainer": {{"max_steps": {steps}, "enable_progress_bar": False}}}},
)
"""


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """(Ray address, tracking server URL, checkpoint folder) for the module's tests."""
    root = tmp_path_factory.mktemp("cluster")
    port = free_port()
    server = [
        sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(port),
        "--backend-store-uri", f"sqlite:///{root / 'mlflow.db'}",
        "--artifacts-destination", str(root / "artifacts"), "--workers", "1",
    ]  # fmt: skip
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
    with served(server, port, **quiet) as (_, base), ray_head(num_cpus=2) as address:
        yield address, base, root / "checkpoints"


def grubench_run(path, cluster, *extra) -> subprocess.Popen:
    address, base, checkpoints = cluster
    env = {**os.environ, "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",
           "GRUBENCH_CHECKPOINT_DIR": str(checkpoints)}  # fmt: skip
    command = [sys.executable, "-m", "grubench", "run", str(path), "--ray-address", address,
               "--tracking_uri", base, *extra]  # fmt: skip
    return subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)  # fmt: skip


def test_a_sweep_on_ray_runs_each_child_once_with_the_serial_metrics(cluster, tmp_path):
    path = tmp_path / "on_ray.py"
    path.write_text(TINY.format(name="on_ray", seeds=[0, 1], steps=40))
    sweep = grubench_run(path, cluster)
    output = sweep.communicate(timeout=400)[0]
    assert sweep.returncode == 0, output
    assert "[4/4]" in output and "| gru | – |" in output  # progress, then the table
    client = MlflowClient(cluster[1])
    experiment_id = client.get_experiment_by_name("on_ray").experiment_id
    on_ray = sweep_runs(client, experiment_id, "on_ray:quick")
    assert {r.info.status for r in on_ray} == {"FINISHED"}
    by_key = {r.data.tags["grubench.child_key"]: r for r in on_ray}
    assert len(by_key) == len(on_ray) == 4
    # on a Ray worker (its own process and thread count), the numbers of one process
    serial_uri = f"sqlite:///{tmp_path / 'serial' / 'mlflow.db'}"
    run_sweep(load_question(path), "quick", serial_uri, echo=lambda _: None)
    serial = MlflowClient(serial_uri)
    serial_runs = sweep_runs(serial, serial.get_experiment_by_name("on_ray").experiment_id,
                             "on_ray:quick")  # fmt: skip
    for run in serial_runs:
        key = run.data.tags["grubench.child_key"]
        for metric in ("final/val/score", "final/val/mse", "test/score", "steps"):
            assert by_key[key].data.metrics[metric] == run.data.metrics[metric], (key, metric)


@pytest.mark.slow  # ~80 s: two Ray workers start torch, one is killed and retried
def test_a_ray_worker_killed_minus_9_is_retried_and_each_child_ends_once(cluster, tmp_path):
    path = tmp_path / "killed.py"
    path.write_text(TINY.format(name="killed", seeds=[0], steps=400))
    client = MlflowClient(cluster[1])
    killer = WorkerKiller(client, "killed")
    killer.start()
    sweep = grubench_run(path, cluster)
    output = sweep.communicate(timeout=600)[0]
    killer.join()
    killed = killer.killed
    assert killed, output
    assert sweep.returncode == 0, output
    runs = sweep_runs(client, client.get_experiment_by_name("killed").experiment_id,
                      "killed:quick")  # fmt: skip
    assert sorted(r.data.tags["grubench.child_key"] for r in runs) == [
        "gru | seed=0", "rnn | seed=0"]  # fmt: skip
    assert {r.info.status for r in runs} == {"FINISHED"}
    assert killed[0] in {r.info.run_id for r in runs}  # Ray's retry continued the killed run
    steps = [m.step for m in client.get_metric_history(killed[0], "train/loss")]
    assert steps == sorted(set(steps))  # each step logged once


def test_a_bad_ray_address_fails_before_any_run(tmp_path, tracking_uri):
    path = tmp_path / "bad.py"
    path.write_text(TINY.format(name="bad", seeds=[0], steps=4))
    port = free_port()  # nothing listens there
    out = subprocess.run(
        [sys.executable, "-m", "grubench", "run", str(path), "--ray-address",
         f"127.0.0.1:{port}", "--tracking_uri", tracking_uri],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert out.returncode == 2
    assert out.stderr.strip() == (
        f"grubench run: error: --ray-address 127.0.0.1:{port}: no Ray cluster answers there "
        "(Connection refused); start one with: ray start --head"
    )
    assert not (tmp_path / "store").exists()


def test_a_driver_killed_minus_9_leaves_no_ray_task_running(cluster, tmp_path):
    """Ray's semantics: a task's owner is the driver that submitted it, and tasks fate-share
    with their owner, so Ray's raylet kills the workers running the lost driver's tasks (no
    signal a fit could catch: their runs stay RUNNING with their last checkpoint, and the next
    sweep continues them). Here that takes a few seconds; nothing of grubench's is needed."""
    import signal
    import time

    path = tmp_path / "lost.py"
    path.write_text(TINY.format(name="lost", seeds=[0], steps=3000))
    client = MlflowClient(cluster[1])
    sweep = grubench_run(path, cluster)

    def both_training() -> list:
        found = client.get_experiment_by_name("lost")
        runs = sweep_runs(client, found.experiment_id, "lost:quick") if found else []
        return [r for r in runs if r.info.status == "RUNNING"
                and client.get_metric_history(r.info.run_id, "train/loss")]  # fmt: skip

    deadline = time.monotonic() + 300
    while len(both_training()) < 2:
        assert sweep.poll() is None and time.monotonic() < deadline, "the sweep never trained"
        time.sleep(0.5)
    runs = both_training()
    pids = {int(r.data.tags["grubench.pid"]) for r in runs}
    killed_at = time.monotonic()
    sweep.send_signal(signal.SIGKILL)
    sweep.wait(timeout=60)
    while any(map(alive, pids)) and time.monotonic() - killed_at < 60:
        time.sleep(0.1)
    took = time.monotonic() - killed_at
    assert not any(map(alive, pids)), f"Ray tasks still running {took:.0f} s after the driver"
    print(f"Ray ended the lost driver's 2 tasks {took:.1f} s after it was killed -9")
    sweep.communicate(timeout=60)

    rerun = grubench_run(path, cluster)
    output = rerun.communicate(timeout=600)[0]
    assert rerun.returncode == 0, output
    final = sweep_runs(client, client.get_experiment_by_name("lost").experiment_id, "lost:quick")
    assert {r.info.status for r in final} == {"FINISHED"} and len(final) == 2
    assert {r.info.run_id for r in final} == {r.info.run_id for r in runs}  # continued
