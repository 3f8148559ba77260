"""The README's generated blocks: the FAQ section (each question's command, measured time,
table and plots, and the classic tips with their computed labels), written from the store by
``grubench readme``.
"""

from __future__ import annotations

import os
from pathlib import Path

from grubench.answers import stats
from grubench.answers.publish import write_report
from grubench.answers.report import duration, tip_line, to_markdown
from grubench.sweeps.question import load_question

FAQ_START, FAQ_END = "<!-- faq:start -->", "<!-- faq:end -->"


def faq_block(
    paths: list[Path], profile: str, results: Path, root: Path, tracking_uri: str | None = None
) -> str:
    """The README's FAQ section, from the store: the tips with their computed labels, then
    per question its command with the sweep's measured time, its plots and its report.
    ``write_report`` runs for each question (tables and plots under ``results``)."""

    sections, tips = [], []
    for path in paths:
        question = load_question(path)
        report, files = write_report(question, profile, results, tracking_uri)
        seconds = report.seconds
        command = f"grubench run {_relative(path, root)}"
        ran = f"# {duration(seconds)} here" if seconds else "# not run into this store yet"
        text = to_markdown(report, heading="####").split("\n", 1)[1]
        images = [f"![{f.stem}]({_relative(f, root)})" for f in files
                  if f.suffix == ".png"]  # fmt: skip
        anchor = question.name.replace("_", "-")
        sections.append("\n".join([
            f'<a id="{anchor}"></a>', f"### {question.text}", "", "```bash",
            f"{command}      {ran}", "```", text.rstrip(), "", *images,
        ]))  # fmt: skip
        for tip, results_ in report.tips:
            tips.append(f"{tip_line(tip, results_)} ([{question.name}](#{anchor}))")
    head = [
        "### The classic tips, against these runs",
        "",
        "Each tip as the tutorials state it; each claim in it is tested on its question's "
        "evaluation runs (an exact permutation test of P(claimed better > claimed worse), "
        "stratified by condition, with Holm's correction over the question's verdict lines and "
        f"tips' claims): *supported* when the corrected p is at most {stats.ALPHA:g} and P is "
        "above 0.5, *contradicted* when it is below, *mixed* when its conditions point "
        "opposite ways, *not detected* otherwise (with the effect it would have detected), "
        f"*too few seeds* under {stats.MIN_SEEDS} per arm and condition, *cannot discriminate* "
        "where every arm is at the ceiling or at the floor in each condition the claim names "
        "(no test; a pooled claim leaves such conditions out and names them).",
        "",
        *tips,
    ]
    return "\n".join(head) + "\n\n" + "\n\n".join(sections) + "\n"


def _relative(path: Path, root: Path) -> str:

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
