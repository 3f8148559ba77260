"""The command line's help: the commands in one line each, every flag explained, and printed
without the heavy libraries (Lightning, MLflow, torch)."""

import json
import subprocess
import sys
from importlib.metadata import version

import pytest

from grubench.cli import COMMANDS, main

TIER = "integration"

HEAVY = ("lightning", "mlflow", "torch", "torchmetrics")

PROBE = """
import json, sys
from grubench.cli import main
try:
    code = main({argv!r})
except SystemExit as exit_:
    code = exit_.code
print(json.dumps({{"code": code, "heavy": [m for m in {heavy!r} if m in sys.modules]}}))
"""


@pytest.mark.parametrize("argv", [["--help"], ["--version"], *([c, "--help"] for c in COMMANDS)])
def test_help_imports_no_heavy_library(argv):
    """In a fresh interpreter: the modules a command's --help leaves imported. fit's options
    (ModelConfig, the models' and tasks' registries) are declared without torch; the builders
    and tasks are imported at their first use."""
    probe = PROBE.format(argv=argv, heavy=HEAVY)
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                          timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["code"] in (0, None)
    assert result["heavy"] == [], result["heavy"]


@pytest.mark.unit
def test_top_level_help_lists_each_command_in_one_line(capsys):
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    for name, (_, _, summary) in COMMANDS.items():
        assert f"  {name}  " in out and summary in out
    assert main([]) == 2  # no command: the same usage, as an error
    captured = capsys.readouterr()
    assert not captured.out and "grubench {fit,run,report,readme,list,ui}" in captured.err


@pytest.mark.unit
def test_version_is_the_installed_package_version(capsys):
    assert main(["--version"]) == 0
    assert capsys.readouterr().out == f"grubench {version('grubench')}\n"


def _help(command: str, capsys) -> str:
    try:
        code = main([command, "--help"])
    except SystemExit as exit_:  # argparse's help exits
        code = exit_.code
    assert code in (0, None)
    return capsys.readouterr().out


def _flag_help(text: str, flag: str) -> str:
    """The help of ``flag`` in argparse's layout: from its line to the next flag's."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.lstrip().startswith(flag))
    end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("  -")), len(lines))
    return " ".join(" ".join(lines[start:end]).split())


@pytest.mark.parametrize(
    ("command", "flag", "words"),
    [
        (command, "--tracking_uri", "MLFLOW_TRACKING_URI")
        for command in ("fit", "run", "report", "readme", "list", "ui")
    ]
    + [
        ("run", "--profile", "quick (CPU, minutes) or full (GPU)"),
        ("report", "--profile", "quick (CPU, minutes) or full (GPU)"),
        ("readme", "--profile", "quick (CPU, minutes) or full (GPU)"),
        ("ui", "--port", "the port to serve the UI on (default: 5000)"),
        ("report", "--out", "default: reports/<question>/"),
        ("report", "--out", "--out experiments/results replaces the published results"),
        ("run", "--dry-run", "check every child's config as a run would"),
        ("fit", "--resume", "continue a stopped run from its last checkpoint"),
        ("fit", "--optim.name", "the optimizer: adam, adamw, rmsprop, sgd"),
        ("fit", "--optim.lr", "the learning rate (type: float, default: 0.001)"),
        ("fit", "--task.seq_len", "the sequence length T (type: int, default: 100)"),
        ("fit", "--task.name", "the task: adding,"),
        ("fit", "--model.name", "the model: custom_gru,"),
    ],
)
def test_every_flag_explains_itself(command, flag, words, capsys):
    assert words in _flag_help(_help(command, capsys), flag)


def test_fit_help_folds_the_trainer_options_into_a_pointer(capsys):
    out = _help("fit", capsys)
    assert "Any --trainer.<option> VALUE of lightning.Trainer" in out
    assert "--help_trainer" in out and "--trainer.max_epochs" not in out
    assert main(["fit", "--help_trainer"]) == 0  # all of them, on request
    every = capsys.readouterr().out
    assert "--trainer.max_epochs" in every and "--trainer.accelerator" in every


@pytest.mark.unit
def test_run_help_folds_fits_options_into_a_pointer(capsys):
    """fit's --model.*, --task.*, --optim.* flags are named once, not listed one by one."""
    for command in ("run", "report"):
        out = " ".join(_help(command, capsys).split())
        assert "[--<group>.<option> VALUE ...]" in out and "--model.hidden_size HIDDEN" not in out
    out = " ".join(_help("run", capsys).split())
    assert "Any --model.<option>, --task.<option> or --optim.<option> VALUE" in out
    assert "grubench fit --help lists them" in out and "--trainer.<option> VALUE" in out
