"""A sweep child in the store, and fitting one wherever it runs (the sweep's own process, a
pool worker, a Ray task): :func:`fit_child` reads the child's runs itself, so a retry of a
worker that died continues the run that worker left behind.

A child's runs are found by ``grubench.sweep``, ``grubench.child_key`` and
``grubench.config_hash``. A child whose newest run was interrupted (KILLED by a signal, or left
RUNNING by a process that died) continues that run from its last checkpoint; one without a
readable checkpoint, or that FAILED, runs again as a new run, and the old runs are marked
KILLED and tagged ``grubench.superseded``. Either way the child counts once.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from grubench.store.schema import (
    ARM,
    CONDITION,
    CONFIG,
    HASH,
    KEY,
    OUTCOME,
    PARENT_RUN,
    POINT,
    ROLE,
    SEED,
    STAGE,
    SUPERSEDED,
    SWEEP,
    NamedValue,
    RunStatus,
)
from grubench.store.tracking import get_client
from grubench.sweeps.question import Child
from grubench.training.config import CheckpointUnreadable, ConfigError, RunStillRunning, first_line
from grubench.training.fit import resume_point, run_fit
from grubench.training.resume import Interrupted


def sweep_runs(client, experiment_id: str, sweep: str, role: str = "child",
               key: str | None = None) -> list:  # fmt: skip
    """Every run of ``sweep`` with ``role`` (newest first; one child's with ``key``),
    superseded ones excluded."""
    runs, token = [], None
    query = f"tags.`{SWEEP}` = '{sweep}' and tags.`{ROLE}` = '{role}'"
    if key is not None:
        query += f" and tags.`{KEY}` = '{key}'"
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
        if run.info.status == RunStatus.FINISHED and ident not in done:
            done[ident] = run
    return done


class StillRunning(Exception):
    """The child's newest run is RUNNING in a live process of this host (a driver whose
    lease was given up while its fit still checkpoints)."""


@dataclass
class Where:
    """What a child needs to know of its sweep, wherever it runs."""

    uri: str
    experiment_id: str
    parent_id: str
    sweep: str


class ChildStatus(NamedValue):
    """How a child's turn ended, for the sweep (beside its run's :class:`RunStatus`)."""

    OK = "ok"  # fitted, or found finished
    FAILED = "failed"
    STOPPED = "stopped"  # by a signal: its run KILLED, with a checkpoint
    SKIPPED = "skipped"  # a stopping worker did not start it
    HELD = "held"  # its run still runs in another live process


@dataclass
class Outcome:
    summary: str  # the fit's outcome (solved, unsolved, diverged) or why it did not end
    seconds: float
    status: ChildStatus
    note: str = ""  # how it started: resumed, restarted after an unreadable checkpoint
    resumed: bool = False


def fit_child(child: Child, where: Where, announce=None) -> Outcome:
    """Resume or supersede the child's older runs, fit it under ``where.parent_id``;
    ``announce(note)`` is called before the fit starts. Failures come back as an Outcome;
    so does a stop by a signal in a worker, while in the sweep's own process (``announce``
    given) the :class:`Interrupted` goes on up, to stop the sweep."""
    start = time.perf_counter()
    from mlflow.exceptions import MlflowException

    try:
        client = get_client(where.uri)
        existing = sweep_runs(client, where.experiment_id, where.sweep, key=child.key)
        done = finished_by_key(existing).get((child.key, child.config_hash()))
        if done is not None:  # a retry of a worker that died after its run had finished
            outcome = done.data.tags.get(OUTCOME, "finished")
            return Outcome(outcome, 0.0, ChildStatus.OK, f"run {done.info.run_id} had finished")
        note, resume = prepare(child, client, where, existing)
    except StillRunning as running:
        return Outcome(str(running), 0.0, ChildStatus.HELD)
    except (OSError, MlflowException) as err:  # no store: this child fails, not the sweep
        return Outcome(f"FAILED: cannot reach the tracking store {where.uri}: {first_line(err)}",
                       time.perf_counter() - start, ChildStatus.FAILED)  # fmt: skip
    if announce is not None:
        announce(note)
    try:
        outcome = run_fit(child.config, resume=resume).outcome
        return Outcome(
            outcome, time.perf_counter() - start, ChildStatus.OK, note, resume is not None
        )
    except Interrupted as stop:
        if announce is not None:
            raise
        return Outcome(f"stopped by {stop.signal_name}", time.perf_counter() - start,
                       ChildStatus.STOPPED, note, resume is not None)  # fmt: skip
    except Exception as err:
        return Outcome(f"FAILED: {type(err).__name__}: {err}", time.perf_counter() - start,
                       ChildStatus.FAILED, note, resume is not None)  # fmt: skip


def prepare(child: Child, client, where: Where, existing: list) -> tuple[str, str | None]:
    """Tag the child's config as a child run of the sweep's parent; (note, run id to
    continue) after superseding the child's other unfinished runs (``existing``: the
    child's runs, newest first)."""
    resume, note = resumable(client, existing, child, where.uri)
    run_id = resume[0] if resume else None
    supersede(client, existing, child, keep=run_id)
    child.config.tracking_uri = where.uri
    child.config.run_name = f"{child.stage} {child.label} | s{child.seed}"
    child.config.tags = {
        **child.config.tags,
        PARENT_RUN: where.parent_id, ROLE: "child", SWEEP: where.sweep,
        KEY: child.key, HASH: child.config_hash(),
        STAGE: child.stage, ARM: child.arm, CONDITION: child.condition, POINT: child.point,
        CONFIG: child.label, SEED: str(child.seed),
    }  # fmt: skip
    if run_id:
        client.set_tag(run_id, PARENT_RUN, where.parent_id)
        note = f"resuming run {run_id} from step {resume[1]}"
    return note, run_id


def resumable(client, existing, child: Child, uri: str) -> tuple[tuple[str, int] | None, str]:
    """((run id, checkpoint step) of the child's newest run if it was interrupted (KILLED,
    or left RUNNING by a dead process) with the same settings and has a readable checkpoint,
    or None; a note when its checkpoint could not be used)."""
    for run in existing:  # newest first
        tags = run.data.tags
        if tags.get(KEY) != child.key:
            continue
        if tags.get(HASH) != child.config_hash() or run.info.status not in (
            RunStatus.KILLED,
            RunStatus.RUNNING,
        ):
            return None, ""
        try:
            return (run.info.run_id, resume_point(client, run.info.run_id, uri).step), ""
        except RunStillRunning as err:  # its process lives: not this driver's to take
            raise StillRunning(err.problems[0].split(": ", 1)[1]) from None
        except CheckpointUnreadable:
            return None, f"run {run.info.run_id}'s checkpoint cannot be read: starting afresh"
        except ConfigError:  # no checkpoint: it starts afresh
            return None, ""
    return None, ""


def supersede(client, existing, child: Child, keep: str | None = None) -> None:
    """Older unfinished runs of this child (failed, killed, or left RUNNING by a dead
    process), except ``keep`` (resumed), are marked so that the child appears once."""
    for run in existing:
        tags = run.data.tags
        if (
            tags.get(KEY) == child.key
            and run.info.status != RunStatus.FINISHED
            and run.info.run_id != keep
        ):
            client.set_tag(run.info.run_id, SUPERSEDED, "true")
            if run.info.status == RunStatus.RUNNING:
                client.set_terminated(run.info.run_id, RunStatus.KILLED)
