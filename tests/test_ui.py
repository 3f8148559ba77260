"""`grubench ui` serves the store on 127.0.0.1 and lists the runs (a real mlflow server)."""

import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request

import pytest

from grubench.store.tracking import get_client
from grubench.training.fit import run_fit
from tests.servers import free_port, rest, served

TIER = "system"


def test_ui_lists_the_run(tiny, tracking_uri):
    result = run_fit(tiny(tracking_uri, trainer={"max_steps": 2}))
    port = free_port()
    command = [sys.executable, "-m", "grubench", "ui", "--tracking_uri", tracking_uri,
               "--port", str(port)]  # fmt: skip
    with served(command, port, stdout=subprocess.PIPE, text=True) as (server, base):
        runs = rest(base, "runs/search", {"experiment_ids": [result.experiment_id]})["runs"]
        assert [r["info"]["run_id"] for r in runs] == [result.run_id]
        assert runs[0]["info"]["status"] == "FINISHED"
        first_lines = [server.stdout.readline() for _ in range(3)]
    url = f"{base}/#/experiments/{result.experiment_id}/runs?workflowType=machine_learning"
    assert f"  grubench: {url}\n" in first_lines


@pytest.mark.unit
def test_ui_binds_to_loopback_unless_told_and_passes_protection_options():
    from grubench.cli.ui import ui_command, ui_parser

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


@pytest.mark.unit
def test_a_busy_port_is_one_line_and_exit_2_before_anything_starts(tmp_path, capsys):
    import socket

    from grubench.cli import main
    from grubench.cli.ui import port_problem

    store = tmp_path / "store" / "mlflow.db"
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert main(["ui", "--port", str(port), "--tracking_uri", f"sqlite:///{store}"]) == 2
        assert port_problem("127.0.0.1", port) is not None
    err = capsys.readouterr().err
    assert err == (f"grubench ui: error: --port {port}: cannot listen on 127.0.0.1:{port} "
                   "(Address already in use); pick another\n")  # fmt: skip
    assert not store.parent.exists()  # the store was never opened
    assert port_problem("127.0.0.1", port) is None  # free again once closed


@pytest.mark.system
def test_a_server_that_exits_by_itself_is_an_error(capsys):
    from grubench.cli.ui import serve

    assert serve([sys.executable, "-c", "pass"]) == 1
    assert serve([sys.executable, "-c", "raise SystemExit(3)"]) == 3
    err = capsys.readouterr().err.splitlines()
    assert err == ["grubench ui: error: the MLflow server exited (status 0)",
                   "grubench ui: error: the MLflow server exited (status 3)"]  # fmt: skip


@pytest.mark.integration
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
    command = [sys.executable, "-m", "grubench", "ui", "--tracking_uri", tracking_uri,
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


# A tiny real sweep: 2 arms x 2 conditions x 2 evaluation seeds, no tuning stage.
QUESTION = '''"""Does a tiny GRU beat a tiny RNN?"""
from grubench.sweeps.question import Question

QUESTION = Question(
    name="tiny_ui", text="Does a tiny GRU beat a tiny RNN?",
    arms={"gru": {"model": {"name": "torch_gru"}}, "rnn": {"model": {"name": "rnn"}}},
    conditions={"T=8": {"task": {"seq_len": 8}}, "T=12": {"task": {"seq_len": 12}}},
    base={"model": {"hidden_size": 8},
          "task": {"name": "adding", "batch_size": 16, "epoch_size": 2, "val_size": 32,
                   "test_size": 32},
          "trainer": {"max_steps": 4, "enable_progress_bar": False, "val_check_interval": 2}},
    seeds={"quick": [0, 1], "full": [0]}, tuning_seeds={"quick": [9], "full": [9]},
)
'''
CONFIGURATIONS = [(arm, condition) for arm in ("gru", "rnn") for condition in ("T=8", "T=12")]


@pytest.fixture(scope="module")
def swept(tmp_path_factory):
    """(tracking URI, question file) of a store holding one finished tiny sweep."""
    from grubench.cli import main

    folder = tmp_path_factory.mktemp("ui_sweep")
    question = folder / "tiny_ui.py"
    question.write_text(QUESTION)
    uri = f"sqlite:///{folder / 'store' / 'mlflow.db'}"
    cwd, env = os.getcwd(), os.environ.get("MLFLOW_TRACKING_URI")
    os.chdir(folder)  # nothing lands in the repository
    try:
        assert main(["run", str(question), "--tracking_uri", uri, "--workers", "1"]) == 0
    finally:
        os.chdir(cwd)
        os.environ.pop("MLFLOW_TRACKING_URI", None)  # MLFlowLogger exports it once used
        if env is not None:
            os.environ["MLFLOW_TRACKING_URI"] = env
    return uri, question


@pytest.mark.integration
def test_a_sweep_saves_the_view_its_ui_address_opens(swept):
    """The experiment tag holds the envelope MLflow's "Save view" writes; the view filters
    the sweep's evaluation runs and groups them by the arm and condition tags."""
    import json

    from grubench.store.views import VIEW_TAG_PREFIX

    uri, _ = swept
    client = get_client(uri)
    experiment = client.get_experiment_by_name("tiny_ui")
    envelope = json.loads(experiment.tags[VIEW_TAG_PREFIX + "grubench-tiny_ui-quick"])
    assert envelope["name"] == "grubench tiny_ui:quick: evaluation runs by arm and condition"
    assert isinstance(envelope["createdAt"], int) and isinstance(envelope["state"], str)
    state = json.loads(envelope["state"])
    assert state["groupBy"]["groupByKeys"] == [
        {"mode": "tag", "groupByData": "grubench.arm"},
        {"mode": "tag", "groupByData": "grubench.condition"},
    ]
    runs = client.search_runs([experiment.experiment_id], state["searchFilter"])
    assert sorted((r.data.tags["grubench.arm"], r.data.tags["grubench.condition"])
                  for r in runs) == sorted(CONFIGURATIONS * 2)  # fmt: skip
    assert state["groupsExpanded"] == {  # one collapsed row per configuration
        f"tag.grubench.arm.{arm},tag.grubench.condition.{condition}": False
        for arm, condition in CONFIGURATIONS
    }
    assert "metrics.`test/score`" in state["selectedColumns"]
    assert "metrics.`test/mse`" in state["selectedColumns"]  # the task's objective
    assert {c["metricKey"] for c in state["compareRunCharts"] if c["type"] == "LINE"} >= {
        "val/mse", "val/loss"}  # fmt: skip


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def rendered_text(url: str, budget_ms: int = 10000) -> str:
    """The text of ``url`` as headless Chromium renders it (scripts run, then the DOM)."""
    import html
    import re
    import tempfile

    with tempfile.TemporaryDirectory() as profile:
        dom = subprocess.run(
            [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
             "--no-first-run", "--disable-background-networking", "--disable-component-update",
             "--disable-sync", f"--user-data-dir={profile}", "--window-size=1600,1000",
             f"--virtual-time-budget={budget_ms}", "--dump-dom", url],
            capture_output=True, text=True, timeout=120, check=True,
        ).stdout  # fmt: skip
    dom = re.sub(r"<(script|style)\b.*?</\1>", " ", dom, flags=re.S)
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", dom)))


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (.ci/run installs it: "
                    "apt-get install -y chromium)")  # fmt: skip
def test_the_printed_address_opens_on_the_comparison_in_a_browser(swept):
    """headless Chromium at the addresses `grubench ui` prints: each configuration's group
    with its mean test score, the learning curves by group, the parent's description."""
    import re
    import statistics

    uri, _ = swept
    client = get_client(uri)
    experiment = client.get_experiment_by_name("tiny_ui")
    port = free_port()
    command = [sys.executable, "-m", "grubench", "ui", "--tracking_uri", uri,
               "--port", str(port)]  # fmt: skip
    with served(command, port, stdout=subprocess.PIPE, text=True) as (server, base):
        printed = "".join(server.stdout.readline() for _ in range(5))
        table = re.search(r"^  tiny_ui: (\S+)$", printed, re.M).group(1)
        charts = re.search(r"learning curves by group: (\S+)$", printed, re.M).group(1)
        answer = re.search(r"the answer \(table and verdict\): (\S+)$", printed, re.M).group(1)
        assert table.startswith(base) and "viewStateShareKey=grubench-tiny_ui-quick" in table
        assert f"  Default: {base}/#/experiments/0/runs" in printed  # every experiment listed

        text = rendered_text(table)
        means = [float(x) for x in re.findall(r"(-?[0-9][0-9.e+-]*) \(average\)", text)]
        for arm, condition in CONFIGURATIONS:
            assert f"Group: grubench.arm: {arm}, grubench.condition: {condition}" in text
            runs = client.search_runs(
                [experiment.experiment_id],
                f"tags.`grubench.stage` = 'eval' and tags.`grubench.arm` = '{arm}' "
                f"and tags.`grubench.condition` = '{condition}'",
            )  # fmt: skip
            mean = statistics.fmean(r.data.metrics["test/score"] for r in runs)
            assert any(abs(m - mean) <= 1e-9 * max(1, abs(mean)) for m in means), (arm, mean)
        assert "test/score" in text and "test/mse" in text

        text = rendered_text(charts, budget_ms=60000)  # charts draw once their data came
        assert "Learning curves (mean of each arm and condition)" in text
        assert "val/mse" in text and "Final scores (test split)" in text
        assert "grubench.arm: gru, grubench.condition: T=8" in text  # a group's curve

        (parent,) = [r for r in client.search_runs([experiment.experiment_id],
                                                   "tags.`grubench.role` = 'parent'")]  # fmt: skip
        assert f"/runs/{parent.info.run_id}?" in answer
        text = rendered_text(answer)
        assert "Does a tiny GRU beat a tiny RNN?" in text and "Verdict" in text
        assert "P(gru > rnn) = " in text and "| gru |" not in text  # the table is rendered
