"""Where runs go: the MLflow store, experiments, tags, params and the UI address.

The default store is embedded in ``./mlruns``: a SQLite database (``mlruns/mlflow.db``) plus an
artifact folder (``mlruns/artifacts``) and checkpoints (``mlruns/checkpoints/<run_id>``).
MLflow 3.13+ refuses the old file store without an opt-in flag, hence SQLite. Any other
tracking URI (``--tracking_uri`` or ``MLFLOW_TRACKING_URI``), such as an ``http://`` server,
is used as given; its checkpoints then go under ``$GRUBENCH_CHECKPOINT_DIR``, else
``./mlruns/checkpoints``.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any

DEFAULT_STORE = Path("mlruns")
DB_NAME = "mlflow.db"


def default_tracking_uri(store: Path = DEFAULT_STORE) -> str:
    return f"sqlite:///{(store / DB_NAME).resolve()}"


def resolve_tracking_uri(explicit: str | None = None) -> str:
    """``explicit`` wins, then ``MLFLOW_TRACKING_URI``, then the embedded ``./mlruns`` store."""
    return explicit or os.environ.get("MLFLOW_TRACKING_URI") or default_tracking_uri()


def store_dir(tracking_uri: str) -> Path:
    """The local folder of the store: the SQLite file's folder, else ``./mlruns``."""
    if tracking_uri.startswith("sqlite:///"):
        return Path(tracking_uri[len("sqlite:///") :]).parent
    return DEFAULT_STORE.resolve()


def artifact_root(tracking_uri: str) -> str | None:
    """Artifact location for new experiments in an embedded store (None: the server decides)."""
    if tracking_uri.startswith("sqlite:///"):
        return (store_dir(tracking_uri) / "artifacts").resolve().as_uri()
    return None


# where checkpoints go when the store is not an embedded SQLite file (e.g. an ``mlflow server``
# shared by a Ray cluster: point it at a filesystem every node sees, so that a child retried on
# another node continues from its checkpoint)
CHECKPOINT_ENV = "GRUBENCH_CHECKPOINT_DIR"


def checkpoint_root(tracking_uri: str) -> Path:
    if not tracking_uri.startswith("sqlite:///") and os.environ.get(CHECKPOINT_ENV):
        return Path(os.environ[CHECKPOINT_ENV]).resolve()
    return store_dir(tracking_uri) / "checkpoints"


def checkpoint_dir(tracking_uri: str, run_id: str) -> Path:
    return checkpoint_root(tracking_uri) / run_id


@contextlib.contextmanager
def file_lock(path: Path):
    """An exclusive lock on the file ``path`` (created), held across processes until exit."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)  # released when the file closes
        yield


def get_client(tracking_uri: str):
    """An MlflowClient; an embedded SQLite store is created (or migrated) under a file lock.

    Several processes opening a fresh SQLite store at once race in MLflow's schema migration
    ("table already exists"), e.g. the drivers or workers of a sweep started together; the
    lock makes the first one create the schema while the others wait, then find it.
    """
    from mlflow.tracking import MlflowClient

    if not tracking_uri.startswith("sqlite:///"):
        return MlflowClient(tracking_uri=tracking_uri)
    with file_lock(store_dir(tracking_uri) / ".grubench-init.lock"):
        client = MlflowClient(tracking_uri=tracking_uri)
        client.search_experiments(max_results=1)  # the store now exists, schema up to date
    return client


def ensure_experiment(client, name: str, tracking_uri: str) -> str:
    """The id of experiment ``name``, created (with the store's artifact root) if missing, and
    restored if it was deleted (MLflow keeps a deleted experiment's name reserved). Safe when
    several processes create the same experiment at once."""
    from mlflow.exceptions import MlflowException

    experiment = client.get_experiment_by_name(name)
    if experiment is None:
        try:
            return client.create_experiment(name, artifact_location=artifact_root(tracking_uri))
        except MlflowException:  # another process created it first
            experiment = client.get_experiment_by_name(name)
            if experiment is None:
                raise
    if experiment.lifecycle_stage == "deleted":
        client.restore_experiment(experiment.experiment_id)
    return experiment.experiment_id


def git_commit(cwd: Path | None = None) -> str | None:
    """The commit of the working tree (suffixed ``-dirty`` when it has changes), if any."""
    cwd = cwd or Path(__file__).resolve().parent
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=cwd,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None
    return f"{commit}-dirty" if dirty else commit


def flatten(config: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"model": {"hidden_size": 64}}`` -> ``{"model.hidden_size": 64}``."""
    flat: dict[str, Any] = {}
    for key, value in config.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            flat.update(flatten(value, f"{name}."))
        else:
            flat[name] = value
    return flat


def runs_table_url(host: str, port: int, experiment_id: str, view: str | None = None,
                   mode: str | None = None) -> str:  # fmt: skip
    """The UI address that opens the runs table (with the saved view ``view``, in the view
    mode ``mode``: ``TABLE`` or ``CHART``).

    MLflow 3.17's UI opens an experiment in its GenAI view (traces, "No data"); the
    ``workflowType=machine_learning`` query selects the Model training view with the runs.
    """
    url = f"http://{host}:{port}/#/experiments/{experiment_id}/runs?workflowType=machine_learning"
    if view:
        url += f"&viewStateShareKey={view}"
    if mode:
        url += f"&compareRunsMode={mode}"
    return url


def run_url(host: str, port: int, experiment_id: str, run_id: str) -> str:
    """The UI address of a run's page (its description, metrics, artifacts)."""
    base = f"http://{host}:{port}/#/experiments/{experiment_id}/runs/{run_id}"
    return f"{base}?workflowType=machine_learning"
