"""The sweep runner and the report, through the real runner and a real MLflow store."""

import math

import pytest

import grubench.sweeps.children as children_module
from grubench.answers import stats
from grubench.answers.publish import write_report
from grubench.answers.report import build_report, to_markdown
from grubench.sweeps.children import sweep_runs
from grubench.sweeps.question import (
    Claim,
    Question,
    Tip,
    expand,
    expand_tuning,
    grid,
    load_question,
)
from grubench.sweeps.runner import run_sweep
from grubench.training.config import ConfigError
from tests.faults import WorkerKiller

TIER = "integration"

TINY_BASE = {
    "model": {"hidden_size": 8},
    "task": {"seq_len": 10, "batch_size": 16, "epoch_size": 3, "val_size": 32, "test_size": 32},
    "trainer": {"max_steps": 6, "enable_progress_bar": False},
}


def tiny_experiment(**kwargs) -> Question:
    options = dict(
        name="tiny",
        text="Does a tiny GRU beat a tiny RNN?",
        arms={"gru": {"model": {"name": "torch_gru"}}, "rnn": {"model": {"name": "rnn"}}},
        base=TINY_BASE,
        seeds={"quick": [0, 1], "full": [0, 1, 2]},
        tuning_seeds={"quick": [100], "full": [100]},
    )
    return Question(**{**options, **kwargs})


def children_in_store(client, name="tiny"):
    experiment = client.get_experiment_by_name(name)
    return sweep_runs(client, experiment.experiment_id, f"{name}:quick")


def test_grid_and_expand():
    conditions = grid(
        task={"adding": {"task": {"name": "adding"}}, "parity": {"task": {"name": "parity"}}},
        length={"T=10": {"task": {"seq_len": 10}}, "T=20": {"task": {"seq_len": 20}}},
    )
    assert list(conditions) == ["adding, T=10", "adding, T=20", "parity, T=10", "parity, T=20"]
    assert conditions["parity, T=20"] == {"task": {"name": "parity", "seq_len": 20}}
    experiment = tiny_experiment(budgets={"quick": {"trainer": {"max_steps": 3}}})
    children = expand(experiment, "quick", {"trainer": {"accelerator": "cpu"}})
    assert [c.key for c in children] == [
        "gru | seed=0",
        "gru | seed=1",
        "rnn | seed=0",
        "rnn | seed=1",
    ]
    assert children[0].config.trainer == {
        "max_steps": 3,
        "enable_progress_bar": False,
        "accelerator": "cpu",
    }
    assert children[0].config.model.hidden_size == 8 and children[1].config.seed == 1
    assert children[0].config_hash() != children[1].config_hash()
    with pytest.raises(
        ValueError, match="tiny: bad: unknown option model.hiden_size; valid: activation, "
    ):
        expand(tiny_experiment(arms={"bad": {"model": {"hiden_size": 3}}}), "quick")
    with pytest.raises(ValueError, match="unknown profile 'fast'"):
        expand(experiment, "fast")


def test_sweep_runs_every_child_once_and_resumes(tracking_uri, client):
    experiment = tiny_experiment()
    lines = []
    first = run_sweep(experiment, "quick", tracking_uri, echo=lines.append)
    assert (first.total, first.ran, first.skipped, first.failed) == (4, 4, 0, [])
    assert any("[4/4] rnn | seed=1: " in line and "left)" in line for line in lines)
    runs = children_in_store(client)
    assert sorted(r.data.tags["grubench.child_key"] for r in runs) == [
        "gru | seed=0",
        "gru | seed=1",
        "rnn | seed=0",
        "rnn | seed=1",
    ]
    assert {r.data.tags["mlflow.parentRunId"] for r in runs} == {first.parent_run_id}
    assert client.get_run(first.parent_run_id).info.status == "FINISHED"
    again = run_sweep(experiment, "quick", tracking_uri, echo=lines.append)
    assert (again.ran, again.skipped, again.parent_run_id) == (0, 4, None)
    assert len(children_in_store(client)) == 4


def test_interrupted_sweep_resumes_without_duplicates(tracking_uri, client, monkeypatch):
    experiment = tiny_experiment()
    real_fit, calls = children_module.run_fit, []

    def interrupt_third(config, **kwargs):
        calls.append(config.seed)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real_fit(config, **kwargs)

    monkeypatch.setattr(children_module, "run_fit", interrupt_third)
    with pytest.raises(KeyboardInterrupt):
        run_sweep(experiment, "quick", tracking_uri, echo=lambda _: None)
    parents = sweep_runs(
        client, client.get_experiment_by_name("tiny").experiment_id, "tiny:quick", "parent"
    )
    assert [p.info.status for p in parents] == ["KILLED"]
    monkeypatch.setattr(children_module, "run_fit", real_fit)
    resumed = run_sweep(experiment, "quick", tracking_uri, echo=lambda _: None)
    assert (resumed.skipped, resumed.ran) == (2, 2)
    runs = children_in_store(client)
    keys = [r.data.tags["grubench.child_key"] for r in runs]
    assert sorted(keys) == sorted(set(keys)) and len(keys) == 4
    assert all(r.info.status == "FINISHED" for r in runs)


def test_a_child_left_running_is_continued_or_rerun_once(tracking_uri, client):
    """A run left RUNNING (its process killed -9) continues as the same run from its
    checkpoint; without a checkpoint, or with one cut short, it is superseded by a new run
    (with a note). Either way: once."""
    from grubench.store.tracking import checkpoint_dir

    experiment = tiny_experiment(arms={"gru": {"model": {"name": "torch_gru"}}},
                                 seeds={"quick": [0, 1, 2], "full": [0]})  # fmt: skip
    run_sweep(experiment, "quick", tracking_uri, echo=lambda _: None)
    stale, no_checkpoint, truncated = sorted(
        children_in_store(client), key=lambda r: r.data.tags["grubench.seed"]
    )
    for run in (stale, no_checkpoint, truncated):
        client.set_terminated(run.info.run_id, "RUNNING")  # as if its process was killed -9
    (checkpoint_dir(tracking_uri, no_checkpoint.info.run_id) / "last.ckpt").unlink()
    cut = checkpoint_dir(tracking_uri, truncated.info.run_id) / "last.ckpt"
    cut.write_bytes(cut.read_bytes()[:1000])  # a save killed half-way, before saves were atomic
    lines = []
    result = run_sweep(experiment, "quick", tracking_uri, echo=lines.append)
    assert (result.ran, result.resumed, result.skipped) == (3, 1, 0)
    assert client.get_run(stale.info.run_id).info.status == "FINISHED"  # the same run
    for old in (no_checkpoint, truncated):
        assert client.get_run(old.info.run_id).info.status == "KILLED"
        assert client.get_run(old.info.run_id).data.tags["grubench.superseded"] == "true"
    assert (
        f"[3/3] gru | seed=2 (run {truncated.info.run_id}'s checkpoint cannot be read: "
        "starting afresh) ..." in lines
    )
    runs = children_in_store(client)
    assert len(runs) == 3 and all(r.info.status == "FINISHED" for r in runs)
    assert stale.info.run_id in {r.info.run_id for r in runs}


def test_diverged_child_is_counted_and_the_sweep_goes_on(tracking_uri, client):
    experiment = tiny_experiment(
        arms={
            "exploding": {
                "model": {"name": "rnn", "activation": "relu"},
                "optim": {"name": "sgd", "lr": 1e6, "momentum": 0.0},
            },
            "fine": {"model": {"name": "torch_gru"}},
        }
    )
    result = run_sweep(experiment, "quick", tracking_uri, echo=lambda _: None)
    assert result.ran == 4 and not result.failed
    runs = {r.data.tags["grubench.child_key"]: r for r in children_in_store(client)}
    for seed in (0, 1):  # recorded as diverged, at the step it happened, and not crashed
        run = runs[f"exploding | seed={seed}"]
        assert run.info.status == "FINISHED" and run.data.tags["grubench.outcome"] == "diverged"
        assert 0 <= int(run.data.tags["grubench.diverged_step"]) < 6
        run = runs[f"fine | seed={seed}"]  # the children after it finish normally
        assert run.info.status == "FINISHED" and run.data.tags["grubench.outcome"] != "diverged"
    report = build_report(experiment, "quick", tracking_uri)
    cells = {c.arm: c for c in report.cells}
    # a diverged run is counted with the trivial predictor's score (0), not dropped
    assert cells["exploding"].diverged == 2 and cells["exploding"].scores == [0.0, 0.0]
    assert cells["fine"].diverged == 0 and len(cells["fine"].scores) == 2
    assert "too few seeds (2 < 5" in report.verdict


def test_invalid_child_stops_the_sweep_before_any_run(tracking_uri, tmp_path):
    experiment = tiny_experiment(arms={"bad": {"model": {"name": "gruu"}}})
    with pytest.raises(ConfigError, match="bad | seed=0: model.name: unknown model 'gruu'"):
        run_sweep(experiment, "quick", tracking_uri)
    assert not (tmp_path / "store").exists()


def tuned_experiment(**kwargs) -> Question:
    return tiny_experiment(tune={"optim.lr": [1e-3, 3e-2]}, **kwargs)


def test_tuning_selects_on_validation_then_evaluates_fresh_seeds(tracking_uri, client):
    from grubench.store.schema import VAL_SCORE

    experiment = tuned_experiment()
    lines = []
    result = run_sweep(experiment, "quick", tracking_uri, echo=lines.append)
    # 2 arms x 2 points x 1 tuning seed, then 2 arms x 2 evaluation seeds
    assert (result.total, result.ran, result.failed) == (8, 8, [])
    runs = children_in_store(client)
    stages = sorted((r.data.tags["grubench.stage"], r.data.tags["grubench.arm"],
                     r.data.tags["grubench.point"], int(r.data.tags["grubench.seed"]))
                    for r in runs)  # fmt: skip
    assert [s for s in stages if s[0] == "tune"] == [
        ("tune", "gru", "lr=0.001", 100), ("tune", "gru", "lr=0.03", 100),
        ("tune", "rnn", "lr=0.001", 100), ("tune", "rnn", "lr=0.03", 100),
    ]  # fmt: skip
    # the kept point is the one with the higher validation score (floored at 0; a tie goes
    # to the point without divergence, then to the first), read back by hand
    for arm in ("gru", "rnn"):
        tuning = {
            r.data.tags["grubench.point"]: (
                0.0 if r.data.tags["grubench.outcome"] == "diverged"
                else max(0.0, r.data.metrics[VAL_SCORE]),
                r.data.tags["grubench.outcome"] != "diverged",
            )
            for r in runs
            if r.data.tags["grubench.stage"] == "tune" and r.data.tags["grubench.arm"] == arm
        }  # fmt: skip
        best = max(["lr=0.001", "lr=0.03"], key=tuning.get)
        assert result.selected[(arm, "")] == best
        evaluation = [r for r in runs if r.data.tags["grubench.stage"] == "eval"
                      and r.data.tags["grubench.arm"] == arm]  # fmt: skip
        assert sorted(int(r.data.tags["grubench.seed"]) for r in evaluation) == [0, 1]
        assert {r.data.params["optim.lr"] for r in evaluation} == {best.removeprefix("lr=")}
        assert all("test/score" in r.data.metrics for r in evaluation)
    assert any(line.startswith("selected for gru: lr=") for line in lines)
    again = run_sweep(experiment, "quick", tracking_uri, echo=lambda _: None)
    assert (again.ran, again.skipped) == (0, 8)
    report = build_report(experiment, "quick", tracking_uri)
    assert report.missing == [] and {c.selected for c in report.cells} <= {"lr=0.001", "lr=0.03"}
    table = to_markdown(report)
    assert "Tuning (mean validation score over 1 tuning seed(s) per point; **kept**):" in table


def test_unequal_tuning_budgets_and_overlapping_seeds_are_refused():
    unequal = tiny_experiment(tune_by_arm={"gru": {"optim.lr": [1e-3, 1e-2]},
                                           "rnn": {"optim.lr": [1e-3]}})  # fmt: skip
    with pytest.raises(ValueError, match="unequal tuning budgets"):
        expand_tuning(unequal, "quick")
    overlap = tuned_experiment(tuning_seeds={"quick": [0], "full": [100]})
    with pytest.raises(ValueError, match="quick tuning and evaluation seeds overlap: \\[0\\]"):
        expand_tuning(overlap, "quick")
    with pytest.raises(ValueError, match="tip claim names unknown arm 'lstm'"):
        expand(tiny_experiment(tips=[Tip("?", (Claim("lstm", "gru"),))]), "quick")
    with pytest.raises(ValueError, match="tip claim names unknown condition\\(s\\) \\['T=9'\\]"):
        expand(tiny_experiment(tips=[Tip("?", (Claim("gru", "rnn", conditions=("T=9",)),))]),
               "quick")  # fmt: skip
    with pytest.raises(ValueError, match="has points whose labels coincide"):
        expand_tuning(tiny_experiment(tune={"optim.lr": [1e-3, 1.0000001e-3]}), "quick")


def _fake_child(client, experiment_id, experiment, child, score, steps=None, diverged=False):
    from grubench.store.schema import ARM, CONDITION, HASH, KEY, POINT, ROLE, STAGE, SWEEP

    tags = {
        ROLE: "child", SWEEP: f"{experiment.name}:quick", KEY: child.key,
        HASH: child.config_hash(), STAGE: child.stage, ARM: child.arm,
        CONDITION: child.condition, POINT: child.point,
        "grubench.objective": "mse", "grubench.objective_mode": "min",
        "grubench.outcome": "diverged" if diverged else ("solved" if steps else "unsolved"),
    }  # fmt: skip
    run = client.create_run(experiment_id, tags=tags)
    metrics = {"test/score": score, "final/val/score": score, "param_count": 100,
               "time_per_step_ms": 2.0, "test/mse": (1 - score) / 6}  # fmt: skip
    if steps is not None:
        metrics["steps_to_solve"] = steps
    for key, v in metrics.items():
        client.log_metric(run.info.run_id, key, v, step=10)
    client.log_metric(run.info.run_id, "val/mse", (1 - score) / 6, step=10)
    client.set_terminated(run.info.run_id, "FINISHED")


def test_report_statistics_and_tip_labels_by_hand(tracking_uri, client, tmp_path):
    seeds = {"quick": [0, 1, 2, 3, 4], "full": [0]}
    tips = [Tip("Gates help.", (Claim("gru", "rnn"), Claim("rnn", "gru", "steps_to_solve")))]
    experiment = tiny_experiment(seeds=seeds, tips=tips)
    experiment_id = client.create_experiment("tiny")
    gru = [0.90, 0.95, 0.97, 0.99, 0.10]
    rnn = [0.01, 0.02, 0.03, 0.50, 0.0]
    for child in expand(experiment, "quick"):
        if child.arm == "gru":
            _fake_child(client, experiment_id, experiment, child, gru[child.seed],
                        steps=100 * (child.seed + 1) if child.seed < 4 else None)  # fmt: skip
        else:
            _fake_child(client, experiment_id, experiment, child, rnn[child.seed],
                        diverged=child.seed == 4)  # fmt: skip
    report = build_report(experiment, "quick", tracking_uri)
    cells = {c.arm: c for c in report.cells}
    assert cells["gru"].scores == gru and cells["rnn"].scores == rnn
    assert cells["gru"].solved == 4 and cells["rnn"].diverged == 1
    assert cells["gru"].steps == [100, 200, 300, 400, math.inf]
    # P(gru > rnn): 25 pairs; gru's 0.10 loses to rnn's 0.50 only; 24/25
    (measure, a, b, p, fewest), _ = report.comparisons
    assert (measure, a, b, fewest) == ("score", "gru", "rnn", 5)
    assert p.estimate == pytest.approx(24 / 25) and p.low > 0.5
    assert report.verdict.splitlines()[0].startswith("- test score: **gru better than rnn**")
    ((tip, results),) = report.tips
    assert [r.label for r in results] == ["supported", "contradicted"]
    table = to_markdown(report)
    iqm = stats.bootstrap_interval(gru)
    assert f"| gru | – | – | {iqm} (5) | mse " in table
    assert "| 4/5 [0.38, 0.96] | 300 |" in table  # Wilson; median steps with one never
    assert table.count("| torch nn.GRU |") == 1 and table.count("| grubench engine |") == 1
    assert '- "Gates help." *supported*: gru beats rnn on test score, P = 0.960' in table
    stale = tmp_path / "results" / "tiny-quick-vs-seq_len.png"  # a plot no report makes now
    stale.parent.mkdir()
    stale.write_bytes(b"old")
    _, paths = write_report(experiment, "quick", tmp_path / "results", tracking_uri)
    assert [p.name for p in paths] == ["tiny-quick.md", "tiny-quick-curves.png",
                                       "tiny-quick-intervals.png"]  # fmt: skip
    assert all(p.stat().st_size > 0 for p in paths) and not stale.exists()


def test_the_report_is_the_same_text_twice(tracking_uri, client):
    """Two builds on the same runs write the same Markdown, byte for byte: the intervals, the
    tests, the detectable effects' simulations and the bootstrap are all seeded or exact."""
    conditions = {"T=10": {"task": {"seq_len": 10}}, "T=12": {"task": {"seq_len": 12}}}
    seeds = {"quick": [0, 1, 2, 3, 4], "full": [0]}
    experiment = tiny_experiment(seeds=seeds, conditions=conditions,
                                 tips=[Tip("Gates help.", (Claim("rnn", "gru"),))])  # fmt: skip
    experiment_id = client.create_experiment("tiny")
    scores = {"gru": [0.9, 0.95, 0.97, 0.99, 0.1], "rnn": [0.01, 0.02, 0.03, 0.5, 0.0]}
    for child in expand(experiment, "quick"):
        arm = "gru" if child.condition == "T=12" else child.arm  # T=12: the same scores
        _fake_child(client, experiment_id, experiment, child, scores[arm][4 - child.seed],
                    steps=100 * (child.seed + 1) if child.arm == "gru" else None)  # fmt: skip
    first = to_markdown(build_report(experiment, "quick", tracking_uri))
    assert first == to_markdown(build_report(experiment, "quick", tracking_uri))
    assert "- test score, T=10: **gru better than rnn**, P(gru > rnn) = 0.960" in first
    assert "- test score, T=12: gru vs rnn: not detected; would detect P ≥ " in first
    assert "- test score, pooled over 2 conditions: gru vs rnn: " in first
    assert "In one sentence: On test score, gru beats rnn at T=10 (P = 0.96), " in first


@pytest.mark.unit
def test_load_experiment_errors(tmp_path):
    with pytest.raises(ValueError, match="no experiment file"):
        load_question(tmp_path / "missing.py")
    (tmp_path / "empty.py").write_text("X = 1\n")
    with pytest.raises(ValueError, match="does not define QUESTION"):
        load_question(tmp_path / "empty.py")


def test_report_plots_gradient_flow_when_runs_probe_it(tracking_uri, tmp_path):
    experiment = tiny_experiment(
        base={**TINY_BASE, "diagnostics_every_n_steps": 3}, seeds={"quick": [0], "full": [0]}
    )
    run_sweep(experiment, "quick", tracking_uri, echo=lambda _: None)
    _, paths = write_report(experiment, "quick", tmp_path / "results", tracking_uri)
    assert [p.name for p in paths] == [
        "tiny-quick.md",
        "tiny-quick-curves.png",
        "tiny-quick-intervals.png",
        "tiny-quick-grad-flow.png",
    ]


def test_conditions_with_different_metrics_in_one_report(tracking_uri):
    experiment = tiny_experiment(
        conditions={"adding": {"task": {"name": "adding"}}, "parity": {"task": {"name": "parity"}}}
    )
    run_sweep(experiment, "quick", tracking_uri, echo=lambda _: None)
    report = build_report(experiment, "quick", tracking_uri)
    assert {(c.arm, c.condition, c.metric) for c in report.cells} == {
        ("gru", "adding", "mse"), ("gru", "parity", "acc"),
        ("rnn", "adding", "mse"), ("rnn", "parity", "acc"),
    }  # fmt: skip
    table = to_markdown(report)
    assert "| gru | adding | – |" in table and "| parity | – |" in table
    assert "| acc " in table and "| mse " in table


def test_report_counts_the_runs_of_the_files_settings_first(tracking_uri, client):
    experiment = tiny_experiment()
    run_sweep(experiment, "quick", tracking_uri, {"trainer": {"max_steps": 3}}, echo=print)
    report = build_report(experiment, "quick", tracking_uri)
    # only runs with other settings (a command-line Trainer option): counted, with a note
    assert report.other_settings == 4 and sum(c.runs for c in report.cells) == 4
    assert "4 children are counted with a run whose settings differ" in to_markdown(report)
    result = run_sweep(experiment, "quick", tracking_uri, echo=lambda _: None)
    assert result.ran == 4  # the file's own settings are a different child run
    report = build_report(experiment, "quick", tracking_uri)
    newest = {r.info.run_id for r in children_in_store(client)
              if r.data.tags["mlflow.parentRunId"] == result.parent_run_id}  # fmt: skip
    assert report.other_settings == 0
    assert {i for c in report.cells for i in c.run_ids} == newest


def test_workers_fit_each_child_once_with_the_metrics_of_one_process(
    tracking_uri, client, tmp_path
):
    experiment = tuned_experiment()
    lines = []
    result = run_sweep(experiment, "quick", tracking_uri, echo=lines.append, workers=2)
    assert (result.ran, result.failed) == (8, [])
    assert sum("left)" in line for line in lines) == 8  # a progress line per finished child
    parallel = {r.data.tags["grubench.child_key"]: r for r in children_in_store(client)}
    assert len(parallel) == 8 and all(r.info.status == "FINISHED" for r in parallel.values())
    # the same sweep in one process, into another store: the same numbers
    other = f"sqlite:///{tmp_path / 'one' / 'mlflow.db'}"
    run_sweep(experiment, "quick", other, echo=lambda _: None)
    from mlflow.tracking import MlflowClient

    single = {r.data.tags["grubench.child_key"]: r for r in children_in_store(MlflowClient(other))}
    assert single.keys() == parallel.keys()
    for key, run in single.items():
        for metric in ("final/val/score", "final/val/mse", "steps"):
            assert parallel[key].data.metrics[metric] == run.data.metrics[metric], (key, metric)
    again = run_sweep(experiment, "quick", tracking_uri, echo=lambda _: None, workers=2)
    assert (again.ran, again.skipped) == (0, 8)
    with pytest.raises(ConfigError, match="workers 0: need a whole number >= 1 or 'auto'"):
        run_sweep(experiment, "quick", tracking_uri, workers=0)


PARALLEL = """
from grubench.sweeps.question import Question

QUESTION = Question(
    name="parallel", text="?", arms={"gru": {"model": {"name": "torch_gru"}}},
    seeds={"quick": [0, 1, 2], "full": [0]},
    base={"model": {"hidden_size": 8},
          "task": {"seq_len": 10, "batch_size": 16, "epoch_size": 10, "val_size": 32,
                   "test_size": 32},
          "trainer": {"max_steps": 1200, "enable_progress_bar": False}},
)
"""


@pytest.mark.system
@pytest.mark.slow  # ~80 s: trains until two workers fit at once, then stops and resumes
def test_sigterm_to_a_parallel_sweep_stops_every_worker_then_rerun_continues(
    tracking_uri, client, tmp_path
):
    import os
    import signal
    import subprocess
    import sys
    import time

    path = tmp_path / "parallel.py"
    path.write_text(PARALLEL)
    command = [sys.executable, "-m", "grubench", "run", str(path), "--workers", "2",
               "--tracking_uri", tracking_uri]  # fmt: skip
    sweep = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline, running = time.monotonic() + 180, []
    while len(running) < 2 and time.monotonic() < deadline:
        time.sleep(0.5)
        experiment = client.get_experiment_by_name("parallel")
        if experiment is not None:
            runs = sweep_runs(client, experiment.experiment_id, "parallel:quick")
            running = [r for r in runs if r.info.status == "RUNNING"
                       and client.get_metric_history(r.info.run_id, "train/loss")]  # fmt: skip
    assert len(running) == 2, "two children never trained at once"
    workers = {int(r.data.tags["grubench.pid"]) for r in running}
    sweep.send_signal(signal.SIGTERM)
    output = sweep.communicate(timeout=120)[0]
    assert sweep.returncode == 143, output
    for pid in workers:  # every worker has ended
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
    experiment_id = client.get_experiment_by_name("parallel").experiment_id
    stopped = {r.info.run_id: r.info.status for r in sweep_runs(client, experiment_id,
                                                                 "parallel:quick")}  # fmt: skip
    assert {stopped[r.info.run_id] for r in running} == {"KILLED"}
    # the re-run continues the two stopped runs and fits the third child: each once
    result = run_sweep(load_question(path), "quick", tracking_uri, echo=lambda _: None,
                       workers=2)  # fmt: skip
    assert result.resumed == 2 and not result.failed
    runs = sweep_runs(client, experiment_id, "parallel:quick")
    assert sorted(r.data.tags["grubench.child_key"] for r in runs) == [
        "gru | seed=0", "gru | seed=1", "gru | seed=2"]  # fmt: skip
    assert all(r.info.status == "FINISHED" for r in runs)
    assert {r.info.run_id for r in running} <= {r.info.run_id for r in runs}


@pytest.mark.slow  # ~70 s; tests/test_ray.py kills a Ray worker the same way
def test_a_worker_killed_minus_9_is_retried_and_its_child_continues_its_run(
    tracking_uri, client, tmp_path
):

    path = tmp_path / "parallel.py"
    path.write_text(PARALLEL)
    experiment = load_question(path)
    killer = WorkerKiller(client, "parallel", timeout=180)
    killer.start()
    result = run_sweep(experiment, "quick", tracking_uri, echo=lambda _: None, workers=2)
    killer.join()
    killed = killer.killed
    # the pool started afresh and the children it had in hand went again, from checkpoints
    assert killed and not result.failed and result.resumed >= 1
    runs = sweep_runs(client, client.get_experiment_by_name("parallel").experiment_id,
                      "parallel:quick")  # fmt: skip
    assert sorted(r.data.tags["grubench.child_key"] for r in runs) == [
        "gru | seed=0", "gru | seed=1", "gru | seed=2"]  # fmt: skip
    assert all(r.info.status == "FINISHED" for r in runs)
    assert killed[0] in {r.info.run_id for r in runs}  # the killed run itself, continued
    steps = [m.step for m in client.get_metric_history(killed[0], "train/loss")]
    assert steps == sorted(set(steps))  # each step logged once


@pytest.mark.system
def test_two_drivers_started_apart_share_the_sweep_each_child_once(tracking_uri, client, tmp_path):
    import subprocess
    import sys
    import time

    path = tmp_path / "tiny.py"
    path.write_text(TWO_DRIVERS)
    command = [sys.executable, "-m", "grubench", "run", str(path), "--tracking_uri",
               tracking_uri]  # fmt: skip
    first = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    time.sleep(6)  # the first one is fitting by now
    second = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    outputs = [p.communicate(timeout=400)[0] for p in (first, second)]
    assert [p.returncode for p in (first, second)] == [0, 0], outputs
    runs = children_in_store(client, "drivers")
    keys = [r.data.tags["grubench.child_key"] for r in runs]
    assert len(keys) == len(set(keys)) == 8, sorted(keys)  # 4 tuning + 4 evaluation
    assert {r.info.status for r in runs} == {"FINISHED"}
    parents = {r.data.tags["mlflow.parentRunId"] for r in runs}
    assert len(parents) == 2, outputs  # both drivers fitted some of them
    assert "run by process" in outputs[1] or "finished by another driver" in outputs[1]
    experiment = client.get_experiment_by_name("drivers")
    assert not [t for t in experiment.tags if t.startswith("grubench.lease.")]  # all released


TWO_DRIVERS = """
from grubench.sweeps.question import Question

QUESTION = Question(
    name="drivers", text="?",
    arms={"gru": {"model": {"name": "torch_gru"}}, "rnn": {"model": {"name": "rnn"}}},
    tune={"optim.lr": [1e-3, 3e-2]},
    seeds={"quick": [0, 1], "full": [0]}, tuning_seeds={"quick": [100], "full": [100]},
    base={"model": {"hidden_size": 8},
          "task": {"seq_len": 10, "batch_size": 16, "epoch_size": 10, "val_size": 32,
                   "test_size": 32},
          "trainer": {"max_steps": 150, "enable_progress_bar": False}},
)
"""


@pytest.mark.unit
def test_the_curves_band_is_the_bootstrap_interval_of_the_mean():
    import numpy as np

    from grubench.answers.plots import mean_band

    same = np.tile([1.0, 2.0, 3.0], (5, 1))  # five seeds, identical curves: no spread
    low, high = mean_band(same)
    assert np.allclose(low, [1, 2, 3]) and np.allclose(high, [1, 2, 3])
    rng = np.random.default_rng(1)
    values = rng.normal(0.0, 1.0, size=(8, 1))
    low, high = mean_band(values)
    expected = stats.bootstrap_interval(values[:, 0], statistic=np.mean)
    assert abs(low[0] - expected.low) < 0.1 and abs(high[0] - expected.high) < 0.1
    assert values.min() < low[0] < values.mean() < high[0] < values.max()
    with_gap = np.array([[1.0, np.nan], [3.0, np.nan]])  # a step no run reached
    low, high = mean_band(with_gap)
    assert 1.0 <= low[0] <= high[0] <= 3.0 and np.isnan(low[1]) and np.isnan(high[1])
