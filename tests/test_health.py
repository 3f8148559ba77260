"""A store that cannot be used is said in one line before anything runs
(grubench.store.health): a server that does not answer (refused, silent past the timeout) or
is not MLflow's, a SQLite store that is missing for reading, truncated or not a database; and
the commands that read a store create nothing."""

from __future__ import annotations

import http.server
import socket
import threading
import time
from pathlib import Path

import pytest

from grubench.cli import main
from grubench.store.health import server_problem, sqlite_problem, store_problem
from grubench.store.tracking import get_client

TIER = "integration"


class _Health(http.server.BaseHTTPRequestHandler):
    status = 200

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        self.send_response(self.status if self.path == "/health" else 404)
        self.end_headers()

    def log_message(self, *args) -> None:  # quiet
        pass


@pytest.fixture
def http_server():
    """An HTTP server on 127.0.0.1 answering /health with ``server.status``."""
    handler = type("Handler", (_Health,), {})
    server = http.server.HTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server, handler, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize(("status", "ok"), [(200, True), (401, True), (403, True), (404, False)])
def test_a_server_answers_or_is_not_mlflow(http_server, status, ok):
    _, handler, uri = http_server
    handler.status = status
    problem = server_problem(uri, timeout=5)
    if ok:
        assert problem is None
    else:
        assert problem == (
            f"--tracking_uri {uri}: what answers there is not an MLflow tracking server "
            f"(HTTP 404 from {uri}/health); check the address"
        )


def test_a_refused_or_silent_server_is_one_line_within_the_timeout():
    with socket.socket() as closed:  # a port nobody listens on
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    problem = server_problem(f"http://127.0.0.1:{port}", timeout=5)
    assert problem.startswith(f"--tracking_uri http://127.0.0.1:{port}: no tracking server")
    assert "Connection refused" in problem
    with socket.socket() as silent:  # accepts connections, never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        uri = f"http://127.0.0.1:{silent.getsockname()[1]}"
        start = time.monotonic()
        problem = server_problem(uri, timeout=0.5)
        took = time.monotonic() - start
    assert f"{uri}: no tracking server answers there (no answer in 0.5 s)" in problem
    assert took < 5  # the timeout, not MLflow's minutes of retries


def test_sqlite_stores_missing_truncated_or_not_a_database(tmp_path):
    uri = f"sqlite:///{tmp_path / 'good' / 'mlflow.db'}"
    client = get_client(uri)
    run = client.create_run(client.create_experiment("x"))
    client.log_metric(run.info.run_id, "loss", 1.0)
    good = tmp_path / "good" / "mlflow.db"
    assert sqlite_problem(good) is None and store_problem(uri, must_exist=True) is None
    truncated = tmp_path / "truncated.db"
    truncated.write_bytes(good.read_bytes()[:20_000])
    assert sqlite_problem(truncated) == (
        f"the store {truncated} is damaged (database disk image is malformed); move it aside "
        f"to start a new store, or recover what it holds: sqlite3 {truncated} .recover | "
        f"sqlite3 {truncated}.recovered"
    )
    other = tmp_path / "other.db"
    other.write_bytes(b"not sqlite " * 500)
    assert "is damaged (file is not a database)" in sqlite_problem(other)
    missing = tmp_path / "none" / "mlflow.db"
    assert sqlite_problem(missing) is None  # a new store, for commands that write
    assert sqlite_problem(missing, must_exist=True).startswith(f"no store at {missing}: ")
    assert not (tmp_path / "none").exists()
    assert sqlite_problem(tmp_path, must_exist=True) == f"the store {tmp_path} is not a file"


ROOT = Path(__file__).resolve().parents[1]
QUESTION = str(ROOT / "experiments" / "custom_vs_torch.py")
README = str(ROOT / "README.md")


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["report", QUESTION, "--tracking_uri", "sqlite:///{tmp}/none/mlflow.db", "--out", "{tmp}/out"],
         "no store at sqlite:///{tmp}/none/mlflow.db: nothing ran into it yet"),
        (["readme", QUESTION, "--readme", README, "--tracking_uri", "sqlite:///{tmp}/none/mlflow.db"],
         "no store at sqlite:///{tmp}/none/mlflow.db"),
        (["ui", "--port", "0", "--tracking_uri", "sqlite:///{tmp}/none/mlflow.db"],
         "no store at sqlite:///{tmp}/none/mlflow.db"),
        (["report", QUESTION, "--tracking_uri", "http://127.0.0.1:1", "--out", "{tmp}/out"],
         "--tracking_uri http://127.0.0.1:1: no tracking server answers there"),
        (["run", QUESTION, "--tracking_uri", "sqlite:///{tmp}/bad/mlflow.db"],
         "the store {tmp}/bad/mlflow.db is damaged (file is not a database)"),
        (["fit", "--tracking_uri", "http://127.0.0.1:1"],
         "--tracking_uri http://127.0.0.1:1: no tracking server answers there"),
        (["report", QUESTION, "--tracking_uri", "bogus://x", "--out", "{tmp}/out"],
         "--tracking_uri 'bogus://x': not a store URI MLflow knows"),
    ],
    ids=["report-missing", "readme-missing", "ui-missing", "report-refused", "run-damaged",
         "fit-refused", "report-scheme"],
)  # fmt: skip
def test_commands_say_it_in_one_line_and_write_nothing(argv, expected, tmp_path, capsys):
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "mlflow.db").write_bytes(b"not sqlite " * 500)
    readme_before = Path(README).read_text()
    argv = [a.format(tmp=tmp_path) for a in argv]
    start = time.monotonic()
    code = main(argv)
    err = capsys.readouterr().err
    assert code == 2, err
    assert err.count("\n") == 1 and expected.format(tmp=tmp_path) in err, err
    assert time.monotonic() - start < 30
    assert not (tmp_path / "none").exists() and not (tmp_path / "out").exists()
    assert Path(README).read_text() == readme_before
