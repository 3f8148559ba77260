"""`grubench ui` serves the store on 127.0.0.1 and lists the runs (a real mlflow server)."""

import os
import signal
import subprocess
import sys
import time
import urllib.request

import pytest

from grubench.fit import run_fit
from grubench.tracking import get_client
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


def descendants(pid: int) -> set[int]:
    """Every live process below ``pid`` (read from /proc)."""
    from pathlib import Path

    parents = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[0] != "Z":  # a zombie has ended already
            parents[int(stat.parent.name)] = int(fields[1])
    found, frontier = set(), {pid}
    while frontier:
        frontier = {child for child, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found


def alive(pid: int) -> bool:
    from pathlib import Path

    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@pytest.mark.parametrize(
    "signum",
    [signal.SIGTERM, pytest.param(signal.SIGINT, marks=pytest.mark.slow)],  # the same path
    ids=["sigterm", "sigint"],
)
def test_a_signal_to_grubench_ui_stops_its_server_and_everything_it_started(tracking_uri, signum):
    get_client(tracking_uri)
    port = free_port()
    command = [sys.executable, "-m", "grubench.cli", "ui", "--tracking_uri", tracking_uri,
               "--port", str(port)]  # fmt: skip
    ui = subprocess.Popen(command, start_new_session=True, stdout=subprocess.DEVNULL,
                          stderr=subprocess.DEVNULL)  # fmt: skip
    started: set[int] = set()
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2)
                break
            except OSError:
                assert ui.poll() is None and time.monotonic() < deadline, "no server"
                time.sleep(0.5)
        started = descendants(ui.pid)
        assert len(started) >= 2  # the server and the workers it started
        os.kill(ui.pid, signum)  # to grubench ui only, as `kill` or a service manager does
        assert ui.wait(timeout=60) == 0
        assert not [pid for pid in started if alive(pid)]  # nothing left
        with pytest.raises(OSError):  # nothing listening
            urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2)
    finally:
        for pid in started | {ui.pid}:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        ui.wait()
