"""The answer to a question, read from the MLflow store only.

``build_report`` takes the newest FINISHED run of every child of the experiment's current
definition (tuning and evaluation stages), redoes the selection from the tuning runs, and
aggregates the evaluation runs per (arm, condition) with the statistics of
:mod:`grubench.stats`: the IQM of the normalized test scores with a bootstrap interval, the
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
import tempfile
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from grubench import stats
from grubench.experiment import Claim, Experiment, Tip, expand, expand_tuning, sweep_id
from grubench.protocol import Selection, diverged, run_score, run_steps, select
from grubench.runner import finished_by_key, sweep_runs
from grubench.schema import (
    CHANCE_LEVEL,
    GAP_SCORE,
    NOTE,
    OBJECTIVE,
    PARAM_COUNT,
    PARENT_RUN,
    POINT,
    STEPS,
    TEST_SCORE,
    TIME_PER_STEP,
)
from grubench.tasks import build_task
from grubench.tracking import get_client, resolve_tracking_uri


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

    def measure(self, name: str) -> list[float]:
        """Per run, the measure with higher = better (what P(A > B) compares)."""
        if name == "score":
            return list(self.scores)
        if name == "steps_to_solve":
            return [-s for s in self.steps]
        if name == "ms_per_step":
            return [-m for m in self.ms_per_step]
        if name == "gap":
            return [-g for g in self.gaps]
        raise ValueError(f"unknown measure {name!r}")


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
    experiment: Experiment
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
    search: Any = None  # a search's SearchSummary (grubench.search): importances, best trials

    @property
    def verdict(self) -> str:
        if not any(cell.runs for cell in self.cells):
            return "No finished evaluation runs to compare yet."
        lines = [
            stats.compare(a, b, p, n, f"{MEASURE_WORDS[m]}:") for m, a, b, p, n in self.comparisons
        ]
        return "\n".join(f"- {line}" for line in lines) or "Only one arm has results."


MEASURE_WORDS = {
    "score": "test score",
    "steps_to_solve": "steps to solve",
    "ms_per_step": "time per step",
    "gap": "train-validation gap",
}


def _cells(experiment: Experiment, profile: str) -> list[tuple[str, str]]:
    return [(a, c) for a in experiment.arms for c in experiment.conditions_for(profile)]


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


def build_report(experiment: Experiment, profile: str, tracking_uri: str | None = None) -> Report:
    """The report of the store's runs; a search's studies are synced with them first."""
    uri = resolve_tracking_uri(tracking_uri)
    return _build_report(get_client(uri), experiment, profile, uri)


def _build_report(client, experiment: Experiment, profile: str, uri: str | None = None) -> Report:
    mlflow_experiment = client.get_experiment_by_name(experiment.name)
    finished, newest, seconds = {}, {}, 0.0
    if mlflow_experiment is not None:
        sweep = sweep_id(experiment, profile)
        children = sweep_runs(client, mlflow_experiment.experiment_id, sweep)
        finished = finished_by_key(children)
        for (key, _), run in finished.items():  # newest first
            newest.setdefault(key, run)
        seconds = sweep_seconds(client, experiment, profile, children)
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

    tuning = expand_tuning(experiment, profile)
    tuning_runs = {c.key: run for c in tuning if (run := run_of(c)) is not None}
    selection = select(tuning, tuning_runs)
    used = list(tuning_runs.values())
    missing = [c.key for c in tuning if c.key not in tuning_runs]
    points = {cell: kept.point for cell, kept in selection.items()}
    cells = {}
    for child in expand(experiment, profile, selected=points):
        cell = cells.get((child.arm, child.condition))
        if cell is None:  # built once per cell: its task says whether it can be solved
            cell = cells[(child.arm, child.condition)] = Cell(
                child.arm, child.condition, selected=child.point,
                tuning=selection.get((child.arm, child.condition)),
                solvable=_solvable(child.config.task),
            )  # fmt: skip
        run = run_of(child)
        if run is None or (experiment.tuned and run.data.tags.get(POINT) != child.point):
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
        cell.scores.append(run_score(run, TEST_SCORE))
        cell.steps.append(run_steps(run))
        if TIME_PER_STEP in metrics:
            cell.ms_per_step.append(metrics[TIME_PER_STEP])
        if GAP_SCORE in metrics and not diverged(run):
            cell.gaps.append(metrics[GAP_SCORE])
        if diverged(run):
            cell.diverged += 1
        elif f"test/{cell.metric}" in metrics:
            cell.test_values.append(metrics[f"test/{cell.metric}"])
    for arm, condition in _cells(experiment, profile):  # cells still being tuned
        if (arm, condition) not in cells:
            cells[(arm, condition)] = Cell(arm, condition)
            missing += [f"{arm}, {condition} (evaluation: tuning not finished)"]
    found, conditions = list(cells.values()), list(experiment.conditions_for(profile))
    comparisons = []
    for measure in experiment.verdict_measures:
        for a, b in _pairs(experiment):
            result = claim_result(found, Claim(a, b, measure), conditions)
            if not math.isnan(result.p.estimate):
                comparisons.append((measure, a, b, result.p, result.fewest_seeds))
    tips = [(tip, [claim_result(found, claim, conditions) for claim in tip.claims])
            for tip in experiment.tips]  # fmt: skip
    trained = budgeted = 0
    for run in used:
        if STEPS in run.data.metrics and "trainer.max_steps" in run.data.params:
            trained += int(run.data.metrics[STEPS])
            budgeted += int(run.data.params["trainer.max_steps"])
    children = tuning or expand(experiment, profile)
    stop = max((c.config.stop_after_solved for c in children), default=0)
    report = Report(experiment, profile, list(cells.values()), missing, comparisons, tips,
                    seconds, trained, budgeted, stop, len(other_settings))  # fmt: skip
    if experiment.search is not None and uri is not None:
        from grubench.search import summarize

        report.search = summarize(experiment, profile, uri, tuning, finished)
    return report


def _solvable(task_config) -> bool:
    task = build_task(task_config.name, task_config.seq_len, **task_config.options)
    return task.objective.solved_threshold is not None


def _pairs(experiment: Experiment) -> list[tuple[str, str]]:
    """Each arm against the baseline when the question names one, else every pair."""
    arms = list(experiment.arms)
    if experiment.baseline:
        return [(a, experiment.baseline) for a in arms if a != experiment.baseline]
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
    experiment = report.experiment
    lines = [
        f"{heading} {experiment.question}",
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
        seeds = len(experiment.tuning_seeds[report.profile])
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
    if experiment.tuning_note:
        lines += ["", experiment.tuning_note]
    if report.steps_budgeted:
        share = report.steps_trained / report.steps_budgeted
        rule = (f"runs stop {report.stop_after_solved} validations after solving"
                if report.stop_after_solved else "no early stop")  # fmt: skip
        stages = "tuning and evaluation " if experiment.tuned else ""
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


def _pyplot():
    """pyplot on the file-only Agg backend (reports run on machines without a screen)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def arm_colors(experiment: Experiment) -> dict[str, tuple]:
    """One colour per arm, the same in every plot of the question."""
    plt = _pyplot()
    palette = plt.cm.tab10.colors if len(experiment.arms) <= 10 else plt.cm.tab20.colors
    return {arm: palette[i % len(palette)] for i, arm in enumerate(experiment.arms)}


def mean_band(values, resamples: int = stats.RESAMPLES, seed: int = stats.BOOTSTRAP_SEED):
    """Per column of ``values`` (seeds x steps), the 95% percentile-bootstrap interval of the
    mean over seeds (seeds resampled together, so a curve's steps stay one run's)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    picks = rng.integers(0, len(values), size=(resamples, len(values)))  # (R, seeds)
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # an all-NaN column stays NaN
        means = np.nanmean(values[picks], axis=1)  # (R, steps)
        half = (1 - stats.CONFIDENCE) / 2 * 100
        return np.nanpercentile(means, half, axis=0), np.nanpercentile(means, 100 - half, axis=0)


def plot_curves(client, report: Report, path: Path) -> Path:
    """Validation curves of the evaluation runs: one panel per condition (the metric on its
    axis), one colour per arm, the mean over seeds with its 95% bootstrap band (a run stopped
    after solving counts with its last value until the longest run ends)."""
    import numpy as np

    plt = _pyplot()
    conditions = list(dict.fromkeys(cell.condition for cell in report.cells))
    columns = min(len(conditions), 3)
    rows = math.ceil(len(conditions) / columns)
    width = max(4.2 * columns, 7.0)  # room for the legend and the title with one panel
    fig, axes = plt.subplots(rows, columns, figsize=(width, 3.3 * rows), squeeze=False)
    colors = arm_colors(report.experiment)
    for ax, condition in zip(axes.flat, conditions):
        metric, chance = "", None
        for cell in (c for c in report.cells if c.condition == condition and c.runs):
            metric, chance = cell.metric, cell.chance
            curves = [
                {m.step: m.value for m in client.get_metric_history(run_id, f"val/{metric}")}
                for run_id in cell.run_ids
            ]
            steps = sorted(set().union(*curves))
            if not steps:
                continue
            values = np.array([[c.get(s, np.nan) for s in steps] for c in curves], dtype=float)
            for row in values:  # a run stopped once solved holds its last value from there on
                last = np.flatnonzero(~np.isnan(row))
                if last.size:
                    row[last[-1] + 1 :] = row[last[-1]]
            color = colors[cell.arm]
            low, high = mean_band(values)
            with np.errstate(all="ignore"):
                ax.plot(steps, np.nanmean(values, axis=0), color=color, label=cell.arm)
                ax.fill_between(steps, low, high, color=color, alpha=0.15, linewidth=0)
        if chance is not None:
            ax.axhline(chance, color="gray", linestyle=":", linewidth=1)
        ax.set_title(condition or report.experiment.name, fontsize=9)
        ax.set_xlabel("training step", fontsize=8)
        ax.set_ylabel(f"val/{metric}", fontsize=8)
        if metric == "mse":
            ax.set_yscale("log")
        ax.tick_params(labelsize=7)
    for ax in list(axes.flat)[len(conditions) :]:
        ax.axis("off")
    handles = [plt.Line2D([], [], color=colors[a], label=a) for a in report.experiment.arms]
    handles.append(plt.Line2D([], [], color="gray", linestyle=":", label="chance level"))
    per_row = 3 if width < 8 else 4
    fig.legend(handles=handles, loc="lower center", ncol=min(len(handles), per_row), fontsize=8,
               frameon=False)  # fmt: skip
    fig.suptitle(report.experiment.question, fontsize=10)
    legend_rows = math.ceil(len(handles) / per_row)
    fig.tight_layout(rect=(0, 0.05 * legend_rows + 0.02, 1, 0.95))
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_intervals(report: Report, path: Path) -> Path:
    """The answer at a glance (rliable's figures): left, each arm's IQM test score with its
    95% bootstrap interval, one row per condition, one colour per arm; right, each
    comparison's P(A > B) with its 95% interval against the 0.5 of "no difference"."""
    plt = _pyplot()
    colors = arm_colors(report.experiment)
    cells = [c for c in report.cells if c.runs]
    conditions = list(dict.fromkeys(c.condition for c in cells))
    arms = [a for a in report.experiment.arms if any(c.arm == a for c in cells)]
    comparisons = [c for c in report.comparisons if c[0] in ("score", "steps_to_solve")]
    rows = max(len(conditions) * len(arms) * 0.6, len(comparisons))
    height = max(2.6, 0.9 + 0.36 * rows + 0.3 * math.ceil(len(arms) / 4))
    fig, (left, right) = plt.subplots(1, 2, figsize=(10.5, height),
                                      gridspec_kw={"width_ratios": [1, 1.25]})  # fmt: skip
    offsets = {a: (i - (len(arms) - 1) / 2) * 0.8 / max(len(arms), 1) for i, a in enumerate(arms)}
    for row, condition in enumerate(conditions):
        for cell in (c for c in cells if c.condition == condition):
            score = stats.bootstrap_interval(cell.scores)
            y = row + offsets[cell.arm]
            left.errorbar(score.estimate, y, xerr=[[score.estimate - score.low],
                          [score.high - score.estimate]], fmt="o", color=colors[cell.arm],
                          markersize=4, capsize=2, linewidth=1.2)  # fmt: skip
    left.set_yticks(range(len(conditions)), [c or "(all)" for c in conditions], fontsize=8)
    left.set_ylim(len(conditions) - 0.5, -0.5)
    left.set_xlim(-0.03, 1.03)
    left.set_xlabel("normalized test score, IQM [95% CI]  (0 = chance, 1 = perfect)", fontsize=8)
    left.tick_params(axis="x", labelsize=7)
    handles = [plt.Line2D([], [], color=colors[a], marker="o", linestyle="", label=a)
               for a in arms]  # fmt: skip
    per_row = 4
    fig.legend(handles=handles, loc="lower center", ncol=min(len(handles), per_row), fontsize=8,
               frameon=False)  # fmt: skip
    legend_rows = math.ceil(len(handles) / per_row)
    for row, (*_, p, _) in enumerate(comparisons):
        decided = p.excludes(0.5)
        right.errorbar(p.estimate, row, xerr=[[p.estimate - p.low], [p.high - p.estimate]],
                       fmt="o", color="black" if decided else "gray", markersize=4, capsize=2,
                       linewidth=1.2)  # fmt: skip
    right.axvline(0.5, color="gray", linestyle=":", linewidth=1)
    right.set_yticks(range(len(comparisons)),
                     [f"{MEASURE_WORDS[m]}: P({a} > {b})" for m, a, b, _, _ in comparisons],
                     fontsize=7)  # fmt: skip
    right.set_ylim(len(comparisons) - 0.5, -0.5)
    right.set_xlim(-0.03, 1.03)
    right.set_xlabel("P(A > B) [95% CI]; black: the interval excludes 0.5", fontsize=8)
    right.tick_params(axis="x", labelsize=7)
    fig.suptitle(report.experiment.question, fontsize=10)
    bottom = (0.3 * legend_rows + 0.1) / height  # the legend's rows, in figure fractions
    fig.tight_layout(rect=(0, bottom, 1, 1 - 0.35 / height))
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def grad_flow_curves(client, report: Report, tmp: Path) -> dict[str, list[list[float]]]:
    """Per cell, the last layer's dL/dh_t curves (at the first and the last probe) from each
    evaluation run's ``diagnostics/grad_norms.json``; cells without it are left out."""
    import json
    import os

    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")  # one bar per file
    curves: dict[str, list[list[float]]] = {}
    for cell in report.cells:
        for run_id in cell.run_ids:
            names = [a.path for a in client.list_artifacts(run_id, "diagnostics")]
            if "diagnostics/grad_norms.json" not in names:
                continue
            local = client.download_artifacts(run_id, "diagnostics/grad_norms.json", str(tmp))
            norms = json.loads(Path(local).read_text())["norms"]  # [probe][layer][t]
            curves.setdefault(cell.name, []).append([norms[0][-1], norms[-1][-1]])
    return curves


def plot_grad_flow(curves: dict[str, list[list[float]]], report: Report, path: Path) -> Path:
    """The norm of dL/dh_t against the lag from the last step, averaged (geometrically) over
    seeds: at initialization and after training, one line per cell."""
    import numpy as np

    plt = _pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.5), sharey=True)
    colors = plt.cm.tab20(np.linspace(0, 1, max(len(curves), 2)))  # distinct beyond 10 lines
    for ax in axes:
        ax.set_prop_cycle(color=colors)
    for name, runs in curves.items():
        for panel, ax in enumerate(axes):
            logs = np.log10(np.array([run[panel] for run in runs], dtype=float).clip(1e-30))
            mean = 10 ** logs.mean(axis=0)[::-1]  # index = lag from the last step
            ax.plot(np.arange(len(mean)), mean, label=name)
    for ax, title in zip(axes, ("at initialization", "after training")):
        ax.set_yscale("log")
        ax.set_xlabel("time steps before the last (lag)")
        ax.set_title(f"||dL/dh_t||, last layer, {title}", fontsize=10)
    axes[0].set_ylabel("gradient norm (mean over the probe batch)")
    axes[1].legend(fontsize=6)
    fig.suptitle(report.experiment.question, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def write_report(
    experiment: Experiment, profile: str, out_dir: Path, tracking_uri: str | None = None
) -> tuple[Report, list[Path]]:
    uri = resolve_tracking_uri(tracking_uri)
    client = get_client(uri)
    report = _build_report(client, experiment, profile, uri)
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = f"{experiment.name}-{profile}"
    table = out_dir / f"{stem}.md"
    table.write_text(to_markdown(report))
    paths = [table]
    if any(cell.runs for cell in report.cells):
        paths.append(plot_curves(client, report, out_dir / f"{stem}-curves.png"))
        paths.append(plot_intervals(report, out_dir / f"{stem}-intervals.png"))
        with tempfile.TemporaryDirectory() as tmp:
            curves = grad_flow_curves(client, report, Path(tmp))
        if curves:
            paths.append(plot_grad_flow(curves, report, out_dir / f"{stem}-grad-flow.png"))
    if report.search is not None and report.search.importances:
        from grubench.search import plot_importance

        path = out_dir / f"{stem}-importance.png"
        paths.append(plot_importance(report.search, arm_colors(experiment), path))
    for stale in out_dir.glob(f"{stem}-*.png"):  # plots of an older report, not made now
        if stale not in paths:
            stale.unlink()
    mlflow_experiment = client.get_experiment_by_name(experiment.name)
    if mlflow_experiment is not None:
        parents = sweep_runs(
            client, mlflow_experiment.experiment_id, sweep_id(experiment, profile), "parent"
        )
        if parents:
            for path in paths:
                client.log_artifact(parents[0].info.run_id, str(path), "report")
            describe_parent(client, parents[0].info.run_id, to_markdown(report))
    return report, paths


def describe_parent(client, run_id: str, markdown: str) -> None:
    """The report's table and verdict as the parent run's description: the run page opens on
    the answer. MLflow caps a tag's value (8,000 characters in 3.x): a longer report is cut at
    a line and says where the whole one is."""
    from mlflow.utils.validation import MAX_TAG_VAL_LENGTH

    if len(markdown) > MAX_TAG_VAL_LENGTH:
        tail = (
            "\n\n... (cut: `grubench report` writes the whole report, and logs it as this "
            "run's artifact report/*.md)"
        )
        cut = markdown[: MAX_TAG_VAL_LENGTH - len(tail)]
        markdown = cut[: cut.rfind("\n")] + tail
    client.set_tag(run_id, NOTE, markdown)


FAQ_START, FAQ_END = "<!-- faq:start -->", "<!-- faq:end -->"


def sweep_seconds(client, experiment: Experiment, profile: str, children=None) -> float:
    """Wall time during which the sweep ran: the union of its parent runs' intervals (drivers
    that ran at once count once). A parent left RUNNING with no end time (its driver died
    unmarked, or still lives) counts until its last child ended; ``children``: the sweep's
    child runs, if the caller has read them already."""
    found = client.get_experiment_by_name(experiment.name)
    if found is None:
        return 0.0
    sweep = sweep_id(experiment, profile)
    parents = sweep_runs(client, found.experiment_id, sweep, "parent")
    last_child_end: dict[str, int] = {}
    if any(not p.info.end_time and p.info.status == "RUNNING" for p in parents):
        if children is None:
            children = sweep_runs(client, found.experiment_id, sweep)
        for child in children:
            parent, end = child.data.tags.get(PARENT_RUN), child.info.end_time
            if parent and end:
                last_child_end[parent] = max(end, last_child_end.get(parent, 0))
    spans = []
    for parent in parents:
        end = parent.info.end_time
        if not end and parent.info.status == "RUNNING":
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


def faq_block(
    paths: list[Path], profile: str, results: Path, root: Path, tracking_uri: str | None = None
) -> str:
    """The README's FAQ section, from the store: the tips with their computed labels, then
    per question its command with the sweep's measured time, its plots and its report.
    ``write_report`` runs for each question (tables and plots under ``results``)."""
    from grubench.experiment import load_experiment

    sections, tips = [], []
    for path in paths:
        experiment = load_experiment(path)
        report, files = write_report(experiment, profile, results, tracking_uri)
        seconds = report.seconds
        command = f"grubench run {_relative(path, root)}"
        ran = f"# {duration(seconds)} here" if seconds else "# not run into this store yet"
        text = to_markdown(report, heading="####").split("\n", 1)[1]
        images = [f"![{f.stem}]({_relative(f, root)})" for f in files
                  if f.suffix == ".png"]  # fmt: skip
        anchor = experiment.name.replace("_", "-")
        sections.append("\n".join([
            f'<a id="{anchor}"></a>', f"### {experiment.question}", "", "```bash",
            f"{command}      {ran}", "```", text.rstrip(), "", *images,
        ]))  # fmt: skip
        for tip, results_ in report.tips:
            tips.append(f"{tip_line(tip, results_)} ([{experiment.name}](#{anchor}))")
    head = [
        "### The classic tips, against these runs",
        "",
        "Each tip as the tutorials state it; each claim in it is labelled from its question's "
        "evaluation runs: *supported* when the 95% interval of P(claimed better > claimed "
        "worse) lies above 0.5, *contradicted* when below, *not detected* when it holds 0.5, "
        f"*too few seeds* under {stats.MIN_SEEDS} per arm and condition.",
        "",
        *tips,
    ]
    return "\n".join(head) + "\n\n" + "\n\n".join(sections) + "\n"


def _relative(path: Path, root: Path) -> str:
    import os

    return Path(os.path.relpath(path, root)).as_posix()


def rewrite_readme(
    readme: Path, block: str, markers: tuple[str, str] = (FAQ_START, FAQ_END)
) -> None:
    """Replace what lies between ``markers`` (the FAQ's by default) in ``readme`` with ``block``."""
    start, end = markers
    text = readme.read_text()
    if start not in text or end not in text:
        raise ValueError(f"{readme}: no {start} ... {end} markers to write between")
    before, rest = text.split(start, 1)
    after = rest.split(end, 1)[1]
    readme.write_text(f"{before}{start}\n{block}{end}{after}")
