"""A question's plots, from its report: learning curves per condition (one colour per arm),
each measure's interval per arm and condition, gradient flow over time steps, and a search's
importances. Files only (matplotlib's Agg backend: reports run on machines without a screen).
"""

from __future__ import annotations

import math
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from grubench.answers import stats
from grubench.answers.importance import SearchSummary, knob
from grubench.answers.report import MEASURE_WORDS, Report
from grubench.store.measures import MEASURES
from grubench.sweeps.question import Question


def pyplot():
    """pyplot on the file-only Agg backend (reports run on machines without a screen)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def arm_colors(question: Question) -> dict[str, tuple]:
    """One colour per arm, the same in every plot of the question."""
    plt = pyplot()
    palette = plt.cm.tab10.colors if len(question.arms) <= 10 else plt.cm.tab20.colors
    return {arm: palette[i % len(palette)] for i, arm in enumerate(question.arms)}


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

    plt = pyplot()
    conditions = list(dict.fromkeys(cell.condition for cell in report.cells))
    columns = min(len(conditions), 3)
    rows = math.ceil(len(conditions) / columns)
    width = max(4.2 * columns, 7.0)  # room for the legend and the title with one panel
    fig, axes = plt.subplots(rows, columns, figsize=(width, 3.3 * rows), squeeze=False)
    colors = arm_colors(report.question)
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
        ax.set_title(condition or report.question.name, fontsize=9)
        ax.set_xlabel("training step", fontsize=8)
        ax.set_ylabel(f"val/{metric}", fontsize=8)
        if metric == "mse":
            ax.set_yscale("log")
        ax.tick_params(labelsize=7)
    for ax in list(axes.flat)[len(conditions) :]:
        ax.axis("off")
    handles = [plt.Line2D([], [], color=colors[a], label=a) for a in report.question.arms]
    handles.append(plt.Line2D([], [], color="gray", linestyle=":", label="chance level"))
    per_row = 3 if width < 8 else 4
    fig.legend(handles=handles, loc="lower center", ncol=min(len(handles), per_row), fontsize=8,
               frameon=False)  # fmt: skip
    fig.suptitle(report.question.text, fontsize=10)
    legend_rows = math.ceil(len(handles) / per_row)
    fig.tight_layout(rect=(0, 0.05 * legend_rows + 0.02, 1, 1))  # it leaves the suptitle room
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_intervals(report: Report, path: Path) -> Path:
    """The answer at a glance (rliable's figures): left, each arm's IQM test score with its
    95% bootstrap interval, one row per condition, one colour per arm; right, each
    comparison's P(A > B) with its 95% interval against the 0.5 of "no difference"."""
    plt = pyplot()
    colors = arm_colors(report.question)
    cells = [c for c in report.cells if c.runs]
    conditions = list(dict.fromkeys(c.condition for c in cells))
    arms = [a for a in report.question.arms if any(c.arm == a for c in cells)]
    comparisons = [c for c in report.comparisons if c[0] == "score" or MEASURES[c[0]].to_solve]
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
    fig.suptitle(report.question.text, fontsize=10)
    bottom = (0.3 * legend_rows + 0.1) / height  # the legend's rows, in figure fractions
    fig.tight_layout(rect=(0, bottom, 1, 1))  # it leaves the suptitle room
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_ladders(report: Report, path: Path) -> Path:
    """Each ladder's climb (grubench.answers.frontier): per ladder, the solved rate with its
    95% Wilson interval (the climb rate dashed) and the IQM test score with its 95% bootstrap
    interval against the rung, one colour per arm; an arm's line ends where it stopped, the
    rung it failed marked with an x."""
    from grubench.answers.frontier import frontiers

    plt = pyplot()
    colors = arm_colors(report.question)
    by_ladder: dict[str, list] = {}
    for found in frontiers(report):
        by_ladder.setdefault(found.ladder.label, []).append(found)
    rows = len(by_ladder)
    fig, axes = plt.subplots(rows, 2, figsize=(10.5, 3.2 * rows + 0.7), squeeze=False)
    arms = list(report.question.arms)
    offsets = {a: (i - (len(arms) - 1) / 2) * 0.3 / max(len(arms), 1) for i, a in enumerate(arms)}
    for (solved_ax, score_ax), found in zip(axes, by_ladder.values()):
        ladder, values = found[0].ladder, found[0].values
        for climb in found:
            if not climb.rungs:
                continue
            color, shift = colors[climb.arm], offsets[climb.arm]
            xs = [values.index(r.value) + shift for r in climb.rungs]
            for ax, intervals in ((solved_ax, [r.rate for r in climb.rungs]),
                                  (score_ax, [r.score for r in climb.rungs])):  # fmt: skip
                points = [(x, i) for x, i in zip(xs, intervals) if i is not None]
                if not points:
                    continue
                px, iv = zip(*points)
                mid = [i.estimate for i in iv]
                ax.errorbar(px, mid, yerr=[[m - i.low for m, i in zip(mid, iv)],
                            [i.high - m for m, i in zip(mid, iv)]], color=color, marker="o",
                            markersize=4, capsize=2, linewidth=1.2)  # fmt: skip
                if (stopped := climb.stopped_at) is not None:
                    last = stopped.rate.estimate if ax is solved_ax else stopped.score.estimate
                    ax.plot(px[-1], last, marker="x", color=color, markersize=9, mew=2)
        for ax in (solved_ax, score_ax):
            ax.set_xticks(range(len(values)), [ladder.rung(v) for v in values], fontsize=8)
            ax.set_xlim(-0.5, len(values) - 0.5)
            ax.set_ylim(-0.03, 1.03)
            ax.tick_params(axis="y", labelsize=7)
            ax.grid(alpha=0.3)
        solved_ax.axhline(ladder.climb, color="gray", linestyle="--", linewidth=1)
        solved_ax.set_ylabel(f"{ladder.name}\nsolved rate [95% CI]", fontsize=8)
        score_ax.set_ylabel("test score, IQM [95% CI]\n(0 = chance, 1 = perfect)", fontsize=8)
    axes[0][0].set_title(f"solved rate (dashed: the climb rate, {found[0].ladder.climb:.0%})",
                         fontsize=9)  # fmt: skip
    axes[0][1].set_title("normalized test score", fontsize=9)
    handles = [plt.Line2D([], [], color=colors[a], marker="o", label=a) for a in arms]
    fig.legend(handles=handles, loc="lower center", ncol=min(len(arms), 4), fontsize=8,
               frameon=False)  # fmt: skip
    fig.suptitle(f"{report.question.text}: each arm's climb (x: the rung it failed)", fontsize=10)
    height = 3.2 * rows + 0.7
    legend_rows = math.ceil(len(arms) / 4)
    # tight_layout makes room for the suptitle itself: a rect below 1 left it twice
    fig.tight_layout(rect=(0, (0.3 * legend_rows + 0.1) / height, 1, 1))
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

    plt = pyplot()
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
    fig.suptitle(report.question.text, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def plot_importance(summary: SearchSummary, colors: dict[str, Any], path: Path) -> Path:
    """One panel per condition: each knob's mean importance per arm, with the bootstrap
    interval as an error bar."""
    plt = pyplot()
    conditions = list(dict.fromkeys(c for _, c in summary.importances))
    arms = list(dict.fromkeys(a for a, _ in summary.importances))
    keys = list(dict.fromkeys(k for imp in summary.importances.values() for k in imp.mean))
    fig, axes = plt.subplots(1, len(conditions), figsize=(5.2 * len(conditions), 0.45 * len(keys)
                             + 1.6), squeeze=False, sharey=True)  # fmt: skip
    height = 0.8 / max(len(arms), 1)
    for ax, condition in zip(axes[0], conditions):
        for i, arm in enumerate(arms):
            imp = summary.importances.get((arm, condition))
            if imp is None:
                continue
            y = np.arange(len(keys)) + (i - (len(arms) - 1) / 2) * height
            means = [imp.mean.get(k, 0.0) for k in keys]
            low = [m - imp.bootstrap.get(k, (m, m))[0] for m, k in zip(means, keys)]
            high = [imp.bootstrap.get(k, (m, m))[1] - m for m, k in zip(means, keys)]
            ax.barh(y, means, height=height, color=colors.get(arm), label=f"{arm} ({imp.trials})",
                    xerr=[np.maximum(low, 0), np.maximum(high, 0)], capsize=2)  # fmt: skip
        ax.set_yticks(np.arange(len(keys)), [knob(k) for k in keys])
        ax.set_xlim(0, 1)
        ax.set_xlabel("fANOVA importance (share of variance)")
        ax.set_title(condition)
        ax.grid(axis="x", alpha=0.3)
    axes[0][0].invert_yaxis()  # once: the panels share the y axis, a second call undoes it
    axes[0][0].legend(title="arm (trials)", loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
