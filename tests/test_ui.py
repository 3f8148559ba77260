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
