"""`grubench ui` serves the store on 127.0.0.1 and lists the runs (a real mlflow server)."""

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request

from grubench.fit import run_fit


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_ui_lists_the_run(tiny, tracking_uri, client):
    result = run_fit(tiny(tracking_uri, trainer={"max_steps": 2}))
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "grubench.cli", "ui", "--tracking_uri", tracking_uri,
         "--port", str(port)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True,
    )  # fmt: skip
    try:
        first_lines = [server.stdout.readline() for _ in range(3)]
        url = f"http://127.0.0.1:{port}/#/experiments/{result.experiment_id}/runs"
        assert f"  grubench: {url}?workflowType=machine_learning\n" in first_lines
        body = json.dumps({"experiment_ids": [result.experiment_id]}).encode()
        deadline = time.monotonic() + 60
        while True:
            try:
                request = urllib.request.Request(
                    f"http://127.0.0.1:{port}/api/2.0/mlflow/runs/search",
                    data=body, headers={"Content-Type": "application/json"},
                )  # fmt: skip
                with urllib.request.urlopen(request, timeout=5) as response:
                    runs = json.load(response)["runs"]
                break
            except OSError:
                assert server.poll() is None, "mlflow server exited"
                assert time.monotonic() < deadline, "mlflow server did not answer in 60 s"
                time.sleep(0.5)
        assert [r["info"]["run_id"] for r in runs] == [result.run_id]
        assert runs[0]["info"]["status"] == "FINISHED"
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()
