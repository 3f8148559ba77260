"""Run an experiment's sweep: one MLflow parent run per invocation, one child run per
(configuration, seed), resumable.

Children are found again by their tags (``grubench.sweep``, ``grubench.child_key``,
``grubench.config_hash``): re-running the same command skips every child that already has a
FINISHED run with the same settings. A child whose newest run was interrupted (KILLED by a
signal) or left RUNNING by a killed process continues that same run from its last checkpoint;
one without a checkpoint, or that FAILED, runs again as a new run, and the old runs are marked
KILLED and tagged ``grubench.superseded``. Either way each child counts once. ``shard=(i, n)``
runs every n-th child starting at i, so n processes can share one sweep against one store
(a RUNNING run is taken for a dead process's: run each shard once at a time).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from grubench.experiment import Child, Experiment, expand, sweep_id
from grubench.fit import ConfigError, quiet_lightning, resume_point, run_fit, validate_fit_config
from grubench.resume import StopSignals
from grubench.tracking import SUPERSEDED, ensure_experiment, get_client, resolve_tracking_uri

ROLE, SWEEP, KEY, HASH = (
    "grubench.role",
    "grubench.sweep",
    "grubench.child_key",
    "grubench.config_hash",
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


def _duration(seconds: float) -> str:
    minutes, seconds = divmod(int(round(seconds)), 60)
    return f"{minutes}m{seconds:02d}s" if minutes else f"{seconds}s"


def run_sweep(
    experiment: Experiment,
    profile: str = "quick",
    tracking_uri: str | None = None,
    overrides: dict[str, Any] | None = None,
    shard: tuple[int, int] = (0, 1),
    dry_run: bool = False,
    echo: Callable[[str], None] = print,
) -> SweepResult:
    index, count = shard
    if not (count >= 1 and 0 <= index < count):
        raise ConfigError([f"shard {index}/{count}: need 0 <= i < n"])
    children = expand(experiment, profile, overrides)[index::count]
    sweep = sweep_id(experiment, profile)
    if dry_run:
        echo(f"{sweep}: {len(children)} children (shard {index}/{count})")
        for child in children:
            echo(f"  {child.key}  [{child.config_hash()}]")
        return SweepResult(total=len(children))
    problems = [f"{c.key}: {p}" for c in children for p in validate_fit_config(c.config)]
    if problems:  # every child is checked before the first one runs
        raise ConfigError(sorted(set(problems)))

    uri = resolve_tracking_uri(tracking_uri)
    client = get_client(uri)
    experiment_id = ensure_experiment(client, experiment.name, uri)
    existing = sweep_runs(client, experiment_id, sweep)
    done = finished_by_key(existing)
    result = SweepResult(total=len(children))
    todo: list[Child] = []
    for child in children:
        if (child.key, child.config_hash()) in done:
            result.skipped += 1
        else:
            todo.append(child)
    echo(
        f"{sweep}: {len(children)} children, {result.skipped} already finished, {len(todo)} to run"
    )
    if not todo:
        return result

    parent = client.create_run(
        experiment_id,
        run_name=f"{sweep} sweep",
        tags={ROLE: "parent", SWEEP: sweep, "grubench.profile": profile,
              "grubench.shard": f"{index}/{count}", "grubench.question": experiment.question},
    )  # fmt: skip
    result.parent_run_id = parent_id = parent.info.run_id
    status, started = "FAILED", time.perf_counter()
    try:
        # Lightning's per-fit banner would bury the progress lines; a signal between two
        # children stops the sweep at once (within one, the fit stops with a checkpoint)
        with quiet_lightning(), StopSignals():
            for position, child in enumerate(todo, 1):
                resume = _resumable(client, existing, child, uri)
                from_step = f" (resuming run {resume[0]} from step {resume[1]})" if resume else ""
                echo(f"[{position}/{len(todo)}] {child.key}{from_step} ...")
                child_start = time.perf_counter()
                _supersede(client, existing, child, keep=resume[0] if resume else None)
                summary = _run_child(
                    child, uri, parent_id, sweep, result, resume[0] if resume else None, client
                )
                elapsed = time.perf_counter() - started
                left = elapsed / position * (len(todo) - position)
                echo(
                    f"[{position}/{len(todo)}] {child.key}: {summary} "
                    f"({_duration(time.perf_counter() - child_start)}; "
                    f"elapsed {_duration(elapsed)}, about {_duration(left)} left)"
                )
        status = "FINISHED" if not result.failed else "FAILED"
        return result
    except (KeyboardInterrupt, SystemExit):
        status = "KILLED"
        raise
    finally:
        client.set_terminated(parent_id, status)


def _run_child(
    child: Child,
    uri: str,
    parent_id: str,
    sweep: str,
    result: SweepResult,
    resume: str | None = None,
    client=None,
) -> str:
    """Fit one child as a tagged child run of ``parent_id`` (or continue its interrupted run
    ``resume``, which moves under ``parent_id``); returns a one-word summary."""
    child.config.tracking_uri = uri
    child.config.run_name = f"{child.label} | s{child.seed}"
    child.config.tags = {
        **child.config.tags,
        "mlflow.parentRunId": parent_id, ROLE: "child", SWEEP: sweep,
        KEY: child.key, HASH: child.config_hash(),
        "grubench.config": child.label, "grubench.seed": str(child.seed),
    }  # fmt: skip
    result.ran += 1
    if resume:
        result.resumed += 1
        client.set_tag(resume, "mlflow.parentRunId", parent_id)
    try:
        return run_fit(child.config, resume=resume).outcome
    except Exception as err:  # the sweep goes on; the child's run is marked FAILED
        result.failed.append(child.key)
        return f"FAILED: {type(err).__name__}: {err}"


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
