"""The ``grubench`` command: thin; it parses, validates and calls the layer below.

grubench fit --config experiments/lstm_adding.yaml --model.name custom_gru
grubench fit --print_config          # the resolved config, loadable with --config
grubench fit --resume <run_id>       # continue a stopped run from its checkpoint
grubench ui                          # the MLflow UI on 127.0.0.1 for the same store

A command's module is imported only once that command is chosen, and each imports Lightning,
torch and MLflow only where it needs them: ``grubench --help`` and most ``<command> --help``
print without them (``import lightning`` alone takes seconds).
"""

from __future__ import annotations

import importlib
import sys

__all__ = ["COMMANDS", "main", "usage"]

# name -> (module, function, what it does in one line)
COMMANDS: dict[str, tuple[str, str, str]] = {
    "fit": ("grubench.cli.fit", "cmd_fit",
            "train one model on one task (flags or --config YAML); --resume a stopped run"),
    "run": ("grubench.cli.sweeps", "cmd_run",
            "run a question's sweep (experiments/*.py), resumable; --dry-run checks and lists it"),
    "report": ("grubench.cli.sweeps", "cmd_report",
               "a question's table, verdict and plots from the store (default: ./reports/)"),
    "readme": ("grubench.cli.sweeps", "cmd_readme",
               "rewrite the README's answers, docs/answers.md and the options tables"),
    "list": ("grubench.cli.sweeps", "cmd_list",
             "the questions with their sweep's state in the store and its time"),
    "ui": ("grubench.cli.ui", "cmd_ui", "serve the MLflow UI for the store on 127.0.0.1"),
}  # fmt: skip


def usage() -> str:
    width = max(map(len, COMMANDS))
    lines = [
        f"usage: grubench {{{','.join(COMMANDS)}}} [options]",
        "       grubench --version",
        "",
        "Measured answers to the folklore of training gated recurrent networks.",
        "",
        "commands:",
        *(f"  {name:<{width}}  {summary}" for name, (_, _, summary) in COMMANDS.items()),
        "",
        "grubench <command> --help shows a command's options.",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv:  # a command is required: the usage goes where errors go
        print(usage(), file=sys.stderr)
        return 2
    if argv[0] in ("-h", "--help"):
        print(usage())
        return 0
    if argv[0] in ("-V", "--version"):
        from grubench import __version__

        print(f"grubench {__version__}")
        return 0
    if argv[0] not in COMMANDS:
        from grubench.cli.messages import did_you_mean

        choices = ", ".join(COMMANDS)
        if argv[0].startswith("-"):
            hint = did_you_mean(argv[0], ["--help", "--version"])
            problem = f"unknown option {argv[0]!r}{hint} (a command comes first: {choices})"
        else:
            hint = did_you_mean(argv[0], list(COMMANDS))
            problem = f"unknown command {argv[0]!r}; choose from: {choices}{hint}"
        print(f"grubench: error: {problem} (grubench --help)", file=sys.stderr)
        return 2
    module, function, _ = COMMANDS[argv[0]]
    command = getattr(importlib.import_module(module), function)
    try:
        return command(argv[1:])
    except SystemExit as stop:
        # an Interrupted can only come from a fit, which imported its module: the check stays
        # off Lightning's import for every other exit (--help, a parser's error)
        resume = sys.modules.get("grubench.training.resume")
        if resume is None or not isinstance(stop, resume.Interrupted):
            raise
        return _interrupted(stop, argv)
    except BrokenPipeError:  # the output's reader went away (`grubench run --dry-run | head`)
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at exit
        return 1
    except OSError as err:
        fit = sys.modules.get("grubench.training.fit")  # (imported by whatever raised it)
        if fit is None or not isinstance(err, fit.StoreFailure):
            raise
        return _store_failure(err, argv)


def _interrupted(stop, argv: list[str]) -> int:
    """A fit or sweep stopped by a signal: what happened and the command that continues it."""
    where = _tracking_uri_option(argv)
    if argv[0] == "run":
        hint = f"run the same command again to continue: {' '.join(['grubench', *argv])}"
    else:
        hint = f"continue it with: grubench fit --resume {stop.run_id}{where}"
    saved = f"checkpoint at step {stop.step}" if stop.step is not None else "stopped at once"
    killed = f"run {stop.run_id} is KILLED; " if stop.run_id else ""
    print(
        f"grubench {argv[0]}: stopped by {stop.signal_name} ({saved}); {killed}{hint}",
        file=sys.stderr,
    )
    return stop.code


def _store_failure(lost, argv: list[str]) -> int:
    """A fit stopped by its store (a full disk, a server gone): what is kept, and the command
    that continues the run."""
    saved = f"its checkpoint at step {lost.step} is kept" if lost.step is not None else (
        "it had no checkpoint yet")  # fmt: skip
    print(
        f"grubench {argv[0]}: error: {lost.why}; run {lost.run_id} stopped and {saved}: "
        f"{lost.fix}, then continue it with: grubench fit --resume {lost.run_id}"
        f"{_tracking_uri_option(argv)}",
        file=sys.stderr,
    )
    return 1


def _tracking_uri_option(argv: list[str]) -> str:
    for i, arg in enumerate(argv):
        if arg in ("--tracking_uri", "--tracking-uri") and i + 1 < len(argv):
            return f" --tracking_uri {argv[i + 1]}"
        if arg.startswith(("--tracking_uri=", "--tracking-uri=")):
            return f" --tracking_uri {arg.split('=', 1)[1]}"
    return ""
