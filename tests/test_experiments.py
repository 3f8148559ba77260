"""Every experiment file, through the real runner, the real store and the report."""

import dataclasses
from pathlib import Path

import pytest

from grubench.answers.publish import write_report
from grubench.answers.report import build_report, to_markdown
from grubench.sweeps.question import PROFILES, expand, expand_tuning, load_question
from grubench.sweeps.runner import run_sweep
from grubench.training.config import validate_fit_config

TIER = "integration"

ROOT = Path(__file__).resolve().parents[1]
FILES = sorted((ROOT / "experiments").glob("*.py"))
TINY = {
    "task": {"val_size": 16, "test_size": 16, "epoch_size": 2},
    "trainer": {"max_steps": 2, "enable_progress_bar": False, "log_every_n_steps": 1},
}


@pytest.mark.unit
def test_there_is_one_file_per_faq_question():
    names = {path.stem for path in FILES}
    assert {"gru_vs_lstm", "initialization", "activation", "optimizer", "batch_size",
            "regularization", "vanishing_gradients", "custom_vs_torch",
            "classic_two_layer"} <= names  # fmt: skip


def _children(experiment, profile, overrides=None):
    """Every child a sweep of ``profile`` runs: its tuning stage and its evaluation stage (at
    each cell's first point, as the runner checks it before tuning has selected)."""
    first = {(a, c): next(iter(experiment.points_for(a, profile))) for a in experiment.arms
             for c in experiment.conditions_for(profile)} if experiment.tuned else None  # fmt: skip
    return expand_tuning(experiment, profile, overrides) + expand(
        experiment, profile, overrides, first
    )


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.stem)
def test_every_child_of_every_profile_is_valid(path):
    experiment = load_question(path)
    assert experiment.text and experiment.__doc__ is not None
    assert len(experiment.seeds["quick"]) >= 8 and len(experiment.seeds["full"]) >= 16
    assert experiment.tuned, "every question tunes each arm (the protocol)"
    for profile in PROFILES:
        assert not set(experiment.seeds[profile]) & set(experiment.tuning_seeds[profile])
        for child in _children(experiment, profile):
            assert validate_fit_config(child.config) == [], (profile, child.key)


def _smoke(experiment, tracking_uri, tmp_path):
    result = run_sweep(experiment, "quick", tracking_uri, TINY, echo=lambda _: None)
    # two steps solve nothing: on a ladder, every arm stops at its first rung
    above = {c for ladder in experiment.ladders for c in list(ladder.conditions("quick"))[1:]}
    tuning = [c for c in expand_tuning(experiment, "quick", TINY) if c.condition not in above]
    ran = [c for c in _children(experiment, "quick", TINY) if c.condition not in above]
    assert result.ran == len(ran) and not result.failed
    assert set(result.selected) == {(a, c) for a in experiment.arms
                                    for c in experiment.conditions_for("quick")
                                    if c not in above}  # fmt: skip
    report, paths = write_report(experiment, "quick", tmp_path / "results", tracking_uri)
    assert report.missing == []
    assert sum(cell.runs for cell in report.cells) == result.ran - len(tuning)
    assert all(p.exists() for p in paths)


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.stem)
def test_experiment_smoke(path, tracking_uri, tmp_path):
    """Each file through both stages of the real runner, cut to its first two arms, its
    first condition and one evaluation seed."""
    experiment = load_question(path)
    arms = dict(list(experiment.arms.items())[:2])
    first = dict(list(experiment.conditions_for("quick").items())[:1])
    small = dataclasses.replace(
        experiment, arms=arms, conditions_by_profile={"quick": first},
        seeds={**experiment.seeds, "quick": experiment.seeds["quick"][:1]},
        tune_by_arm={a: g for a, g in experiment.tune_by_arm.items() if a in arms},
        tips=[], baseline=None, ladders=(),  # a first rung runs as a plain condition
        search=experiment.search and dataclasses.replace(experiment.search, trials={"quick": 2}),
    )  # fmt: skip
    _smoke(small, tracking_uri, tmp_path)


@pytest.mark.slow
@pytest.mark.parametrize("path", FILES, ids=lambda p: p.stem)
def test_experiment_every_config(path, tracking_uri, tmp_path):
    """Every child of each file, both stages, on the tiny budget."""
    _smoke(load_question(path), tracking_uri, tmp_path)


def test_settings_hash_sees_the_backend_of_the_models_that_take_it():
    from grubench.models import ModelConfig
    from grubench.sweeps.question import Child
    from grubench.training.config import FitConfig

    def digest(**model):
        return Child("x", "", 0, FitConfig(model=ModelConfig(**model))).config_hash()

    # custom_gru: the backend changes the float rounding, so a run on another one is another run
    assert digest(name="custom_gru") != digest(name="custom_gru", backend="autograd")
    assert digest(name="lstm") != digest(name="lstm", backend="torch")  # oneDNN's, not ours
    # the field means nothing to a model that does not take it
    assert digest(name="torch_gru") == digest(name="torch_gru", backend="python")


def test_settings_hash_is_what_a_run_computes():
    """Not where it runs (accelerator, devices, strategy, nodes) or where it is recorded; and
    pinned: a change that moves it would orphan every child in the existing stores."""
    from grubench.models import ModelConfig
    from grubench.sweeps.question import Child
    from grubench.training.config import FitConfig

    def digest(**fit):
        return Child("x", "", 0, FitConfig(**fit)).config_hash()

    base = {"trainer": {"max_steps": 100}}
    # moved once, from a612c9997177, when optim.momentum's default became torch's (0.0)
    assert digest(**base) == "7199080ab605"
    for hardware in ({"accelerator": "gpu"}, {"devices": 2}, {"strategy": "ddp"},
                     {"num_nodes": 2}):  # fmt: skip
        assert digest(trainer={**base["trainer"], **hardware}) == digest(**base)
    assert digest(**base, tracking_uri="http://127.0.0.1:5000", run_name="r", tags={"a": "b"},
                  experiment_name="e") == digest(**base)  # fmt: skip
    for settings in ({"seed": 1}, {"trainer": {"max_steps": 200}},
                     {"model": ModelConfig(hidden_size=32)}):  # fmt: skip
        assert digest(**{**base, **settings}) != digest(**base)


def test_settings_hash_sees_flush_denormal_and_the_stop_rule():
    from grubench.sweeps.question import Child
    from grubench.training.config import FitConfig

    def digest(**fit):
        return Child("x", "", 0, FitConfig(**fit)).config_hash()

    assert digest() == digest(flush_denormal=True) != digest(flush_denormal=False)
    assert digest() != digest(stop_after_solved=3)


def test_gru_vs_lstm_real_data_through_the_runner_and_report(tracking_uri, tmp_path):
    """The real-data conditions (digits, permuted digits, char_lm) through both stages and the
    report: char_lm has no solved threshold, so its rows say so and no steps-to-solve
    comparison counts it."""
    experiment = load_question(ROOT / "experiments" / "gru_vs_lstm.py")
    real = {name: c for name, c in experiment.conditions.items() if "adding" not in name}
    assert set(real) == {"digits T=64", "permuted digits T=64", "char_lm T=64"}
    arms = {a: experiment.arms[a] for a in ("gru", "lstm")}
    small = dataclasses.replace(
        experiment, arms=arms, conditions_by_profile={"quick": real},
        seeds={**experiment.seeds, "quick": experiment.seeds["quick"][:1]},
        tune_by_arm={a: {"optim.lr": [1e-2]} for a in arms}, tips=experiment.tips[1:],
        # the adding rungs kept by name (the tip names them), but none under quick
        ladders=tuple(dataclasses.replace(ladder, rungs={"full": (50, 150)})
                      for ladder in experiment.ladders),
    )  # fmt: skip
    _smoke(small, tracking_uri, tmp_path)
    report = build_report(small, "quick", tracking_uri)
    table = to_markdown(report)
    rows = [line for line in table.splitlines() if "char_lm T=64" in line and "| gru |" in line]
    assert "n/a (no threshold)" in rows[0] and "| bpc " in rows[0]
    assert not [c for c in report.cells if c.condition != "char_lm T=64" and not c.solvable]
    (tip, (synthetic, real_claim)), = report.tips  # fmt: skip
    assert synthetic.p.estimate != synthetic.p.estimate  # no adding conditions here: nan
    assert 0.0 <= real_claim.p.estimate <= 1.0
