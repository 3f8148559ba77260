"""Shared fixtures: an isolated MLflow store per test and a tiny real fit config."""

from __future__ import annotations

import pytest
from mlflow.tracking import MlflowClient

from grubench.models import ModelConfig
from grubench.training.fit import FitConfig, TaskConfig
from grubench.training.module import OptimConfig


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
