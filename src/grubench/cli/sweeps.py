"""grubench run / report / readme: a question's sweep, its report, the README's block."""

from __future__ import annotations

import argparse
import os
import re
import shlex
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from grubench.cli.messages import TRACKING_URI_HELP, Parser, did_you_mean, fail, option_strings

PROFILE_HELP = "quick (CPU, minutes) or full (GPU): the question's budget"


def _sweep_parser(prog: str, description: str) -> argparse.ArgumentParser:
    parser = Parser(prog=prog, description=description)
    parser.add_argument("experiment", help="a question file, e.g. experiments/gru_vs_lstm.py")
    parser.add_argument("--profile", default="quick", help=PROFILE_HELP)
    parser.add_argument("--tracking_uri", "--tracking-uri", default=None, help=TRACKING_URI_HELP)
    return parser


OVERRIDES_HELP = (
    "Any --model.<option>, --task.<option> or --optim.<option> VALUE (e.g. --model.hidden_size "
    "128 --task.seq_len 200; grubench fit --help lists them) is set on every child over the "
    "question's own values, parsed and checked as grubench fit does; any --trainer.<option> "
    "VALUE (e.g. --trainer.accelerator gpu --trainer.devices 2) is passed to every child's "
    "lightning.Trainer."
)


def _overrides(extra: list[str], prog: str, flags: list[str] = ()) -> dict[str, Any]:
    """The command line's ``--<group>.<option> VALUE`` flags as nested overrides of every
    child: ``--model.*``, ``--task.*``, ``--optim.*`` parsed by fit's own option definitions,
    ``--trainer.*`` as YAML values; only the options given. Anything else is an error, with
    the nearest of the command's own ``flags`` where one is close."""
    import yaml

    from grubench.cli.fit import OVERRIDE_GROUPS, parse_group_options, underscored

    trainer, pairs, rest = {}, [], list(extra)
    while rest:
        flag = rest.pop(0)
        key, eq, value = underscored(flag).partition("=")
        group = key[2:].split(".", 1)[0] if key.startswith("--") and "." in key else ""
        if group not in (*OVERRIDE_GROUPS, "trainer"):
            hint = did_you_mean(flag, flags) or f" ({prog} --help lists the options)"
            what = f"unknown option {key}" if key.startswith("-") else f"unexpected {flag!r}"
            raise SystemExit(fail([what + hint], prog))
        if not eq and not rest:
            raise SystemExit(fail([f"{key} needs a value ({key} VALUE)"], prog))
        value = value if eq else rest.pop(0)
        if group == "trainer":
            trainer[key.removeprefix("--trainer.")] = yaml.safe_load(value)
        else:
            pairs.append((key, value))
    overrides = parse_group_options(pairs, prog, flags)
    return {**overrides, "trainer": trainer} if trainer else overrides


def _unknown_trainer_options(options: dict[str, Any]) -> list[str]:
    """``--trainer.<key>`` flags that name no lightning.Trainer option, one line each, with
    the nearest option (what a fit would reject, said once instead of once per child)."""
    from grubench.training.config import RESERVED_TRAINER_KEYS, config_keys

    valid = config_keys()["trainer"]
    flags = [f"--trainer.{key}" for key in sorted(valid)]
    unknown = [key for key in options if key not in valid and key not in RESERVED_TRAINER_KEYS]
    return [f"--trainer.{key}: not a lightning.Trainer option"
            + did_you_mean(f"--trainer.{key}", flags) for key in unknown]  # fmt: skip


def _applied(overrides: dict[str, Any], child) -> str:
    """``model.hidden_size=128, trainer.max_steps=5``: each override as the child's config
    holds it (what the dry run shows applied)."""
    from grubench.store.tracking import flatten

    config = child.config
    shown = []
    for key in flatten(overrides):
        value: Any = config
        for part in key.split("."):
            value = value.get(part) if isinstance(value, dict) else getattr(value, part)
        shown.append(f"{key}={value}")
    return ", ".join(shown)


def _plan_problems(plan) -> list[str]:
    """Every child's config checked as a real run checks it, each distinct problem once, with
    the child it concerns (or how many share it)."""
    from grubench.training.config import validate_fit_config

    children = plan.tuning + plan.evaluation
    shared: dict[str, list[str]] = {}
    for child in children:
        for problem in validate_fit_config(child.config):
            shared.setdefault(problem, []).append(child.key)
    lines = []
    for problem, keys in shared.items():
        if len(keys) == 1:
            lines.append(f"{keys[0]}: {problem}")
        elif len(keys) == len(children):
            lines.append(f"{problem} (all {len(keys)} children)")
        else:
            lines.append(f"{keys[0]}: {problem} (and {len(keys) - 1} more children)")
    return sorted(lines)


def _load(path: str, prog: str):
    if Path(path).suffix in (".yaml", ".yml"):  # a fit's config, given to a sweep command
        hint = (f"{path} is a fit config, not a question file: train it with grubench fit "
                f"--config {path} ({prog} takes a question, e.g. "
                "experiments/gru_vs_lstm.py)")  # fmt: skip
        raise SystemExit(fail([hint], prog))
    from grubench.sweeps.question import load_question

    try:
        return load_question(path)
    except ValueError as err:
        raise SystemExit(fail([str(err)], prog)) from None


def cmd_run(argv: list[str]) -> int:
    prog = "grubench run"
    parser = _sweep_parser(prog, "Run an FAQ experiment's sweep (resumable), then print its table.")
    parser.usage = "%(prog)s [-h] experiment [options] [--<group>.<option> VALUE ...]"
    parser.epilog = OVERRIDES_HELP
    parser.add_argument(
        "--dry-run", "--dry_run", action="store_true",
        help="check every child's config as a run would, list the children and exit; nothing "
        "is written",
    )  # fmt: skip
    parser.add_argument(
        "--workers", default="auto",
        help="fit N children at once, each in a process of its own with its share of the "
        "cores (default auto: one per usable core on CPU, one with a GPU accelerator)",
    )  # fmt: skip
    parser.add_argument(
        "--ray-address", "--ray_address", default=os.environ.get("RAY_ADDRESS"),
        help="run each child as a task on this Ray cluster (default: $RAY_ADDRESS; none: this "
        "machine)",
    )  # fmt: skip
    parser.add_argument(
        "--cpus-per-child", "--cpus_per_child", default="1",
        help="with --ray-address: the CPUs (torch threads) each child's task asks for",
    )  # fmt: skip
    args, extra = parser.parse_known_args(argv)
    from mlflow.exceptions import MlflowException

    from grubench.answers.publish import describe_parent
    from grubench.answers.report import build_report, to_markdown
    from grubench.store.health import store_problem
    from grubench.store.tracking import get_client, resolve_tracking_uri
    from grubench.sweeps.question import PROFILES
    from grubench.sweeps.runner import plan_status, plan_sweep, run_sweep
    from grubench.training.config import ConfigError, first_line

    overrides = _overrides(extra, prog, option_strings(parser))
    if args.profile not in PROFILES:
        return fail([f"--profile {args.profile!r}: choose from: {', '.join(PROFILES)}"], prog)
    experiment = _load(args.experiment, prog)
    if problems := _unknown_trainer_options(overrides.get("trainer", {})):
        return fail(problems, prog)
    if args.workers != "auto" and (not args.workers.isdigit() or int(args.workers) < 1):
        return fail([f"--workers {args.workers!r}: expected a whole number >= 1 or auto"], prog)
    if not args.cpus_per_child.isdigit() or int(args.cpus_per_child) < 1:
        return fail([f"--cpus-per-child {args.cpus_per_child!r}: expected a whole number >= 1"],
                     prog)  # fmt: skip
    if problem := store_problem(resolve_tracking_uri(args.tracking_uri)):
        return fail([problem], prog)
    how = {
        "workers": args.workers if args.workers == "auto" else int(args.workers),
        "ray_address": args.ray_address or None,
        "cpus_per_child": int(args.cpus_per_child),
    }
    try:  # what a run checks before its first child, each problem once
        plan = plan_sweep(experiment, args.profile, overrides, **how)
    except ValueError as err:  # ConfigError included
        return fail(getattr(err, "problems", None) or [str(err)], prog)
    if problems := _plan_problems(plan):
        return fail(problems, prog)
    if args.dry_run:  # then the plan it would run
        plan.show(print)
        if overrides:
            print(f"  every child with {_applied(overrides, (plan.tuning + plan.evaluation)[0])}")
        print(plan_status(plan, resolve_tracking_uri(args.tracking_uri)).line(plan))
        return 0
    try:
        result = run_sweep(experiment, args.profile, args.tracking_uri, overrides, **how)
    except ConfigError as err:
        return fail(err.problems, prog)
    except ValueError as err:
        return fail([str(err)], prog)
    except MlflowException as err:  # the store went away mid-sweep: not a bad input
        print(f"{prog}: error: the tracking store stopped answering ({first_line(err)}); the same "
              "command continues the sweep once it answers again", file=sys.stderr)  # fmt: skip
        return 1
    print()
    table = to_markdown(build_report(experiment, args.profile, args.tracking_uri, overrides))
    print(table)
    if result.parent_run_id:  # the run page in the UI opens on the answer
        describe_parent(get_client(resolve_tracking_uri(args.tracking_uri)),
                        result.parent_run_id, table)  # fmt: skip
    where = f" --tracking_uri {args.tracking_uri}" if args.tracking_uri else ""
    given = "".join(f" {shlex.quote(token)}" for token in extra)  # the report finds these runs
    print(f"plots and the table as files: grubench report {args.experiment}{given}{where}")
    print(f"browse the runs: grubench ui{where}")
    if result.failed:
        print(f"{len(result.failed)} children failed:", file=sys.stderr)
        for key in result.failed:
            print(f"  {key}: {result.reasons.get(key, 'FAILED')}", file=sys.stderr)
        return 1
    return 0


REPORTS = Path("reports")
"""``grubench report``'s default folder, under the current directory (ignored by git): a report
of a question not run yet must not replace the committed tables in experiments/results/."""


def cmd_report(argv: list[str]) -> int:
    prog = "grubench report"
    parser = _sweep_parser(
        prog, "Aggregate a question's runs from the store: its table, verdict and plots, written "
        "to a folder and logged on the sweep's parent run.",
    )  # fmt: skip
    parser.add_argument(
        "--out", default=None,
        help=f"output folder (default: {REPORTS}/<question>/ under the current directory, which "
        "git ignores); --out experiments/results replaces the published results",
    )  # fmt: skip
    parser.usage = "%(prog)s [-h] experiment [options] [--<group>.<option> VALUE ...]"
    parser.epilog = ("The --model.*, --task.*, --optim.* and --trainer.* options the sweep was "
                     "run with (grubench run --help) find its runs.")  # fmt: skip
    args, extra = parser.parse_known_args(argv)
    overrides = _overrides(extra, prog, option_strings(parser))
    from grubench.answers.publish import write_report
    from grubench.answers.report import to_markdown
    from grubench.store.health import store_problem
    from grubench.store.tracking import resolve_tracking_uri

    experiment = _load(args.experiment, prog)
    if problem := store_problem(resolve_tracking_uri(args.tracking_uri), must_exist=True):
        return fail([problem], prog)
    out = Path(args.out) if args.out else REPORTS / experiment.name
    report, paths = write_report(experiment, args.profile, out, args.tracking_uri, overrides)
    print(to_markdown(report))
    for path in paths:
        print(f"wrote {path}")
    return 0


def cmd_readme(argv: list[str]) -> int:
    """Regenerate the generated blocks of the README and its docs pages: the options tables
    (from the registries), the answers at a glance and the FAQ (and every question's report)
    from the store."""
    prog = "grubench readme"
    parser = Parser(
        prog=prog,
        description="Rewrite the generated blocks of the README and of the pages under "
        "--docs, wherever their markers are: the options tables (<!-- options:start --> ... "
        "<!-- options:end -->) from the model and task definitions; from the store, the "
        "answers at a glance (<!-- answers:start --> ...: one sentence per question) and the "
        "FAQ (<!-- faq:start --> ...: tips with their labels, every question's table, verdict "
        "and plots, written to results/ beside the question files).",
    )
    parser.add_argument(
        "files", nargs="*", help="question files, in the README's order (default: every file "
        "of --experiments, by name)"
    )  # fmt: skip
    parser.add_argument("--readme", default="README.md", help="the README to rewrite")
    parser.add_argument(
        "--docs", default=None, help="folder of the pages with generated blocks (default: "
        "docs/ beside the README)"
    )  # fmt: skip
    parser.add_argument("--experiments", default="experiments", help="folder of question files")
    parser.add_argument("--profile", default="quick", help=PROFILE_HELP)
    parser.add_argument("--tracking_uri", "--tracking-uri", default=None, help=TRACKING_URI_HELP)
    parser.add_argument(
        "--options_only", "--options-only", action="store_true",
        help="rewrite the options tables only (no store needed)",
    )  # fmt: skip
    args = parser.parse_args(argv)
    from grubench.answers.docs import OPTIONS_END, OPTIONS_START, options_block
    from grubench.answers.readme import (
        ANSWERS_END,
        ANSWERS_START,
        FAQ_END,
        FAQ_START,
        publish,
        render_answers,
        render_faq,
        rewrite_readme,
    )
    from grubench.store.health import store_problem
    from grubench.store.tracking import resolve_tracking_uri
    from grubench.sweeps.question import PROFILES

    if args.profile not in PROFILES:
        return fail([f"--profile {args.profile!r}: choose from: {', '.join(PROFILES)}"], prog)
    readme, folder = Path(args.readme).resolve(), Path(args.experiments).resolve()
    paths = [Path(f).resolve() for f in args.files] or sorted(folder.glob("*.py"))
    if not readme.is_file():
        return fail([f"--readme {args.readme!r}: no such file"], prog)
    docs = Path(args.docs).resolve() if args.docs else readme.parent / "docs"
    if args.docs and not docs.is_dir():
        return fail([f"--docs {args.docs!r}: no such folder"], prog)
    pages = [readme, *sorted(docs.glob("*.md"))]
    texts = {page: page.read_text() for page in pages}

    def holding(start: str, end: str) -> list[Path]:
        return [page for page, text in texts.items() if start in text and end in text]

    where = f"{args.readme} or {docs.name}/*.md"
    options_pages = holding(OPTIONS_START, OPTIONS_END)
    if args.options_only:
        if not options_pages:
            return fail([f"no {OPTIONS_START} ... {OPTIONS_END} markers in {where}"], prog)
        for page in options_pages:
            rewrite_readme(page, options_block(), (OPTIONS_START, OPTIONS_END))
        print(f"wrote the options tables of {', '.join(_shown(p) for p in options_pages)}")
        return 0
    faq_pages, answers_pages = holding(FAQ_START, FAQ_END), holding(ANSWERS_START, ANSWERS_END)
    if not faq_pages and not answers_pages:
        return fail([f"no {FAQ_START} ... {FAQ_END} or {ANSWERS_START} ... {ANSWERS_END} "
                     f"markers in {where} to write between"], prog)  # fmt: skip
    if not paths:
        return fail([f"--experiments {args.experiments!r}: no question files (*.py)"], prog)
    for path in paths:  # every file loads before anything is written
        _load(str(path), prog)
    if problem := store_problem(resolve_tracking_uri(args.tracking_uri), must_exist=True):
        return fail([problem], prog)
    published = publish(paths, args.profile, folder / "results", args.tracking_uri)
    repo = readme.parent
    for page in options_pages:
        rewrite_readme(page, options_block(), (OPTIONS_START, OPTIONS_END))
    for page in faq_pages:
        rewrite_readme(page, render_faq(published, page.parent, repo), (FAQ_START, FAQ_END))
    faq_page = faq_pages[0] if faq_pages else None
    for page in answers_pages:
        block = render_answers(published, page.parent, faq_page, repo)
        rewrite_readme(page, block, (ANSWERS_START, ANSWERS_END))
    written = sorted({*options_pages, *faq_pages, *answers_pages}, key=pages.index)
    print(f"wrote the generated blocks of {', '.join(_shown(p) for p in written)} "
          f"({len(paths)} questions)")  # fmt: skip
    return 0


def _shown(path: Path) -> str:
    try:
        return path.relative_to(Path.cwd()).as_posix()
    except ValueError:
        return str(path)


def cmd_list(argv: list[str]) -> int:
    """Every question file with what the store holds of its sweep and its time."""
    prog = "grubench list"
    parser = Parser(
        prog=prog,
        description="List the question files with their sweep's state in the store: children "
        "finished and to run, and the measured time of a finished sweep, the estimated time "
        "of what is left (from the median finished child), or, for a sweep with nothing "
        "finished here, the time it took on the reference machine as the README's answers "
        "at a glance record it.",
    )
    parser.add_argument("--experiments", default="experiments", help="folder of question files")
    parser.add_argument("--profile", default="quick", help=PROFILE_HELP)
    parser.add_argument("--tracking_uri", "--tracking-uri", default=None, help=TRACKING_URI_HELP)
    parser.add_argument(
        "--workers", default="auto", help="children at once, for the estimate (default auto: "
        "one per usable core)"
    )  # fmt: skip
    parser.add_argument(
        "--readme", default=None, help="the README whose answers at a glance give the measured "
        "time of a sweep not run in this store (default: README.md beside the experiments "
        "folder)"
    )  # fmt: skip
    args = parser.parse_args(argv)
    from grubench.answers.report import duration, sweep_seconds
    from grubench.store.health import store_problem
    from grubench.store.tracking import get_client, resolve_tracking_uri
    from grubench.sweeps.question import PROFILES
    from grubench.sweeps.runner import plan_status, plan_sweep

    if args.profile not in PROFILES:
        return fail([f"--profile {args.profile!r}: choose from: {', '.join(PROFILES)}"], prog)
    if args.workers != "auto" and (not args.workers.isdigit() or int(args.workers) < 1):
        return fail([f"--workers {args.workers!r}: expected a whole number >= 1 or auto"], prog)
    folder = Path(args.experiments)
    paths = sorted(folder.glob("*.py"))
    if not paths:
        return fail([f"--experiments {args.experiments!r}: no question files (*.py)"], prog)
    questions = [(path, _load(str(path), prog)) for path in paths]  # all load, or one line
    uri = resolve_tracking_uri(args.tracking_uri)
    if problem := store_problem(uri):
        return fail([problem], prog)
    workers = args.workers if args.workers == "auto" else int(args.workers)
    readme = Path(args.readme) if args.readme else folder.resolve().parent / "README.md"
    reference = reference_times(readme)
    rows, referenced, unmeasured = [], False, []
    for path, question in questions:
        try:
            plan = plan_sweep(question, args.profile, None, workers)
        except ValueError as err:  # a question that cannot expand: one line, as run says it
            return fail([f"{path}: {err}"], prog)
        status = plan_status(plan, uri)
        if status.to_run == 0:
            time = f"{duration(sweep_seconds(get_client(uri), question, args.profile))} measured"
        elif status.seconds is not None:
            time = f"about {max(1, round(status.seconds / 60))} min left"
        elif reference.profile == args.profile and path.stem in reference.seconds:
            minutes = max(1, round(reference.seconds[path.stem] / 60))
            time, referenced = f"about {minutes} min on the reference machine ({readme.name})", True
        else:
            time = "no measured time"
            unmeasured.append(path.stem)
        rows.append((path.stem, f"{status.finished}/{plan.total}", time, question.text))
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    print(f"{args.profile} profiles in {uri} (finished/children; time):")
    for row in rows:
        print("  " + "  ".join(cell.ljust(w) for cell, w in zip(row[:3], widths)) + f"  {row[3]}")
    if referenced:
        print(f"on the reference machine: the sweep's wall time in {_shown(readme)}'s answers "
              "at a glance (grubench readme reads it from the sweep's parent runs)")  # fmt: skip
    if unmeasured:
        print(f"no measured time: {reference.why_not(args.profile, unmeasured)}")
    return 0


@dataclass
class ReferenceTimes:
    """What a README's answers at a glance record: each finished sweep's wall time (seconds,
    by question file stem) and the profile they were measured at (None: no such block)."""

    readme: Path
    profile: str | None
    seconds: dict[str, float]

    def why_not(self, profile: str, stems: list[str]) -> str:
        """Why ``stems`` have no reference time, in a few words."""
        where = _shown(self.readme)
        if self.profile is None:
            return f"{where} has no answers at a glance to read times from"
        if self.profile != profile:
            return f"{where} records {self.profile} sweeps, not {profile}"
        return f"{where} records no finished {profile} sweep of {', '.join(stems)}"


# one line of the answers at a glance (grubench.answers.readme.render_answers):
# "- **<question>** <answer> (`grubench run experiments/q.py`: 91m58s here)", then
# "The 11 finished quick sweeps in this store took ..."
_REFERENCE_LINE = re.compile(r"\(`grubench run (?P<path>\S+)`: (?P<m>\d+)m(?P<s>\d\d)s here\)$")
_REFERENCE_PROFILE = re.compile(r"^The \d+ finished (?P<profile>\w+) sweeps? in this store")


def reference_times(readme: Path) -> ReferenceTimes:
    """The measured sweep times of ``readme``'s answers at a glance (written by ``grubench
    readme``; a sweep in progress or not run there has none)."""
    from grubench.answers.readme import ANSWERS_END, ANSWERS_START

    try:
        text = readme.read_text()
    except OSError:
        return ReferenceTimes(readme, None, {})
    if ANSWERS_START not in text or ANSWERS_END not in text:
        return ReferenceTimes(readme, None, {})
    block = text.split(ANSWERS_START, 1)[1].split(ANSWERS_END, 1)[0]
    profile, seconds = None, {}
    for line in block.splitlines():
        if found := _REFERENCE_LINE.search(line.strip()):
            seconds[Path(found["path"]).stem] = 60 * int(found["m"]) + int(found["s"])
        elif found := _REFERENCE_PROFILE.match(line.strip()):
            profile = found["profile"]
    return ReferenceTimes(readme, profile, seconds)
