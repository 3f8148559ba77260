"""The sweep runner and the report, through the real runner and a real MLflow store."""

import math

import pytest

import grubench.runner as runner_module
from grubench.experiment import Experiment, expand, grid, load_experiment
from grubench.fit import ConfigError
from grubench.report import build_report, to_markdown, verdict, welch_p, write_report
from grubench.runner import run_sweep, sweep_runs

TINY_BASE = {
    "model": {"hidden_size": 8},
    "task": {"seq_len": 10, "batch_size": 16, "epoch_size": 3, "val_size": 32, "test_size": 32},
    "trainer": {"max_steps": 6, "enable_progress_bar": False},
}


def tiny_experiment(**kwargs) -> Experiment:
    options = dict(
        name="tiny",
        question="Does a tiny GRU beat a tiny RNN?",
        configs={"gru": {"model": {"name": "torch_gru"}}, "rnn": {"model": {"name": "rnn"}}},
        base=TINY_BASE,
        seeds={"quick": [0, 1], "full": [0, 1, 2]},
    )
    return Experiment(**{**options, **kwargs})


def children_in_store(client, name="tiny"):
    experiment = client.get_experiment_by_name(name)
    return sweep_runs(client, experiment.experiment_id, f"{name}:quick")


def test_grid_and_expand():
    configs = grid(
        model={"gru": {"model": {"name": "torch_gru"}}, "lstm": {"model": {"name": "lstm"}}},
        length={"T=10": {"task": {"seq_len": 10}}, "T=20": {"task": {"seq_len": 20}}},
    )
    assert list(configs) == ["gru, T=10", "gru, T=20", "lstm, T=10", "lstm, T=20"]
    assert configs["lstm, T=20"] == {"model": {"name": "lstm"}, "task": {"seq_len": 20}}
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
    with pytest.raises(ValueError, match="unknown model option"):
        expand(tiny_experiment(configs={"bad": {"model": {"hiden_size": 3}}}), "quick")
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
    real_fit, calls = runner_module.run_fit, []

    def interrupt_third(config, **kwargs):
        calls.append(config.seed)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real_fit(config, **kwargs)

    monkeypatch.setattr(runner_module, "run_fit", interrupt_third)
    with pytest.raises(KeyboardInterrupt):
        run_sweep(experiment, "quick", tracking_uri, echo=lambda _: None)
    parents = sweep_runs(
        client, client.get_experiment_by_name("tiny").experiment_id, "tiny:quick", "parent"
    )
    assert [p.info.status for p in parents] == ["KILLED"]
    monkeypatch.setattr(runner_module, "run_fit", real_fit)
    resumed = run_sweep(experiment, "quick", tracking_uri, echo=lambda _: None)
    assert (resumed.skipped, resumed.ran) == (2, 2)
    runs = children_in_store(client)
    keys = [r.data.tags["grubench.child_key"] for r in runs]
    assert sorted(keys) == sorted(set(keys)) and len(keys) == 4
    assert all(r.info.status == "FINISHED" for r in runs)


def test_a_child_left_running_is_continued_or_rerun_once(tracking_uri, client):
    """A run left RUNNING (its process killed -9) continues as the same run from its
    checkpoint; without a checkpoint it is superseded by a new run. Either way: once."""
    from grubench.tracking import checkpoint_dir

    experiment = tiny_experiment(configs={"gru": {"model": {"name": "torch_gru"}}})
    run_sweep(experiment, "quick", tracking_uri, echo=lambda _: None)
    stale, no_checkpoint = sorted(
        children_in_store(client), key=lambda r: r.data.tags["grubench.seed"]
    )
    for run in (stale, no_checkpoint):
        client.set_terminated(run.info.run_id, "RUNNING")  # as if its process was killed -9
    (checkpoint_dir(tracking_uri, no_checkpoint.info.run_id) / "last.ckpt").unlink()
    result = run_sweep(experiment, "quick", tracking_uri, echo=lambda _: None)
    assert (result.ran, result.resumed, result.skipped) == (2, 1, 0)
    assert client.get_run(stale.info.run_id).info.status == "FINISHED"  # the same run
    assert client.get_run(no_checkpoint.info.run_id).info.status == "KILLED"
    assert client.get_run(no_checkpoint.info.run_id).data.tags["grubench.superseded"] == "true"
    runs = children_in_store(client)
    assert len(runs) == 2 and all(r.info.status == "FINISHED" for r in runs)
    assert stale.info.run_id in {r.info.run_id for r in runs}


def test_diverged_child_is_counted_and_the_sweep_goes_on(tracking_uri, client):
    experiment = tiny_experiment(
        configs={
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
    rows = {r.label: r for r in report.rows}
    assert rows["exploding"].diverged == 2 and rows["exploding"].values == []
    assert rows["fine"].diverged == 0 and len(rows["fine"].values) == 2
    assert "**fine**" in report.verdict


def test_invalid_child_stops_the_sweep_before_any_run(tracking_uri, tmp_path):
    experiment = tiny_experiment(configs={"bad": {"model": {"name": "gruu"}}})
    with pytest.raises(ConfigError, match="bad | seed=0: model.name: unknown model 'gruu'"):
        run_sweep(experiment, "quick", tracking_uri)
    assert not (tmp_path / "store").exists()


def test_shards_split_the_sweep(tracking_uri, client):
    experiment = tiny_experiment()
    a = run_sweep(experiment, "quick", tracking_uri, shard=(0, 2), echo=lambda _: None)
    b = run_sweep(experiment, "quick", tracking_uri, shard=(1, 2), echo=lambda _: None)
    assert a.ran == b.ran == 2
    assert len(children_in_store(client)) == 4
    assert build_report(experiment, "quick", tracking_uri).missing == []


def _fake_child(client, experiment_id, experiment, child, value, steps=None, diverged=False):
    from grubench.runner import HASH, KEY, ROLE, SWEEP

    tags = {
        ROLE: "child",
        SWEEP: f"{experiment.name}:quick",
        KEY: child.key,
        HASH: child.config_hash(),
        "grubench.objective": "mse",
        "grubench.objective_mode": "min",
        "grubench.outcome": "diverged" if diverged else ("solved" if steps else "unsolved"),
    }
    run = client.create_run(experiment_id, tags=tags)
    metrics = {"final/val/mse": value, "param_count": 100, "time_per_step_ms": 2.0}
    if steps is not None:
        metrics["steps_to_solve"] = steps
    for key, v in metrics.items():
        client.log_metric(run.info.run_id, key, v, step=10)
        if key == "final/val/mse":
            client.log_metric(run.info.run_id, "val/mse", v, step=10)
    client.set_terminated(run.info.run_id, "FINISHED")


def test_report_aggregates_and_verdict_by_hand(tracking_uri, client, tmp_path):
    experiment = tiny_experiment(seeds={"quick": [0, 1, 2], "full": [0]})
    experiment_id = client.create_experiment("tiny")
    gru = [0.010, 0.012, 0.014]
    rnn = [0.100, 0.120, math.nan]
    for child in expand(experiment, "quick"):
        if child.label == "gru":
            _fake_child(
                client,
                experiment_id,
                experiment,
                child,
                gru[child.seed],
                steps=100 * (child.seed + 1),
            )
        else:
            _fake_child(
                client, experiment_id, experiment, child, rnn[child.seed], diverged=child.seed == 2
            )
    report = build_report(experiment, "quick", tracking_uri)
    rows = {r.label: r for r in report.rows}
    assert rows["gru"].mean == pytest.approx(0.012) and rows["gru"].std == pytest.approx(0.002)
    assert rows["gru"].solved == 3 and rows["gru"].steps_to_solve == [100, 200, 300]
    assert rows["rnn"].values == [0.100, 0.120] and rows["rnn"].diverged == 1
    # Welch by hand: standard errors, t, Welch-Satterthwaite degrees of freedom, two-sided p
    from scipy.stats import t as student_t

    se_a, se_b = 0.002**2 / 3, 0.02**2 / 2 / 2  # var(rnn) = (0.12 - 0.10)**2 / 2
    t = (0.11 - 0.012) / math.sqrt(se_a + se_b)
    df = (se_a + se_b) ** 2 / (se_a**2 / 2 + se_b**2 / 1)
    p = welch_p(rows["gru"].values, rows["rnn"].values)
    assert p == pytest.approx(2 * student_t.sf(t, df), rel=1e-6)
    assert p == pytest.approx(0.0616, abs=1e-3)  # two rnn seeds: a large lead, not significant
    assert report.verdict.startswith("No clear difference: **gru** leads")
    assert "p = 0.062" in report.verdict
    table = to_markdown(report)
    assert "| gru | 0.012 ± 0.002 (3) | 3/3 | 200 | 2 | 100 | 0 |" in table
    assert "| rnn | 0.11 ± 0.01414 (2) | 0/3 | – | 2 | 100 | 1 |" in table
    _, paths = write_report(experiment, "quick", tmp_path / "results", tracking_uri)
    assert [p.name for p in paths] == ["tiny-quick.md", "tiny-quick-curves.png"]
    assert all(p.stat().st_size > 0 for p in paths)


def test_verdict_without_a_clear_difference():
    from grubench.report import Row

    a = Row("a", "val/mse", "min", values=[0.10, 0.20, 0.15])
    b = Row("b", "val/mse", "min", values=[0.12, 0.21, 0.16])
    text, p = verdict([b, a])
    assert text.startswith("No clear difference: **a** leads") and p > 0.05


def test_load_experiment_errors(tmp_path):
    with pytest.raises(ValueError, match="no experiment file"):
        load_experiment(tmp_path / "missing.py")
    (tmp_path / "empty.py").write_text("X = 1\n")
    with pytest.raises(ValueError, match="does not define EXPERIMENT"):
        load_experiment(tmp_path / "empty.py")


def test_verdict_with_a_clear_lead_for_a_max_metric():
    from grubench.report import Row

    a = Row("a", "val/acc", "max", values=[0.90, 0.91, 0.92])
    b = Row("b", "val/acc", "max", values=[0.50, 0.52, 0.51])
    text, p = verdict([b, a])
    assert text.startswith("Best: **a**") and p < 0.001


def test_longest_length_solved_and_extra_columns(tracking_uri, client):
    from grubench.report import Report, Row, longest_solved

    experiment = tiny_experiment(plot_against="task.seq_len")
    rows = [
        Row("rnn, T=50", "val/mse", "min", solved=3, runs=3, x=50.0),
        Row("rnn, T=100", "val/mse", "min", solved=1, runs=3, x=100.0),
        Row("lstm, T=50", "val/mse", "min", solved=3, runs=3, x=50.0),
        Row("lstm, T=100", "val/mse", "min", solved=2, runs=3, x=100.0),
        Row("gru, T=50", "val/mse", "min", solved=0, runs=3, x=50.0),
    ]
    text = longest_solved(Report(experiment, "quick", rows, [], ""))
    assert text.endswith("rnn: 50; lstm: 100; gru: none.")
    # a real sweep: the gap column comes from the runs' summary metrics
    experiment = tiny_experiment(
        columns={"gap": "final/gap/{metric}"}, configs={"gru": {"model": {"name": "torch_gru"}}}
    )
    run_sweep(experiment, "quick", tracking_uri, echo=lambda _: None)
    report = build_report(experiment, "quick", tracking_uri)
    (row,) = report.rows
    assert len(row.extra["gap"]) == 2
    header = to_markdown(report).splitlines()[2]
    assert header.endswith("| diverged | gap (mean) |")


def test_report_plots_gradient_flow_when_runs_probe_it(tracking_uri, tmp_path):
    experiment = tiny_experiment(
        base={**TINY_BASE, "diagnostics_every_n_steps": 3}, seeds={"quick": [0], "full": [0]}
    )
    run_sweep(experiment, "quick", tracking_uri, echo=lambda _: None)
    _, paths = write_report(experiment, "quick", tmp_path / "results", tracking_uri)
    assert [p.name for p in paths] == [
        "tiny-quick.md",
        "tiny-quick-curves.png",
        "tiny-quick-grad-flow.png",
    ]


def test_verdicts_within_groups_and_mixed_metrics(tracking_uri):
    from grubench.experiment import grid

    experiment = tiny_experiment(
        configs=grid(model={"gru": {"model": {"name": "torch_gru"}},
                            "rnn": {"model": {"name": "rnn"}}},
                     task={"adding": {"task": {"name": "adding"}},
                           "parity": {"task": {"name": "parity"}}}),
        compare_within=["task.name"],
    )  # fmt: skip
    run_sweep(experiment, "quick", tracking_uri, echo=lambda _: None)
    report = build_report(experiment, "quick", tracking_uri)
    assert {row.group for row in report.rows} == {"task.name=adding", "task.name=parity"}
    lines = report.verdict.splitlines()
    assert lines[0] == "within each task.name:"
    assert lines[1].startswith("- task.name=adding: ") and lines[2].startswith(
        "- task.name=parity: "
    )
    table = to_markdown(report)
    assert "| final validation metric (mean ± std, n) |" in table
    assert "| gru, adding | mse " in table and "| gru, parity | acc " in table
