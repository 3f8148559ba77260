"""grubench run / report / readme: a question's sweep, its report, the README's block."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from grubench.cli.messages import fail


def _sweep_parser(prog: str, description: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=prog, description=description)
    parser.add_argument("experiment", help="an experiment file, e.g. experiments/gru_vs_lstm.py")
    parser.add_argument("--profile", default="quick", help="quick (CPU, minutes) or full (GPU)")
    parser.add_argument("--tracking_uri", "--tracking-uri", default=None)
    return parser


def _trainer_pairs(extra: list[str], prog: str) -> dict[str, Any]:
    """``--trainer.devices 2 --trainer.accelerator gpu`` -> {"devices": 2, ...}."""
    import yaml

    options, rest = {}, list(extra)
    while rest:
        flag = rest.pop(0)
        key, _, value = flag.partition("=")
        if not key.startswith("--trainer.") or (not value and not rest):
            raise SystemExit(
                fail(
                    [f"unrecognized argument {flag!r} (expected --trainer.<option> <value>)"], prog
                )
            )
        options[key.removeprefix("--trainer.")] = yaml.safe_load(value if value else rest.pop(0))
    return options


def _load(path: str, prog: str):
    from grubench.sweeps.question import load_question

    try:
        return load_question(path)
    except ValueError as err:
        raise SystemExit(fail([str(err)], prog)) from None


def cmd_run(argv: list[str]) -> int:
    from mlflow.exceptions import MlflowException

    from grubench.answers.publish import describe_parent
    from grubench.answers.report import build_report, to_markdown
    from grubench.store.health import store_problem
    from grubench.store.tracking import get_client, resolve_tracking_uri
    from grubench.sweeps.question import PROFILES
    from grubench.sweeps.runner import run_sweep
    from grubench.training.config import ConfigError, first_line

    prog = "grubench run"
    parser = _sweep_parser(prog, "Run an FAQ experiment's sweep (resumable), then print its table.")
    parser.epilog = (
        "Any --trainer.<option> <value> (e.g. --trainer.accelerator gpu --trainer.devices 2) "
        "is passed to every child's lightning.Trainer."
    )
    parser.add_argument("--dry-run", action="store_true", help="list the grid and exit")
    parser.add_argument(
        "--workers", default="auto",
        help="fit N children at once, each in a process of its own with its share of the "
        "cores (default auto: one per usable core on CPU, one with a GPU accelerator)",
    )  # fmt: skip
    parser.add_argument(
        "--ray-address", default=os.environ.get("RAY_ADDRESS"),
        help="run each child as a task on this Ray cluster (default: $RAY_ADDRESS; none: this "
        "machine)",
    )  # fmt: skip
    parser.add_argument(
        "--cpus-per-child", default="1",
        help="with --ray-address: the CPUs (torch threads) each child's task asks for",
    )  # fmt: skip
    args, extra = parser.parse_known_args(argv)
    if args.profile not in PROFILES:
        return fail([f"--profile {args.profile!r}: choose from: {', '.join(PROFILES)}"], prog)
    experiment = _load(args.experiment, prog)
    overrides = {"trainer": _trainer_pairs(extra, prog)} if extra else {}
    if args.workers != "auto" and (not args.workers.isdigit() or int(args.workers) < 1):
        return fail([f"--workers {args.workers!r}: expected a whole number >= 1 or auto"], prog)
    if not args.cpus_per_child.isdigit() or int(args.cpus_per_child) < 1:
        return fail([f"--cpus-per-child {args.cpus_per_child!r}: expected a whole number >= 1"],
                     prog)  # fmt: skip
    if problem := store_problem(resolve_tracking_uri(args.tracking_uri)):
        return fail([problem], prog)
    try:
        result = run_sweep(
            experiment, args.profile, args.tracking_uri, overrides, args.dry_run,
            workers=args.workers if args.workers == "auto" else int(args.workers),
            ray_address=args.ray_address or None,
            cpus_per_child=int(args.cpus_per_child),
        )  # fmt: skip
    except ConfigError as err:
        return fail(err.problems, prog)
    except ValueError as err:
        return fail([str(err)], prog)
    except MlflowException as err:  # the store went away mid-sweep: not a bad input
        print(f"{prog}: error: the tracking store stopped answering ({first_line(err)}); the same "
              "command continues the sweep once it answers again", file=sys.stderr)  # fmt: skip
        return 1
    if args.dry_run:
        return 0
    print()
    table = to_markdown(build_report(experiment, args.profile, args.tracking_uri))
    print(table)
    if result.parent_run_id:  # the run page in the UI opens on the answer
        describe_parent(get_client(resolve_tracking_uri(args.tracking_uri)),
                        result.parent_run_id, table)  # fmt: skip
    where = f" --tracking_uri {args.tracking_uri}" if args.tracking_uri else ""
    print(f"plots and the table as files: grubench report {args.experiment}{where}")
    print(f"browse the runs: grubench ui{where}")
    if result.failed:
        print(f"{len(result.failed)} children failed:", file=sys.stderr)
        for key in result.failed:
            print(f"  {key}: {result.reasons.get(key, 'FAILED')}", file=sys.stderr)
        return 1
    return 0


def cmd_report(argv: list[str]) -> int:
    from pathlib import Path

    from grubench.answers.publish import write_report
    from grubench.answers.report import to_markdown
    from grubench.store.health import store_problem
    from grubench.store.tracking import resolve_tracking_uri

    prog = "grubench report"
    parser = _sweep_parser(prog, "Aggregate an experiment's runs from the store: table, plots.")
    parser.add_argument(
        "--out", default=None, help="output folder (default: results/ beside the file)"
    )
    args = parser.parse_args(argv)
    experiment = _load(args.experiment, prog)
    if problem := store_problem(resolve_tracking_uri(args.tracking_uri), must_exist=True):
        return fail([problem], prog)
    out = Path(args.out) if args.out else Path(args.experiment).resolve().parent / "results"
    report, paths = write_report(experiment, args.profile, out, args.tracking_uri)
    print(to_markdown(report))
    for path in paths:
        print(f"wrote {path}")
    return 0


def cmd_readme(argv: list[str]) -> int:
    """Regenerate the README's options tables (from the registries) and its FAQ block (and
    every question's report) from the store."""
    from grubench.answers.docs import OPTIONS_END, OPTIONS_START, options_block
    from grubench.answers.readme import faq_block, rewrite_readme
    from grubench.store.health import store_problem
    from grubench.store.tracking import resolve_tracking_uri
    from grubench.sweeps.question import PROFILES

    prog = "grubench readme"
    parser = argparse.ArgumentParser(
        prog=prog,
        description="Rewrite the options tables of the README (between <!-- options:start "
        "--> and <!-- options:end -->) from the model and task definitions, and its FAQ block "
        "(between <!-- faq:start --> and <!-- faq:end -->) from the store: tips with their "
        "labels, every question's table, verdict and plots (written to results/ beside the "
        "question files).",
    )
    parser.add_argument(
        "files", nargs="*", help="question files, in the README's order (default: every file "
        "of --experiments, by name)"
    )  # fmt: skip
    parser.add_argument("--readme", default="README.md")
    parser.add_argument("--experiments", default="experiments", help="folder of question files")
    parser.add_argument("--profile", default="quick")
    parser.add_argument("--tracking_uri", "--tracking-uri", default=None)
    parser.add_argument(
        "--options_only", "--options-only", action="store_true",
        help="rewrite the options tables only (no store needed)",
    )  # fmt: skip
    args = parser.parse_args(argv)
    if args.profile not in PROFILES:
        return fail([f"--profile {args.profile!r}: choose from: {', '.join(PROFILES)}"], prog)
    readme, folder = Path(args.readme).resolve(), Path(args.experiments).resolve()
    paths = [Path(f).resolve() for f in args.files] or sorted(folder.glob("*.py"))
    if not readme.is_file():
        return fail([f"--readme {args.readme!r}: no such file"], prog)
    if args.options_only or OPTIONS_START in readme.read_text():  # a README may not have them
        try:
            rewrite_readme(readme, options_block(), (OPTIONS_START, OPTIONS_END))
        except ValueError as err:
            return fail([str(err)], prog)
    if args.options_only:
        print(f"wrote the options tables of {readme}")
        return 0
    if not paths:
        return fail([f"--experiments {args.experiments!r}: no question files (*.py)"], prog)
    for path in paths:  # every file loads before anything is written
        _load(str(path), prog)
    if problem := store_problem(resolve_tracking_uri(args.tracking_uri), must_exist=True):
        return fail([problem], prog)
    try:
        block = faq_block(paths, args.profile, folder / "results", readme.parent, args.tracking_uri)
        rewrite_readme(readme, block)
    except ValueError as err:
        return fail([str(err)], prog)
    print(f"wrote the options tables and the FAQ block of {readme} ({len(paths)} questions)")
    return 0
