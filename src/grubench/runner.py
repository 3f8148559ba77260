"""Run an experiment's sweep: one MLflow parent run per invocation; the tuning stage, the
selection, then the evaluation stage, one child run per child; resumable.

The tuning stage runs every (arm, condition, grid point, tuning seed); the selection is then
read back from the store (:func:`grubench.protocol.select`: the best mean validation score per
arm and condition, logged as the parent's ``selection.json``), and the evaluation stage runs
each arm's kept point on the evaluation seeds. Children are tagged with their stage, arm,
condition and point, and found again by ``grubench.sweep``, ``grubench.child_key`` and
``grubench.config_hash``: re-running the same command skips every child that already has a
FINISHED run with the same settings. A child whose newest run was interrupted (KILLED by a
signal) or left RUNNING by a killed process continues that same run from its last checkpoint;
one without a checkpoint, or that FAILED, runs again as a new run, and the old runs are marked
KILLED and tagged ``grubench.superseded``. Either way each child counts once. ``shard=(i, n)``
runs every n-th child of each stage starting at i, so n processes can share one sweep against
one store (a RUNNING run is taken for a dead process's: run each shard once at a time); the
evaluation children of a cell whose tuning another shard has not finished wait for the next
invocation.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from grubench.experiment import Child, Experiment, expand, expand_tuning, sweep_id
from grubench.fit import ConfigError, quiet_lightning, resume_point, run_fit, validate_fit_config
from grubench.protocol import Selection, select
from grubench.resume import Interrupted, StopSignals
from grubench.tracking import SUPERSEDED, ensure_experiment, get_client, resolve_tracking_uri

ROLE, SWEEP, KEY, HASH = (
    "grubench.role",
    "grubench.sweep",
    "grubench.child_key",
    "grubench.config_hash",
)
STAGE, ARM, CONDITION, POINT = (
    "grubench.stage",
    "grubench.arm",
    "grubench.condition",
    "grubench.point",
)


def sweep_runs(client, experiment_id: str, sweep: str, role: str = "child") -> list:
    """Every run of ``sweep`` with ``role`` (newest first), superseded ones excluded."""
    runs, token = [], None
    query = f"tags.`{SWEEP}` = '{sweep}' and tags.`{ROLE}` = '{role}'"
    while True:
        page = client.search_runs(
            [experiment_id], query, max_results=1000, order_by=["attributes.start_time DESC"],
            page_token=token,
        )  # fmt: skip
        runs += [r for r in page if r.data.tags.get(SUPERSEDED) != "true"]
        token = page.token
        if not token:
            return runs


def finished_by_key(runs) -> dict[tuple[str, str], Any]:
    """The newest FINISHED run per (child key, config hash)."""
    done: dict[tuple[str, str], Any] = {}
    for run in runs:  # newest first
        ident = (run.data.tags.get(KEY), run.data.tags.get(HASH))
        if run.info.status == "FINISHED" and ident not in done:
            done[ident] = run
    return done


@dataclass
class SweepResult:
    total: int
    skipped: int = 0
    ran: int = 0  # fitted by this invocation, resumed ones included
    resumed: int = 0  # continued from a checkpoint of an interrupted run
    failed: list[str] = field(default_factory=list)
    parent_run_id: str | None = None
    # (arm, condition) -> the tuning point kept for evaluation
    selected: dict[tuple[str, str], str] = field(default_factory=dict)
    waiting: int = 0  # evaluation children whose cell's tuning is not complete yet


def _duration(seconds: float) -> str:
    minutes, seconds = divmod(int(round(seconds)), 60)
    return f"{minutes}m{seconds:02d}s" if minutes else f"{seconds}s"


def selection_from_store(tuning: list[Child], existing) -> dict[tuple[str, str], Selection]:
    """Select on the finished tuning runs whose settings match the children's."""
    done = finished_by_key(existing)
    by_key = {c.key: done[(c.key, c.config_hash())] for c in tuning
              if (c.key, c.config_hash()) in done}  # fmt: skip
    return select(tuning, by_key)


def run_sweep(
    experiment: Experiment,
    profile: str = "quick",
    tracking_uri: str | None = None,
    overrides: dict[str, Any] | None = None,
    shard: tuple[int, int] = (0, 1),
    dry_run: bool = False,
    echo: Callable[[str], None] = print,
    workers: int = 1,
) -> SweepResult:
    """The tuning stage, the selection (read back from the store), then the evaluation
    stage, under one parent run. A shard runs its share of each stage; evaluation children
    of a cell whose tuning another shard has not finished wait for the next invocation.
    ``workers`` > 1 fits that many children at once, each in a worker process of its own
    with its share of the cores (:class:`_Pool`)."""
    index, count = shard
    if not (count >= 1 and 0 <= index < count):
        raise ConfigError([f"shard {index}/{count}: need 0 <= i < n"])
    if not (isinstance(workers, int) and workers >= 1):
        raise ConfigError([f"workers {workers!r}: need a whole number >= 1"])
    devices = (overrides or {}).get("trainer", {}).get("devices")
    if workers > 1 and devices not in (None, 1, "1", "auto"):
        raise ConfigError([f"workers {workers} with trainer.devices {devices!r}: a multi-device "
                           "fit launches processes of its own; use one worker"])  # fmt: skip
    all_tuning = expand_tuning(experiment, profile, overrides)
    tuning = all_tuning[index::count]
    # every evaluation child differs from a tuning child only in its seed: checking them at
    # the first point checks what they will run
    first = {(a, c): next(iter(experiment.points_for(a))) for a in experiment.arms
             for c in experiment.conditions_for(profile)} if experiment.tuned else None  # fmt: skip
    evaluation_preview = expand(experiment, profile, overrides, first)[index::count]
    sweep = sweep_id(experiment, profile)
    total = len(tuning) + len(evaluation_preview)
    if dry_run:
        echo(f"{sweep}: {total} children (shard {index}/{count}): {len(tuning)} tuning, "
             f"{len(evaluation_preview)} evaluation")  # fmt: skip
        for child in tuning:
            echo(f"  {child.key}  [{child.config_hash()}]")
        for child in evaluation_preview:
            point = " at the selected point" if experiment.tuned else ""
            echo(f"  {child.key}{point}")
        return SweepResult(total=total)
    problems = [f"{c.key}: {p}" for c in tuning + evaluation_preview
                for p in validate_fit_config(c.config)]  # fmt: skip
    if problems:  # every child is checked before the first one runs
        raise ConfigError(sorted(set(problems)))

    uri = resolve_tracking_uri(tracking_uri)
    client = get_client(uri)
    experiment_id = ensure_experiment(client, experiment.name, uri)
    existing = sweep_runs(client, experiment_id, sweep)
    done = finished_by_key(existing)
    result = SweepResult(total=total)
    todo = [c for c in tuning if (c.key, c.config_hash()) not in done]
    result.skipped = len(tuning) - len(todo)
    selection = selection_from_store(all_tuning, existing)
    # a shard's evaluation children are its share of the whole stage (the preview), whichever
    # cells have finished tuning: two shards never take the same child
    mine = {c.key for c in evaluation_preview}
    evaluation = _evaluation(experiment, profile, overrides, selection, mine)
    eval_todo = [c for c in evaluation if (c.key, c.config_hash()) not in done]
    result.skipped += len(evaluation) - len(eval_todo)
    # cells still being tuned: all of their evaluation children are (probably) to run
    pending = len(evaluation_preview) - len(evaluation)
    echo(f"{sweep}: {total} children ({len(tuning)} tuning, {len(evaluation_preview)} "
         f"evaluation), {result.skipped} already finished, {len(todo) + len(eval_todo) + pending} "
         "to run")  # fmt: skip
    if not todo and not eval_todo and not pending:
        result.selected = _points(selection)
        return result

    parent = client.create_run(
        experiment_id,
        run_name=f"{sweep} sweep",
        tags={ROLE: "parent", SWEEP: sweep, "grubench.profile": profile,
              "grubench.shard": f"{index}/{count}", "grubench.question": experiment.question},
    )  # fmt: skip
    result.parent_run_id = parent_id = parent.info.run_id
    status, started = "FAILED", time.perf_counter()
    progress = _Progress(len(todo) + len(eval_todo) + pending, started, echo)
    pool = _Pool(workers) if workers > 1 else None
    stage = _Stage(client, uri, parent_id, sweep, result, progress, pool)
    try:
        # Lightning's per-fit banner would bury the progress lines; a signal between two
        # children stops the sweep at once (within one, the fit stops with a checkpoint)
        with quiet_lightning(), StopSignals():
            stage.run(todo, existing)
            if todo:  # the tuning runs just made count for the selection
                existing = sweep_runs(client, experiment_id, sweep)
                selection = selection_from_store(all_tuning, existing)
                done = finished_by_key(existing)
                evaluation = _evaluation(experiment, profile, overrides, selection, mine)
                eval_todo = [c for c in evaluation if (c.key, c.config_hash()) not in done]
                progress.total = progress.position + len(eval_todo)
            result.selected = _points(selection)
            result.waiting = len(evaluation_preview) - len(evaluation)
            if experiment.tuned:
                client.log_dict(parent_id, _selection_record(selection), "selection.json")
                for (arm, condition), kept in sorted(selection.items()):
                    echo(f"selected for {', '.join(p for p in (arm, condition) if p)}: "
                         f"{kept.point} (mean validation score "
                         f"{kept.scores[kept.point]:.3f})")  # fmt: skip
            stage.run(eval_todo, existing)
        if result.waiting:
            echo(f"{result.waiting} evaluation children wait for tuning runs of other shards: "
                 "run this command again when those have finished")  # fmt: skip
        status = "FINISHED" if not result.failed else "FAILED"
        return result
    except (KeyboardInterrupt, SystemExit) as stop:
        status = "KILLED"
        if pool is not None:  # each worker stops its fit with a checkpoint, as one process does
            pool.stop(getattr(stop, "signum", None) or signal.SIGTERM)
        raise
    finally:
        try:
            if pool is not None:
                pool.close()
        finally:
            client.set_terminated(parent_id, status)


def _evaluation(experiment, profile, overrides, selection, mine: set[str]) -> list[Child]:
    """The evaluation children of this shard whose cell has a selection."""
    children = expand(experiment, profile, overrides, _points(selection))
    return [c for c in children if c.key in mine]


def _points(selection: dict[tuple[str, str], Selection]) -> dict[tuple[str, str], str]:
    return {cell: kept.point for cell, kept in selection.items()}


def _selection_record(selection: dict[tuple[str, str], Selection]) -> list[dict]:
    return [{"arm": arm, "condition": condition, "selected": kept.point,
             "mean_validation_score": kept.scores}
            for (arm, condition), kept in sorted(selection.items())]  # fmt: skip


@dataclass
class _Progress:
    total: int
    started: float
    echo: Callable[[str], None]
    position: int = 0

    def line(self, child: Child, text: str) -> None:
        self.echo(f"[{self.position}/{self.total}] {child.key}{text}")


def _fit_child(child, client, existing, uri, parent_id, sweep, result, progress) -> None:
    """One child in this process: resume or supersede its older runs, fit, report."""
    progress.position += 1
    resume = _prepare(child, client, existing, uri, parent_id, sweep, result)
    progress.line(child, f" (resuming run {resume[0]} from step {resume[1]}) ..." if resume
                  else " ...")  # fmt: skip
    child_start = time.perf_counter()
    summary = _run_child(child, result, resume[0] if resume else None)
    _report(child, summary, time.perf_counter() - child_start, progress)


def _report(child: Child, summary: str, seconds: float, progress: _Progress) -> None:
    elapsed = time.perf_counter() - progress.started
    left = elapsed / max(progress.position, 1) * (progress.total - progress.position)
    progress.line(child, f": {summary} ({_duration(seconds)}; "
                  f"elapsed {_duration(elapsed)}, about {_duration(left)} left)")  # fmt: skip


def _prepare(child, client, existing, uri, parent_id, sweep, result) -> tuple[str, int] | None:
    """Tag the child's config as a child run of ``parent_id``; (run id, step) of its
    interrupted run to continue (moved under ``parent_id``), if any, after superseding its
    other old runs."""
    resume = _resumable(client, existing, child, uri)
    run_id = resume[0] if resume else None
    _supersede(client, existing, child, keep=run_id)
    child.config.tracking_uri = uri
    child.config.run_name = f"{child.stage} {child.label} | s{child.seed}"
    child.config.tags = {
        **child.config.tags,
        "mlflow.parentRunId": parent_id, ROLE: "child", SWEEP: sweep,
        KEY: child.key, HASH: child.config_hash(),
        STAGE: child.stage, ARM: child.arm, CONDITION: child.condition, POINT: child.point,
        "grubench.config": child.label, "grubench.seed": str(child.seed),
    }  # fmt: skip
    result.ran += 1
    if run_id:
        result.resumed += 1
        client.set_tag(run_id, "mlflow.parentRunId", parent_id)
    return resume


def _run_child(child: Child, result: SweepResult, resume: str | None = None) -> str:
    """Fit one prepared child; returns a one-word summary (the sweep goes on after a
    failure: the child's run is marked FAILED)."""
    try:
        return run_fit(child.config, resume=resume).outcome
    except Exception as err:
        result.failed.append(child.key)
        return f"FAILED: {type(err).__name__}: {err}"


@dataclass
class _Stage:
    """Runs one stage's children: one after the other, or on the worker pool."""

    client: Any
    uri: str
    parent_id: str
    sweep: str
    result: SweepResult
    progress: _Progress
    pool: _Pool | None

    def run(self, children: list[Child], existing) -> None:
        where = (self.client, existing, self.uri, self.parent_id, self.sweep, self.result)
        if self.pool is None:
            for child in children:
                _fit_child(child, *where, self.progress)
            return
        prepared = []
        for child in children:
            resume = _prepare(child, *where)
            prepared.append((child, resume[0] if resume else None))
        stopped = None
        for child, (summary, seconds, status) in self.pool.map(prepared):
            self.progress.position += 1
            if status == "failed":
                self.result.failed.append(child.key)
            if status == "stopped" and stopped is None:  # a worker was signalled directly
                stopped = child
                self.pool.stop(signal.SIGTERM)
            _report(child, summary, seconds, self.progress)
        if stopped is not None:  # the sweep stops as if it had been signalled itself
            raise Interrupted(signal.SIGTERM)


_STOP = None  # in a pool worker: the pool's stop event (set by the sweep's process)


def _worker_init(threads: int, pids, stop) -> None:
    """A pool worker: its share of the cores, quiet Lightning, its own process group (a
    terminal's Ctrl+C reaches the sweep's process only, which stops each worker once), and a
    signal outside a fit only marks the worker as stopping (a fit handles its own)."""
    import torch

    global _STOP
    _STOP = stop
    os.setpgrp()
    try:  # Linux: end with the sweep's process, even one killed -9
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    torch.set_num_threads(threads)
    pids.put(os.getpid())
    logging.getLogger("lightning.pytorch.utilities.rank_zero").setLevel(logging.WARNING)


def _fit_in_worker(child: Child, resume: str | None) -> tuple[str, float, str]:
    """(summary, seconds, status) of one child fitted in a pool worker; status is "ok",
    "failed", "stopped" (by a signal: its run is KILLED with a checkpoint) or "skipped" (the
    pool was stopping before it started)."""
    start = time.perf_counter()
    if _STOP is not None and _STOP.is_set():
        return "not started (stopping)", 0.0, "skipped"
    try:
        outcome = run_fit(child.config, resume=resume).outcome
        return outcome, time.perf_counter() - start, "ok"
    except Interrupted as stop:
        return f"stopped by {stop.signal_name}", time.perf_counter() - start, "stopped"
    except Exception as err:
        return f"FAILED: {type(err).__name__}: {err}", time.perf_counter() - start, "failed"


def usable_cores() -> int:
    """The cores this process may run on (taskset, cgroups, SLURM), not the machine's."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


class _Pool:
    """``workers`` processes (spawned: no state shared with the sweep's process), each with
    ``usable cores // workers`` torch threads, fitting children as they free up. Results come
    back in the order children finish; a worker that dies (killed -9, out of memory) fails
    the children it and the pool had in hand, and the pool starts afresh."""

    def __init__(self, workers: int) -> None:
        import multiprocessing

        from grubench.models.gru_bptt import load_extension

        load_extension()  # built once here, not by every worker at once
        self.workers = workers
        self.context = multiprocessing.get_context("spawn")
        self.threads = max(1, usable_cores() // workers)
        self._pids = self.context.Queue()
        self.stopping = self.context.Event()
        self.pids: set[int] = set()
        self.executor = self._executor()

    def _executor(self):
        from concurrent.futures import ProcessPoolExecutor

        return ProcessPoolExecutor(
            self.workers, mp_context=self.context, initializer=_worker_init,
            initargs=(self.threads, self._pids, self.stopping),
        )  # fmt: skip

    def map(self, prepared: list[tuple[Child, str | None]]):
        from concurrent.futures import as_completed
        from concurrent.futures.process import BrokenProcessPool

        futures = {self.executor.submit(_fit_in_worker, c, r): c for c, r in prepared}
        broken = False
        for future in as_completed(futures):
            try:
                yield futures[future], future.result()
            except BrokenProcessPool:
                broken = True
                yield futures[future], ("FAILED: its worker process died", 0.0, "failed")
        if broken:
            self.executor.shutdown(wait=True)
            self.executor = self._executor()

    def stop(self, signum: int) -> None:
        """Send each worker one stop signal: a fit checkpoints and ends KILLED, a worker
        between fits starts no other."""
        import queue

        if self.stopping.is_set():  # once: a second signal would stop fits without a checkpoint
            return
        self.stopping.set()
        while True:
            try:
                self.pids.add(self._pids.get(timeout=0.2))
            except queue.Empty:
                break
        self.pids |= set(getattr(self.executor, "_processes", None) or {})
        for pid in self.pids:
            try:
                os.kill(pid, signum)
            except ProcessLookupError:
                pass

    def close(self) -> None:
        """Wait for the workers to end; a further signal meanwhile is passed on to them."""
        forward = {signum: signal.getsignal(signum) for signum in (signal.SIGTERM, signal.SIGINT)}
        if threading.current_thread() is threading.main_thread():
            for signum in forward:
                signal.signal(signum, lambda signum, _: self._signal_all(signum))
        try:
            self.executor.shutdown(wait=True, cancel_futures=True)
        finally:
            if threading.current_thread() is threading.main_thread():
                for signum, handler in forward.items():
                    signal.signal(signum, handler)

    def _signal_all(self, signum: int) -> None:
        for pid in self.pids | set(getattr(self.executor, "_processes", None) or {}):
            try:
                os.kill(pid, signum)
            except ProcessLookupError:
                pass


def _resumable(client, existing, child: Child, uri: str) -> tuple[str, int] | None:
    """(run id, checkpoint step) of the child's newest run if it was interrupted (KILLED, or
    left RUNNING by a dead process) with the same settings and has a checkpoint."""
    for run in existing:  # newest first
        tags = run.data.tags
        if tags.get(KEY) != child.key:
            continue
        if tags.get(HASH) != child.config_hash() or run.info.status not in ("KILLED", "RUNNING"):
            return None
        try:
            return run.info.run_id, resume_point(client, run.info.run_id, uri).step
        except ConfigError:  # no checkpoint: it starts again as a new run
            return None
    return None


def _supersede(client, existing, child: Child, keep: str | None = None) -> None:
    """Older unfinished runs of this child (failed, killed, or left RUNNING by a dead
    process), except ``keep`` (resumed), are marked so that the child appears once."""
    for run in existing:
        tags = run.data.tags
        if tags.get(KEY) == child.key and run.info.status != "FINISHED" and run.info.run_id != keep:
            client.set_tag(run.info.run_id, SUPERSEDED, "true")
            if run.info.status == "RUNNING":
                client.set_terminated(run.info.run_id, "KILLED")


def parse_shard(text: str) -> tuple[int, int]:
    try:
        index, count = (int(part) for part in text.split("/"))
    except ValueError:
        print(f"grubench run: error: --shard {text!r}: expected i/n, e.g. 0/2", file=sys.stderr)
        raise SystemExit(2) from None
    return index, count
