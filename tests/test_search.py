"""The random search (grubench.sweeps.search): trials seeded one by one, a tiny study through the real
runner that is killed and re-run and ends with every trial once in Optuna and in MLflow, and
fANOVA's importances on trials whose value depends on one knob only."""

import math
import os
import signal
import subprocess
import sys
import textwrap
import time

import optuna
import pytest
from mlflow.tracking import MlflowClient
from optuna.distributions import CategoricalDistribution, FloatDistribution

from grubench.answers.importance import importance
from grubench.sweeps.children import KEY, STAGE
from grubench.sweeps.question import expand_tuning, load_question
from grubench.sweeps.search import Search, storage_url, study_name

TIER = "integration"

SPACE = {
    "optim.lr": FloatDistribution(1e-3, 3e-2, log=True),
    "model.hidden_size": CategoricalDistribution([4, 8]),
}


@pytest.mark.unit
def test_trial_k_is_the_same_whatever_was_drawn_before():
    search = Search(space=SPACE, trials={"quick": 6},
                    space_by_arm={"b": {"model.activation": CategoricalDistribution(["tanh", "relu"])}})  # fmt: skip
    fresh = Search(space=SPACE, trials={"quick": 6}, space_by_arm=search.space_by_arm)
    assert fresh.params("a", 5) == search.params("a", 5)  # drawn first here, last there
    drawn = [search.params("a", k) for k in range(6)]
    assert len({tuple(sorted(p.items())) for p in drawn}) == 6
    assert all(1e-3 <= p["optim.lr"] <= 3e-2 and p["model.hidden_size"] in (4, 8) for p in drawn)
    for k in range(6):  # common random numbers: the shared knobs agree between arms
        b = search.params("b", k)
        assert {key: b[key] for key in SPACE} == drawn[k] and "model.activation" in b
    assert Search(space=SPACE, trials={"quick": 6}, seed=1).params("a", 0) != drawn[0]
    points = search.points("a", "quick")
    assert list(points) == [f"trial={k}" for k in range(6)]
    assert points["trial=2"]["optim"]["lr"] == drawn[2]["optim.lr"]


EXPERIMENT_FILE = """
from optuna.distributions import CategoricalDistribution, FloatDistribution
from grubench.sweeps.question import Question
from grubench.sweeps.search import Search

QUESTION = Question(
    name="tiny_search",
    text="a tiny search",
    arms={"gru": {"model": {"name": "torch_gru"}}},
    conditions={"adding T=8": {"task": {"name": "adding", "seq_len": 8}}},
    search=Search(
        space={
            "optim.lr": FloatDistribution(1e-3, 3e-2, log=True),
            "model.hidden_size": CategoricalDistribution([4, 8]),
        },
        trials={"quick": 4, "full": 4},
    ),
    seeds={"quick": [0], "full": [0]},
    budgets={"quick": {
        "task": {"batch_size": 8, "epoch_size": 20, "val_size": 16, "test_size": 16},
        "trainer": {"max_steps": 400, "enable_progress_bar": False},
    }},
)
"""


def _finished_tuning_runs(client, name):
    experiment = client.get_experiment_by_name(name)
    if experiment is None:
        return []
    runs = client.search_runs([experiment.experiment_id], f"tags.`{STAGE}` = 'tune'")
    return [r for r in runs if r.info.status == "FINISHED"]


@pytest.mark.system
@pytest.mark.slow  # about a minute on 2 free cores (13 min under a load of 10)
def test_a_killed_study_reruns_to_every_trial_once(tmp_path):
    path = tmp_path / "tiny_search.py"
    path.write_text(textwrap.dedent(EXPERIMENT_FILE))
    uri = f"sqlite:///{tmp_path / 'store' / 'mlflow.db'}"
    client = MlflowClient(uri)
    command = [sys.executable, "-m", "grubench", "run", str(path), "--workers", "1",
               "--tracking_uri", uri]  # fmt: skip
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    first = subprocess.Popen(command, cwd=tmp_path, env=env, start_new_session=True,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    deadline = time.monotonic() + 300
    while len(_finished_tuning_runs(client, "tiny_search")) < 2:  # killed mid-search
        assert first.poll() is None and time.monotonic() < deadline, "the sweep ended early"
        time.sleep(0.5)
    os.killpg(first.pid, signal.SIGKILL)
    first.wait()
    assert len(_finished_tuning_runs(client, "tiny_search")) < 4  # trials were left to run

    second = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True,
                            timeout=600)  # fmt: skip
    assert second.returncode == 0, second.stderr[-2000:]
    assert "Which knob matters most" in second.stdout

    experiment = load_question(path)
    keys = [c.key for c in expand_tuning(experiment, "quick")]
    runs = _finished_tuning_runs(client, "tiny_search")
    by_key = {r.data.tags[KEY]: r for r in runs}
    assert sorted(r.data.tags[KEY] for r in runs) == sorted(keys)  # each once
    storage = storage_url(uri)
    assert storage == f"sqlite:///{tmp_path / 'store' / 'optuna.db'}"
    study = optuna.load_study(study_name=study_name(experiment, "quick", "gru", "adding T=8"),
                              storage=storage)  # fmt: skip
    trials = study.trials
    assert sorted(t.user_attrs["child"] for t in trials) == sorted(keys)  # each once
    assert sorted(t.user_attrs["trial"] for t in trials) == [0, 1, 2, 3]
    for trial in trials:
        run = by_key[trial.user_attrs["child"]]
        assert trial.user_attrs["mlflow_run_id"] == run.info.run_id
        assert trial.value == pytest.approx(max(0.0, run.data.metrics["final/val/score"]))
        assert trial.params == experiment.search.params("gru", trial.user_attrs["trial"])

    again = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True,
                           timeout=300)  # fmt: skip
    assert again.returncode == 0 and "0 to run" in again.stdout
    assert len(optuna.load_study(study_name=study.study_name, storage=storage).trials) == 4


def test_fanova_finds_the_knob_that_matters():
    space = {
        "lr": FloatDistribution(1e-4, 1e-1, log=True),
        "hidden": CategoricalDistribution([32, 64, 128]),
        "clip": FloatDistribution(0.0, 5.0),
    }
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    for _ in range(40):  # the value depends on the learning rate only, plus a little noise
        trial = study.ask(space)
        noise = 0.01 * math.sin(trial.number)
        study.tell(trial, -((math.log10(trial.params["lr"]) + 2.5) ** 2) + noise)
    result = importance(study.trials, evaluator_seeds=range(3), resamples=10)
    assert result.ranking()[0] == "lr" and result.mean["lr"] > 0.8
    assert result.trials == 40 and sum(result.mean.values()) == pytest.approx(1.0, abs=1e-6)
    for name in space:
        low, high = result.seed_range[name]
        assert low <= result.mean[name] <= high
        b_low, b_high = result.bootstrap[name]
        assert 0.0 <= b_low <= b_high <= 1.0
    assert result.bootstrap["lr"][0] > 0.3  # resampled trials still rank lr well above...
    assert all(result.mean[name] < 0.1 for name in ("hidden", "clip"))  # ...the others


def test_the_greff_comparison_is_computed_from_the_ranks():
    from grubench.answers.importance import Importance, greff_comparison

    def imp(**mean):
        return Importance(10, mean, {k: (v, v) for k, v in mean.items()},
                          {k: (v, v) for k, v in mean.items()})  # fmt: skip

    text = greff_comparison({
        ("gru", "adding"): imp(**{"optim.lr": 0.2, "optim.name": 0.7, "model.init": 0.1}),
        ("lstm", "adding"): imp(**{"optim.lr": 0.6, "optim.name": 0.3, "model.init": 0.1}),
    })  # fmt: skip
    assert "gru, adding: 2nd of 3 (0.20); lstm, adding: 1st of 3 (0.60)." in text
    assert text.startswith("Against Greff et al. 2017")
