"""grubench ui: the MLflow UI for the store, on 127.0.0.1, opening on the comparison."""

from __future__ import annotations

import argparse
import importlib.util
import os
import subprocess
import sys

from grubench.cli.messages import TRACKING_URI_HELP, Parser, fail


def ui_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="grubench ui",
        description="Serve the MLflow UI for grubench's store and print the address of each "
        "experiment's runs table (stop it with Ctrl-C).",
    )
    parser.add_argument("--tracking_uri", "--tracking-uri", default=None, help=TRACKING_URI_HELP)
    parser.add_argument(
        "--host",
        default="127.0.0.1",
        help="Interface to bind (default 127.0.0.1: this machine only). Another address "
        "exposes every run to that network: add --basic-auth, and name the host names and "
        "origins that may reach it with --allowed-hosts and --cors-allowed-origins (MLflow's "
        "host-header and CORS checks).",
    )
    parser.add_argument("--port", type=int, default=5000, help="the port to serve the UI on")
    parser.add_argument(
        "--basic-auth",
        "--basic_auth",
        action="store_true",
        help="require a login (MLflow's basic-auth app, --app-name basic-auth)",
    )
    parser.add_argument(
        "--allowed-hosts",
        "--allowed_hosts",
        default=None,
        help="comma-separated Host headers the server accepts",
    )
    parser.add_argument(
        "--cors-allowed-origins",
        "--cors_allowed_origins",
        default=None,
        help="comma-separated origins allowed by CORS",
    )
    parser.add_argument(
        "--experiment_name",
        "--experiment-name",
        default=None,
        help="print the runs-table address of this experiment only (default: every experiment)",
    )
    return parser


def ui_command(args: argparse.Namespace, uri: str, root: str | None) -> list[str]:
    """The ``mlflow server`` command line for ``grubench ui``'s options."""
    command = [
        sys.executable, "-m", "mlflow", "server",
        "--backend-store-uri", uri,
        "--host", args.host,
        "--port", str(args.port),
    ]  # fmt: skip
    if root:
        command += ["--default-artifact-root", root]
    if args.basic_auth:
        command += ["--app-name", "basic-auth"]
    if args.allowed_hosts:
        command += ["--allowed-hosts", args.allowed_hosts]
    if args.cors_allowed_origins:
        command += ["--cors-allowed-origins", args.cors_allowed_origins]
    return command


def cmd_ui(argv: list[str]) -> int:
    from grubench.store.health import store_problem
    from grubench.store.tracking import artifact_root, get_client, resolve_tracking_uri

    args = ui_parser().parse_args(argv)
    busy = port_problem(args.host, args.port)
    if busy is not None:  # before the store is opened or a server started
        return fail([busy], "grubench ui")
    if args.basic_auth and importlib.util.find_spec("flask_wtf") is None:
        return fail(
            ["--basic-auth needs MLflow's auth extra: pip install 'mlflow[auth]'"], "grubench ui"
        )
    uri = resolve_tracking_uri(args.tracking_uri)
    if problem := store_problem(uri, must_exist=True):
        return fail([problem], "grubench ui")
    client = get_client(uri)
    experiments = client.search_experiments(order_by=["last_update_time DESC"])
    if args.experiment_name:
        experiments = [e for e in experiments if e.name == args.experiment_name]
        if not experiments:
            return fail([f"no experiment {args.experiment_name!r} in {uri}"], "grubench ui")
    command = ui_command(args, uri, artifact_root(uri))
    if args.host not in ("127.0.0.1", "localhost", "::1") and not args.basic_auth:
        print(
            f"grubench ui: warning: serving {uri} on {args.host} without --basic-auth: "
            "anyone who reaches this port can read and change every run",
            file=sys.stderr,
        )
    print(f"MLflow UI for {uri}; runs tables (Model training view), each experiment with a "
          "sweep on its newest sweep's evaluation runs grouped by configuration:")  # fmt: skip
    for experiment in experiments:
        print_addresses(client, experiment, args.host, args.port)
    sys.stdout.flush()
    return serve(command)


def port_problem(host: str, port: int) -> str | None:
    """Why the UI cannot listen on ``host:port`` (one line), or None if it can: the same bind
    the server makes (SO_REUSEADDR, as uvicorn sets it, so a closing connection's TIME_WAIT
    does not count as busy)."""
    import socket

    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as err:
        return f"--host {host!r}: cannot resolve it ({err.strerror})"
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as err:
            return f"--port {port}: cannot listen on {host}:{port} ({err.strerror}); pick another"
    return None


def print_addresses(client, experiment, host: str, port: int) -> None:
    """The experiment's runs-table address: on its newest sweep's saved view where a sweep
    wrote one, then that view's charts and the page of the sweep's parent run (the report)."""
    from grubench.store.tracking import run_url, runs_table_url
    from grubench.store.views import latest_parent, latest_view_key

    eid = experiment.experiment_id
    found = latest_view_key(client, experiment)
    if found is None:
        print(f"  {experiment.name}: {runs_table_url(host, port, eid)}")
        return
    key, sweep = found
    print(f"  {experiment.name}: {runs_table_url(host, port, eid, key)}")
    print(f"    {sweep}, learning curves by group: {runs_table_url(host, port, eid, key, 'CHART')}")
    parent = latest_parent(client, eid, sweep)
    if parent is not None:
        print(f"    {sweep}, the answer (table and verdict): "
              f"{run_url(host, port, eid, parent.info.run_id)}")  # fmt: skip


def serve(command: list[str]) -> int:
    """Run the server ``command`` until it exits, or until this process gets SIGTERM or
    SIGINT: then stop the server and every process it started (its uvicorn workers and job
    consumers), which share its own process group, and wait until none is left."""
    import signal
    import time

    from grubench.training.resume import signal_handlers

    server = subprocess.Popen(command, start_new_session=True)
    stopping: list[int] = []

    def stop(signum, frame) -> None:
        stopping.append(signum)
        _signal_group(server.pid, signal.SIGTERM)

    try:
        with signal_handlers(stop):
            code = server.wait()
    finally:
        deadline = time.monotonic() + 15  # what the server started may outlive it
        while _signal_group(server.pid, 0) and time.monotonic() < deadline:
            _signal_group(server.pid, signal.SIGTERM)
            time.sleep(0.2)
        _signal_group(server.pid, signal.SIGKILL)
    if stopping:
        return 0
    # a server stops only when told to: ending by itself, whatever its status, it failed
    print(f"grubench ui: error: the MLflow server exited (status {code})", file=sys.stderr)
    return code or 1


def _signal_group(pgid: int, signum: int) -> bool:
    """Send ``signum`` to the process group ``pgid``; whether any process of it is left."""
    try:
        os.killpg(pgid, signum)
        return True
    except ProcessLookupError:
        return False
