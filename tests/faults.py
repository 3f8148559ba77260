"""Faults injected into real sweeps: a worker killed -9 in the middle of a child."""

from __future__ import annotations

import os
import signal
import threading
import time

from grubench.sweeps.children import sweep_runs


class WorkerKiller(threading.Thread):
    """Kills (SIGKILL) the process of the first child run of ``name``'s quick sweep that is
    RUNNING and has logged a training loss; ``killed`` holds that run's id."""

    def __init__(self, client, name: str, timeout: float = 300) -> None:
        super().__init__(daemon=True)
        self.client, self.name, self.timeout = client, name, timeout
        self.killed: list[str] = []

    def run(self) -> None:
        deadline = time.monotonic() + self.timeout
        while not self.killed and time.monotonic() < deadline:
            time.sleep(0.5)
            found = self.client.get_experiment_by_name(self.name)
            runs = (
                sweep_runs(self.client, found.experiment_id, f"{self.name}:quick") if found else []
            )
            for run in runs:
                if run.info.status == "RUNNING" and self.client.get_metric_history(
                    run.info.run_id, "train/loss"
                ):
                    os.kill(int(run.data.tags["grubench.pid"]), signal.SIGKILL)
                    self.killed.append(run.info.run_id)
                    return
