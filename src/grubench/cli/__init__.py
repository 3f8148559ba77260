"""The ``grubench`` command: thin; it parses, validates and calls the layer below.

grubench fit --config experiments/lstm_adding.yaml --model.name custom_gru
grubench fit --print_config          # the resolved config, loadable with --config
grubench fit --resume <run_id>       # continue a stopped run from its checkpoint
grubench ui                          # the MLflow UI on 127.0.0.1 for the same store
"""

from __future__ import annotations

import sys

from grubench.cli.fit import cmd_fit
from grubench.cli.sweeps import cmd_readme, cmd_report, cmd_run
from grubench.cli.ui import cmd_ui

__all__ = ["main"]


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    commands = {
        "fit": cmd_fit, "run": cmd_run, "report": cmd_report, "readme": cmd_readme, "ui": cmd_ui,
    }  # fmt: skip
    usage = f"usage: grubench {{{','.join(commands)}}} ...  (grubench <command> --help)"
    if not argv or argv[0] in ("-h", "--help"):
        print(usage)
        return 0
    if argv[0] not in commands:
        choices = ", ".join(commands)
        print(
            f"grubench: error: unknown command {argv[0]!r}; choose from: {choices}", file=sys.stderr
        )
        print(usage, file=sys.stderr)
        return 2
    from grubench.training.resume import Interrupted

    try:
        return commands[argv[0]](argv[1:])
    except Interrupted as stop:
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
    except BrokenPipeError:  # the output's reader went away (`grubench run --dry-run | head`)
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at exit
        return 1


def _tracking_uri_option(argv: list[str]) -> str:
    for i, arg in enumerate(argv):
        if arg in ("--tracking_uri", "--tracking-uri") and i + 1 < len(argv):
            return f" --tracking_uri {argv[i + 1]}"
        if arg.startswith(("--tracking_uri=", "--tracking-uri=")):
            return f" --tracking_uri {arg.split('=', 1)[1]}"
    return ""
