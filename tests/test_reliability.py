"""Reliability (issue #9): bad inputs fail before any run; a run stopped by a signal resumes
to the metrics of an uninterrupted twin; a sweep killed -9 completes each child once.

Signals are real: sent with ``os.kill`` to this process from inside a training or validation
step (exact interruption points), or to a ``grubench`` subprocess once it has written a
checkpoint. Timing metrics (wall time, ms per step) are the only ones allowed to differ.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from mlflow.tracking import MlflowClient

from grubench.answers.report import build_report
from grubench.cli import main
from grubench.models import MODELS
from grubench.store.tracking import checkpoint_dir, get_client
from grubench.sweeps.children import sweep_runs
from grubench.sweeps.question import expand, load_question
from grubench.tasks import TASKS
from grubench.training.config import resolved_config
from grubench.training.fit import log_config, run_fit
from grubench.training.module import RecurrentSystem
from grubench.training.resume import Interrupted

from .conftest import tiny_config
from .faults import alive
from .test_cli import TINY

TIER = "integration"

# timing differs between any two fits; everything else must not
TIMING = {"train/step_time_ms", "wall_time_s", "time_per_step_ms", "seconds_to_solve"}


def histories(client, run_id) -> dict[str, list[tuple[int, float]]]:
    """Every metric key's history as (step, value), in logging order."""
    keys = client.get_run(run_id).data.metrics
    return {
        key: [(m.step, m.value) for m in sorted(client.get_metric_history(run_id, key),
                                                 key=lambda m: (m.step, m.timestamp))]
        for key in keys
    }  # fmt: skip


def assert_each_step_once(history: dict[str, list[tuple[int, float]]]) -> None:
    for key, entries in history.items():
        steps = [step for step, _ in entries]
        assert len(steps) == len(set(steps)), f"{key} logged a step twice: {steps}"


def assert_same_metrics(client, resumed_id: str, twin_id: str) -> None:
    """Same keys, same steps, same values (exactly), timing aside; each step once."""
    resumed, twin = histories(client, resumed_id), histories(client, twin_id)
    assert_each_step_once(resumed)
    assert set(resumed) == set(twin)
    for key in sorted(set(twin) - TIMING):
        assert resumed[key] == twin[key], key


def count_runs(client) -> int:
    experiments = [e.experiment_id for e in client.search_experiments()]
    return len(client.search_runs(experiments, max_results=1000)) if experiments else 0


# --- 1. bad inputs: exit code 2, a message naming the value and the choices, no run -------


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """A store holding runs that cannot be resumed (FINISHED; KILLED without a checkpoint;
    RUNNING in a live process; superseded) and one that can (its config: ``tiny_config``),
    and the files the bad inputs point at."""
    root = tmp_path_factory.mktemp("bad-inputs")
    uri = f"sqlite:///{root / 'store' / 'mlflow.db'}"
    client = get_client(uri)
    experiment_id = client.create_experiment("grubench")
    ids = {}
    for name, status in (("finished", "FINISHED"), ("killed", "KILLED"), ("stopped", "KILLED"),
                         ("running", "RUNNING"), ("superseded", "KILLED"),
                         ("corrupt", "KILLED")):  # fmt: skip
        run_id = client.create_run(experiment_id).info.run_id
        log_config(client, run_id, resolved_config(tiny_config(uri)))  # hidden_size 8
        client.set_terminated(run_id, status)
        ids[name] = run_id
    # "running": its process (this one's parent) is alive on this host
    client.set_tag(ids["running"], "grubench.pid", str(os.getppid()))
    client.set_tag(ids["running"], "grubench.host", socket.gethostname())
    client.set_tag(ids["superseded"], "grubench.superseded", "true")
    for name in ("stopped", "running", "superseded"):
        checkpoint = checkpoint_dir(uri, ids[name]) / "last.ckpt"
        checkpoint.parent.mkdir(parents=True)
        torch.save({"global_step": 4}, checkpoint)
    corrupt = checkpoint_dir(uri, ids["corrupt"]) / "last.ckpt"
    corrupt.parent.mkdir(parents=True)
    corrupt.write_bytes((checkpoint_dir(uri, ids["stopped"]) / "last.ckpt").read_bytes()[:100])
    (root / "broken.yaml").write_text("model:\n  name: [lstm\n")
    (root / "keys.yaml").write_text("seed: 1\nmodels:\n  name: lstm\n")
    (root / "options.yaml").write_text("model:\n  name: lstm\n  hiden_size: 3\n")
    (root / "bad_child.py").write_text(
        "from grubench.sweeps.question import Question\n"
        "QUESTION = Question(name='bad', text='?', arms={'bad': {'model': "
        "{'name': 'gruu'}}}, seeds={'quick': [0], 'full': [0]})\n"
    )
    (root / "syntax.py").write_text("from grubench.sweeps.question import Question\n"
                                    "QUESTION = Question(\n    name='x',,\n)\n")  # fmt: skip
    (root / "raises.py").write_text("from grubench.sweeps.question import Question\nRATE = 1 / 0\n")
    (root / "tiny.py").write_text(
        "from grubench.sweeps.question import Question\n"
        "QUESTION = Question(name='tiny', text='?', arms={'gru': {}}, "
        "seeds={'quick': [0], 'full': [0]})\n"
    )
    return {"uri": uri, "dir": root, **ids}


CHOICES_MODEL = "choose from: " + ", ".join(sorted(MODELS))  # the registry, whatever it holds
CHOICES_TASK = "choose from: " + ", ".join(sorted(TASKS))
RESUME_FORM = "grubench fit --resume RUN_ID [--tracking_uri URI]"
BAD_INPUTS = [
    # (id, arguments after the command, expected pieces of the message)
    ("model-name", "fit --model.name gruu", ["unknown model 'gruu'", CHOICES_MODEL]),
    ("task-name", "fit --task.name copy", ["unknown task 'copy'", CHOICES_TASK]),
    ("optimizer", "fit --optim.name adagrad", ["unknown optimizer 'adagrad'", "choose from: adam, adamw, rmsprop, sgd"]),
    ("init", "fit --model.init glorot", ["unknown init 'glorot'", "choose from: default, xavier_uniform, xavier_normal, orthogonal, identity, chrono"]),
    ("activation", "fit --model.name custom_gru --model.activation sigmoid", ["unknown activation 'sigmoid'", "choose from: tanh, relu"]),
    ("clip-algorithm", "fit --optim.grad_clip_algorithm l3", ["unknown 'l3'", "choose from: norm, value"]),
    ("hidden-size", "fit --model.hidden_size 0", ["model.hidden_size must be positive, got 0"]),
    ("batch-size", "fit --task.batch_size -4", ["task.batch_size must be positive, got -4"]),
    ("lr", "fit --optim.lr -1", ["optim.lr must be positive, got -1"]),
    ("momentum", "fit --optim.momentum 1.5", ["optim.momentum must lie in [0, 1), got 1.5"]),
    ("diagnostics", "fit --diagnostics_every_n_steps -1", ["diagnostics_every_n_steps must be 0 (off) or positive, got -1"]),
    ("seq-len", "fit --task.seq_len 1", ["task.seq_len=1 is too short for adding"]),
    ("forget-bias-on-gru", "fit --model.forget_bias 2.0", ["model.forget_bias=2.0 does not apply to torch_gru; only lstm take it"]),
    ("layer-norm-on-lstm", "fit --model.name lstm --model.layer_norm true", ["model.layer_norm=True does not apply to lstm; only custom_gru take it"]),
    ("accelerator", "fit --trainer.accelerator tpu9", ["accelerator='tpu9'", "Available names are: ", "cpu"]),
    ("type", "fit --model.hidden_size big", []),  # jsonargparse's own message
    ("malformed-yaml", "fit --config {dir}/broken.yaml", ["broken.yaml:3:1: malformed YAML"]),
    ("unknown-key", "fit --config {dir}/keys.yaml", ["keys.yaml:2: unknown key 'models'", "valid: diagnostics_every_n_steps, experiment_name, flush_denormal, model, optim"]),
    ("unknown-option", "fit --config {dir}/options.yaml", ["options.yaml:3: unknown option model.hiden_size; valid: activation, ", " hidden_size, "]),
    ("resume-no-id", "fit --resume", ["--resume needs a run id", RESUME_FORM]),
    ("resume-unknown", "fit --resume 0123abc", ["--resume 0123abc: no such run", RESUME_FORM]),
    ("resume-finished", "fit --resume {finished}", ["the run is FINISHED already; there is nothing to resume", RESUME_FORM]),
    ("resume-no-checkpoint", "fit --resume {killed}", ["the run (KILLED) has no checkpoint", "start it again with: grubench fit --config ", "config.yaml"]),
    ("resume-running", "fit --resume {running}", ["the run is RUNNING in process", "stop it first", RESUME_FORM]),
    ("resume-corrupt", "fit --resume {corrupt}", ["its checkpoint ", "last.ckpt cannot be read (", "start the run afresh with: grubench fit --config ", "config.yaml"]),
    ("resume-superseded", "fit --resume {superseded}", ["superseded by a newer run of its sweep child", RESUME_FORM]),
    ("resume-conflict", "fit --resume {stopped} --model.hidden_size 16", ["model.hidden_size is 8 in the run's config, not 16", "a resumed run keeps its config"]),
    ("resume-no-store", "fit --resume {stopped} --tracking_uri sqlite:///{dir}/none/mlflow.db", ["no store at sqlite:///", RESUME_FORM]),
    ("cpus", "run {dir}/tiny.py --cpus-per-child half", ["--cpus-per-child 'half': expected a whole number >= 1"]),
    ("workers", "run {dir}/tiny.py --workers 0", ["--workers '0': expected a whole number >= 1 or auto"]),
    ("experiment-file", "run {dir}/missing.py", ["no experiment file", "missing.py"]),
    ("experiment-syntax", "run {dir}/syntax.py", ["syntax.py:3: SyntaxError: "]),
    ("experiment-raises", "run {dir}/raises.py", ["raises.py:2: ZeroDivisionError: division by zero"]),
    ("seed", "fit --seed -1", ["seed must be a whole number in [0, 2**32), got -1"]),
    ("database-driver", "fit --tracking_uri postgresql://u:p@127.0.0.1:1/db", ["--tracking_uri postgresql://...: its database driver is not installed (no module ", "pip install "]),
    ("profile", "run {dir}/tiny.py --profile fast", ["--profile 'fast': choose from: quick, full"]),
    ("sweep-child", "run {dir}/bad_child.py", ["bad | seed=0: model.name: unknown model 'gruu'", CHOICES_MODEL]),
    ("command", "train", ["unknown command 'train'; choose from: fit, run, report, readme, list, ui"]),
]  # fmt: skip


@pytest.mark.parametrize(
    ("args", "expected"), [c[1:] for c in BAD_INPUTS], ids=[c[0] for c in BAD_INPUTS]
)
def test_bad_input_exits_2_with_the_choices_and_makes_no_run(store, args, expected, capsys, tmp_path):  # fmt: skip
    command, *rest = args.format(**store).split()
    if command == "fit" and "--resume" not in rest:  # a tiny fit, should a check let it pass
        rest = [*TINY, *rest]
    if command in ("fit", "run") and "--tracking_uri" not in rest:
        rest += ["--tracking_uri", store["uri"]]
    argv = [command, *rest]
    client = MlflowClient(store["uri"])
    before = count_runs(client), [e.name for e in client.search_experiments()]
    try:
        code = main(argv)
    except SystemExit as exit_:  # argument parsers exit themselves
        code = exit_.code
    err = capsys.readouterr().err
    assert code == 2, err
    for piece in expected:
        assert piece in err
    assert err  # always a message
    assert (count_runs(client), [e.name for e in client.search_experiments()]) == before
    assert not (tmp_path / "mlruns").exists()  # nor anything in the default store


# --- 2. divergence: see test_runner.test_diverged_child_is_counted_and_the_sweep_goes_on ---
# --- 5. same seed, same metrics: test_fit.test_same_seed_identical_metrics -----------------

# --- 3. signals: stop with a checkpoint (KILLED), resume the same run to the twin's metrics -

RESUME_TRAINER = {"max_steps": 20, "log_every_n_steps": 2}


@pytest.mark.parametrize(
    ("signum", "hook", "step", "variant"),
    [
        # mid-epoch (epoch_size 4): the running step completes, then the fit stops
        (signal.SIGTERM, "training_step", 6, {}),
        # during a validation, with dropout (the RNG state matters) and clipping counts
        (signal.SIGINT, "validation_step", 8,
         {"model": {"name": "lstm", "num_layers": 2, "dropout": 0.3}, "optim": {"grad_clip": 0.5}}),
        # in the last step of a finite training set, with the gradient-flow probe: training
        # is complete; the resumed fit only tests and logs the summary
        (signal.SIGTERM, "training_step", 19,
         {"task": {"train_size": 40}, "diagnostics_every_n_steps": 3}),
    ],
    ids=["sigterm-mid-epoch", "sigint-in-validation-dropout", "sigterm-last-step-finite-set"],
)  # fmt: skip
def test_signal_stops_with_checkpoint_and_resume_matches_uninterrupted_twin(
    tracking_uri, client, monkeypatch, signum, hook, step, variant
):
    def config():
        return tiny_config(tracking_uri, seed=3, trainer=RESUME_TRAINER, **variant)

    twin = run_fit(config())
    real_hook = getattr(RecurrentSystem, hook)

    def signal_once(self, *args, **kwargs):
        if self.trainer.global_step == step and not self.trainer.sanity_checking:
            monkeypatch.setattr(RecurrentSystem, hook, real_hook)
            os.kill(os.getpid(), signum)  # handled between two bytecodes, in this step
        return real_hook(self, *args, **kwargs)

    monkeypatch.setattr(RecurrentSystem, hook, signal_once)
    with pytest.raises(Interrupted) as stopped:
        run_fit(config())
    monkeypatch.setattr(RecurrentSystem, hook, real_hook)
    stop = stopped.value
    assert stop.code == 128 + signum and stop.signum == signum
    run_id = stop.run_id
    assert client.get_run(run_id).info.status == "KILLED"
    checkpoint = checkpoint_dir(tracking_uri, run_id) / "last.ckpt"
    saved = torch.load(checkpoint, weights_only=True)
    # a signal in training step `step` (0-based) lets it complete: the checkpoint holds
    # step + 1 steps; one in the validation after `step` steps stops before the next step
    assert saved["global_step"] == stop.step == step + (hook == "training_step")
    before = histories(client, run_id)
    assert max(s for entries in before.values() for s, _ in entries) <= stop.step

    result = run_fit(config(), resume=run_id)
    assert result.run_id == run_id and result.status == "FINISHED"
    assert client.get_run(run_id).info.status == "FINISHED"
    for key in set(twin.metrics) - TIMING:
        assert result.metrics[key] == twin.metrics[key], key
    assert_same_metrics(client, run_id, twin.run_id)
    assert len(client.search_runs([result.experiment_id])) == 2  # the twin and this one


def wait_for(condition, process: subprocess.Popen, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if process.poll() is not None:
            raise AssertionError(f"the process ended first: {process.communicate()}")
        if time.monotonic() > deadline:
            process.kill()
            raise AssertionError("timed out")
        time.sleep(0.02)


def checkpoints(tracking_uri: str) -> list[Path]:
    return sorted((checkpoint_dir(tracking_uri, "x").parent).glob("*/last.ckpt"))


SUBPROCESS_FIT = [
    "--model.hidden_size", "8",
    "--task.seq_len", "10", "--task.batch_size", "16", "--task.epoch_size", "5",
    "--task.val_size", "32", "--task.test_size", "32", "--seed", "5",
    "--trainer.max_steps", "150", "--trainer.log_every_n_steps", "5",
    "--trainer.enable_progress_bar", "false",
]  # fmt: skip


@pytest.mark.system
def test_sigterm_to_grubench_fit_then_resume_continues_the_same_run(tracking_uri, client, capsys):
    assert main(["fit", *SUBPROCESS_FIT, "--tracking_uri", tracking_uri]) == 0  # the twin
    (twin,) = client.search_runs([client.get_experiment_by_name("grubench").experiment_id])
    capsys.readouterr()
    command = [sys.executable, "-m", "grubench", "fit", *SUBPROCESS_FIT]
    process = subprocess.Popen(
        [*command, "--tracking_uri", tracking_uri], stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    wait_for(lambda: len(checkpoints(tracking_uri)) == 2, process)  # after its first validation
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=120)
    assert process.returncode == 128 + signal.SIGTERM, err
    (stopped,) = [
        r
        for r in client.search_runs([twin.info.experiment_id])
        if r.info.run_id != twin.info.run_id
    ]
    run_id = stopped.info.run_id
    assert stopped.info.status == "KILLED"
    step = torch.load(checkpoint_dir(tracking_uri, run_id) / "last.ckpt")["global_step"]
    assert 5 <= step < 150
    assert f"stopped by SIGTERM (checkpoint at step {step}); run {run_id} is KILLED" in err
    assert f"continue it with: grubench fit --resume {run_id} --tracking_uri " in err

    assert main(["fit", "--resume", run_id, "--tracking_uri", tracking_uri]) == 0
    out = capsys.readouterr().out
    assert f"resuming run {run_id} (KILLED) from step {step}" in out
    assert f"run {run_id}: FINISHED" in out
    assert_same_metrics(client, run_id, twin.info.run_id)
    metrics = client.get_run(run_id).data.metrics
    for key in ("final/val/mse", "best/val/mse", "final/train/mse", "test/mse", "steps"):
        assert metrics[key] == twin.data.metrics[key], key
    assert len(client.search_runs([twin.info.experiment_id])) == 2


def test_sigint_in_a_sweep_then_rerun_continues_the_same_child_run(
    tracking_uri, client, monkeypatch
):
    from grubench.sweeps.question import Question
    from grubench.sweeps.runner import run_sweep

    experiment = Question(
        name="stop", text="?", arms={"gru": {}}, seeds={"quick": [0, 1], "full": [0]},
        base={"model": {"hidden_size": 8}, "trainer": {**RESUME_TRAINER, "enable_progress_bar": False},
              "task": {"seq_len": 10, "batch_size": 16, "epoch_size": 4, "val_size": 32, "test_size": 32}},
    )  # fmt: skip
    real_step = RecurrentSystem.training_step

    def sigint_in_step_9(self, *args, **kwargs):
        if self.trainer.global_step == 9:
            monkeypatch.setattr(RecurrentSystem, "training_step", real_step)
            os.kill(os.getpid(), signal.SIGINT)
        return real_step(self, *args, **kwargs)

    monkeypatch.setattr(RecurrentSystem, "training_step", sigint_in_step_9)
    with pytest.raises(Interrupted) as stopped:
        run_sweep(experiment, "quick", tracking_uri, echo=lambda _: None)
    experiment_id = client.get_experiment_by_name("stop").experiment_id
    (parent,) = sweep_runs(client, experiment_id, "stop:quick", "parent")
    assert parent.info.status == "KILLED"
    (child,) = sweep_runs(client, experiment_id, "stop:quick")  # the first child, stopped
    assert child.info.run_id == stopped.value.run_id and child.info.status == "KILLED"

    lines = []
    result = run_sweep(experiment, "quick", tracking_uri, echo=lines.append)
    assert (result.ran, result.resumed) == (2, 1)
    assert f"[1/2] gru | seed=0 (resuming run {child.info.run_id} from step 10) ..." in lines
    runs = sweep_runs(client, experiment_id, "stop:quick")
    assert sorted(r.data.tags["grubench.child_key"] for r in runs) == [
        "gru | seed=0",
        "gru | seed=1",
    ]
    assert all(r.info.status == "FINISHED" for r in runs)
    assert child.info.run_id in {r.info.run_id for r in runs}
    new_parent = client.get_run(child.info.run_id).data.tags["mlflow.parentRunId"]
    assert new_parent == result.parent_run_id != parent.info.run_id
    twin_config = expand(experiment, "quick")[0].config  # the same child, never stopped
    twin_config.tracking_uri = tracking_uri
    twin = run_fit(twin_config)
    assert_same_metrics(client, child.info.run_id, twin.run_id)


# --- 4. kill -9: the sweep re-run completes each child once -------------------------------


@pytest.mark.system
def test_sweep_killed_minus_9_mid_child_completes_each_child_once(tracking_uri, client, tmp_path):
    base = {
        "model": {"name": "torch_gru", "hidden_size": 8},
        "task": {"seq_len": 10, "batch_size": 16, "epoch_size": 10, "val_size": 32,
                 "test_size": 32},
        "trainer": {"max_steps": 60, "log_every_n_steps": 1, "enable_progress_bar": False},
    }  # fmt: skip
    path = tmp_path / "crash.py"
    path.write_text(
        "from grubench.sweeps.question import Question\n"
        f"QUESTION = Question(name='crash', text='?', arms={{'gru': {{}}}}, "
        f"base={base!r}, seeds={{'quick': [0, 1], 'full': [0]}})\n"
    )
    get_client(tracking_uri)  # the store exists before the worker starts
    process = subprocess.Popen(
        [sys.executable, "-m", "grubench", "run", str(path), "--tracking_uri", tracking_uri,
         "--workers", "1"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip

    def second_child_past_its_first_checkpoint() -> bool:
        # checkpoints after each validation (every 10 steps); the loss is logged every step
        if len(checkpoints(tracking_uri)) < 2:
            return False
        (run,) = client.search_runs(
            [client.get_experiment_by_name("crash").experiment_id],
            "tags.`grubench.seed` = '1'",
        )
        return any(m.step >= 12 for m in client.get_metric_history(run.info.run_id, "train/loss"))

    wait_for(second_child_past_its_first_checkpoint, process)
    process.kill()  # kill -9, mid-child
    process.communicate(timeout=60)
    assert process.returncode == -signal.SIGKILL
    experiment_id = client.get_experiment_by_name("crash").experiment_id
    left = {
        r.data.tags["grubench.seed"]: r for r in sweep_runs(client, experiment_id, "crash:quick")
    }
    assert (left["0"].info.status, left["1"].info.status) == ("FINISHED", "RUNNING")
    crashed = left["1"].info.run_id
    step = torch.load(checkpoint_dir(tracking_uri, crashed) / "last.ckpt")["global_step"]
    logged = max(m.step for m in client.get_metric_history(crashed, "train/loss"))
    assert step < logged < 60  # steps after the checkpoint were logged before the kill

    assert main(["run", str(path), "--tracking_uri", tracking_uri, "--workers", "1"]) == 0
    runs = client.search_runs([experiment_id], "tags.`grubench.role` = 'child'")
    assert sorted(r.data.tags["grubench.seed"] for r in runs) == ["0", "1"]  # nothing extra
    assert all(r.info.status == "FINISHED" for r in runs)
    assert crashed in {r.info.run_id for r in runs}  # continued, not replaced
    experiment = load_question(path)
    report = build_report(experiment, "quick", tracking_uri)
    assert report.missing == [] and [(c.runs, len(c.run_ids)) for c in report.cells] == [(2, 2)]
    assert crashed in report.cells[0].run_ids
    # the steps between its last checkpoint and the kill were recomputed, not logged again:
    # the same metrics as the same child fitted without a stop
    twin_config = expand(experiment, "quick")[1].config
    twin_config.tracking_uri = f"sqlite:///{tmp_path / 'twin' / 'mlflow.db'}"
    twin = run_fit(twin_config)
    twin_metrics = histories(MlflowClient(twin_config.tracking_uri), twin.run_id)
    resumed = histories(client, crashed)
    assert_each_step_once(resumed)
    assert set(resumed) == set(twin_metrics)
    for key in sorted(set(twin_metrics) - TIMING):
        assert resumed[key] == twin_metrics[key], key


# --- 6. the sweep's process killed -9 with pool workers: they end with it ------------------


@pytest.mark.system
def test_pool_workers_end_with_their_killed_driver_and_the_rerun_continues(
    tracking_uri, client, tmp_path
):
    base = {
        "model": {"name": "torch_gru", "hidden_size": 8},
        "task": {"seq_len": 10, "batch_size": 16, "epoch_size": 10, "val_size": 32,
                 "test_size": 32},
        "trainer": {"max_steps": 400, "log_every_n_steps": 1, "enable_progress_bar": False},
    }  # fmt: skip
    path = tmp_path / "orphans.py"
    path.write_text(
        "from grubench.sweeps.question import Question\n"
        f"QUESTION = Question(name='orphans', text='?', arms={{'gru': {{}}}}, "
        f"base={base!r}, seeds={{'quick': [0, 1], 'full': [0]}})\n"
    )
    get_client(tracking_uri)
    command = [sys.executable, "-m", "grubench", "run", str(path), "--tracking_uri", tracking_uri]
    process = subprocess.Popen(
        [*command, "--workers", "2"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )

    def both_children_training() -> list:
        found = client.get_experiment_by_name("orphans")
        runs = sweep_runs(client, found.experiment_id, "orphans:quick") if found else []
        training = [
            r for r in runs
            if r.info.status == "RUNNING" and client.get_metric_history(r.info.run_id, "train/loss")
        ]  # fmt: skip
        return training if len(training) == 2 else []

    wait_for(both_children_training, process)
    runs = both_children_training()
    workers = {int(r.data.tags["grubench.pid"]) for r in runs}
    assert len(workers) == 2 and process.pid not in workers
    killed_at = time.monotonic()
    process.kill()  # the driver only, -9: its workers are not signalled by anyone
    process.wait(timeout=60)  # (not communicate: the workers hold its pipes until they end)
    while any(alive(pid) for pid in workers) and time.monotonic() - killed_at < 60:
        time.sleep(0.1)
    took = time.monotonic() - killed_at
    assert not any(alive(pid) for pid in workers), f"workers alive {took:.0f} s after the driver"
    print(f"both workers ended {took:.1f} s after their driver was killed -9")
    process.communicate(timeout=60)
    for run in runs:  # each stopped with a checkpoint: KILLED, resumable
        assert client.get_run(run.info.run_id).info.status == "KILLED"
        assert (checkpoint_dir(tracking_uri, run.info.run_id) / "last.ckpt").is_file()

    assert main(["run", str(path), "--tracking_uri", tracking_uri, "--workers", "2"]) == 0
    experiment_id = client.get_experiment_by_name("orphans").experiment_id
    children = client.search_runs([experiment_id], "tags.`grubench.role` = 'child'")
    assert sorted(r.data.tags["grubench.seed"] for r in children) == ["0", "1"]
    assert all(r.info.status == "FINISHED" for r in children)
    assert {r.info.run_id for r in runs} == {r.info.run_id for r in children}  # continued
