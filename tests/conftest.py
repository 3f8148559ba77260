"""Shared fixtures (an isolated MLflow store per test, a tiny real fit config) and the tiers.

Every test is in exactly one tier: ``unit`` (one function or class, no fit), ``integration``
(real fits and sweeps in process on tiny configs) or ``system`` (processes, servers, a browser,
Ray, compiling). A test module names its tier as ``TIER = "unit"``; a test of another tier
says so with its own marker (``@pytest.mark.system``). The default run (pyproject's addopts) is
unit + integration; ``python -m pytest -m system`` runs the system tier.
"""

from __future__ import annotations

import pytest
from mlflow.tracking import MlflowClient

from grubench.models import ModelConfig
from grubench.training.config import FitConfig
from grubench.training.data import TaskConfig
from grubench.training.module import OptimConfig

TIERS = ("unit", "integration", "system")


@pytest.hookimpl(tryfirst=True)  # before -m selects on the markers added here
def pytest_collection_modifyitems(config, items):
    untiered = []
    for item in items:
        own = [m.name for m in item.own_markers if m.name in TIERS]
        module_tier = getattr(item.module, "TIER", None)
        if len(own) > 1 or (not own and module_tier not in TIERS):
            untiered.append(item.nodeid)
        elif not own:
            item.add_marker(getattr(pytest.mark, module_tier))
    if untiered:
        raise pytest.UsageError(
            f"tests without exactly one tier ({', '.join(TIERS)}): set the module's TIER or mark "
            f"the test: {', '.join(untiered[:5])}" + (" ..." if len(untiered) > 5 else "")
        )


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch):
    """Each test runs in its own folder with no inherited tracking URI: MLFlowLogger exports
    MLFLOW_TRACKING_URI once used, and a default store must never land in the repo."""
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.chdir(tmp_path)


@pytest.fixture
def tracking_uri(tmp_path) -> str:
    return f"sqlite:///{tmp_path / 'store' / 'mlflow.db'}"


@pytest.fixture
def client(tracking_uri) -> MlflowClient:
    return MlflowClient(tracking_uri)


TINY_TRAINER = {"max_steps": 12, "enable_progress_bar": False, "log_every_n_steps": 4}


def tiny_config(tracking_uri: str, **overrides) -> FitConfig:
    """A real fit small enough for a few seconds on 2 cores; keyword groups override fields."""
    groups = {
        "model": ModelConfig(name="torch_gru", hidden_size=8),
        "task": TaskConfig(seq_len=10, batch_size=16, epoch_size=4, val_size=32, test_size=32),
        "optim": OptimConfig(lr=1e-2),
    }
    for group in list(overrides):
        if group in groups:
            for key, value in overrides.pop(group).items():
                setattr(groups[group], key, value)
    trainer = {**TINY_TRAINER, **overrides.pop("trainer", {})}
    return FitConfig(**groups, trainer=trainer, tracking_uri=tracking_uri, **overrides)


@pytest.fixture
def tiny():
    return tiny_config
