"""grubench fit: one run from flags or a --config file, or --resume of a stopped one."""

from __future__ import annotations

import inspect
import re
from argparse import ArgumentError
from dataclasses import fields
from pathlib import Path
from typing import Any

from jsonargparse import ActionConfigFile, ArgumentParser

from grubench.cli.messages import fail, option_strings, unknown_flags

PROG = "grubench fit"
HELP_FLAGS = ("-h", "--help")
HELP_TRAINER_FLAGS = ("--help_trainer", "--help-trainer")


def fit_parser(trainer: bool = True) -> ArgumentParser:
    """The fit's flags: the model, task and optimizer groups and the top-level options, each
    with its help from its definition, then (``trainer``) every lightning.Trainer argument
    that grubench does not set itself, read from Lightning's signature."""
    from grubench.models import ModelConfig
    from grubench.options import choices, help_of, option_fields
    from grubench.training.config import (
        ALIASES,
        FitConfig,
        OptimConfig,
        TaskConfig,
        top_level_options,
    )

    parser = ArgumentParser(
        prog=PROG,
        description="Train one model on one task; the run lands in the MLflow store.",
        default_env=False,
        exit_on_error=False,  # parse_fit_config reports a bad flag in one line
    )
    parser.add_argument("--config", action=ActionConfigFile, help="YAML config file(s).")
    groups = {"model": ModelConfig, "task": TaskConfig, "optim": OptimConfig}
    for group, options in groups.items():
        parser.add_class_arguments(options, group)
    # jsonargparse reads help from a docstring's "Args:"; the options carry theirs as metadata
    by_dest = {action.dest: action for action in parser._actions}
    for group, options in groups.items():
        for name, (field, annotation) in option_fields(options).items():
            action = by_dest.get(f"{group}.{name}")
            if action is not None and not action.help and help_of(field):
                allowed = choices(annotation)
                action.help = help_of(field) + (
                    f" (choices: {', '.join(map(str, allowed))})" if allowed else ""
                )
    defaults = FitConfig()
    for name, (field, annotation) in top_level_options().items():  # one flag per option
        parser.add_argument(f"--{name}", *ALIASES.get(name, ()), type=annotation,
                            default=getattr(defaults, name), help=help_of(field))  # fmt: skip
    if trainer:
        import lightning as L

        from grubench.training.config import RESERVED_TRAINER_KEYS, TRAINER_DEFAULTS

        parser.add_method_arguments(
            L.Trainer, "__init__", "trainer", skip=set(RESERVED_TRAINER_KEYS)
        )
        parser.set_defaults({f"trainer.{k}": v for k, v in TRAINER_DEFAULTS.items()})
    return parser


def help_parser() -> ArgumentParser:
    """What ``grubench fit --help`` shows: grubench's own options in full, --resume, and the
    Trainer's options in one line (``--help_trainer`` lists them all)."""
    from grubench.training.config import RESERVED_TRAINER_KEYS, TRAINER_DEFAULTS

    parser = fit_parser(trainer=False)
    parser.usage = (  # the options one by one are below; argparse's list would take 30 lines
        "%(prog)s [--config FILE] [--<group>.<option> VALUE ...] [--<option> VALUE ...]\n"
        f"       {RESUME_FORM}"
    )
    parser.add_argument(
        "--resume", metavar="RUN_ID",
        help="continue a stopped run from its last checkpoint, in the same MLflow run and with "
        f"its own config; other flags may only repeat its values ({RESUME_FORM})",
    )  # fmt: skip
    defaults = ", ".join(f"{k}={v}" for k, v in TRAINER_DEFAULTS.items())
    trainer = parser.add_argument_group(
        "lightning.Trainer's options",
        f"Any --trainer.<option> VALUE of lightning.Trainer, e.g. --trainer.max_steps 2000 "
        f"--trainer.accelerator gpu (grubench's defaults: {defaults}; set by grubench itself: "
        f"{', '.join(RESERVED_TRAINER_KEYS)}).",
    )
    trainer.add_argument(
        HELP_TRAINER_FLAGS[0], HELP_TRAINER_FLAGS[1], action="store_true",
        help="list every --trainer.<option> with its type, default and help, and exit",
    )  # fmt: skip
    return parser


def _trainer_overrides(trainer_ns) -> dict[str, Any]:
    """Trainer options whose value differs from lightning.Trainer's own default."""
    import lightning as L

    signature = inspect.signature(L.Trainer.__init__).parameters
    values = vars(trainer_ns) if trainer_ns is not None else {}
    return {k: v for k, v in values.items() if k in signature and v != signature[k].default}


OVERRIDE_GROUPS = ("model", "task", "optim")  # what a sweep's command line may set too


def underscored(flag: str) -> str:
    """A group option's other spelling: ``--model.hidden-size=8`` -> ``--model.hidden_size=8``
    (every option name is written with underscores; the group and the value stay)."""
    key, eq, value = flag.partition("=")
    group, dot, name = key.partition(".")
    if not dot or group[2:] not in (*OVERRIDE_GROUPS, "trainer") or not group.startswith("--"):
        return flag
    return f"{group}.{name.replace('-', '_')}{eq}{value}"


def parse_group_options(pairs: list[tuple[str, str]], prog: str,
                        flags: list[str] = ()) -> dict[str, Any]:  # fmt: skip
    """``[("--model.hidden_size", "128"), ...]`` -> ``{"model": {"hidden_size": 128}}``:
    each value parsed and type-checked by fit's own flag for it, and only the options given
    (no defaults: a sweep's override must not replace what its question sets). A bad flag or
    value exits 2 with one line, naming the nearest of fit's flags and ``flags``."""
    from grubench.sweeps.overrides import merge, nested

    if not pairs:
        return {}
    parser = fit_parser(trainer=False)
    given = [underscored(flag) for flag, _ in pairs]
    try:
        ns = parser.parse_args([token for flag, (_, value) in zip(given, pairs, strict=True)
                                for token in (flag, value)])  # fmt: skip
    except ArgumentError as err:
        raise SystemExit(
            fail(parse_problems(str(err), [*option_strings(parser), *flags]), prog)
        ) from None
    overrides: dict[str, Any] = {}
    for flag in given:
        overrides = merge(overrides, nested(flag[2:], ns[flag[2:]]))
    return overrides


def parse_fit_config(argv: list[str]):
    """``argv`` -> FitConfig (jsonargparse exits with code 2 on a type error)."""
    from grubench.models import ModelConfig
    from grubench.training.config import FitConfig, OptimConfig, TaskConfig, top_level_options

    parser = fit_parser()
    argv = [underscored(arg) for arg in argv]
    try:
        ns = parser.parse_args(argv)
    except ArgumentError as err:
        raise SystemExit(fail(parse_problems(str(err), option_strings(parser)), PROG)) from None

    def build(cls, group):
        return cls(**{f.name: getattr(group, f.name) for f in fields(cls)})

    return FitConfig(
        model=build(ModelConfig, ns.model),
        task=build(TaskConfig, ns.task),
        optim=build(OptimConfig, ns.optim),
        trainer=_trainer_overrides(ns.trainer),
        **{name: getattr(ns, name) for name in top_level_options()} | {"tags": dict(ns.tags or {})},
    )


def parse_problems(message: str, flags: list[str]) -> list[str]:
    """jsonargparse's error message as one line per problem: an unknown flag with the nearest
    valid one, a value of the wrong type with its flag."""
    prefix = "unrecognized arguments: "
    if message.startswith(prefix):
        return unknown_flags(message[len(prefix) :].split(), flags) or [message]
    if found := re.match(r'Parser key "([^"]+)":\s*(.*)', message, re.DOTALL):
        return [f"--{found[1]}: {' '.join(found[2].split())}"]
    return [" ".join(message.split())]


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
    # help without Lightning's Trainer: its signature alone is hundreds of lines of help
    if any(flag in argv for flag in HELP_TRAINER_FLAGS):
        fit_parser().print_help()
        return 0
    if any(flag in argv for flag in HELP_FLAGS):
        help_parser().print_help()
        return 0
    from grubench.store.health import store_problem
    from grubench.store.tracking import resolve_tracking_uri
    from grubench.training.config import ConfigError
    from grubench.training.fit import run_fit

    resume, argv = _pop_resume(argv)
    problems = check_config_files(argv)
    if problems:
        return fail(problems, "grubench fit")
    if resume is not None:
        return _resume_fit(resume, argv)
    cfg = parse_fit_config(argv)
    if problem := store_problem(resolve_tracking_uri(cfg.tracking_uri)):
        return fail([problem], "grubench fit")
    try:
        result = run_fit(cfg)  # validates the whole config before it touches the store
    except ConfigError as err:
        return fail(err.problems, "grubench fit")
    return _fit_outcome(result, cfg.tracking_uri)


def _resume_fit(run_id: str, argv: list[str]) -> int:
    """``grubench fit --resume RUN_ID``: the run's own config.yaml, its last checkpoint, the
    same MLflow run. Other options may only repeat values of that config."""
    import tempfile

    from grubench.store.health import store_problem
    from grubench.store.tracking import flatten, get_client, resolve_tracking_uri
    from grubench.training.config import ConfigError, resolved_config
    from grubench.training.fit import resume_point, run_fit

    prog = "grubench fit"
    if not run_id:
        return fail([f"--resume needs a run id: {RESUME_FORM}"], prog)
    given = parse_fit_config(argv)
    uri = resolve_tracking_uri(given.tracking_uri)
    if problem := store_problem(uri, must_exist=True):
        return fail([f"--resume {run_id}: {problem} ({RESUME_FORM})"], prog)
    client = get_client(uri)
    try:
        point = resume_point(client, run_id, uri)
    except ConfigError as err:
        return fail([f"{p} ({RESUME_FORM})" for p in err.problems], prog)
    with tempfile.TemporaryDirectory() as tmp:
        try:
            logged = client.download_artifacts(run_id, "config.yaml", tmp)
        except Exception:  # MLflow raises several types for a missing artifact
            return fail([f"--resume {run_id}: the run has no config.yaml to resume with"], prog)
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
        return fail(conflicts, prog)
    print(f"resuming run {run_id} ({point.run.info.status}) from step {point.step}")
    try:
        result = run_fit(cfg, resume=run_id)
    except ConfigError as err:
        return fail(err.problems, prog)
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
