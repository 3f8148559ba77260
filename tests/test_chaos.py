"""Chaos, seeded: a sweep with ``--workers 2`` on a real ``mlflow server`` while faults are
injected at random moments: a pool worker killed -9, the sweep's process killed -9 (and the
same command started again, as a user would), the tracking server stopped and started again.
At the end every child is FINISHED exactly once, no process of the sweep is left, and every
child's final metrics equal those of the same sweep run serially without faults."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time

from mlflow.tracking import MlflowClient

from grubench.sweeps.children import sweep_runs
from grubench.sweeps.question import load_question
from grubench.sweeps.runner import run_sweep
from tests.faults import alive, children_of
from tests.servers import RestartableServer

TIER = "system"

SEED = 20261204
FAULTS = 10  # at least this many injected before the sweep may finish undisturbed
QUESTION = """
from grubench.sweeps.question import Question

QUESTION = Question(
    name="chaos", text="?",
    arms={{"gru": {{"model": {{"name": "torch_gru"}}}}, "rnn": {{"model": {{"name": "rnn"}}}},
          "lstm": {{"model": {{"name": "lstm"}}}}}},
    seeds={{"quick": [0, 1], "full": [0]}},
    base={{"model": {{"hidden_size": 8}},
          "task": {{"seq_len": 10, "batch_size": 16, "epoch_size": 10, "val_size": 32,
                   "test_size": 32}},
          "trainer": {{"max_steps": {steps}, "log_every_n_steps": 5,
                      "enable_progress_bar": False}}}},
)
"""
METRICS = ("final/val/score", "final/val/mse", "test/score", "test/mse", "steps")


def wait_gone(pids, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while any(map(alive, pids)):
        assert time.monotonic() < deadline, f"still alive: {[p for p in pids if alive(p)]}"
        time.sleep(0.1)


def test_a_sweep_survives_killed_workers_drivers_and_server_and_runs_each_child_once(tmp_path):
    path = tmp_path / "chaos.py"
    path.write_text(QUESTION.format(steps=600))
    server = RestartableServer(tmp_path / "server")
    server.start()
    rng = random.Random(SEED)
    client = MlflowClient(server.uri)
    env = {**os.environ, "GRUBENCH_CHECKPOINT_DIR": str(tmp_path / "checkpoints")}
    command = [sys.executable, "-m", "grubench", "run", str(path), "--workers", "2",
               "--tracking_uri", server.uri]  # fmt: skip
    seen: set[int] = set()  # every process of the sweep: drivers and workers
    injected = {"worker": 0, "driver": 0, "server": 0}
    plan: list[str] = []
    driver = None
    deadline = time.monotonic() + 900
    try:
        while True:
            assert time.monotonic() < deadline, f"no end after {injected}"
            if driver is None or driver.poll() is not None:
                if driver is not None and driver.returncode == 0:
                    break  # the sweep is complete
                driver = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL,
                                          stderr=subprocess.DEVNULL)  # fmt: skip
                seen.add(driver.pid)
            if sum(injected.values()) >= FAULTS:
                driver.wait(timeout=600)  # no more faults: the sweep finishes (or, had the
                continue  # last fault stopped it, the loop starts it again)
            time.sleep(rng.uniform(2.0, 6.0))
            found = client.get_experiment_by_name("chaos")
            running = [
                r for r in (sweep_runs(client, found.experiment_id, "chaos:quick") if found else [])
                if r.info.status == "RUNNING" and alive(int(r.data.tags.get("grubench.pid", 0)))
            ]  # fmt: skip
            workers = {int(r.data.tags["grubench.pid"]) for r in running}
            seen |= workers | children_of(driver.pid)  # its pool workers, idle ones too
            if not plan:  # each kind once per round, in a seeded order
                plan = rng.sample(["worker", "driver", "server"], 3)
            fault = plan[0]
            if driver.poll() is not None:
                continue  # it finished before this fault: start it again (it has nothing left)
            if fault == "worker":
                if not workers:
                    continue  # none fitting at this moment: the next try
                os.kill(rng.choice(sorted(workers)), signal.SIGKILL)
            elif fault == "driver":
                pool = children_of(driver.pid) | workers
                driver.send_signal(signal.SIGKILL)
                driver.wait(timeout=60)
                wait_gone(pool, timeout=150)  # its workers end with it (a checkpoint each)
            elif fault == "server":
                server.stop()
                time.sleep(rng.uniform(1.0, 4.0))
                server.start()
            plan.pop(0)
            injected[fault] += 1
        assert sum(injected.values()) >= FAULTS, f"the sweep ended after only {injected}"
        experiment_id = client.get_experiment_by_name("chaos").experiment_id
        runs = client.search_runs([experiment_id], "tags.`grubench.role` = 'child'")
        keys = sorted(r.data.tags["grubench.child_key"] for r in runs
                      if r.data.tags.get("grubench.superseded") != "true")  # fmt: skip
        expected = sorted(c.key for c in _children(path))
        assert keys == expected, "each child exactly once"
        final = {r.data.tags["grubench.child_key"]: r for r in runs
                 if r.data.tags.get("grubench.superseded") != "true"}  # fmt: skip
        assert {r.info.status for r in final.values()} == {"FINISHED"}
        wait_gone(seen, timeout=30)  # nothing of the sweep is left

        serial_uri = f"sqlite:///{tmp_path / 'serial' / 'mlflow.db'}"
        run_sweep(load_question(path), "quick", serial_uri, echo=lambda _: None)
        serial = MlflowClient(serial_uri)
        twin = sweep_runs(serial, serial.get_experiment_by_name("chaos").experiment_id,
                          "chaos:quick")  # fmt: skip
        for run in twin:
            key = run.data.tags["grubench.child_key"]
            for metric in METRICS:
                assert final[key].data.metrics[metric] == run.data.metrics[metric], (key, metric)
        total = sum(injected.values())
        print(f"chaos: {total} faults injected and survived ({injected}); "
              f"{len(seen)} processes, none left; {len(final)} children, each once")  # fmt: skip
    finally:
        if driver is not None and driver.poll() is None:
            driver.kill()
        server.stop()


def _children(path):
    from grubench.sweeps.question import expand

    return expand(load_question(path), "quick")
