"""``grubench run`` and ``report`` with fit's options: ``--model.*``, ``--task.*`` and
``--optim.*`` parsed by fit's own definitions, set on every child, found again by the report."""

import pytest

from grubench.cli import main
from grubench.cli.sweeps import _overrides

TIER = "integration"

# one arm that names its model: an override of other options must leave model.name alone
QUESTION = (
    "from grubench.sweeps.question import Question\n"
    "QUESTION = Question(name='tiny', text='?', seeds={'quick': [0], 'full': [0]},\n"
    "    arms={'lstm': {'model': {'name': 'lstm', 'backend': 'torch'}}},\n"
    "    base={'model': {'hidden_size': 16}, 'task': {'seq_len': 30}},\n"
    "    budgets={'quick': {'trainer': {'max_steps': 4}}})\n"
)
OVERRIDES = [
    "--model.hidden_size", "8", "--task.seq-len=10", "--optim.grad_clip", "0.5",
    "--task.batch_size", "16", "--task.epoch_size", "2", "--task.val_size", "32",
    "--task.test_size", "32", "--trainer.enable_progress_bar", "false",
]  # fmt: skip


@pytest.mark.unit
def test_only_the_options_given_are_overrides_with_fits_types():
    assert _overrides(["--model.hidden_size", "128", "--task.seq-len=200", "--optim.lr", "-1",
                       "--task.options", "{n_tokens: 4}", "--model.layer_sizes", "[4, 2]",
                       "--task.train_size", "null", "--trainer.devices", "2"], "x") == {
        "model": {"hidden_size": 128, "layer_sizes": [4, 2]},
        "task": {"seq_len": 200, "options": {"n_tokens": 4}, "train_size": None},
        "optim": {"lr": -1.0},  # the range is checked on the children, as a fit checks it
        "trainer": {"devices": 2},
    }  # fmt: skip
    assert _overrides([], "x") == {}
    assert _overrides(["--model.reset-after", "false"], "x") == {"model": {"reset_after": False}}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--model.hidden_size", "big"], "--model.hidden_size: Expected a <class 'int'>"),
        (["--model.reset_after", "maybe"], "--model.reset_after: Expected a <class 'bool'>"),
        (["--model.hidden_sise", "8"],
         "unknown option --model.hidden_sise; did you mean --model.hidden_size?"),
        (["--optim.name", "adagrad"], "optim.name: unknown optimizer 'adagrad'; choose from: "
         "adam, adamw, rmsprop, sgd"),
        (["--model.init", "glorot"], "model.init: unknown init 'glorot'"),
        (["--task.seq_len", "1"], "task.seq_len=1 is too short for adding"),
        (["--optim.lr", "-1"], "optim.lr must be positive, got -1.0"),
        (["--model.hidden_size"], "--model.hidden_size needs a value"),
        (["--seed", "3"], "unknown option --seed"),
    ],
)  # fmt: skip
@pytest.mark.parametrize("dry", [[], ["--dry-run"]])
def test_a_bad_override_is_one_line_and_exit_2_before_any_store(
    args, message, dry, tracking_uri, tmp_path, capsys
):
    (tmp_path / "q.py").write_text(QUESTION)
    try:
        code = main(["run", "q.py", *dry, *args, "--tracking_uri", tracking_uri])
    except SystemExit as exit_:  # the override parser exits itself
        code = exit_.code
    out, err = capsys.readouterr()
    assert code == 2, err
    assert message in err and err.count("\n") == 1, err
    assert err.startswith("grubench run: error: ") and not out
    assert sorted(p.name for p in tmp_path.iterdir()) == ["q.py"]  # no store, nothing written


def test_run_sets_the_overrides_on_every_child_and_report_finds_them(
    tracking_uri, client, tmp_path, capsys
):
    (tmp_path / "q.py").write_text(QUESTION)
    base = ["--tracking_uri", tracking_uri]
    assert main(["run", "q.py", "--dry-run", *OVERRIDES, *base]) == 0
    shown = capsys.readouterr().out.splitlines()
    assert shown[-2] == (  # the values as the child's config holds them
        "  every child with model.hidden_size=8, task.seq_len=10, task.batch_size=16, "
        "task.epoch_size=2, task.val_size=32, task.test_size=32, optim.grad_clip=0.5, "
        "trainer.enable_progress_bar=False"
    )

    assert main(["run", "q.py", "--workers", "1", *OVERRIDES, *base]) == 0
    out = capsys.readouterr().out
    assert "grubench report q.py --model.hidden_size 8 --task.seq-len=10" in out
    (run,) = client.search_runs([client.get_experiment_by_name("tiny").experiment_id],
                                "tags.`grubench.role` = 'child'")  # fmt: skip
    params = run.data.params
    assert params["model.name"] == "lstm"  # the arm's, not fit's default
    assert params["model.hidden_size"] == "8" and params["task.seq_len"] == "10"
    assert params["optim.grad_clip"] == "0.5" and params["trainer.max_steps"] == "4"

    # the report with the same options counts the run as the child's own
    assert main(["report", "q.py", *OVERRIDES, "--out", "with", *base]) == 0
    report = capsys.readouterr().out
    assert "| lstm |" in report and "(1)" in report
    assert "settings differ" not in report
    # without them it still shows the run, noted as one made with other settings
    assert main(["report", "q.py", "--out", "without", *base]) == 0
    assert "1 children are counted with a run whose settings differ" in capsys.readouterr().out
