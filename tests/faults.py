"""Faults injected into real sweeps: a worker killed -9 in the middle of a child; a tiny fit's
arguments to break a store under; and what a test needs to see which processes are left (read
from /proc)."""

from __future__ import annotations

import os
import signal
import threading
import time

from grubench.sweeps.children import sweep_runs


def tiny_fit(seed: int, max_steps: int) -> list[str]:
    """``grubench fit`` arguments for a tiny run that logs every step: long enough to fault a
    store in the middle of it."""
    return [
        "--model.hidden_size", "8", "--task.seq_len", "10", "--task.batch_size", "16",
        "--task.epoch_size", "10", "--task.val_size", "32", "--task.test_size", "32",
        "--seed", str(seed), "--trainer.max_steps", str(max_steps),
        "--trainer.log_every_n_steps", "1", "--trainer.enable_progress_bar", "false",
    ]  # fmt: skip


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


def alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie waiting for init to reap it has ended)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            state = stat.read().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state not in ("Z", "X")


def children_of(pid: int) -> set[int]:
    """The live processes whose parent is ``pid``."""
    found = set()
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                with open(f"/proc/{name}/stat") as stat:
                    fields = stat.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid and fields[0] not in ("Z", "X"):
                found.add(int(name))
    return found
