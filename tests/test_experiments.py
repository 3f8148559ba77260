"""Every experiment file, through the real runner, the real store and the report."""

from pathlib import Path

import pytest

from grubench.experiment import PROFILES, expand, load_experiment
from grubench.fit import validate_fit_config
from grubench.report import write_report
from grubench.runner import run_sweep

ROOT = Path(__file__).resolve().parents[1]
FILES = sorted((ROOT / "experiments").glob("*.py"))
TINY = {
    "task": {"val_size": 16, "test_size": 16, "epoch_size": 2},
    "trainer": {"max_steps": 2, "enable_progress_bar": False, "log_every_n_steps": 1},
}


def test_there_is_one_file_per_faq_question():
    names = {path.stem for path in FILES}
    assert {"gru_vs_lstm", "initialization", "activation", "optimizer", "batch_size",
            "regularization", "vanishing_gradients", "custom_vs_torch",
            "classic_two_layer"} <= names  # fmt: skip


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.stem)
def test_every_child_of_every_profile_is_valid(path):
    experiment = load_experiment(path)
    assert experiment.question and experiment.__doc__ is not None
    assert len(experiment.seeds["quick"]) >= 3 and len(experiment.seeds["full"]) >= 5
    for profile in PROFILES:
        for child in expand(experiment, profile):
            assert validate_fit_config(child.config) == [], (profile, child.key)


def _smoke(path, tracking_uri, tmp_path, stride):
    experiment = load_experiment(path)
    children = expand(experiment, "quick", TINY)
    result = run_sweep(experiment, "quick", tracking_uri, TINY, shard=(0, stride),
                       echo=lambda _: None)  # fmt: skip
    assert result.ran == len(children[::stride]) and not result.failed
    report, paths = write_report(experiment, "quick", tmp_path / "results", tracking_uri)
    assert sum(row.runs for row in report.rows) == result.ran
    assert all(p.exists() for p in paths)


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.stem)
def test_experiment_smoke(path, tracking_uri, tmp_path):
    """A few children of each file (spread over its grid) through the real runner."""
    children = expand(load_experiment(path), "quick")
    _smoke(path, tracking_uri, tmp_path, stride=max(1, len(children) // 2))


@pytest.mark.slow
@pytest.mark.parametrize("path", FILES, ids=lambda p: p.stem)
def test_experiment_every_config(path, tracking_uri, tmp_path):
    """One seed of every configuration of each file, on the tiny budget."""
    _smoke(path, tracking_uri, tmp_path, stride=len(load_experiment(path).seeds["quick"]))


def test_settings_hash_sees_the_backend_of_custom_gru_only():
    from grubench.experiment import Child
    from grubench.fit import FitConfig
    from grubench.models import ModelConfig

    def digest(**model):
        return Child("x", 0, FitConfig(model=ModelConfig(**model))).config_hash()

    # custom_gru: the backend changes the float rounding, so a run on another one is another run
    assert digest(name="custom_gru") != digest(name="custom_gru", backend="autograd")
    # the field means nothing to other models (and their runs from before it still count)
    assert digest(name="lstm") == digest(name="lstm", backend="python")


def test_settings_hash_sees_flush_denormal_only_when_on():
    from grubench.experiment import Child
    from grubench.fit import FitConfig

    def digest(**fit):
        return Child("x", 0, FitConfig(**fit)).config_hash()

    assert digest() == digest(flush_denormal=False) != digest(flush_denormal=True)
