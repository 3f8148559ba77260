"""The ``grubench`` command: thin; it parses, validates and calls the layer below.

grubench fit --config experiments/quickstart.yaml --model.name custom_gru
grubench fit --print_config          # the resolved config, loadable with --config
grubench ui                          # the MLflow UI on 127.0.0.1 for the same store
"""

from __future__ import annotations

import argparse
import inspect
import subprocess
import sys
from dataclasses import fields
from typing import Any

from jsonargparse import ActionConfigFile, ArgumentParser

COMMANDS = ("fit", "ui")


def _fail(problems: list[str], prog: str) -> int:
    for problem in problems:
        print(f"{prog}: error: {problem}", file=sys.stderr)
    return 2


def fit_parser() -> ArgumentParser:
    import lightning as L

    from grubench.fit import RESERVED_TRAINER_KEYS, TRAINER_DEFAULTS, FitConfig, TaskConfig
    from grubench.models import ModelConfig
    from grubench.system import OptimConfig

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
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument("--experiment_name", type=str, default=defaults.experiment_name)
    parser.add_argument("--run_name", type=str | None, default=None)
    parser.add_argument(
        "--tracking_uri",
        "--tracking-uri",
        type=str | None,
        default=None,
        help="MLflow tracking URI (default: $MLFLOW_TRACKING_URI, else sqlite:///./mlruns/mlflow.db)",
    )
    parser.add_argument("--tags", type=dict[str, str], default={})
    parser.add_argument("--test", type=bool, default=True, help="Evaluate on the test set.")
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
    from grubench.fit import FitConfig, TaskConfig
    from grubench.models import ModelConfig
    from grubench.system import OptimConfig

    parser = fit_parser()
    ns = parser.parse_args(argv)

    def build(cls, group):
        return cls(**{f.name: getattr(group, f.name) for f in fields(cls)})

    return FitConfig(
        model=build(ModelConfig, ns.model),
        task=build(TaskConfig, ns.task),
        optim=build(OptimConfig, ns.optim),
        seed=ns.seed,
        trainer=_trainer_overrides(ns.trainer),
        experiment_name=ns.experiment_name,
        run_name=ns.run_name,
        tracking_uri=ns.tracking_uri,
        tags=dict(ns.tags or {}),
        test=ns.test,
    )


def cmd_fit(argv: list[str]) -> int:
    from grubench.fit import ConfigError, run_fit, validate_fit_config
    from grubench.tracking import resolve_tracking_uri

    cfg = parse_fit_config(argv)
    problems = validate_fit_config(cfg)
    if problems:
        return _fail(problems, "grubench fit")
    try:
        result = run_fit(cfg)
    except ConfigError as err:  # pragma: no cover - validated above
        return _fail(err.problems, "grubench fit")
    uri = resolve_tracking_uri(cfg.tracking_uri)
    print(f"\nrun {result.run_id}: {result.status}, {result.outcome}")
    width = max(len(k) for k in result.metrics)
    for key, value in sorted(result.metrics.items()):
        print(f"  {key:<{width}}  {value:.6g}")
    ui = "grubench ui" + (f" --tracking_uri {uri}" if cfg.tracking_uri else "")
    print(f"\nbrowse the run: {ui}  (store: {uri})")
    return 0 if result.status == "FINISHED" else 1


def ui_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="grubench ui", description="Serve the MLflow UI for grubench's store."
    )
    parser.add_argument("--tracking_uri", "--tracking-uri", default=None)
    parser.add_argument(
        "--host",
        default="127.0.0.1",
        help="Interface to bind (default 127.0.0.1: this machine only). Serving beyond "
        "localhost exposes every run to the network: put it behind authentication "
        "(mlflow's --app-name basic-auth) and restrict --allowed-hosts.",
    )
    parser.add_argument("--port", type=int, default=5000)
    parser.add_argument("--experiment_name", default="grubench")
    return parser


def cmd_ui(argv: list[str]) -> int:
    from grubench.tracking import (
        artifact_root,
        ensure_experiment,
        get_client,
        resolve_tracking_uri,
        runs_table_url,
    )

    args = ui_parser().parse_args(argv)
    uri = resolve_tracking_uri(args.tracking_uri)
    client = get_client(uri)
    experiment_id = ensure_experiment(client, args.experiment_name, uri)
    command = [
        sys.executable, "-m", "mlflow", "server",
        "--backend-store-uri", uri,
        "--host", args.host,
        "--port", str(args.port),
    ]  # fmt: skip
    root = artifact_root(uri)
    if root:
        command += ["--default-artifact-root", root]
    print(f"MLflow UI for {uri}")
    print(f"runs table: {runs_table_url(args.host, args.port, experiment_id)}", flush=True)
    try:
        return subprocess.call(command)
    except KeyboardInterrupt:
        return 0


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help") or argv[0] not in COMMANDS:
        if argv and argv[0] not in ("-h", "--help"):
            print(
                f"grubench: error: unknown command {argv[0]!r}; choose from: {', '.join(COMMANDS)}",
                file=sys.stderr,
            )
        print("usage: grubench {fit,ui} ...  (grubench <command> --help for its options)")
        return 2 if argv and argv[0] not in ("-h", "--help") else 0
    command, rest = argv[0], argv[1:]
    return {"fit": cmd_fit, "ui": cmd_ui}[command](rest)


if __name__ == "__main__":
    sys.exit(main())
