"""Where a sweep's children run: one after the other in the sweep's process
(:class:`Serial`), in a pool of local worker processes (:class:`Pool`, ``--workers N``), or as
tasks on a Ray cluster (:class:`RayTasks`, ``--ray-address``).

Every executor offers the same three things to the sweep: ``free`` (how many more children
it would start now), ``submit(child)``, and ``wait(timeout)`` (the children that ended since,
with their :class:`~grubench.sweeps.children.Outcome`). Each child runs
:func:`grubench.sweeps.children.fit_child`, which reads the child's runs from the store itself: a
child retried after its worker died continues the run that worker left, from its checkpoint.

Locally a process pool; Ray for children on other machines (docs/design.md says why).
"""

from __future__ import annotations

import logging
import os
import signal
import time
from collections.abc import Callable
from typing import Any

from grubench.sweeps.children import ChildStatus, Outcome, Where, fit_child
from grubench.sweeps.question import Child
from grubench.training.config import ConfigError, first_line
from grubench.training.resume import signal_handlers


def usable_cores() -> int:
    """The cores this process may run on (taskset, cgroups, SLURM), not the machine's."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


class Serial:
    """Each child in the sweep's own process, when ``wait`` is called; ``announce(child,
    note)`` prints its start line first."""

    announced = False  # whether the child's start line was printed

    def __init__(self, where: Where, announce: Callable[[Child, str], None]) -> None:
        self.where, self.announce = where, announce
        self.pending: list[Child] = []

    @property
    def free(self) -> int:
        return 0 if self.pending else 1

    @property
    def busy(self) -> int:
        return len(self.pending)

    def submit(self, child: Child) -> None:
        self.pending.append(child)

    def wait(self, timeout: float) -> list[tuple[Child, Outcome]]:
        child = self.pending.pop()
        self.announced = False

        def announce(note: str) -> None:
            self.announced = True
            self.announce(child, note)

        return [(child, fit_child(child, self.where, announce))]

    def stop(self, signum: int) -> None:
        pass  # the fit in this process has its own signal handlers

    def close(self) -> None:
        pass


_STOP = None  # in a pool worker: the pool's stop event (set by the sweep's process)
_DRIVER = None  # in a pool worker: the pid of the sweep's process that started it
_IN_FIT = False  # in a pool worker: whether a child's fit is running now
DRIVER_POLL_S = 1.0  # how often a pool worker checks that the sweep's process is alive
ORPHAN_GRACE_S = 120.0  # how long a worker whose sweep is gone gives its fit to checkpoint


def _driver_gone() -> bool:
    """Whether this pool worker's sweep process has ended (killed -9, out of memory): the
    worker was re-parented, to init or a subreaper."""
    return _DRIVER is not None and os.getppid() != _DRIVER


def _watch_driver() -> None:
    """A pool worker's watchdog thread: once the sweep's process is gone, a worker between fits
    exits at once; a worker in a fit signals itself once (SIGTERM: the fit checkpoints, its run
    ends KILLED and resumable, and :func:`_fit_in_worker` then exits), and exits regardless
    after :data:`ORPHAN_GRACE_S`. Polling, not PR_SET_PDEATHSIG: that fires when the *thread*
    that started the worker ends, and a signal outside a fit only marks the pool as stopping."""
    while not _driver_gone():
        time.sleep(DRIVER_POLL_S)
    if not _IN_FIT:
        os._exit(0)
    os.kill(os.getpid(), signal.SIGTERM)
    time.sleep(ORPHAN_GRACE_S)
    os._exit(1)


def _worker_init(threads: int, pids, stop, driver: int) -> None:
    """A pool worker: its share of the cores, quiet Lightning, its own process group (a
    terminal's Ctrl+C reaches the sweep's process only, which stops each worker once), a
    watchdog that ends it with the sweep's process (:func:`_watch_driver`), and a signal
    outside a fit only marks the worker as stopping (a fit handles its own), or ends it when
    the sweep's process is gone."""
    import threading

    import torch

    global _STOP, _DRIVER
    # the sweep's pid as it passed it, not os.getppid(): a worker that starts after its
    # driver died (killed while the pool started) would take init's pid for its driver's
    _STOP, _DRIVER = stop, driver
    os.setpgrp()

    def on_signal(*_) -> None:
        if _driver_gone():
            os._exit(0)
        stop.set()

    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, on_signal)
    threading.Thread(target=_watch_driver, name="grubench-driver-watch", daemon=True).start()
    torch.set_num_threads(threads)
    pids.put(os.getpid())
    logging.getLogger("lightning.pytorch.utilities.rank_zero").setLevel(logging.WARNING)


def _fit_in_worker(child: Child, where: Where) -> Outcome:
    global _IN_FIT
    if _STOP is not None and _STOP.is_set():
        return Outcome("not started (stopping)", 0.0, ChildStatus.SKIPPED)
    _IN_FIT = True
    try:
        if _driver_gone():  # the watchdog may not have seen it yet
            os._exit(0)
        return fit_child(child, where)
    finally:
        _IN_FIT = False
        if _driver_gone():  # the fit stopped itself (KILLED, with its checkpoint): nobody waits
            os._exit(0)


class Pool:
    """``workers`` processes (spawned: no state shared with the sweep's process), each with
    ``usable cores // workers`` torch threads. A worker that dies (killed -9, out of memory)
    breaks the pool: it starts afresh and the children it had in hand go again, up to
    ``retries`` times each (continuing their runs from their checkpoints)."""

    def __init__(self, workers: int, where: Where, retries: int = 2) -> None:
        import multiprocessing

        from grubench.models.gru_bptt import load_extension

        load_extension()  # built once here, not by every worker at once
        self.workers, self.where, self.retries = workers, where, retries
        self.context = multiprocessing.get_context("spawn")
        self.threads = max(1, usable_cores() // workers)
        self._pids = self.context.Queue()
        self.stopping = self.context.Event()
        self.stop_requested = False
        self.pids: set[int] = set()
        self.executor = self._executor()
        self.futures: dict[Any, Child] = {}
        self.attempts: dict[str, int] = {}

    def _executor(self):
        from concurrent.futures import ProcessPoolExecutor

        return ProcessPoolExecutor(
            self.workers, mp_context=self.context, initializer=_worker_init,
            initargs=(self.threads, self._pids, self.stopping, os.getpid()),
        )  # fmt: skip

    @property
    def free(self) -> int:
        return max(0, self.workers - len(self.futures))

    @property
    def busy(self) -> int:
        return len(self.futures)

    def submit(self, child: Child) -> None:
        self.futures[self.executor.submit(_fit_in_worker, child, self.where)] = child

    def wait(self, timeout: float) -> list[tuple[Child, Outcome]]:
        from concurrent.futures import FIRST_COMPLETED
        from concurrent.futures import wait as wait_for
        from concurrent.futures.process import BrokenProcessPool

        done, _ = wait_for(list(self.futures), timeout=timeout, return_when=FIRST_COMPLETED)
        ended, lost = [], []
        for future in done:
            child = self.futures.pop(future)
            try:
                ended.append((child, future.result()))
            except BrokenProcessPool:
                lost.append(child)
        if lost:  # every child in hand is lost with the pool
            lost += list(self.futures.values())
            self.futures.clear()
            self.executor.shutdown(wait=True)  # (it signals the workers left: not a stop)
            if not self.stop_requested:
                self.stopping = self.context.Event()
            self.executor = self._executor()
            for child in lost:
                self.attempts[child.key] = self.attempts.get(child.key, 0) + 1
                if self.attempts[child.key] > self.retries or self.stop_requested:
                    ended.append((child, Outcome(
                        f"FAILED: its worker process died ({self.attempts[child.key]} times)",
                        0.0, ChildStatus.FAILED)))  # fmt: skip
                else:
                    self.submit(child)
        return ended

    def stop(self, signum: int) -> None:
        """Send each worker one stop signal: a fit checkpoints and ends KILLED, a worker
        between fits starts no other."""
        import queue

        if self.stop_requested:  # once: a second signal would stop fits without a checkpoint
            return
        self.stop_requested = True
        self.stopping.set()
        while True:
            try:
                self.pids.add(self._pids.get(timeout=0.2))
            except queue.Empty:
                break
        self._signal_all(signum)

    def close(self) -> None:
        """Wait for the workers to end; a further signal meanwhile is passed on to them."""
        with signal_handlers(lambda signum, _: self._signal_all(signum)):
            self.executor.shutdown(wait=True, cancel_futures=True)

    def _signal_all(self, signum: int) -> None:
        for pid in self.pids | set(getattr(self.executor, "_processes", None) or {}):
            try:
                os.kill(pid, signum)
            except ProcessLookupError:
                pass


def _ray_fit(child: Child, where: Where, threads: int) -> Outcome:
    """A child as a Ray task: ``threads`` torch threads (the CPUs the task asked for)."""
    import torch

    torch.set_num_threads(threads)
    logging.getLogger("lightning.pytorch.utilities.rank_zero").setLevel(logging.WARNING)
    return fit_child(child, where)


def gpus_per_child(child: Child) -> int:
    """The GPUs a child's Trainer uses: its devices when its accelerator is a GPU (a count,
    a list of indices or "0,1"; "auto" and -1 count as one)."""
    trainer = child.config.trainer
    if str(trainer.get("accelerator", "cpu")) not in ("gpu", "cuda"):
        return 0
    devices = trainer.get("devices", 1)
    if isinstance(devices, (list, tuple)):
        return max(1, len(devices))
    if isinstance(devices, str) and "," in devices:
        return len([d for d in devices.split(",") if d.strip()])
    return int(devices) if str(devices).isdigit() and int(devices) > 0 else 1


def _check_reachable(address: str) -> None:
    """A ``host:port`` address must accept a connection (other forms go to Ray as given)."""
    import socket

    host, _, port = address.rpartition(":")
    if "://" in address or not port.isdigit() or not host:
        return
    try:
        socket.create_connection((host, int(port)), timeout=5).close()
    except OSError as err:
        raise ConfigError(
            [f"--ray-address {address}: no Ray cluster answers there ({err.strerror or err}); "
             "start one with: ray start --head"]
        ) from None  # fmt: skip


class RayTasks:
    """Each child a Ray task on the cluster at ``address``, asking for ``cpus`` CPUs and
    ``gpus`` GPUs (what its Trainer uses); as many in flight as the cluster's CPUs and GPUs
    hold (so that the leases of the children waiting stay free for other drivers). Ray
    retries a task whose worker died (``retries`` times), and a task stopped by a signal on
    its node goes again as often; either continues the child's run from its checkpoint when
    the node sees the checkpoint folder (``GRUBENCH_CHECKPOINT_DIR``)."""

    def __init__(self, address: str, where: Where, cpus: int = 1, gpus: int = 0,
                 retries: int = 2) -> None:  # fmt: skip
        try:
            import ray
        except ImportError:
            raise ConfigError(
                [f"--ray-address {address}: Ray is not installed; pip install 'grubench[ray]'"]
            ) from None
        from grubench.store.tracking import CHECKPOINT_ENV, checkpoint_root

        self.ray, self.where, self.cpus, self.gpus = ray, where, cpus, gpus
        self.retries, self.stop_requested = retries, False
        self.refs: dict[Any, Child] = {}
        self.attempts: dict[str, int] = {}
        self.unplaceable: list[tuple[Child, Outcome]] = []
        self._owns_connection = not ray.is_initialized()
        if self._owns_connection:
            _check_reachable(address)  # ray.init retries an address that never answers for minutes
            try:  # ray.init puts its own SIGTERM handler on the driver: grubench's stay
                with signal_handlers():
                    env = {CHECKPOINT_ENV: str(checkpoint_root(where.uri))}
                    ray.init(
                        address=address,
                        log_to_driver=False,
                        logging_level=logging.WARNING,
                        runtime_env={"env_vars": env},
                    )
            except (ConnectionError, ValueError, RuntimeError) as err:
                raise ConfigError(
                    [f"--ray-address {address}: no Ray cluster answers there ({first_line(err)}); "
                     "start one with: ray start --head"]
                ) from None  # fmt: skip
        nodes = self._nodes()
        if len(nodes) > 1 and where.uri.startswith("sqlite:"):
            self.close()
            raise ConfigError(
                [f"--ray-address {address}: the cluster has {len(nodes)} nodes and the store "
                 f"{where.uri} is a file on this one; give every node one store: "
                 "--tracking_uri http://HOST:5000 (an mlflow server)"]
            )  # fmt: skip
        self.task = ray.remote(_ray_fit)

    def _nodes(self) -> list[dict[str, float]]:
        return [n.get("Resources", {}) for n in self.ray.nodes() if n.get("Alive")]

    def _capacity(self) -> int:
        total = self.ray.cluster_resources()
        capacity = int(total.get("CPU", 0) // self.cpus)
        if self.gpus:
            capacity = min(capacity, int(total.get("GPU", 0) // self.gpus))
        return max(1, capacity)

    @property
    def free(self) -> int:
        return max(0, self._capacity() - len(self.refs))

    @property
    def busy(self) -> int:
        return len(self.refs) + len(self.unplaceable)

    def submit(self, child: Child) -> None:
        gpus = gpus_per_child(child)
        if not any(n.get("CPU", 0) >= self.cpus and n.get("GPU", 0) >= gpus
                   for n in self._nodes()):  # fmt: skip
            self.unplaceable.append((child, Outcome(
                f"FAILED: no node of the Ray cluster has {self.cpus} CPUs and {gpus} GPUs "
                "free for it", 0.0, ChildStatus.FAILED)))  # fmt: skip
            return
        ref = self.task.options(
            num_cpus=self.cpus, num_gpus=gpus, max_retries=self.retries, name=child.key,
        ).remote(child, self.where, self.cpus)  # fmt: skip
        self.refs[ref] = child

    def wait(self, timeout: float) -> list[tuple[Child, Outcome]]:
        ended, self.unplaceable = self.unplaceable, []
        if not self.refs:
            return ended
        ready, _ = self.ray.wait(list(self.refs), num_returns=1, timeout=timeout)
        for ref in ready:
            child = self.refs.pop(ref)
            try:
                outcome = self.ray.get(ref)
            except Exception as err:  # the task's worker died more often than retried
                outcome = Outcome(f"FAILED: {type(err).__name__}: {first_line(err)}", 0.0,
                                  ChildStatus.FAILED)  # fmt: skip
            if (
                outcome.status in (ChildStatus.STOPPED, ChildStatus.SKIPPED)
                and not self.stop_requested
            ):
                # a signal on its node (ray stop, a drain), not this driver's: it goes again
                self.attempts[child.key] = self.attempts.get(child.key, 0) + 1
                if self.attempts[child.key] <= self.retries:
                    self.submit(child)
                    continue
                why = f"FAILED: {outcome.summary} on its node {self.attempts[child.key]} times"
                outcome = Outcome(why, 0.0, ChildStatus.FAILED)
            ended.append((child, outcome))
        return ended

    def stop(self, signum: int) -> None:
        """Cancel every task: a fit stops at its next step with a checkpoint (KILLED)."""
        self.stop_requested = True
        for ref in list(self.refs):
            try:
                self.ray.cancel(ref)
            except Exception:
                pass

    def close(self) -> None:
        """Wait (a minute at most) for cancelled fits to checkpoint; a further signal
        meanwhile stops waiting."""
        deadline = [time.monotonic() + 60]

        def hurry(signum, frame) -> None:
            deadline[0] = 0.0

        try:
            with signal_handlers(hurry):
                while self.refs and time.monotonic() < deadline[0]:
                    self.wait(timeout=1.0)
        finally:
            if self._owns_connection:
                self.ray.shutdown()
