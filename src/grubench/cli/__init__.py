"""The ``grubench`` command: thin; it parses, validates and calls the layer below.

grubench fit --config experiments/lstm_adding.yaml --model.name custom_gru
grubench fit --print_config          # the resolved config, loadable with --config
grubench fit --resume <run_id>       # continue a stopped run from its checkpoint
grubench ui                          # the MLflow UI on 127.0.0.1 for the same store
"""

from __future__ import annotations

import argparse
import importlib.util
import inspect
import os
import subprocess
import sys
from dataclasses import fields
from pathlib import Path
from typing import Any

from jsonargparse import ActionConfigFile, ArgumentParser


def _fail(problems: list[str], prog: str) -> int:
    for problem in problems:
        print(f"{prog}: error: {problem}", file=sys.stderr)
    return 2


def fit_parser() -> ArgumentParser:
    import lightning as L

    from grubench.models import ModelConfig
    from grubench.options import help_of
    from grubench.training.config import (
        ALIASES,
        RESERVED_TRAINER_KEYS,
        TRAINER_DEFAULTS,
        FitConfig,
        top_level_options,
    )
    from grubench.training.data import TaskConfig
    from grubench.training.module import OptimConfig

    parser = ArgumentParser(
        prog="grubench fit",
        description="Train one model on one task; the run lands in the MLflow store.",
        default_env=False,
    )
    parser.add_argument("--config", action=ActionConfigFile, help="YAML config file(s).")
    parser.add_class_arguments(ModelConfig, "model")
    parser.add_class_arguments(TaskConfig, "task")
    parser.add_class_arguments(OptimConfig, "optim")
    defaults = FitConfig()
    for name, (field, annotation) in top_level_options().items():  # one flag per option
        parser.add_argument(f"--{name}", *ALIASES.get(name, ()), type=annotation,
                            default=getattr(defaults, name), help=help_of(field))  # fmt: skip
    parser.add_method_arguments(L.Trainer, "__init__", "trainer", skip=set(RESERVED_TRAINER_KEYS))
    parser.set_defaults({f"trainer.{k}": v for k, v in TRAINER_DEFAULTS.items()})
    return parser


def _trainer_overrides(trainer_ns) -> dict[str, Any]:
    """Trainer options whose value differs from lightning.Trainer's own default."""
    import lightning as L

    signature = inspect.signature(L.Trainer.__init__).parameters
    values = vars(trainer_ns) if trainer_ns is not None else {}
    return {k: v for k, v in values.items() if k in signature and v != signature[k].default}


def parse_fit_config(argv: list[str]):
    """``argv`` -> FitConfig (jsonargparse exits with code 2 on a type error)."""
    from grubench.models import ModelConfig
    from grubench.training.config import FitConfig, top_level_options
    from grubench.training.data import TaskConfig
    from grubench.training.module import OptimConfig

    parser = fit_parser()
    ns = parser.parse_args(argv)

    def build(cls, group):
        return cls(**{f.name: getattr(group, f.name) for f in fields(cls)})

    return FitConfig(
        model=build(ModelConfig, ns.model),
        task=build(TaskConfig, ns.task),
        optim=build(OptimConfig, ns.optim),
        trainer=_trainer_overrides(ns.trainer),
        **{name: getattr(ns, name) for name in top_level_options()} | {"tags": dict(ns.tags or {})},
    )


def check_config_files(argv: list[str]) -> list[str]:
    """Problems in the ``--config`` files, each as ``file:line: ...``: malformed YAML, and keys
    that are no option (jsonargparse names neither the file nor the line)."""
    import yaml

    from grubench.training.config import config_keys, unknown_key

    paths = [argv[i + 1] for i, arg in enumerate(argv[:-1]) if arg == "--config"]
    paths += [arg.split("=", 1)[1] for arg in argv if arg.startswith("--config=")]
    keys = config_keys()
    problems = []
    for path in paths:
        try:
            node = yaml.compose(Path(path).read_text())
        except OSError as err:
            problems.append(f"{path}: cannot read: {err.strerror}")
            continue
        except yaml.MarkedYAMLError as err:
            mark = err.problem_mark or err.context_mark
            where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else path
            problems.append(f"{where}: malformed YAML: {err.problem or err.context}")
            continue
        if node is None:
            continue
        if not isinstance(node, yaml.MappingNode):
            problems.append(f"{path}:{node.start_mark.line + 1}: expected a mapping of options")
            continue
        for key_node, value_node in node.value:
            key, line = key_node.value, key_node.start_mark.line + 1
            if problem := unknown_key(keys, "", key):
                problems.append(f"{path}:{line}: {problem}")
            elif key in keys and isinstance(value_node, yaml.MappingNode):
                for option_node, _ in value_node.value:
                    if problem := unknown_key(keys, key, option_node.value):
                        problems.append(f"{path}:{option_node.start_mark.line + 1}: {problem}")
    return problems


RESUME_FORM = "grubench fit --resume RUN_ID [--tracking_uri URI]"


def _pop_resume(argv: list[str]) -> tuple[str | None, list[str]]:
    """``--resume RUN_ID`` (or ``--resume=RUN_ID``) taken out of ``argv``; "" when no id."""
    for i, arg in enumerate(argv):
        if arg == "--resume":
            value = argv[i + 1] if i + 1 < len(argv) and not argv[i + 1].startswith("-") else ""
            return value, argv[:i] + argv[i + 1 + bool(value) :]
        if arg.startswith("--resume="):
            return arg.split("=", 1)[1], argv[:i] + argv[i + 1 :]
    return None, argv


def cmd_fit(argv: list[str]) -> int:
    from grubench.training.config import ConfigError
    from grubench.training.fit import run_fit

    resume, argv = _pop_resume(argv)
    problems = check_config_files(argv)
    if problems:
        return _fail(problems, "grubench fit")
    if resume is not None:
        return _resume_fit(resume, argv)
    cfg = parse_fit_config(argv)
    try:
        result = run_fit(cfg)  # validates the whole config before it touches the store
    except ConfigError as err:
        return _fail(err.problems, "grubench fit")
    return _fit_outcome(result, cfg.tracking_uri)


def _resume_fit(run_id: str, argv: list[str]) -> int:
    """``grubench fit --resume RUN_ID``: the run's own config.yaml, its last checkpoint, the
    same MLflow run. Other options may only repeat values of that config."""
    import tempfile

    from grubench.store.tracking import flatten, get_client, resolve_tracking_uri, store_dir
    from grubench.training.config import ConfigError, resolved_config
    from grubench.training.fit import resume_point, run_fit

    prog = "grubench fit"
    if not run_id:
        return _fail([f"--resume needs a run id: {RESUME_FORM}"], prog)
    given = parse_fit_config(argv)
    uri = resolve_tracking_uri(given.tracking_uri)
    if uri.startswith("sqlite:///") and not (store_dir(uri) / "mlflow.db").is_file():
        return _fail([f"--resume {run_id}: no store at {uri} ({RESUME_FORM})"], prog)
    client = get_client(uri)
    try:
        point = resume_point(client, run_id, uri)
    except ConfigError as err:
        return _fail([f"{p} ({RESUME_FORM})" for p in err.problems], prog)
    with tempfile.TemporaryDirectory() as tmp:
        try:
            logged = client.download_artifacts(run_id, "config.yaml", tmp)
        except Exception:  # MLflow raises several types for a missing artifact
            return _fail([f"--resume {run_id}: the run has no config.yaml to resume with"], prog)
        cfg = parse_fit_config(["--config", logged])
        requested = parse_fit_config(["--config", logged, *argv])
    cfg.tracking_uri = requested.tracking_uri = uri  # where the run is now
    before, after = flatten(resolved_config(cfg)), flatten(resolved_config(requested))
    conflicts = [
        f"--resume {run_id}: {key} is {before.get(key)!r} in the run's config, not "
        f"{after.get(key)!r}; a resumed run keeps its config (start a new run to change it)"
        for key in sorted(set(before) | set(after))
        if before.get(key) != after.get(key)
    ]
    if conflicts:
        return _fail(conflicts, prog)
    print(f"resuming run {run_id} ({point.run.info.status}) from step {point.step}")
    try:
        result = run_fit(cfg, resume=run_id)
    except ConfigError as err:
        return _fail(err.problems, prog)
    return _fit_outcome(result, given.tracking_uri)


def _fit_outcome(result, tracking_uri: str | None) -> int:
    from grubench.store.schema import RunStatus
    from grubench.store.tracking import resolve_tracking_uri

    uri = resolve_tracking_uri(tracking_uri)
    print(f"\nrun {result.run_id}: {result.status}, {result.outcome}")
    width = max(len(k) for k in result.metrics)
    for key, value in sorted(result.metrics.items()):
        print(f"  {key:<{width}}  {value:.6g}")
    ui = "grubench ui" + (f" --tracking_uri {uri}" if tracking_uri else "")
    print(f"\nbrowse the run: {ui}  (store: {uri})")
    return 0 if result.status == RunStatus.FINISHED else 1


def ui_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="grubench ui", description="Serve the MLflow UI for grubench's store."
    )
    parser.add_argument("--tracking_uri", "--tracking-uri", default=None)
    parser.add_argument(
        "--host",
        default="127.0.0.1",
        help="Interface to bind (default 127.0.0.1: this machine only). Another address "
        "exposes every run to that network: add --basic-auth, and name the host names and "
        "origins that may reach it with --allowed-hosts and --cors-allowed-origins (MLflow's "
        "host-header and CORS checks).",
    )
    parser.add_argument("--port", type=int, default=5000)
    parser.add_argument(
        "--basic-auth",
        action="store_true",
        help="require a login (MLflow's basic-auth app, --app-name basic-auth)",
    )
    parser.add_argument(
        "--allowed-hosts", default=None, help="comma-separated Host headers the server accepts"
    )
    parser.add_argument(
        "--cors-allowed-origins", default=None, help="comma-separated origins allowed by CORS"
    )
    parser.add_argument(
        "--experiment_name",
        default=None,
        help="print the runs-table address of this experiment only (default: every experiment)",
    )
    return parser


def ui_command(args: argparse.Namespace, uri: str, root: str | None) -> list[str]:
    """The ``mlflow server`` command line for ``grubench ui``'s options."""
    command = [
        sys.executable, "-m", "mlflow", "server",
        "--backend-store-uri", uri,
        "--host", args.host,
        "--port", str(args.port),
    ]  # fmt: skip
    if root:
        command += ["--default-artifact-root", root]
    if args.basic_auth:
        command += ["--app-name", "basic-auth"]
    if args.allowed_hosts:
        command += ["--allowed-hosts", args.allowed_hosts]
    if args.cors_allowed_origins:
        command += ["--cors-allowed-origins", args.cors_allowed_origins]
    return command


def cmd_ui(argv: list[str]) -> int:
    from grubench.store.tracking import artifact_root, get_client, resolve_tracking_uri

    args = ui_parser().parse_args(argv)
    busy = port_problem(args.host, args.port)
    if busy is not None:  # before the store is opened or a server started
        return _fail([busy], "grubench ui")
    uri = resolve_tracking_uri(args.tracking_uri)
    client = get_client(uri)
    experiments = client.search_experiments(order_by=["last_update_time DESC"])
    if args.experiment_name:
        experiments = [e for e in experiments if e.name == args.experiment_name]
        if not experiments:
            return _fail([f"no experiment {args.experiment_name!r} in {uri}"], "grubench ui")
    if args.basic_auth and importlib.util.find_spec("flask_wtf") is None:
        return _fail(
            ["--basic-auth needs MLflow's auth extra: pip install 'mlflow[auth]'"], "grubench ui"
        )
    command = ui_command(args, uri, artifact_root(uri))
    if args.host not in ("127.0.0.1", "localhost", "::1") and not args.basic_auth:
        print(
            f"grubench ui: warning: serving {uri} on {args.host} without --basic-auth: "
            "anyone who reaches this port can read and change every run",
            file=sys.stderr,
        )
    print(f"MLflow UI for {uri}; runs tables (Model training view), each experiment with a "
          "sweep on its newest sweep's evaluation runs grouped by configuration:")  # fmt: skip
    for experiment in experiments:
        print_addresses(client, experiment, args.host, args.port)
    sys.stdout.flush()
    return serve(command)


def port_problem(host: str, port: int) -> str | None:
    """Why the UI cannot listen on ``host:port`` (one line), or None if it can: the same bind
    the server makes (SO_REUSEADDR, as uvicorn sets it, so a closing connection's TIME_WAIT
    does not count as busy)."""
    import socket

    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as err:
        return f"--host {host!r}: cannot resolve it ({err.strerror})"
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as err:
            return f"--port {port}: cannot listen on {host}:{port} ({err.strerror}); pick another"
    return None


def print_addresses(client, experiment, host: str, port: int) -> None:
    """The experiment's runs-table address: on its newest sweep's saved view where a sweep
    wrote one, then that view's charts and the page of the sweep's parent run (the report)."""
    from grubench.store.tracking import run_url, runs_table_url
    from grubench.store.views import latest_parent, latest_view_key

    eid = experiment.experiment_id
    found = latest_view_key(client, experiment)
    if found is None:
        print(f"  {experiment.name}: {runs_table_url(host, port, eid)}")
        return
    key, sweep = found
    print(f"  {experiment.name}: {runs_table_url(host, port, eid, key)}")
    print(f"    {sweep}, learning curves by group: {runs_table_url(host, port, eid, key, 'CHART')}")
    parent = latest_parent(client, eid, sweep)
    if parent is not None:
        print(f"    {sweep}, the answer (table and verdict): "
              f"{run_url(host, port, eid, parent.info.run_id)}")  # fmt: skip


def serve(command: list[str]) -> int:
    """Run the server ``command`` until it exits, or until this process gets SIGTERM or
    SIGINT: then stop the server and every process it started (its uvicorn workers and job
    consumers), which share its own process group, and wait until none is left."""
    import signal
    import time

    from grubench.training.resume import signal_handlers

    server = subprocess.Popen(command, start_new_session=True)
    stopping: list[int] = []

    def stop(signum, frame) -> None:
        stopping.append(signum)
        _signal_group(server.pid, signal.SIGTERM)

    try:
        with signal_handlers(stop):
            code = server.wait()
    finally:
        deadline = time.monotonic() + 15  # what the server started may outlive it
        while _signal_group(server.pid, 0) and time.monotonic() < deadline:
            _signal_group(server.pid, signal.SIGTERM)
            time.sleep(0.2)
        _signal_group(server.pid, signal.SIGKILL)
    if stopping:
        return 0
    # a server stops only when told to: ending by itself, whatever its status, it failed
    print(f"grubench ui: error: the MLflow server exited (status {code})", file=sys.stderr)
    return code or 1


def _signal_group(pgid: int, signum: int) -> bool:
    """Send ``signum`` to the process group ``pgid``; whether any process of it is left."""
    try:
        os.killpg(pgid, signum)
        return True
    except ProcessLookupError:
        return False


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
                _fail(
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
        raise SystemExit(_fail([str(err)], prog)) from None


def cmd_run(argv: list[str]) -> int:
    from mlflow.exceptions import MlflowException

    from grubench.answers.publish import describe_parent
    from grubench.answers.report import build_report, to_markdown
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
        return _fail([f"--profile {args.profile!r}: choose from: {', '.join(PROFILES)}"], prog)
    experiment = _load(args.experiment, prog)
    overrides = {"trainer": _trainer_pairs(extra, prog)} if extra else {}
    if args.workers != "auto" and (not args.workers.isdigit() or int(args.workers) < 1):
        return _fail([f"--workers {args.workers!r}: expected a whole number >= 1 or auto"], prog)
    if not args.cpus_per_child.isdigit() or int(args.cpus_per_child) < 1:
        return _fail([f"--cpus-per-child {args.cpus_per_child!r}: expected a whole number >= 1"],
                     prog)  # fmt: skip
    try:
        result = run_sweep(
            experiment, args.profile, args.tracking_uri, overrides, args.dry_run,
            workers=args.workers if args.workers == "auto" else int(args.workers),
            ray_address=args.ray_address or None,
            cpus_per_child=int(args.cpus_per_child),
        )  # fmt: skip
    except ConfigError as err:
        return _fail(err.problems, prog)
    except ValueError as err:
        return _fail([str(err)], prog)
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

    prog = "grubench report"
    parser = _sweep_parser(prog, "Aggregate an experiment's runs from the store: table, plots.")
    parser.add_argument(
        "--out", default=None, help="output folder (default: results/ beside the file)"
    )
    args = parser.parse_args(argv)
    experiment = _load(args.experiment, prog)
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
        return _fail([f"--profile {args.profile!r}: choose from: {', '.join(PROFILES)}"], prog)
    readme, folder = Path(args.readme).resolve(), Path(args.experiments).resolve()
    paths = [Path(f).resolve() for f in args.files] or sorted(folder.glob("*.py"))
    if not readme.is_file():
        return _fail([f"--readme {args.readme!r}: no such file"], prog)
    if args.options_only or OPTIONS_START in readme.read_text():  # a README may not have them
        try:
            rewrite_readme(readme, options_block(), (OPTIONS_START, OPTIONS_END))
        except ValueError as err:
            return _fail([str(err)], prog)
    if args.options_only:
        print(f"wrote the options tables of {readme}")
        return 0
    if not paths:
        return _fail([f"--experiments {args.experiments!r}: no question files (*.py)"], prog)
    for path in paths:  # every file loads before anything is written
        _load(str(path), prog)
    try:
        block = faq_block(paths, args.profile, folder / "results", readme.parent, args.tracking_uri)
        rewrite_readme(readme, block)
    except ValueError as err:
        return _fail([str(err)], prog)
    print(f"wrote the options tables and the FAQ block of {readme} ({len(paths)} questions)")
    return 0


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
