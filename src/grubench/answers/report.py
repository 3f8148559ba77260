"""The answer to a question, read from the MLflow store only.

``build_report`` takes the newest FINISHED run of every child of the experiment's current
definition (tuning and evaluation stages), redoes the selection from the tuning runs, and
aggregates the evaluation runs per (arm, condition) with the statistics of
:mod:`grubench.answers.stats`: the IQM of the normalized test scores with a bootstrap interval, the
solved rate with a Wilson interval, the median steps to solve with unsolved runs censored.
The verdict speaks of arms: P(A > B) over conditions with a stratified bootstrap interval,
"better" only when the interval excludes 0.5. Each tip of the experiment gets its label from
the same computation on its claim's measure. ``write_report`` renders the Markdown and the
learning curves (one panel per condition, one colour per arm) and logs them as artifacts of
the sweep's newest parent run.
"""

from __future__ import annotations

import itertools
import math
import statistics
from dataclasses import dataclass, field
from typing import Any

from grubench.answers import stats
from grubench.store.measures import MEASURES
from grubench.store.runs import diverged, run_score
from grubench.store.schema import (
    CHANCE_LEVEL,
    OBJECTIVE,
    PARAM_COUNT,
    PARENT_RUN,
    POINT,
    STEPS,
    TEST_SCORE,
    RunStatus,
)
from grubench.store.tracking import get_client, resolve_tracking_uri
from grubench.sweeps.children import finished_by_key, sweep_runs
from grubench.sweeps.question import Claim, Question, Tip, expand, expand_tuning, sweep_id
from grubench.sweeps.selection import Selection, select
from grubench.tasks import build_task


@dataclass
class Cell:
    """An arm under a condition: its evaluation runs and their statistics."""

    arm: str
    condition: str
    metric: str = ""  # the objective, e.g. "mse"
    selected: str = ""  # the tuning point it was evaluated at
    tuning: Selection | None = None
    run_ids: list[str] = field(default_factory=list)
    scores: list[float] = field(default_factory=list)  # normalized test score per run
    steps: list[float] = field(default_factory=list)  # steps to solve, inf if never
    ms_per_step: list[float] = field(default_factory=list)
    gaps: list[float] = field(default_factory=list)  # normalized train - validation score
    test_values: list[float] = field(default_factory=list)  # the objective on the test split
    diverged: int = 0
    params: int | None = None
    chance: float | None = None  # the task's chance level of the metric
    solvable: bool = True  # False: the task has no solved threshold (char_lm), no steps to solve

    @property
    def name(self) -> str:
        return ", ".join(part for part in (self.arm, self.condition) if part)

    @property
    def runs(self) -> int:
        return len(self.run_ids)

    @property
    def solved(self) -> int:
        return sum(math.isfinite(s) for s in self.steps)

    # each measure's values, per run (the measure's name -> the list it fills)
    _LISTS = {"score": "scores", "steps_to_solve": "steps", "ms_per_step": "ms_per_step",
              "gap": "gaps"}  # fmt: skip

    def values(self, name: str) -> list[float]:
        if name not in MEASURES:
            raise ValueError(f"unknown measure {name!r}; choose from: {', '.join(MEASURES)}")
        return getattr(self, self._LISTS[name])

    def measure(self, name: str) -> list[float]:
        """Per run, the measure with higher = better (what P(A > B) compares)."""
        values = self.values(name)
        return MEASURES[name].oriented(values)


@dataclass
class ClaimResult:
    claim: Claim
    p: stats.Interval
    fewest_seeds: int

    @property
    def label(self) -> str:
        return stats.label(self.p, self.fewest_seeds)


@dataclass
class Report:
    question: Question
    profile: str
    cells: list[Cell]
    missing: list[str]  # children without a finished run
    # (measure, A, B, P(A > B), fewest seeds)
    comparisons: list[tuple[str, str, str, stats.Interval, int]]
    tips: list[tuple[Tip, list[ClaimResult]]]
    seconds: float = 0.0  # wall time of the sweep's invocations (parent runs)
    steps_trained: int = 0  # over every finished run of both stages
    steps_budgeted: int = 0  # what their max_steps allowed
    stop_after_solved: int = 0  # the children's stop rule (validations held solved)
    other_settings: int = 0  # children counted with a run of settings other than the file's
    search: Any = (
        None  # a search's SearchSummary (grubench.answers.importance): importances, best trials
    )

    @property
    def verdict(self) -> str:
        if not any(cell.runs for cell in self.cells):
            return "No finished evaluation runs to compare yet."
        lines = [
            stats.compare(a, b, p, n, f"{MEASURE_WORDS[m]}:") for m, a, b, p, n in self.comparisons
        ]
        return "\n".join(f"- {line}" for line in lines) or "Only one arm has results."


MEASURE_WORDS = {name: measure.words for name, measure in MEASURES.items()}


def _cells(question: Question, profile: str) -> list[tuple[str, str]]:
    return [(a, c) for a in question.arms for c in question.conditions_for(profile)]


def claim_result(cells: list[Cell], claim: Claim, conditions: list[str]) -> ClaimResult:
    """P(claim.better beats claim.worse) on the claim's measure over its conditions (those of
    ``conditions`` the claim names, or all); a condition where either arm has no evaluation
    runs yet leaves the claim at "too few seeds", whatever the others say."""
    by_arm: dict[str, dict[str, Cell]] = {}
    unsolvable = {cell.condition for cell in cells if not cell.solvable}
    for cell in cells:
        if cell.runs:
            by_arm.setdefault(cell.arm, {})[cell.condition] = cell
    better, worse = by_arm.get(claim.better, {}), by_arm.get(claim.worse, {})
    wanted = [c for c in conditions if not claim.conditions or c in claim.conditions]
    if claim.measure == "steps_to_solve":  # only where the task can be solved
        wanted = [c for c in wanted if c not in unsolvable]
    both = [c for c in wanted if c in better and c in worse]
    a = [better[c].measure(claim.measure) for c in both]
    b = [worse[c].measure(claim.measure) for c in both]
    fewest = min([len(x) for x in a + b], default=0) if len(both) == len(wanted) else 0
    return ClaimResult(claim, stats.probability_of_improvement(a, b), fewest)


def build_report(question: Question, profile: str, tracking_uri: str | None = None) -> Report:
    """The report of the store's runs; a search's studies are synced with them first."""
    uri = resolve_tracking_uri(tracking_uri)
    return build_report_from(get_client(uri), question, profile, uri)


def build_report_from(client, question: Question, profile: str, uri: str | None = None) -> Report:
    """The report from ``client``'s store (``uri``: where a search's Optuna studies live)."""
    mlflow_experiment = client.get_experiment_by_name(question.name)
    finished, newest, seconds = {}, {}, 0.0
    if mlflow_experiment is not None:
        sweep = sweep_id(question, profile)
        children = sweep_runs(client, mlflow_experiment.experiment_id, sweep)
        finished = finished_by_key(children)
        for (key, _), run in finished.items():  # newest first
            newest.setdefault(key, run)
        seconds = sweep_seconds(client, question, profile, children)
    other_settings: set[str] = set()

    def run_of(child):
        """The child's newest finished run with the file's settings; else, with a note, its
        newest with others (a sweep run with command-line Trainer options, such as
        accelerator and devices, is still the same child)."""
        run = finished.get((child.key, child.config_hash()))
        if run is None and child.key in newest:
            run = newest[child.key]
            other_settings.add(child.key)
        return run

    tuning = expand_tuning(question, profile)
    tuning_runs = {c.key: run for c in tuning if (run := run_of(c)) is not None}
    selection = select(tuning, tuning_runs)
    used = list(tuning_runs.values())
    missing = [c.key for c in tuning if c.key not in tuning_runs]
    points = {cell: kept.point for cell, kept in selection.items()}
    cells = {}
    for child in expand(question, profile, selected=points):
        cell = cells.get((child.arm, child.condition))
        if cell is None:  # built once per cell: its task says whether it can be solved
            cell = cells[(child.arm, child.condition)] = Cell(
                child.arm, child.condition, selected=child.point,
                tuning=selection.get((child.arm, child.condition)),
                solvable=_solvable(child.config.task),
            )  # fmt: skip
        run = run_of(child)
        if run is None or (question.tuned and run.data.tags.get(POINT) != child.point):
            missing.append(child.key)  # not run yet at the selected point
            other_settings.discard(child.key)
            continue
        if math.isnan(run_score(run, TEST_SCORE)):
            missing.append(f"{child.key} (no test score)")
            continue
        used.append(run)
        metrics = run.data.metrics
        cell.metric = run.data.tags.get(OBJECTIVE, "")
        cell.run_ids.append(run.info.run_id)
        cell.params = int(metrics.get(PARAM_COUNT, 0)) or cell.params
        cell.chance = metrics.get(CHANCE_LEVEL, cell.chance)
        for measure in MEASURES.values():
            if (value := measure.read(run)) is not None:
                cell.values(measure.name).append(value)
        if diverged(run):
            cell.diverged += 1
        elif f"test/{cell.metric}" in metrics:
            cell.test_values.append(metrics[f"test/{cell.metric}"])
    for arm, condition in _cells(question, profile):  # cells still being tuned
        if (arm, condition) not in cells:
            cells[(arm, condition)] = Cell(arm, condition)
            missing += [f"{arm}, {condition} (evaluation: tuning not finished)"]
    found, conditions = list(cells.values()), list(question.conditions_for(profile))
    comparisons = []
    for measure in question.verdict_measures:
        for a, b in _pairs(question):
            result = claim_result(found, Claim(a, b, measure), conditions)
            if not math.isnan(result.p.estimate):
                comparisons.append((measure, a, b, result.p, result.fewest_seeds))
    tips = [(tip, [claim_result(found, claim, conditions) for claim in tip.claims])
            for tip in question.tips]  # fmt: skip
    trained = budgeted = 0
    for run in used:
        if STEPS in run.data.metrics and "trainer.max_steps" in run.data.params:
            trained += int(run.data.metrics[STEPS])
            budgeted += int(run.data.params["trainer.max_steps"])
    children = tuning or expand(question, profile)
    stop = max((c.config.stop_after_solved for c in children), default=0)
    report = Report(question, profile, list(cells.values()), missing, comparisons, tips,
                    seconds, trained, budgeted, stop, len(other_settings))  # fmt: skip
    if question.search is not None and uri is not None:
        from grubench.answers.importance import summarize

        report.search = summarize(question, profile, uri, tuning, finished)
    return report


def _solvable(task_config) -> bool:
    task = build_task(task_config.name, task_config.seq_len, **task_config.options)
    return task.objective.solved_threshold is not None


def _pairs(question: Question) -> list[tuple[str, str]]:
    """Each arm against the baseline when the question names one, else every pair."""
    arms = list(question.arms)
    if question.baseline:
        return [(a, question.baseline) for a in arms if a != question.baseline]
    return list(itertools.combinations(arms, 2))


def _fmt(value: float | None) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if math.isinf(value):
        return "never"
    if value == 0:
        return "0"
    if abs(value) >= 1000 or abs(value) < 0.001:
        return f"{value:.2e}"
    return f"{value:.4g}"


def duration(seconds: float) -> str:
    minutes, seconds = divmod(int(round(seconds)), 60)
    return f"{minutes}m{seconds:02d}s"


def to_markdown(report: Report, heading: str = "###") -> str:
    question = report.question
    lines = [
        f"{heading} {question.text}",
        "",
        "Score: the normalized test score (0 = the task's chance level, 1 = perfect), IQM over "
        "the evaluation seeds with its 95% bootstrap interval; solved: rate with its 95% Wilson "
        "interval; steps to solve: median, runs that never solved counted as never.",
        "",
        "| arm | condition | selected | score IQM [95% CI] | test metric (mean) | solved "
        "| median steps to solve | ms/step | params | diverged |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for cell in report.cells:
        if not cell.runs:
            lines.append(f"| {cell.arm} | {cell.condition} | {cell.selected or '–'} | "
                         "not run yet | | | | | | |")  # fmt: skip
            continue
        score = stats.bootstrap_interval(cell.scores)
        solved = stats.wilson_interval(cell.solved, cell.runs)
        mean = statistics.fmean(cell.test_values) if cell.test_values else None
        ms = statistics.median(cell.ms_per_step) if cell.ms_per_step else None
        solved_text, steps_text = "n/a (no threshold)", "n/a"
        if cell.solvable:
            solved_text = f"{cell.solved}/{cell.runs} [{solved.low:.2f}, {solved.high:.2f}]"
            steps_text = _fmt(stats.censored_median(cell.steps))
        lines.append(
            f"| {cell.arm} | {cell.condition or '–'} | {cell.selected or '–'} | {score} "
            f"({cell.runs}) | {cell.metric} {_fmt(mean)} | {solved_text} | {steps_text} "
            f"| {_fmt(ms)} | {cell.params if cell.params is not None else '–'} "
            f"| {cell.diverged} |"
        )
    tuned = [cell for cell in report.cells if cell.tuning]
    if tuned:
        points = list(dict.fromkeys(p for cell in tuned for p in cell.tuning.scores))
        seeds = len(question.tuning_seeds[report.profile])
        lines += [
            "",
            f"Tuning (mean validation score over {seeds} tuning seed(s) per point; **kept**):",
            "",
            "| arm | condition | " + " | ".join(points) + " |",
            "|---|---|" + "---|" * len(points),
        ]
        for cell in tuned:
            values = []
            for point in points:
                value = cell.tuning.scores.get(point)
                text = "–" if value is None or math.isnan(value) else f"{value:.3f}"
                values.append(f"**{text}**" if point == cell.tuning.point else text)
            lines.append(f"| {cell.arm} | {cell.condition or '–'} | " + " | ".join(values) + " |")
    if question.tuning_note:
        lines += ["", question.tuning_note]
    if report.steps_budgeted:
        share = report.steps_trained / report.steps_budgeted
        rule = (f"runs stop {report.stop_after_solved} validations after solving"
                if report.stop_after_solved else "no early stop")  # fmt: skip
        stages = "tuning and evaluation " if question.tuned else ""
        lines += ["", f"Compute: the {stages}runs trained "
                  f"{report.steps_trained} of the {report.steps_budgeted} steps their budgets "
                  f"allow ({share:.0%}; {rule})."]  # fmt: skip
    lines += ["", "**Verdict** (P(A > B): the chance that a run of A scores above a run of B in "
              "the same condition, averaged over conditions; 95% stratified bootstrap "
              "interval):", "", report.verdict]  # fmt: skip
    if report.tips:
        lines += ["", "**Tips:**", ""]
        lines += [tip_line(tip, results) for tip, results in report.tips]
    if report.search is not None:
        lines.append(report.search.markdown().rstrip("\n"))
    if report.other_settings:
        lines += ["", f"{report.other_settings} children are counted with a run whose settings "
                  "differ from the file's (command-line Trainer options, or an older "
                  "definition): rerun the sweep to replace them."]  # fmt: skip
    if report.missing:
        more = " ..." if len(report.missing) > 20 else ""
        lines += ["", f"Missing ({len(report.missing)} children without a finished run): "
                  + ", ".join(report.missing[:20]) + more]  # fmt: skip
    return "\n".join(lines) + "\n"


def claim_text(result: ClaimResult) -> str:
    claim = result.claim
    where = f" ({', '.join(claim.conditions)})" if claim.conditions else ""
    text = f"{claim.better} beats {claim.worse} on {MEASURE_WORDS[claim.measure]}{where}"
    if math.isnan(result.p.estimate):
        return f"*not measured yet*: {text}"
    return f"*{result.label}*: {text}, P = {result.p}"


def tip_line(tip: Tip, results: list[ClaimResult]) -> str:
    return f'- "{tip.text}" ' + "; ".join(claim_text(r) for r in results) + "."


def sweep_seconds(client, question: Question, profile: str, children=None) -> float:
    """Wall time during which the sweep ran: the union of its parent runs' intervals (drivers
    that ran at once count once). A parent left RUNNING with no end time (its driver died
    unmarked, or still lives) counts until its last child ended; ``children``: the sweep's
    child runs, if the caller has read them already."""
    found = client.get_experiment_by_name(question.name)
    if found is None:
        return 0.0
    sweep = sweep_id(question, profile)
    parents = sweep_runs(client, found.experiment_id, sweep, "parent")
    last_child_end: dict[str, int] = {}
    if any(not p.info.end_time and p.info.status == RunStatus.RUNNING for p in parents):
        if children is None:
            children = sweep_runs(client, found.experiment_id, sweep)
        for child in children:
            parent, end = child.data.tags.get(PARENT_RUN), child.info.end_time
            if parent and end:
                last_child_end[parent] = max(end, last_child_end.get(parent, 0))
    spans = []
    for parent in parents:
        end = parent.info.end_time
        if not end and parent.info.status == RunStatus.RUNNING:
            end = last_child_end.get(parent.info.run_id)
        if end:
            spans.append((parent.info.start_time, end))
    spans.sort()
    total, end = 0, None
    for start, stop in spans:
        if end is None or start > end:
            total += stop - start
            end = stop
        elif stop > end:
            total += stop - end
            end = stop
    return total / 1000
