"""The generated blocks of the README and its docs pages, written from the store by
``grubench readme``: the README's answers at a glance (one sentence per question, computed
from its per-condition verdicts, with its measured time and a link to its section), and the
answers page's FAQ (each question's command, measured time, table, plots and the classic
tips with their computed labels). Each question's report is built once and rendered into
whichever page holds a block's markers, its links relative to that page.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from grubench.answers import stats
from grubench.answers.publish import write_report
from grubench.answers.report import Report, duration, sentence, tip_line, to_markdown
from grubench.sweeps.question import Question, load_question

FAQ_START, FAQ_END = "<!-- faq:start -->", "<!-- faq:end -->"
ANSWERS_START, ANSWERS_END = "<!-- answers:start -->", "<!-- answers:end -->"


@dataclass
class Published:
    """A question's report as ``write_report`` left it: the file, the report, its files."""

    path: Path
    question: Question
    report: Report
    files: list[Path]

    @property
    def anchor(self) -> str:
        return self.question.name.replace("_", "-")

    def ran(self) -> str:
        seconds = self.report.seconds
        if not seconds:
            return "not run into this store yet"
        if self.report.missing:  # a sweep under way, or stopped before its end
            return f"in progress: {duration(seconds)} so far here"
        return f"{duration(seconds)} here"


def publish(
    paths: list[Path], profile: str, results: Path, tracking_uri: str | None = None
) -> list[Published]:
    """Every question's report written under ``results`` (table and plots), in order."""
    published = []
    for path in paths:
        question = load_question(path)
        report, files = write_report(question, profile, results, tracking_uri)
        published.append(Published(path, question, report, files))
    return published


def faq_block(
    paths: list[Path], profile: str, results: Path, root: Path, tracking_uri: str | None = None
) -> str:
    """The FAQ section for a page in the folder ``root``, from the store (see render_faq)."""
    return render_faq(publish(paths, profile, results, tracking_uri), root)


def render_faq(published: list[Published], root: Path, repo: Path | None = None) -> str:
    """The tips with their computed labels, then per question its command with the sweep's
    measured time, its report and its plots; links relative to ``root``, the page's folder,
    commands to ``repo``, where they are run (``root`` by default)."""
    sections, tips = [], []
    for item in published:
        command = f"grubench run {_relative(item.path, repo or root)}"
        ran = f"# {item.ran()}"
        text = to_markdown(item.report, heading="####").split("\n", 1)[1]
        images = [f"![{f.stem}]({_relative(f, root)})" for f in item.files
                  if f.suffix == ".png"]  # fmt: skip
        sections.append("\n".join([
            f'<a id="{item.anchor}"></a>', f"### {item.question.text}", "", "```bash",
            f"{command}      {ran}", "```", text.rstrip(), "", *images,
        ]))  # fmt: skip
        for tip, results_ in item.report.tips:
            tips.append(f"{tip_line(tip, results_)} ([{item.question.name}](#{item.anchor}))")
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
        "(no test; a pooled claim leaves such conditions out and names them). A claim on time "
        "per step reads the controlled measurement (benchmarks/results/arm_speed.json): "
        "*supported* or *contradicted* where one arm is faster in every condition it names "
        "(the ratio's interval excludes 1, a gap of 5% or more), *no difference* or *mixed* "
        "otherwise, *not measured* (with the command that measures it) where it has no entry.",
        "",
        *tips,
    ]
    return "\n".join(head) + "\n\n" + "\n\n".join(sections) + "\n"


def render_answers(
    published: list[Published], root: Path, faq_page: Path | None, repo: Path | None = None
) -> str:
    """The answers at a glance, for a page in the folder ``root``: per question, its text
    linked to its section of ``faq_page``, the one-sentence answer from its verdicts
    (``report.sentence``), its command and the sweep's measured time; then the total."""
    lines = []
    for item in published:
        title = item.question.text
        if faq_page is not None:
            title = f"[{title}]({_relative(faq_page, root)}#{item.anchor})"
        command = f"grubench run {_relative(item.path, repo or root)}"
        lines.append(f"- **{title}** {sentence(item.report)} "
                     f"(`{command}`: {item.ran()})")  # fmt: skip
    ran = [item for item in published if item.report.seconds and not item.report.missing]
    total = sum(item.report.seconds for item in ran)
    profile = published[0].report.profile if published else "quick"
    lines.append("")
    lines.append(
        f"The {len(ran)} finished {profile} sweeps in this store took {_hours(total)} in all "
        f"(the sum of each sweep's wall time, read from its parent runs)"
        + (f"; {len(published) - len(ran)} not finished." if len(ran) < len(published) else ".")
    )
    return "\n".join(lines) + "\n"


def _hours(seconds: float) -> str:
    hours, rest = divmod(int(round(seconds)), 3600)
    return f"{hours}h{rest // 60:02d}m" if hours else duration(seconds)


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
