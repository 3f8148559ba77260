"""`grubench ui` serves the store on 127.0.0.1 and lists the runs (a real mlflow server)."""

import subprocess
import sys

from grubench.fit import run_fit
from tests.servers import free_port, rest, served


def test_ui_lists_the_run(tiny, tracking_uri):
    result = run_fit(tiny(tracking_uri, trainer={"max_steps": 2}))
    port = free_port()
    command = [sys.executable, "-m", "grubench.cli", "ui", "--tracking_uri", tracking_uri,
               "--port", str(port)]  # fmt: skip
    with served(command, port, stdout=subprocess.PIPE, text=True) as (server, base):
        runs = rest(base, "runs/search", {"experiment_ids": [result.experiment_id]})["runs"]
        assert [r["info"]["run_id"] for r in runs] == [result.run_id]
        assert runs[0]["info"]["status"] == "FINISHED"
        first_lines = [server.stdout.readline() for _ in range(3)]
    url = f"{base}/#/experiments/{result.experiment_id}/runs?workflowType=machine_learning"
    assert f"  grubench: {url}\n" in first_lines


def test_ui_binds_to_loopback_unless_told_and_passes_protection_options():
    from grubench.cli import ui_command, ui_parser

    default = ui_command(ui_parser().parse_args([]), "sqlite:////s/mlflow.db", None)
    assert default[default.index("--host") + 1] == "127.0.0.1"
    assert "--app-name" not in default
    args = ui_parser().parse_args(["--host", "0.0.0.0", "--basic-auth",
                                   "--allowed-hosts", "runs.example.org",
                                   "--cors-allowed-origins", "https://runs.example.org"])  # fmt: skip
    command = ui_command(args, "sqlite:////s/mlflow.db", "file:///s/artifacts")
    for option, value in [("--host", "0.0.0.0"), ("--app-name", "basic-auth"),
                          ("--allowed-hosts", "runs.example.org"),
                          ("--cors-allowed-origins", "https://runs.example.org"),
                          ("--default-artifact-root", "file:///s/artifacts")]:  # fmt: skip
        assert command[command.index(option) + 1] == value
    assert "--basic-auth" in ui_parser().format_help()


def test_basic_auth_without_the_extra_fails_clearly(tracking_uri, capsys):
    import importlib.util

    import pytest

    from grubench.cli import main

    if importlib.util.find_spec("flask_wtf") is not None:
        pytest.skip("mlflow[auth] is installed: --basic-auth would start a server")
    assert main(["ui", "--basic-auth", "--tracking_uri", tracking_uri]) == 2
    assert "pip install 'mlflow[auth]'" in capsys.readouterr().err
