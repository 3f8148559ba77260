"""Real Trainer fits on tiny configs, tracked in a real (SQLite) MLflow store."""

import math
from pathlib import Path

import pytest
import torch
import yaml

from grubench.training.config import ConfigError
from grubench.training.fit import run_fit

TIER = "integration"


def only_run(client):
    runs = client.search_runs(
        [e.experiment_id for e in client.search_experiments()], max_results=10
    )
    assert len(runs) == 1
    return runs[0]


def test_fit_creates_one_finished_run(tiny, tracking_uri, client, tmp_path):
    result = run_fit(tiny(tracking_uri, run_name="tiny", tags={"purpose": "test"}))
    run = only_run(client)
    assert run.info.run_id == result.run_id
    assert run.info.status == "FINISHED" == result.status
    params, tags, metrics = run.data.params, run.data.tags, run.data.metrics
    assert params["model.name"] == "torch_gru" and params["model.hidden_size"] == "8"
    assert params["task.seq_len"] == "10" and params["optim.lr"] == "0.01"
    assert params["trainer.max_steps"] == "12"
    assert tags["grubench.model"] == "torch_gru" and tags["grubench.task"] == "adding"
    assert tags["purpose"] == "test" and tags["mlflow.runName"] == "tiny"
    assert tags["grubench.outcome"] in ("solved", "unsolved")
    # summary metrics, logged explicitly
    assert metrics["steps"] == 12
    assert metrics["param_count"] == 3 * (8 * 2 + 8 * 8 + 2 * 8) + 8 + 1  # GRU + linear head
    assert metrics["time_per_step_ms"] > 0 and metrics["wall_time_s"] > 0
    assert metrics["final/val/mse"] == result.metrics["final/val/mse"]
    assert metrics["best/val/mse"] <= metrics["final/val/mse"]
    for key in ("train/loss", "val/loss", "val/mse", "test/mse", "train/grad_norm"):
        assert math.isfinite(metrics[key]), key
    # validation every epoch_size=4 steps
    history = client.get_metric_history(run.info.run_id, "val/mse")
    assert len(history) == 3
    # the resolved config as an artifact, loadable as a config file
    config_path = client.download_artifacts(run.info.run_id, "config.yaml", str(tmp_path))
    config = yaml.safe_load(Path(config_path).read_text())
    assert config["model"]["hidden_size"] == 8 and config["trainer"]["max_steps"] == 12
    assert config["tracking_uri"] == tracking_uri
    # checkpoints under the store, nothing in the working directory
    store = Path(tracking_uri.removeprefix("sqlite:///")).parent
    assert (store / "checkpoints" / run.info.run_id / "last.ckpt").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.yaml", "store"]


def test_same_seed_identical_metrics(tiny, tracking_uri, client):
    a = run_fit(tiny(tracking_uri, seed=3))
    b = run_fit(tiny(tracking_uri, seed=3))
    c = run_fit(tiny(tracking_uri, seed=4))
    for key in ("final/val/mse", "best/val/mse"):
        assert a.metrics[key] == b.metrics[key]
    assert a.metrics["final/val/mse"] != c.metrics["final/val/mse"]
    loss = [[m.value for m in client.get_metric_history(r.run_id, "train/loss")] for r in (a, b)]
    assert loss[0] == loss[1]
    # every metric's whole history, timing aside (README: Resuming and determinism)
    timing = {"train/step_time_ms", "wall_time_s", "time_per_step_ms", "seconds_to_solve"}
    keys = set(client.get_run(a.run_id).data.metrics) - timing
    assert keys == set(client.get_run(b.run_id).data.metrics) - timing
    for key in keys:
        history = [
            [(m.step, m.value) for m in client.get_metric_history(r.run_id, key)] for r in (a, b)
        ]
        assert sorted(history[0]) == sorted(history[1]), key


@pytest.mark.parametrize("optimizer", ["adam", "adamw", "rmsprop", "sgd"])
def test_every_optimizer_trains(tiny, tracking_uri, optimizer):
    result = run_fit(
        tiny(
            tracking_uri,
            optim={"name": optimizer, "weight_decay": 1e-4, "l1": 1e-5, "grad_clip": 1.0},
            trainer={"max_steps": 4},
        )
    )
    assert result.status == "FINISHED" and math.isfinite(result.metrics["final/val/mse"])


def test_divergence_is_recorded_not_crashed(tiny, tracking_uri, client):
    result = run_fit(
        tiny(
            tracking_uri,
            model={"name": "rnn", "activation": "relu"},
            optim={"name": "sgd", "lr": 1e6, "momentum": 0.0},
        )
    )
    run = client.get_run(result.run_id)
    assert result.outcome == "diverged" == run.data.tags["grubench.outcome"]
    assert run.info.status == "FINISHED"
    assert int(run.data.tags["grubench.diverged_step"]) < 12
    assert "test/mse" not in run.data.metrics


def test_steps_to_solve_when_the_threshold_is_met(tiny, tracking_uri, client, monkeypatch):
    from grubench.tasks import adding

    monkeypatch.setattr(adding, "SOLVED_MSE", 10.0)  # any validation counts as solved
    result = run_fit(tiny(tracking_uri))
    assert result.outcome == "solved" and result.metrics["solved"] == 1
    assert result.metrics["steps_to_solve"] == 4  # the first validation, after epoch_size steps


def test_bad_config_creates_no_run(tiny, tracking_uri, tmp_path):
    cfg = tiny(tracking_uri, model={"name": "gruu", "hidden_size": 0})
    with pytest.raises(ConfigError, match="unknown model 'gruu'"):
        run_fit(cfg)
    assert not (tmp_path / "store").exists()


def test_custom_gru_backends_fit_alike(tiny, tracking_uri, client):
    # A real fit (sanity validation and test under inference mode, training outside it) with a
    # batch large enough for the compiled loops to split it across threads.
    results = {
        backend: run_fit(
            tiny(
                tracking_uri,
                model={"name": "custom_gru", "backend": backend},
                task={"batch_size": 64, "val_size": 128, "test_size": 128},
                trainer={"max_steps": 6},
            )
        )
        for backend in ("cpp", "python", "autograd")
    }
    for backend, result in results.items():
        assert result.status == "FINISHED", backend
        assert client.get_run(result.run_id).data.params["model.backend"] == backend
    metrics = {b: client.get_run(r.run_id).data.metrics for b, r in results.items()}
    want = metrics["autograd"]
    for backend in ("cpp", "python"):
        got = metrics[backend]
        for key in ("final/val/mse", "final/train/mse", "test/mse"):
            assert got[key] == pytest.approx(want[key], rel=1e-4), (backend, key)


@pytest.mark.parametrize(
    "model",
    [
        {"name": "custom_gru", "activation": "relu"},
        {"name": "custom_gru", "layer_norm": True},
        {"name": "custom_gru", "reset_after": False, "layer_norm": True, "init": "chrono"},
        {"name": "lstm", "init": "chrono"},
        {"name": "rnn", "activation": "relu", "init": "identity"},
        {"name": "torch_gru", "init": "orthogonal"},
    ],
    ids=lambda m: "-".join(str(v) for v in m.values()),
)
def test_model_variants_train_with_finite_loss(tiny, tracking_uri, client, model):
    result = run_fit(tiny(tracking_uri, model=model, trainer={"max_steps": 8}))
    run = client.get_run(result.run_id)
    assert result.outcome != "diverged"
    assert math.isfinite(run.data.metrics["train/loss"])
    assert math.isfinite(result.metrics["final/val/mse"])
    for key, value in model.items():
        assert run.data.params[f"model.{key}"] == str(value)


def test_evaluation_at_several_lengths(tiny, tracking_uri, client):
    result = run_fit(tiny(tracking_uri, task={"eval_lengths": [20, 40]}))
    metrics = client.get_run(result.run_id).data.metrics
    for stage in ("val", "test"):
        for suffix in ("", "_L20", "_L40"):
            assert math.isfinite(metrics[f"{stage}/mse{suffix}"]), (stage, suffix)
            assert math.isfinite(metrics[f"{stage}/loss{suffix}"]), (stage, suffix)
    assert len(client.get_metric_history(result.run_id, "val/mse_L40")) == 3
    # the objective (and steps_to_solve) is read at the training length
    assert result.metrics["final/val/mse"] == metrics["val/mse"]


def test_finite_training_set(tiny, tracking_uri):
    result = run_fit(tiny(tracking_uri, task={"train_size": 40}))
    assert result.status == "FINISHED" and result.metrics["steps"] == 12


def test_per_step_gradient_statistics(tiny, tracking_uri, client):
    result = run_fit(
        tiny(
            tracking_uri,
            model={"name": "custom_gru", "layer_norm": True},
            optim={"grad_clip": 1e-3},
            trainer={"log_every_n_steps": 1},
        )
    )
    metrics = client.get_run(result.run_id).data.metrics
    assert result.metrics["clip_fraction"] == 1.0  # a tiny threshold clips every step
    assert len(client.get_metric_history(result.run_id, "train/clipped")) == 12
    for group in ("input_weights", "recurrent_weights", "biases", "head", "layer_norm"):
        assert metrics[f"grad_norm/{group}"] > 0 and metrics[f"weight_norm/{group}"] > 0
    groups = ("input_weights", "recurrent_weights", "biases", "head", "layer_norm")
    total = math.sqrt(sum(metrics[f"grad_norm/{g}"] ** 2 for g in groups))
    assert total == pytest.approx(metrics["train/grad_norm"], rel=1e-5)  # the same step


def test_gradient_diagnostics_through_the_fit(tiny, tracking_uri, client, tmp_path):
    from grubench.cli.fit import parse_fit_config

    assert parse_fit_config(["--diagnostics_every_n_steps", "6"]).diagnostics_every_n_steps == 6
    result = run_fit(tiny(tracking_uri, model={"name": "lstm"}, diagnostics_every_n_steps=6))
    history = client.get_metric_history(result.run_id, "diag/grad_horizon/l0")
    assert sorted(m.step for m in history) == [0, 6, 12]
    names = [a.path for a in client.list_artifacts(result.run_id, "diagnostics")]
    assert names == ["diagnostics/grad_norms.json", "diagnostics/grad_norms.png"]
    with pytest.raises(ConfigError, match="diagnostics_every_n_steps must be 0"):
        run_fit(tiny(tracking_uri, diagnostics_every_n_steps=-1))


def test_flush_denormal_is_on_by_default_and_changes_no_metric(tiny, tracking_uri, client):
    on = run_fit(tiny(tracking_uri, model={"name": "custom_gru"}))  # the default: flushed
    assert client.get_run(on.run_id).data.params["flush_denormal"] == "True"
    assert (torch.full((1 << 20,), 1e-39) * 1.0).ne(0).all()  # restored after the fit
    off = run_fit(tiny(tracking_uri, model={"name": "custom_gru"}, flush_denormal=False))
    # subnormal values (< 1.2e-38) move no float32 weight of ordinary size: bit-identical
    for key in set(on.metrics) - {"time_per_step_ms", "wall_time_s", "seconds_to_solve"}:
        assert on.metrics[key] == off.metrics[key], key
    for key in ("train/loss", "val/mse", "train/grad_norm"):
        assert [m.value for m in client.get_metric_history(on.run_id, key)] == [
            m.value for m in client.get_metric_history(off.run_id, key)
        ], key
    with pytest.raises(ConfigError, match="flush_denormal must be true or false, got 'yes'"):
        run_fit(tiny(tracking_uri, flush_denormal="yes"))


def test_stop_after_solved_stops_once_solved_and_held(tiny, tracking_uri, client, monkeypatch):
    from grubench.tasks import adding

    # every validation counts as solved: the fit stops at the second one (2 epochs of 4 steps)
    monkeypatch.setattr(adding, "SOLVED_MSE", 1e9)
    result = run_fit(tiny(tracking_uri, stop_after_solved=2))
    assert result.outcome == "solved" and result.metrics["steps"] == 8
    assert result.metrics["steps_to_solve"] == 4
    with pytest.raises(ConfigError, match="stop_after_solved must be 0 \\(off\\) or a positive"):
        run_fit(tiny(tracking_uri, stop_after_solved=-1))


def test_a_deleted_experiment_is_restored(tiny, tracking_uri, client):
    first = run_fit(tiny(tracking_uri, trainer={"max_steps": 1}))
    client.delete_experiment(first.experiment_id)
    second = run_fit(tiny(tracking_uri, trainer={"max_steps": 1}))
    assert second.experiment_id == first.experiment_id
    assert client.get_experiment(first.experiment_id).lifecycle_stage == "active"


def test_logged_gradient_norm_is_autograds_before_clipping():
    """The logged train/grad_norm of step 0 is the norm autograd gives on the first batch with
    the initial weights, although clipping then scales those gradients down."""
    import copy

    import lightning as L
    import torch

    from grubench.models import ModelConfig, build_model
    from grubench.tasks import build_task
    from grubench.training.data import SyntheticDataModule
    from grubench.training.module import OptimConfig, RecurrentSystem

    task = build_task("adding", 10)
    torch.manual_seed(0)
    model = build_model(ModelConfig(hidden_size=8), task.input_size, task.output_size, "last")
    data = SyntheticDataModule(task, batch_size=16, epoch_size=1, val_size=16, test_size=16)
    inputs, targets = next(iter(data.train_dataloader()))
    reference = copy.deepcopy(model)
    task.loss(reference(inputs), targets).backward()
    expected = torch.linalg.vector_norm(
        torch.stack([torch.linalg.vector_norm(p.grad) for p in reference.parameters()])
    )
    system = RecurrentSystem(model, task, OptimConfig(grad_clip=1e-6))
    trainer = L.Trainer(max_steps=1, logger=False, enable_checkpointing=False, log_every_n_steps=1,
                        enable_progress_bar=False, num_sanity_val_steps=0,
                        use_distributed_sampler=False, limit_val_batches=0)  # fmt: skip
    trainer.fit(system, datamodule=data)
    assert float(trainer.callback_metrics["train/grad_norm"]) == pytest.approx(
        float(expected), rel=1e-6
    )
    assert expected > 1e-6 and system.clipped_steps == 1  # clipping fired on that step
