"""Publishing a question's answer: its table and plots written to a folder and logged as
artifacts of the sweep's newest parent run, whose description becomes the table (the run
page opens on the answer).
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from grubench.answers.plots import (
    arm_colors,
    grad_flow_curves,
    plot_curves,
    plot_grad_flow,
    plot_importance,
    plot_intervals,
    plot_ladders,
)
from grubench.answers.report import Report, build_report_from, to_markdown
from grubench.store.schema import NOTE
from grubench.store.tracking import get_client, resolve_tracking_uri
from grubench.sweeps.children import sweep_runs
from grubench.sweeps.question import Question, sweep_id


def write_report(
    question: Question,
    profile: str,
    out_dir: Path,
    tracking_uri: str | None = None,
    overrides: dict[str, Any] | None = None,
) -> tuple[Report, list[Path]]:
    uri = resolve_tracking_uri(tracking_uri)
    client = get_client(uri)
    report = build_report_from(client, question, profile, uri, overrides)
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = f"{question.name}-{profile}"
    table = out_dir / f"{stem}.md"
    table.write_text(to_markdown(report))
    paths = [table]
    if any(cell.runs for cell in report.cells):
        paths.append(plot_curves(client, report, out_dir / f"{stem}-curves.png"))
        paths.append(plot_intervals(report, out_dir / f"{stem}-intervals.png"))
        if any(ladder.values(profile) for ladder in question.ladders):
            paths.append(plot_ladders(report, out_dir / f"{stem}-ladder.png"))
        with tempfile.TemporaryDirectory() as tmp:
            curves = grad_flow_curves(client, report, Path(tmp))
        if curves:
            paths.append(plot_grad_flow(curves, report, out_dir / f"{stem}-grad-flow.png"))
    if report.search is not None and report.search.importances:
        path = out_dir / f"{stem}-importance.png"
        paths.append(plot_importance(report.search, arm_colors(question), path))
    for stale in out_dir.glob(f"{stem}-*.png"):  # plots of an older report, not made now
        if stale not in paths:
            stale.unlink()
    mlflow_experiment = client.get_experiment_by_name(question.name)
    if mlflow_experiment is not None:
        parents = sweep_runs(
            client, mlflow_experiment.experiment_id, sweep_id(question, profile), "parent"
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
