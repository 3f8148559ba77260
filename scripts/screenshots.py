"""Screenshots of `grubench ui` for the README: the runs view the printed address opens (a
sweep's evaluation runs grouped by configuration), its chart view, and the page of the sweep's
parent run (the report's table and verdict as its description).

    .venv/bin/python scripts/screenshots.py                         # ./mlruns, gru_vs_lstm
    .venv/bin/python scripts/screenshots.py --tracking_uri sqlite:////path/mlflow.db \\
        --experiment tiny --out /tmp/shots

It starts `grubench ui` on a free port of 127.0.0.1 (the store is only read), opens the addresses
it prints in headless Chromium (Debian's `chromium` package) through the DevTools protocol
(the `websocket-client` package, in grubench's dev extra), waits until each page shows its
content, and writes ``ui-runs.png``, ``ui-charts.png`` and ``ui-parent.png`` under ``--out``
(default experiments/results). Every process it starts is stopped when it ends.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path

CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--hide-scrollbars", "--remote-debugging-address=127.0.0.1", "--remote-debugging-port=0",
]  # fmt: skip


class Failure(Exception):
    """A one-line reason the screenshots could not be taken."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def stop_group(process: subprocess.Popen) -> None:
    for signum in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(process.pid, signum)
        except ProcessLookupError:
            break
        try:
            process.wait(timeout=20)
            break
        except subprocess.TimeoutExpired:
            continue
    process.wait()


@contextmanager
def grubench_ui(tracking_uri: str | None, experiment: str, timeout: float = 180):
    """`grubench ui` for ``experiment`` on a free port; yields the addresses it printed:
    {"runs": ..., "charts": ..., "parent": ...}."""
    port = free_port()
    command = [sys.executable, "-m", "grubench", "ui", "--port", str(port),
               "--experiment_name", experiment]  # fmt: skip
    if tracking_uri:
        command += ["--tracking_uri", tracking_uri]
    log = tempfile.TemporaryFile("w+")
    ui = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, text=True,
                          start_new_session=True)  # fmt: skip
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2)
                break
            except OSError:
                if ui.poll() is not None:
                    log.seek(0)
                    lines = [x for x in log.read().splitlines() if x.strip()]
                    raise Failure(lines[-1] if lines else "grubench ui exited") from None
                if time.monotonic() > deadline:
                    raise Failure(f"no answer from grubench ui in {timeout:.0f} s") from None
                time.sleep(0.5)
        log.seek(0)
        printed = log.read()
        found = {
            "runs": re.search(rf"^  {re.escape(experiment)}: (\S+)$", printed, re.M),
            "charts": re.search(r"learning curves by group: (\S+)$", printed, re.M),
            "parent": re.search(r"the answer \(table and verdict\): (\S+)$", printed, re.M),
        }
        if not all(found.values()):
            raise Failure(f"experiment {experiment!r} has no sweep view: run its sweep first "
                          "(grubench run FILE writes it when it starts)")  # fmt: skip
        yield {name: match.group(1) for name, match in found.items()}
    finally:
        stop_group(ui)
        log.close()


class Browser:
    """Headless Chromium driven over the DevTools protocol (one page)."""

    def __init__(self, width: int, height: int):
        import websocket  # websocket-client

        executable = shutil.which("chromium") or shutil.which("chromium-browser")
        if executable is None:
            raise Failure("chromium is not installed (Debian: apt-get install -y chromium)")
        self.profile = tempfile.mkdtemp(prefix="grubench-chromium-")
        self.process = subprocess.Popen(
            [executable, *CHROMIUM_FLAGS, f"--user-data-dir={self.profile}",
             f"--window-size={width},{height}", "about:blank"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
        )  # fmt: skip
        active = Path(self.profile) / "DevToolsActivePort"
        deadline = time.monotonic() + 60
        while not (active.exists() and len(active.read_text().split()) >= 2):
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.close()
                raise Failure("chromium did not start its DevTools endpoint")
            time.sleep(0.2)
        port = active.read_text().split()[0]
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10) as r:
            page = next(t for t in json.load(r) if t["type"] == "page")
        self.socket = websocket.create_connection(page["webSocketDebuggerUrl"], timeout=60,
                                                  suppress_origin=True)  # fmt: skip
        self.next_id = 0
        self.call("Emulation.setDeviceMetricsOverride", width=width, height=height,
                  deviceScaleFactor=1, mobile=False)  # fmt: skip

    def call(self, method: str, **params):
        self.next_id += 1
        self.socket.send(json.dumps({"id": self.next_id, "method": method, "params": params}))
        while True:
            message = json.loads(self.socket.recv())
            if message.get("id") == self.next_id:
                if "error" in message:
                    raise Failure(f"{method}: {message['error'].get('message')}")
                return message.get("result", {})

    def evaluate(self, expression: str):
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        return result.get("result", {}).get("value")

    def open(self, url: str, ready: str, timeout: float = 120, settle: float = 2) -> None:
        """Go to ``url``, wait until the JavaScript expression ``ready`` is true, then until
        the number of drawn charts has not changed for a few seconds (each chart fetches its
        metric history), then ``settle`` seconds more."""
        self.call("Page.navigate", url=url)
        deadline = time.monotonic() + timeout
        while not self.evaluate(ready):
            if time.monotonic() > deadline:
                raise Failure(f"{url}: the page did not show its content in {timeout:.0f} s")
            time.sleep(0.5)
        counts: list[int] = []
        while len(counts) < 4 or len(set(counts[-4:])) > 1:
            if time.monotonic() > deadline:
                break  # draw what there is
            counts.append(self.evaluate(DRAWN_CHARTS))
            time.sleep(1.5)
        time.sleep(settle)

    def click(self, selector: str) -> None:
        self.evaluate(f"document.querySelectorAll({json.dumps(selector)})"
                      ".forEach(e => e.click())")  # fmt: skip

    def screenshot(self, path: Path, bottom: str | None = None) -> None:
        """Save the page as a PNG, cut below the JavaScript expression ``bottom`` (a height in
        pixels) where one is given."""
        self.evaluate("document.activeElement && document.activeElement.blur()")
        self.call("Input.dispatchMouseEvent", type="mouseMoved", x=1, y=1)  # no tooltip
        time.sleep(0.5)
        params = {"format": "png"}
        if bottom:
            width, height = self.evaluate("[window.innerWidth, window.innerHeight]")
            cut = min(height, int(self.evaluate(bottom) or height) + 24)
            params["clip"] = {"x": 0, "y": 0, "width": width, "height": cut, "scale": 1}
        data = self.call("Page.captureScreenshot", **params)["data"]
        path.write_bytes(base64.b64decode(data))

    def close(self) -> None:
        stop_group(self.process)
        shutil.rmtree(self.profile, ignore_errors=True)


def text_shown(*texts: str) -> str:
    """A JavaScript test that the page's text holds every one of ``texts``."""
    tests = " && ".join(f"document.body.innerText.includes({json.dumps(t)})" for t in texts)
    return f"Boolean(document.body) && {tests}"


# the MLflow Assistant panel (it takes a third of the page) and the shared-view banner
CLOSE_PANELS = ('[data-component-id="mlflow.assistant.chat_panel.close"], '
                '[data-component-id="mlflow.experiment_page.shared_view.dismiss"]')  # fmt: skip


# charts drawn (plotly) and not still loading
DRAWN_CHARTS = "document.querySelectorAll('.js-plotly-plot').length"
# the lowest row of the runs table
TABLE_BOTTOM = ("Math.max(...[...document.querySelectorAll('.ag-row')]"
                ".map(r => r.getBoundingClientRect().bottom))")  # fmt: skip


def take(tracking_uri: str | None, experiment: str, out: Path, width: int, height: int) -> None:
    out.mkdir(parents=True, exist_ok=True)
    with grubench_ui(tracking_uri, experiment) as addresses:
        browser = Browser(width, height)
        try:
            browser.open(addresses["runs"], text_shown("Group: ", "(average)"))
            browser.click(CLOSE_PANELS)
            time.sleep(1)
            browser.screenshot(out / "ui-runs.png", bottom=TABLE_BOTTOM)
            browser.open(addresses["charts"], text_shown("Learning curves", "Step"))
            browser.click(CLOSE_PANELS)
            time.sleep(2)
            browser.screenshot(out / "ui-charts.png")
            browser.open(addresses["parent"], text_shown("Description", "Verdict"))
            browser.click(CLOSE_PANELS)
            browser.evaluate("[...document.querySelectorAll('button')]"
                             ".filter(b => b.innerText.trim() === 'Show more')"
                             ".forEach(b => b.click())")  # fmt: skip
            time.sleep(1)
            browser.screenshot(out / "ui-parent.png")
        finally:
            browser.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="screenshots.py", description=__doc__.split("\n")[0])
    parser.add_argument("--tracking_uri", "--tracking-uri", default=None,
                        help="the store (default: grubench's, ./mlruns)")  # fmt: skip
    parser.add_argument("--experiment", default="gru_vs_lstm", help="experiment name")
    parser.add_argument("--out", default="experiments/results", help="folder for the PNGs")
    parser.add_argument("--window-size", default="1600,1000", help="WIDTH,HEIGHT in pixels")
    args = parser.parse_args(argv)
    size = args.window_size.split(",")
    if len(size) != 2 or not all(s.isdigit() and int(s) > 0 for s in size):
        print(f"screenshots.py: error: --window-size {args.window_size!r}: expected WIDTH,HEIGHT",
              file=sys.stderr)  # fmt: skip
        return 2
    start = time.perf_counter()
    try:
        take(args.tracking_uri, args.experiment, Path(args.out), int(size[0]), int(size[1]))
    except ImportError:
        print("screenshots.py: error: needs websocket-client: pip install -c constraints.txt "
              "-e '.[dev]'", file=sys.stderr)  # fmt: skip
        return 2
    except (Failure, OSError) as err:
        print(f"screenshots.py: error: {err}", file=sys.stderr)
        return 1
    names = ", ".join(f"{args.out}/ui-{n}.png" for n in ("runs", "charts", "parent"))
    print(f"wrote {names} in {time.perf_counter() - start:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
