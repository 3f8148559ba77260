"""Real server processes for tests: start in their own session, wait until they answer, and
always stop the whole process group."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager


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
