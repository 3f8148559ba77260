"""A search's ranges by choice (grubench.sweeps.search.LogRangeByChoice, ValueByChoice): the
learning rate drawn as a position within the chosen optimizer's range, as what_matters does."""

from pathlib import Path

import optuna
import pytest
from optuna.distributions import CategoricalDistribution, FloatDistribution

from grubench.sweeps.question import expand_tuning, load_question
from grubench.sweeps.search import POSITION, LogRangeByChoice, Search, ValueByChoice, current_trials

TIER = "unit"
WHAT_MATTERS = Path(__file__).resolve().parents[1] / "experiments" / "what_matters.py"

RANGES = {"adam": (1e-4, 3e-2), "sgd": (1e-2, 3.0)}
SPACE = {
    "optim.lr": LogRangeByChoice("optim.name", RANGES),
    "model.hidden_size": CategoricalDistribution([4, 8]),
    "optim.name": CategoricalDistribution(["adam", "sgd"]),
    "optim.momentum": ValueByChoice("optim.name", {"adam": 0.0, "sgd": 0.9}),
}
BY_ARM = {"gru": {"model.activation": CategoricalDistribution(["tanh", "relu"]),
                  "optim.grad_clip": FloatDistribution(0.0, 5.0)}}  # fmt: skip


def _search(**kwargs):
    return Search(space=SPACE, trials={"quick": 40}, space_by_arm=BY_ARM, **kwargs)


def test_the_mapped_lr_lies_in_each_optimizers_range():
    search = _search()
    assert list(search.space_for("lstm")) == [
        "optim.lr" + POSITION,
        "model.hidden_size",
        "optim.name",
    ]
    seen = set()
    for k in range(40):
        drawn, settings = search.params("lstm", k), search.settings("lstm", k)
        name, u = drawn["optim.name"], drawn["optim.lr" + POSITION]
        lo, hi = RANGES[name]
        assert 0.0 <= u <= 1.0 and lo <= settings["optim.lr"] <= hi
        assert settings["optim.lr"] == pytest.approx(lo * (hi / lo) ** u)
        assert settings["optim.momentum"] == {"adam": 0.0, "sgd": 0.9}[name]
        assert settings["optim.name"] == name and "optim.lr" not in drawn
        seen.add(name)
    assert seen == {"adam", "sgd"}
    point = search.points("lstm", "quick")["trial=3"]
    assert point["optim"]["lr"] == search.settings("lstm", 3)["optim.lr"]
    assert point["optim"]["momentum"] in (0.0, 0.9)


def test_the_draw_depends_only_on_seed_and_trial():
    search = _search()
    last_first = _search().settings("gru", 39)  # drawn first here, last there
    drawn = [search.settings("gru", k) for k in range(40)]
    assert last_first == drawn[39]
    assert _search(seed=1).params("gru", 0) != search.params("gru", 0)
    for k in range(40):  # arms share the shared dimensions' draws, the lr position included
        lstm = search.settings("lstm", k)
        assert lstm == {key: drawn[k][key] for key in lstm}
        assert "model.activation" in drawn[k] and "model.activation" not in lstm


def test_ranges_by_choice_are_checked():
    assert _search().check(["gru", "lstm"]) == []
    missing = Search(space={**SPACE, "optim.lr": LogRangeByChoice("optim.name", {"adam": (1e-4, 1e-2)})},
                     trials={"quick": 4})  # fmt: skip
    assert missing.check(["a"]) == ["search space 'optim.lr': no value for optim.name='sgd'"]
    backwards = Search(space={**SPACE, "optim.lr": LogRangeByChoice("optim.name", {"adam": (1e-2, 1e-4), "sgd": (0.0, 1.0)})},
                       trials={"quick": 4})  # fmt: skip
    assert len(backwards.check(["a"])) == 2
    orphan = Search(space={"optim.lr": LogRangeByChoice("optim.name", RANGES)}, trials={"quick": 4})
    assert "not a choice in the space" in orphan.check(["a"])[0]


def test_what_matters_draws_each_optimizers_range():
    question = load_question(WHAT_MATTERS)
    assert question.check() == []
    ranges = question.search.space["optim.lr"].ranges
    children = expand_tuning(question, "quick")
    assert len(children) == 2 * 2 * question.search.trials["quick"]
    for child in children:
        optim = child.config.optim
        lo, hi = ranges[optim.name]
        assert lo <= optim.lr <= hi
        assert optim.momentum == (0.9 if optim.name == "sgd" else 0.0)


def test_only_the_current_settings_trials_count():
    class Run:  # the attribute current_trials reads of an MLflow run
        def __init__(self, run_id):
            self.info = type("Info", (), {"run_id": run_id})()

    question = load_question(WHAT_MATTERS)
    tuning = [c for c in expand_tuning(question, "quick") if c.arm == "lstm"][:3]
    finished = {(c.key, c.config_hash()): Run(f"new{i}") for i, c in enumerate(tuning[:2])}
    study = optuna.create_study(direction="maximize")
    for run_id in ("old0", "new0", "new1", "old1"):  # an earlier protocol's runs, same keys
        study.add_trial(optuna.trial.create_trial(
            params={"x": 0.5}, distributions={"x": FloatDistribution(0, 1)}, value=1.0,
            user_attrs={"mlflow_run_id": run_id}))  # fmt: skip
    kept = current_trials(study, tuning, finished)
    assert sorted(t.user_attrs["mlflow_run_id"] for t in kept) == ["new0", "new1"]
