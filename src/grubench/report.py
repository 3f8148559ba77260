"""The answer to a question, read from the MLflow store only.

``build_report`` collects the newest FINISHED child run of every (configuration, seed) of the
experiment's current definition, aggregates each configuration over seeds, and says which
configuration is best and whether its lead over the runner-up exceeds the seed spread
(Welch's t-test at 5%). ``write_report`` renders the Markdown table and the PNG plots
(learning curves with a band over seeds; the metric against ``plot_against`` if set) and
logs them as artifacts of the sweep's newest parent run.
"""

from __future__ import annotations

import math
import statistics
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from grubench.experiment import Experiment, expand, sweep_id
from grubench.runner import finished_by_key, sweep_runs
from grubench.tracking import get_client, resolve_tracking_uri

SIGNIFICANCE = 0.05


@dataclass
class Row:
    label: str
    metric: str  # e.g. "val/mse"
    mode: str  # "min" or "max"
    values: list[float] = field(default_factory=list)  # final metric of non-diverged seeds
    solved: int = 0
    steps_to_solve: list[float] = field(default_factory=list)
    ms_per_step: list[float] = field(default_factory=list)
    params: int | None = None
    diverged: int = 0
    runs: int = 0
    run_ids: list[str] = field(default_factory=list)
    x: float | None = None  # value of experiment.plot_against
    extra: dict[str, list[float]] = field(default_factory=dict)  # experiment.columns values
    group: str = ""  # the values of experiment.compare_within, e.g. "task.name=adding"

    @property
    def mean(self) -> float:
        return statistics.fmean(self.values) if self.values else math.nan

    @property
    def std(self) -> float:
        return statistics.stdev(self.values) if len(self.values) > 1 else math.nan


@dataclass
class Report:
    experiment: Experiment
    profile: str
    rows: list[Row]
    missing: list[str]  # children without a finished run
    verdict: str
    p_value: float | None = None


def _objective(run) -> tuple[str, str]:
    tags = run.data.tags
    return f"val/{tags.get('grubench.objective', 'loss')}", tags.get(
        "grubench.objective_mode", "min"
    )


def collect(client, experiment: Experiment, profile: str) -> tuple[list[Row], list[str]]:
    mlflow_experiment = client.get_experiment_by_name(experiment.name)
    children = expand(experiment, profile)
    done = {}
    if mlflow_experiment is not None:
        runs = sweep_runs(client, mlflow_experiment.experiment_id, sweep_id(experiment, profile))
        # newest finished run per child key, whatever its settings' hash: a sweep run with
        # command-line Trainer options (accelerator, devices) is still the same child
        for (key, _), run in finished_by_key(runs).items():
            done.setdefault(key, run)
    rows: dict[str, Row] = {}
    missing = []
    for child in children:
        run = done.get(child.key)
        if run is None:
            missing.append(child.key)
            continue
        metric, mode = _objective(run)
        row = rows.setdefault(child.label, Row(child.label, metric, mode))
        metrics, tags = run.data.metrics, run.data.tags
        row.runs += 1
        row.run_ids.append(run.info.run_id)
        row.group = ", ".join(
            f"{key}={run.data.params.get(key)}" for key in experiment.compare_within
        )
        row.params = int(metrics.get("param_count", 0)) or row.params
        if experiment.plot_against:
            row.x = float(run.data.params.get(experiment.plot_against, "nan"))
        if "time_per_step_ms" in metrics:
            row.ms_per_step.append(metrics["time_per_step_ms"])
        for title, key in experiment.columns.items():
            value = metrics.get(key.replace("{metric}", metric.removeprefix("val/")))
            if value is not None and math.isfinite(value):
                row.extra.setdefault(title, []).append(value)
        if tags.get("grubench.outcome") == "diverged":
            row.diverged += 1
            continue
        final = metrics.get(f"final/{metric}")
        if final is not None and math.isfinite(final):
            row.values.append(final)
        if "steps_to_solve" in metrics:
            row.solved += 1
            row.steps_to_solve.append(metrics["steps_to_solve"])
    return list(rows.values()), missing


def welch_p(a: list[float], b: list[float]) -> float | None:
    """Two-sided Welch t-test p-value; None when either side has fewer than two values."""
    if len(a) < 2 or len(b) < 2:
        return None
    from scipy import stats

    if statistics.pvariance(a) == 0 and statistics.pvariance(b) == 0:
        return 0.0 if statistics.fmean(a) != statistics.fmean(b) else 1.0
    return float(stats.ttest_ind(a, b, equal_var=False).pvalue)


def verdict(rows: list[Row]) -> tuple[str, float | None]:
    ranked = [r for r in rows if r.values]
    if not ranked:
        return "No finished runs to compare.", None
    sign = 1 if ranked[0].mode == "min" else -1
    ranked.sort(key=lambda r: sign * r.mean)
    best = ranked[0]
    if len(ranked) == 1:
        return f"Only **{best.label}** has results.", None
    second = ranked[1]
    p = welch_p(best.values, second.values)
    numbers = (
        f"{best.metric} {_fmt(best.mean)} ± {_fmt(best.std)} vs {_fmt(second.mean)} ± "
        f"{_fmt(second.std)} for {second.label}"
    )
    if p is None:
        return f"Best: **{best.label}** ({numbers}); too few seeds to test the lead.", None
    if p < SIGNIFICANCE:
        return (
            f"Best: **{best.label}** ({numbers}); the lead exceeds the seed spread "
            f"(Welch t-test p = {p:.2g}).",
            p,
        )
    return (
        f"No clear difference: **{best.label}** leads ({numbers}), but within the seed spread "
        f"(Welch t-test p = {p:.2g}).",
        p,
    )


def build_report(experiment: Experiment, profile: str, tracking_uri: str | None = None) -> Report:
    return _build_report(get_client(resolve_tracking_uri(tracking_uri)), experiment, profile)


def _build_report(client, experiment: Experiment, profile: str) -> Report:
    rows, missing = collect(client, experiment, profile)
    groups: dict[str, list[Row]] = {}
    for row in rows:
        groups.setdefault(row.group, []).append(row)
    if len(groups) <= 1:
        text, p = verdict(rows)
        return Report(experiment, profile, rows, missing, text, p)
    lines = [f"\n- {group}: {verdict(members)[0]}" for group, members in groups.items()]
    within = ", ".join(experiment.compare_within)
    return Report(experiment, profile, rows, missing, f"within each {within}:" + "".join(lines))


def _fmt(value: float | None) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if value == 0:
        return "0"
    if abs(value) >= 1000 or abs(value) < 0.001:
        return f"{value:.2e}"
    return f"{value:.4g}"


def to_markdown(report: Report) -> str:
    rows, extra = report.rows, list(report.experiment.columns)
    mixed = len({row.metric for row in rows}) > 1  # e.g. mse for adding, acc for copy_memory
    metric = "validation metric" if mixed or not rows else rows[0].metric
    lines = [
        f"### {report.experiment.question}",
        "",
        f"| configuration | final {metric} (mean ± std, n) | solved | median steps to solve "
        "| ms/step | params | diverged |" + "".join(f" {title} (mean) |" for title in extra),
        "|---|---|---|---|---|---|---|" + "---|" * len(extra),
    ]
    for row in rows:
        steps = statistics.median(row.steps_to_solve) if row.steps_to_solve else None
        ms = statistics.median(row.ms_per_step) if row.ms_per_step else None
        means = [statistics.fmean(row.extra[t]) if row.extra.get(t) else None for t in extra]
        name = f"{row.metric.removeprefix('val/')} " if mixed else ""
        lines.append(
            f"| {row.label} | {name}{_fmt(row.mean)} ± {_fmt(row.std)} ({len(row.values)}) "
            f"| {row.solved}/{row.runs} | {_fmt(steps)} | {_fmt(ms)} "
            f"| {row.params if row.params is not None else '–'} | {row.diverged} |"
            + "".join(f" {_fmt(m)} |" for m in means)
        )
    lines += ["", f"**Verdict:** {report.verdict}"]
    if report.experiment.plot_against:
        lines += ["", longest_solved(report)]
    if report.missing:
        lines += ["", f"Missing ({len(report.missing)} children without a finished run): "
                  + ", ".join(report.missing)]  # fmt: skip
    return "\n".join(lines) + "\n"


def longest_solved(report: Report) -> str:
    """For a sweep over ``plot_against`` (the last label component): per series, the
    largest value at which at least half of the seeds solved the task."""
    axis = report.experiment.plot_against
    best: dict[str, float | None] = {}
    for row in report.rows:
        series = row.label.rsplit(", ", 1)[0]
        best.setdefault(series, None)
        if row.runs and row.solved * 2 >= row.runs and row.x is not None:
            best[series] = max(row.x, best[series] or row.x)
    parts = [f"{name}: {_fmt(x) if x is not None else 'none'}" for name, x in best.items()]
    return f"**Longest {axis} solved by at least half the seeds:** " + "; ".join(parts) + "."


def _pyplot():
    """pyplot on the file-only Agg backend (reports run on machines without a screen)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, ax, report: Report, path: Path) -> Path:
    ax.set_title(report.experiment.question, fontsize=10)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    _pyplot().close(fig)
    return path


def plot_curves(client, report: Report, path: Path) -> Path:
    import numpy as np

    fig, ax = _pyplot().subplots(figsize=(7, 4.5))
    for row in report.rows:
        curves = [
            {m.step: m.value for m in client.get_metric_history(run_id, row.metric)}
            for run_id in row.run_ids
        ]
        steps = sorted(set().union(*curves)) if curves else []
        if not steps:
            continue
        values = np.array([[c.get(s, np.nan) for s in steps] for c in curves], dtype=float)
        mean, std = np.nanmean(values, axis=0), np.nanstd(values, axis=0)
        ax.plot(steps, mean, label=row.label)
        ax.fill_between(steps, mean - std, mean + std, alpha=0.2)
    ax.set_xlabel("training step")
    ax.set_ylabel(report.rows[0].metric if report.rows else "metric")
    if report.rows and report.rows[0].mode == "min":
        ax.set_yscale("log")
    return _save(fig, ax, report, path)


def plot_against(report: Report, path: Path) -> Path:
    """The final metric against ``plot_against``; series are the labels minus their last
    component (grid() puts the swept axis last)."""
    series: dict[str, list[Row]] = {}
    for row in report.rows:
        series.setdefault(row.label.rsplit(", ", 1)[0], []).append(row)
    fig, ax = _pyplot().subplots(figsize=(7, 4.5))
    for name, rows in series.items():
        rows = sorted((r for r in rows if r.x is not None), key=lambda r: r.x)
        ax.errorbar(
            [r.x for r in rows], [r.mean for r in rows],
            yerr=[0 if math.isnan(r.std) else r.std for r in rows], label=name, capsize=3,
            marker="o",
        )  # fmt: skip
    ax.set_xlabel(report.experiment.plot_against)
    ax.set_ylabel(f"final {report.rows[0].metric}" if report.rows else "metric")
    return _save(fig, ax, report, path)


def grad_flow_curves(client, report: Report, tmp: Path) -> dict[str, list[list[float]]]:
    """Per configuration, the last layer's dL/dh_t curves (at the first and the last probe)
    from each run's ``diagnostics/grad_norms.json``; configurations without it are left out."""
    import json
    import os

    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")  # one bar per file
    curves: dict[str, list[list[float]]] = {}
    for row in report.rows:
        for run_id in row.run_ids:
            names = [a.path for a in client.list_artifacts(run_id, "diagnostics")]
            if "diagnostics/grad_norms.json" not in names:
                continue
            local = client.download_artifacts(run_id, "diagnostics/grad_norms.json", str(tmp))
            norms = json.loads(Path(local).read_text())["norms"]  # [probe][layer][t]
            curves.setdefault(row.label, []).append([norms[0][-1], norms[-1][-1]])
    return curves


def plot_grad_flow(curves: dict[str, list[list[float]]], report: Report, path: Path) -> Path:
    """The norm of dL/dh_t against the lag from the last step, averaged (geometrically) over
    seeds: at initialization and after training, one line per configuration."""
    import numpy as np

    plt = _pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.5), sharey=True)
    colors = plt.cm.tab20(np.linspace(0, 1, max(len(curves), 2)))  # distinct beyond 10 lines
    for ax in axes:
        ax.set_prop_cycle(color=colors)
    for label, runs in curves.items():
        for panel, ax in enumerate(axes):
            logs = np.log10(np.array([run[panel] for run in runs], dtype=float).clip(1e-30))
            mean = 10 ** logs.mean(axis=0)[::-1]  # index = lag from the last step
            ax.plot(np.arange(len(mean)), mean, label=label)
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
    client = get_client(resolve_tracking_uri(tracking_uri))
    report = _build_report(client, experiment, profile)
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = f"{experiment.name}-{profile}"
    table = out_dir / f"{stem}.md"
    table.write_text(to_markdown(report))
    paths = [table]
    if report.rows:
        paths.append(plot_curves(client, report, out_dir / f"{stem}-curves.png"))
        if experiment.plot_against:
            axis = experiment.plot_against.rsplit(".", 1)[-1]
            paths.append(plot_against(report, out_dir / f"{stem}-vs-{axis}.png"))
        with tempfile.TemporaryDirectory() as tmp:
            curves = grad_flow_curves(client, report, Path(tmp))
        if curves:
            paths.append(plot_grad_flow(curves, report, out_dir / f"{stem}-grad-flow.png"))
    mlflow_experiment = client.get_experiment_by_name(experiment.name)
    if mlflow_experiment is not None:
        parents = sweep_runs(
            client, mlflow_experiment.experiment_id, sweep_id(experiment, profile), "parent"
        )
        if parents:
            for path in paths:
                client.log_artifact(parents[0].info.run_id, str(path), "report")
    return report, paths
