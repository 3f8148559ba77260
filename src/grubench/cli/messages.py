"""How a command reports a mistake of its user: one line each, exit status 2, and for a
misspelled flag or command the nearest valid one."""

from __future__ import annotations

import argparse
import difflib
import sys
from collections.abc import Iterable


def fail(problems: list[str], prog: str) -> int:
    for problem in problems:
        print(f"{prog}: error: {problem}", file=sys.stderr)
    return 2


def did_you_mean(given: str, valid: Iterable[str]) -> str:
    """``"; did you mean --x?"`` for the valid spelling nearest to ``given``, or ``""``."""
    flag = given.split("=", 1)[0]
    best, best_ratio = None, 0.6  # difflib's ratio (its own cutoff): 1 is the same string
    for candidate in valid:  # on a tie the first declared spelling wins (--dry-run, not --dry_run)
        ratio = difflib.SequenceMatcher(None, flag, candidate).ratio()
        if ratio > best_ratio:
            best, best_ratio = candidate, ratio
    return f"; did you mean {best}?" if best else ""


def unknown_flags(tokens: Iterable[str], valid: Iterable[str]) -> list[str]:
    """One problem line per flag among ``tokens`` (values skipped), each with its nearest
    valid flag where one is close."""
    valid = list(valid)
    return [f"unknown option {t.split('=', 1)[0]}{did_you_mean(t, valid)}"
            for t in tokens if t.startswith("-")]  # fmt: skip


def option_strings(parser: argparse.ArgumentParser) -> list[str]:
    return [s for action in parser._actions for s in action.option_strings]


TRACKING_URI_HELP = (
    "the MLflow store: a sqlite:/// file or a tracking server's http(s):// address "
    "(default: $MLFLOW_TRACKING_URI, else sqlite:///./mlruns/mlflow.db)"
)


class DefaultsFormatter(argparse.HelpFormatter):
    """Each flag's help ends with its default, unless it has none or says it already."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        silent = action.default in (None, False, argparse.SUPPRESS) or "default" in text
        if silent or not action.option_strings:
            return text
        return f"{text} (default: %(default)s)"


class Parser(argparse.ArgumentParser):
    """argparse's parser, whose errors are one line (with a did-you-mean for an unknown flag)
    instead of the usage followed by the error, and whose help shows each flag's default."""

    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("formatter_class", DefaultsFormatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str):
        prefix = "unrecognized arguments: "
        if message.startswith(prefix):
            problems = unknown_flags(message[len(prefix) :].split(), option_strings(self))
            problems = problems or [message]
        else:
            problems = [message]
        problems[-1] += f" ({self.prog} --help lists the options)"
        raise SystemExit(fail(problems, self.prog))
