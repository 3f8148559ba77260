"""Run an experiment's sweep: one MLflow parent run per invocation; the tuning stage, the
selection, then the evaluation stage, one child run per child; resumable.

The tuning stage runs every (arm, condition, grid point, tuning seed); the selection is then
read back from the store (:func:`grubench.sweeps.selection.select`: the best mean validation
score per arm and condition, logged as the parent's ``selection.json``), and the evaluation
stage runs each arm's kept point on the evaluation seeds. Children are tagged with their stage,
arm, condition and point (:mod:`grubench.sweeps.children`). Re-running the same command skips every
child that already has a FINISHED run with the same settings, and continues an interrupted one from
its checkpoint.

Children run one at a time in this process, on ``workers`` local processes, or as Ray tasks
(:mod:`grubench.sweeps.executors`). A driver takes a child's lease before starting it
(:mod:`grubench.store.leases`), so several drivers on one store (the same command started twice, or
on several machines against one ``mlflow server``) share the sweep: each child is run once, by
one of them; a child leased by a live driver is waited for, a dead driver's is taken over.
"""

from __future__ import annotations

import math
import signal
import statistics
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from grubench.store.leases import Leases
from grubench.store.runs import run_steps
from grubench.store.schema import PROFILE, QUESTION, ROLE, SWEEP, RunStatus
from grubench.store.tracking import ensure_experiment, get_client, resolve_tracking_uri
from grubench.store.views import write_sweep_view
from grubench.sweeps.children import (
    ChildStatus,
    Outcome,
    Where,
    finished_by_key,
    sweep_runs,
)
from grubench.sweeps.executors import Pool, RayTasks, Serial, gpus_per_child, usable_cores
from grubench.sweeps.ladder import allowed, reach
from grubench.sweeps.question import Child, Question, expand, expand_tuning, sweep_id
from grubench.sweeps.selection import Selection, select
from grubench.training.config import ConfigError, quiet_lightning, validate_fit_config
from grubench.training.resume import Interrupted, StopSignals


@dataclass
class SweepResult:
    total: int
    skipped: int = 0  # finished before this invocation, or by another driver during it
    ran: int = 0  # fitted by this invocation, resumed ones included
    resumed: int = 0  # continued from a checkpoint of an interrupted run
    failed: list[str] = field(default_factory=list)
    # child key -> why it failed (the sweep's summary)
    reasons: dict[str, str] = field(default_factory=dict)
    parent_run_id: str | None = None
    # (arm, condition) -> the tuning point kept for evaluation
    selected: dict[tuple[str, str], str] = field(default_factory=dict)


def _duration(seconds: float) -> str:
    minutes, seconds = divmod(int(round(seconds)), 60)
    return f"{minutes}m{seconds:02d}s" if minutes else f"{seconds}s"


def selection_from_store(tuning: list[Child], existing) -> dict[tuple[str, str], Selection]:
    """Select on the finished tuning runs whose settings match the children's."""
    done = finished_by_key(existing)
    by_key = {c.key: done[(c.key, c.config_hash())] for c in tuning
              if (c.key, c.config_hash()) in done}  # fmt: skip
    return select(tuning, by_key)


@dataclass
class SweepPlan:
    """What a sweep runs, known before the store is opened (what ``--dry-run`` prints): the
    tuning children, and the evaluation children at each cell's first point (each differs from
    the one run after the selection only in its point, so checking them checks those)."""

    question: Question
    profile: str
    overrides: dict[str, Any] | None
    sweep: str
    tuning: list[Child]
    evaluation: list[Child]
    workers: int  # children at once here (1 on a Ray cluster)

    @property
    def total(self) -> int:
        return len(self.tuning) + len(self.evaluation)

    def problems(self) -> list[str]:
        """Every child's config problems, one line each, sorted."""
        return sorted({f"{c.key}: {p}" for c in self.tuning + self.evaluation
                       for p in validate_fit_config(c.config)})  # fmt: skip

    def show(self, echo: Callable[[str], None]) -> None:
        echo(f"{self.sweep}: {self.total} children: {len(self.tuning)} tuning, "
             f"{len(self.evaluation)} evaluation"
             f"{LADDER_NOTE if self.question.ladders else ''}")  # fmt: skip
        for child in self.tuning:
            echo(f"  {child.key}  [{child.config_hash()}]")
        point = " at the selected point" if self.question.tuned else ""
        for child in self.evaluation:
            echo(f"  {child.key}{point}")


@dataclass
class PlanStatus:
    """What the store holds of a plan: children finished, to run, and the time those take
    at the median duration of the finished ones (None before any has finished)."""

    finished: int
    to_run: int
    seconds: float | None

    def line(self, plan: SweepPlan) -> str:
        about = "no finished child to estimate the time from"
        if self.seconds is not None:
            about = f"about {max(1, round(self.seconds / 60))} min with {plan.workers} at once"
        if not self.to_run:
            about = "nothing to run"
        return (f"{plan.sweep}: {plan.total} children: {self.finished} finished, "
                f"{self.to_run} to run, {about}")  # fmt: skip


def plan_status(plan: SweepPlan, uri: str) -> PlanStatus:
    """Read (never write) what the store at ``uri`` has finished of ``plan``, counting as the
    sweep would: tuning children by key and settings, evaluation children at the selection
    the finished tuning runs make (cells still tuning: all of theirs to run); with ladders, the
    rungs each arm has reached so far."""
    from grubench.store.health import store_problem

    if store_problem(uri, must_exist=True):  # no store yet: reading it would create it
        return PlanStatus(0, plan.total, None)
    client = get_client(uri)
    experiment = client.get_experiment_by_name(plan.question.name)
    if experiment is None:
        return PlanStatus(0, plan.total, None)
    existing = sweep_runs(client, experiment.experiment_id, plan.sweep)
    done = finished_by_key(existing)
    now = _pending(plan, existing)
    # with ladders, only the rungs reached so far (the next ones open as arms solve)
    finished, to_run = now.finished, now.to_run
    durations = [(run.info.end_time - run.info.start_time) / 1000 for run in done.values()
                 if run.info.end_time and run.info.start_time]  # fmt: skip
    seconds = None
    if durations:
        seconds = statistics.median(durations) * to_run / max(1, plan.workers)
    return PlanStatus(finished, to_run, seconds)


def plan_sweep(
    question: Question,
    profile: str = "quick",
    overrides: dict[str, Any] | None = None,
    workers: int | str = 1,
    ray_address: str | None = None,
    cpus_per_child: int = 1,
) -> SweepPlan:
    """The sweep's children and how many run at once; touches no store."""
    tuning = expand_tuning(question, profile, overrides)
    first = {(a, c): next(iter(question.points_for(a, profile))) for a in question.arms
             for c in question.conditions_for(profile)} if question.tuned else None  # fmt: skip
    evaluation = expand(question, profile, overrides, first)
    workers = _workers(workers, ray_address, cpus_per_child, (tuning or evaluation)[0], overrides)
    return SweepPlan(question, profile, overrides, sweep_id(question, profile), tuning,
                     evaluation, workers)  # fmt: skip


def run_sweep(
    question: Question,
    profile: str = "quick",
    tracking_uri: str | None = None,
    overrides: dict[str, Any] | None = None,
    dry_run: bool = False,
    echo: Callable[[str], None] = print,
    workers: int | str = 1,
    ray_address: str | None = None,
    cpus_per_child: int = 1,
    lease_ttl: float = 90.0,
    poll: float = 5.0,
) -> SweepResult:
    """The tuning stage, the selection (read back from the store), then the evaluation
    stage, under one parent run. ``workers`` > 1 fits that many children at once in local
    worker processes, each with its share of the cores; ``ray_address`` sends every child to
    that Ray cluster as a task asking for ``cpus_per_child`` CPUs (and its Trainer's GPUs).
    Children leased by another live driver are waited for (polling every ``poll`` s)."""
    plan = plan_sweep(question, profile, overrides, workers, ray_address, cpus_per_child)
    if dry_run:
        plan.show(echo)
        return SweepResult(total=plan.total)
    problems = plan.problems()
    if problems:  # every child is checked before the first one runs
        raise ConfigError(problems)
    uri = resolve_tracking_uri(tracking_uri)
    executor = None
    if ray_address:  # connected before the store is opened: a bad address leaves nothing
        first_child = (plan.tuning or plan.evaluation)[0]
        executor = RayTasks(ray_address, Where(uri, "", "", plan.sweep), cpus_per_child,
                            gpus_per_child(first_child))  # fmt: skip
    return _execute(plan, uri, executor, echo, lease_ttl, poll)


def _execute(plan: SweepPlan, uri: str, executor, echo, lease_ttl: float, poll: float):
    """Run what ``plan`` holds that the store does not have finished, under a new parent run."""
    question, profile, sweep = plan.question, plan.profile, plan.sweep
    client = get_client(uri)
    experiment_id = ensure_experiment(client, question.name, uri)
    write_view(client, experiment_id, question, profile, plan.tuning + plan.evaluation)
    existing = sweep_runs(client, experiment_id, sweep)
    result = SweepResult(total=plan.total)
    now = _pending(plan, existing)
    selection, todo, eval_todo = now.selection, now.todo, now.eval_todo
    result.skipped = now.finished
    echo(f"{sweep}: {plan.total} children ({len(plan.tuning)} tuning, {len(plan.evaluation)} "
         f"evaluation{LADDER_NOTE if plan.question.ladders else ''}), {result.skipped} already "
         f"finished, {now.to_run} to run")  # fmt: skip
    if not now.to_run:
        result.selected = _points(selection)
        if executor is not None:
            executor.close()
        return result

    parent = client.create_run(
        experiment_id,
        run_name=f"{sweep} sweep",
        tags={ROLE: "parent", SWEEP: sweep, PROFILE: profile, QUESTION: question.text},
    )  # fmt: skip
    result.parent_run_id = parent_id = parent.info.run_id
    where = Where(uri, experiment_id, parent_id, sweep)
    progress = _Progress(now.to_run, time.perf_counter(), echo)
    leases = Leases(client, experiment_id, sweep, ttl=lease_ttl, beat=min(15.0, lease_ttl / 6))
    status = RunStatus.FAILED
    try:
        # the leases are released only once the executor has stopped: until then, another
        # driver must not take a child whose fit is still writing its checkpoint
        with leases:
            try:
                stages = _Stages(plan, client, where, result, progress, leases, poll)
                status = stages.run(executor, todo, eval_todo, selection)
            except BaseException as stop:
                status = (
                    RunStatus.KILLED
                    if isinstance(stop, (KeyboardInterrupt, SystemExit))
                    else RunStatus.FAILED
                )
                raise
        return result
    finally:
        client.set_terminated(parent_id, status)


@dataclass
class _Stages:
    """The tuning stage, the selection, then the evaluation stage, on one executor."""

    plan: SweepPlan
    client: Any
    where: Where
    result: SweepResult
    progress: _Progress
    leases: Leases
    poll: float

    def _existing(self):
        return sweep_runs(self.client, self.where.experiment_id, self.where.sweep)

    def run(self, executor, todo: list[Child], eval_todo: list[Child], selection) -> RunStatus:
        """The parent run's status once both stages ran (raises what stopped them)."""
        plan, result, progress = self.plan, self.result, self.progress
        try:
            if executor is not None:
                executor.where = self.where
            elif min(plan.workers, progress.total) > 1:
                executor = Pool(min(plan.workers, progress.total), self.where)
            else:
                executor = Serial(self.where, progress.starting)
            stage = _Stage(self.client, self.where, result, progress, executor, self.leases,
                           self.poll)  # fmt: skip
            # Lightning's per-fit banner would bury the progress lines; a signal between two
            # children stops the sweep at once (within one, the fit checkpoints)
            with quiet_lightning(), StopSignals():
                shown: set = set()
                while True:  # one round; with ladders, again while a rung opens
                    stage.run(todo)
                    if todo or stage.others:  # the tuning runs just made count
                        selection, eval_todo = _after_tuning(self.client, plan, self.where)
                        progress.total = progress.position + len(eval_todo)
                    result.selected = _points(selection)
                    if plan.question.tuned and set(result.selected.items()) - shown:
                        _record_selection(self.client, self.where.parent_id, selection,
                                          progress.echo, shown)  # fmt: skip
                        shown |= set(result.selected.items())
                    stage.run(eval_todo)
                    if not plan.question.ladders:
                        break
                    now = _pending(plan, self._existing())
                    if not now.todo and not now.eval_todo:
                        break
                    selection, todo, eval_todo = now.selection, now.todo, now.eval_todo
                    progress.total = progress.position + now.to_run
                    progress.echo(f"{plan.sweep}: a ladder's next rung(s): {now.to_run} "
                                  "children to run")  # fmt: skip
            return RunStatus.FAILED if result.failed else RunStatus.FINISHED
        except BaseException as stop:
            if executor is not None:  # each worker stops its fit with a checkpoint
                executor.stop(getattr(stop, "signum", None) or signal.SIGTERM)
            raise
        finally:
            if executor is not None:
                executor.close()


def _workers(
    workers: int | str, ray_address: str | None, cpus_per_child: int, first_child, overrides
) -> int:
    """How many children run at once here (1 on a Ray cluster, whose CPUs decide)."""
    if workers != "auto" and not (isinstance(workers, int) and workers >= 1):
        raise ConfigError([f"workers {workers!r}: need a whole number >= 1 or 'auto'"])
    if not (isinstance(cpus_per_child, int) and cpus_per_child >= 1):
        raise ConfigError([f"cpus per child {cpus_per_child!r}: need a whole number >= 1"])
    if workers == "auto":
        workers = 1 if ray_address else auto_workers(first_child)
    if ray_address and workers > 1:
        raise ConfigError([f"workers {workers} with a Ray address: the cluster's CPUs set how "
                           "many children run at once; leave --workers out"])  # fmt: skip
    devices = (overrides or {}).get("trainer", {}).get("devices")
    if workers > 1 and devices not in (None, 1, "1", "auto"):
        raise ConfigError([f"workers {workers} with trainer.devices {devices!r}: a multi-device "
                           "fit launches processes of its own; use one worker"])  # fmt: skip
    return workers


def _to_evaluate(plan: SweepPlan, existing) -> tuple[dict, list[Child], list[Child]]:
    """The selection made on the ``existing`` runs, the evaluation children at it that a
    ladder lets run, and those of them not finished yet."""
    return _evaluation_state(plan, existing)[:3]


def _evaluation_state(plan: SweepPlan, existing):
    """``_to_evaluate``'s three, and the ladders' reach they were filtered by (None: no
    ladder), read from the store once."""
    selection = selection_from_store(plan.tuning, existing)
    done = finished_by_key(existing)
    children = _evaluation(plan.question, plan.profile, plan.overrides, selection)
    cells = _reach(plan, children, done)
    evaluation = [c for c in children if allowed(cells, c.arm, c.condition)]
    todo = [c for c in evaluation if (c.key, c.config_hash()) not in done]
    return selection, evaluation, todo, cells


def _reach(plan: SweepPlan, children: list[Child], done: dict) -> dict[str, set[str]] | None:
    """Per ladder rung, the arms that may run it, from the finished runs (``done``) of the
    evaluation ``children`` at the selection (None: the question has no ladder)."""
    question = plan.question
    if not question.ladders:
        return None
    runs: dict[tuple[str, str], list] = {}
    for child in children:
        run = done.get((child.key, child.config_hash()))
        runs.setdefault((child.arm, child.condition), []).extend([run] if run else [])
    seeds = len(question.seeds[plan.profile])

    def outcomes(arm: str, condition: str) -> tuple[int, int, int]:
        finished = runs.get((arm, condition), [])
        return sum(math.isfinite(run_steps(r)) for r in finished), len(finished), seeds

    return reach(question.arms, question.ladders, plan.profile, outcomes)


@dataclass
class _Now:
    """What the store holds of a plan now: the selection, the tuning and evaluation children
    to run (ladders: on the rungs each arm has reached), and the counts."""

    selection: dict
    todo: list[Child]
    eval_todo: list[Child]
    finished: int  # children of the reachable cells already finished
    to_run: int  # todo, eval_todo, and the evaluation children of cells still being tuned


def _pending(plan: SweepPlan, existing) -> _Now:
    done = finished_by_key(existing)
    selection, evaluation, eval_todo, cells = _evaluation_state(plan, existing)
    tuning = [c for c in plan.tuning if allowed(cells, c.arm, c.condition)]
    todo = [c for c in tuning if (c.key, c.config_hash()) not in done]
    # the evaluation children of reachable cells still being tuned (all to run)
    selected = {(c.arm, c.condition) for c in evaluation}
    waiting = [c for c in plan.evaluation if allowed(cells, c.arm, c.condition)
               and (c.arm, c.condition) not in selected]  # fmt: skip
    finished = len(tuning) - len(todo) + len(evaluation) - len(eval_todo)
    return _Now(selection, todo, eval_todo, finished, len(todo) + len(eval_todo) + len(waiting))


# said of a plan with ladders: its counts are the most it can run
LADDER_NOTE = "; at most: ladders stop where an arm stops solving"


def _after_tuning(client, plan: SweepPlan, where: Where):
    """The selection read back from the store once tuning ran, and the evaluation children
    still to run at it."""
    selection, _, eval_todo = _to_evaluate(
        plan, sweep_runs(client, where.experiment_id, where.sweep)
    )
    return selection, eval_todo


def _record_selection(client, parent_id: str, selection, echo, shown=frozenset()) -> None:
    client.log_dict(parent_id, _selection_record(selection), "selection.json")
    for (arm, condition), kept in sorted(selection.items()):
        if ((arm, condition), kept.point) in shown:
            continue
        echo(f"selected for {', '.join(p for p in (arm, condition) if p)}: {kept.point} "
             f"(mean validation score {kept.scores[kept.point]:.3f})")  # fmt: skip


def write_view(client, experiment_id: str, question: Question, profile: str,
               children: list[Child]) -> str:  # fmt: skip
    """Save the sweep's MLflow UI view (its evaluation runs grouped by arm and condition,
    their final scores and learning curves); its share key."""
    from grubench.tasks import build_task

    tasks = {(c.config.task.name, c.config.task.seq_len): c.config.task for c in children}
    objectives = sorted({build_task(t.name, t.seq_len, **t.options).objective.metric
                         for t in tasks.values()})  # fmt: skip
    cells = sorted({(c.arm, c.condition) for c in children})
    return write_sweep_view(client, experiment_id, sweep_id(question, profile), objectives,
                            cells)  # fmt: skip


AUTO_WORKERS_MAX = 8  # each worker holds torch (0.6 GB resident) and writes to the store


def auto_workers(child: Child) -> int:
    """``--workers auto``: one single-threaded child per usable core (up to
    ``AUTO_WORKERS_MAX``) when the children (all trained like ``child``) train on the CPU; 1
    when their Trainer takes an accelerator (Lightning's default "auto" takes a GPU where one
    is visible)."""
    accelerator = str(child.config.trainer.get("accelerator", "auto"))
    if accelerator == "auto":
        import torch

        gpu = torch.cuda.is_available() or torch.backends.mps.is_available()
        accelerator = "gpu" if gpu else "cpu"
    return min(usable_cores(), AUTO_WORKERS_MAX) if accelerator == "cpu" else 1


def _evaluation(question, profile, overrides, selection) -> list[Child]:
    """The evaluation children of the cells that have a selection."""
    return expand(question, profile, overrides, _points(selection))


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

    def starting(self, child: Child, note: str) -> None:
        """A child about to fit in this process."""
        self.position += 1
        self.line(child, f" ({note}) ..." if note else " ...")

    def ended(self, child: Child, outcome: Outcome, counted: bool) -> None:
        if not counted:
            self.position += 1
        elapsed = time.perf_counter() - self.started
        left = elapsed / max(self.position, 1) * max(self.total - self.position, 0)
        note = f" [{outcome.note}]" if outcome.note and not counted else ""
        self.line(child, f": {outcome.summary}{note} ({_duration(outcome.seconds)}; "
                  f"elapsed {_duration(elapsed)}, about {_duration(left)} left)")  # fmt: skip


@dataclass
class _Stage:
    """Runs one stage's children on the executor, each under this driver's lease; a child
    another live driver holds is waited for until that driver ends it (FINISHED: skipped
    here) or its lease goes stale (then this driver takes it over)."""

    client: Any
    where: Where
    result: SweepResult
    progress: _Progress
    executor: Any
    leases: Leases
    poll: float
    others: int = 0  # children of this stage that another driver ran

    def run(self, children: list[Child]) -> None:
        queue, held = deque(children), {}
        told: set[str] = set()
        while queue or held or self.executor.busy:
            while queue and self.executor.free:
                child = queue.popleft()
                held.pop(child.key, None)
                other = self.leases.claim(child.key)
                if other is not None:
                    held[child.key] = child
                    if other.owner not in told:
                        told.add(other.owner)
                        self.progress.echo(f"{child.key}: run by {other.describe()}; this "
                                           "driver takes others and waits for it")  # fmt: skip
                    continue
                if self._finished(child):  # by another driver since this one looked
                    self.leases.release(child.key)
                    self.others += 1
                    self.result.skipped += 1
                    self.progress.position += 1
                    self.progress.line(child, ": finished by another driver")
                    continue
                self.executor.submit(child)
            if self.executor.busy:
                for child, outcome in self.executor.wait(timeout=self.poll):
                    if outcome.status == ChildStatus.HELD:  # still fitting elsewhere: wait for it
                        self.leases.release(child.key)
                        held[child.key] = child
                        if child.key not in told:
                            told.add(child.key)
                            self.progress.echo(f"{child.key}: {outcome.summary}; waiting")
                        continue
                    self._ended(child, outcome)
            elif held and not queue:
                time.sleep(self.poll)
            if held and not queue:  # look at the held ones again
                queue.extend(held.values())

    def _finished(self, child: Child) -> bool:
        runs = sweep_runs(self.client, self.where.experiment_id, self.where.sweep, key=child.key)
        return (child.key, child.config_hash()) in finished_by_key(runs)

    def _ended(self, child: Child, outcome: Outcome) -> None:
        self.leases.release(child.key)
        # a worker signalled between fits: the sweep stops
        if outcome.status == ChildStatus.SKIPPED:
            raise Interrupted(signal.SIGTERM)
        self.result.ran += 1
        self.result.resumed += outcome.resumed
        if outcome.status == ChildStatus.FAILED:
            self.result.failed.append(child.key)
            self.result.reasons[child.key] = outcome.summary
        self.progress.ended(child, outcome, counted=getattr(self.executor, "announced", False))
        # a worker was signalled directly: the sweep stops too
        if outcome.status == ChildStatus.STOPPED:
            raise Interrupted(signal.SIGTERM)
