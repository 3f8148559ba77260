"""Real server processes for tests: start in their own session, wait until they answer, and
always stop the whole process group."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def served(command: list[str], port: int, timeout: float = 90, **popen) -> Iterator:
    """Run ``command`` (a server on 127.0.0.1:``port``) until its /health answers; yields
    ``(process, base_url)``."""
    process = subprocess.Popen(command, start_new_session=True, **popen)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                urllib.request.urlopen(f"{base}/health", timeout=2)
                break
            except OSError:
                assert process.poll() is None, f"{command[:4]} exited"
                assert time.monotonic() < deadline, f"no answer from {base} in {timeout} s"
                time.sleep(0.5)
        yield process, base
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def rest(base: str, path: str, body: dict) -> dict:
    """POST to MLflow's REST API, e.g. ``rest(base, "runs/search", {...})``."""
    request = urllib.request.Request(
        f"{base}/api/2.0/mlflow/{path}",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.load(response)


@contextmanager
def ray_head(num_cpus: int = 2, timeout: float = 120) -> Iterator[str]:
    """A real Ray head (``ray start --head --block``) on 127.0.0.1 in its own session; yields
    its address. Every port it opens is on 127.0.0.1 (RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0,
    which the caller's environment also needs), and the whole process group (GCS, raylet,
    workers) is stopped afterwards, pass or fail."""
    import shutil
    import sys
    import tempfile
    from pathlib import Path

    temp = tempfile.mkdtemp(prefix="ray", dir="/tmp")  # short: Ray's socket paths must fit
    port = free_port()
    command = [
        str(Path(sys.executable).parent / "ray"), "start", "--head", "--block",
        "--node-ip-address", "127.0.0.1", "--port", str(port), "--num-cpus", str(num_cpus),
        "--include-dashboard", "false", "--disable-usage-stats", "--temp-dir", temp,
        "--object-store-memory", str(200 * 1024 * 1024),
        "--dashboard-agent-listen-port", str(free_port()),
    ]  # fmt: skip
    import importlib.util

    if importlib.util.find_spec("grpc") is not None:  # ray[client]: its server starts too
        command += ["--ray-client-server-port", str(free_port())]
    env = {**os.environ, "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}
    log = open(Path(temp) / "head.log", "w+")
    process = subprocess.Popen(command, start_new_session=True, env=env, stdout=log,
                               stderr=subprocess.STDOUT)  # fmt: skip
    try:
        deadline = time.monotonic() + timeout
        while "Ray runtime started" not in (Path(temp) / "head.log").read_text():
            assert process.poll() is None, (Path(temp) / "head.log").read_text()[-3000:]
            assert time.monotonic() < deadline, f"no Ray head in {timeout} s"
            time.sleep(0.5)
        yield f"127.0.0.1:{port}"
    finally:
        for signum in (signal.SIGTERM, signal.SIGKILL):
            try:
                os.killpg(process.pid, signum)
            except ProcessLookupError:
                break
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                process.poll()  # reaps the leader once it exits
                try:
                    os.killpg(process.pid, 0)  # any process of the group left?
                except ProcessLookupError:
                    break
                time.sleep(0.2)
        process.wait()
        log.close()
        shutil.rmtree(temp, ignore_errors=True)


class RestartableServer:
    """An ``mlflow server`` on a fixed port and SQLite store that can be stopped and started."""

    def __init__(self, root) -> None:
        self.port = free_port()
        self.command = [
            sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1",
            "--port", str(self.port), "--backend-store-uri", f"sqlite:///{root / 'mlflow.db'}",
            "--artifacts-destination", str(root / "artifacts"), "--workers", "1",
        ]  # fmt: skip
        self.uri = f"http://127.0.0.1:{self.port}"
        self.stack: ExitStack | None = None

    def start(self) -> None:
        self.stack = ExitStack()
        quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
        self.stack.enter_context(served(self.command, self.port, **quiet))

    def stop(self) -> None:
        if self.stack is not None:
            self.stack.close()
            self.stack = None
