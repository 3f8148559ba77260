"""The command line: config files, overrides, --print_config, and errors before any run."""

import re
import subprocess
import sys

import pytest
import yaml

from grubench.cli import main
from grubench.cli.fit import parse_fit_config
from grubench.models import MODELS

TIER = "integration"

TINY = [
    "--model.hidden_size", "8",
    "--task.seq_len", "10", "--task.batch_size", "16", "--task.epoch_size", "4",
    "--task.val_size", "32", "--task.test_size", "32",
    "--trainer.max_steps", "4", "--trainer.enable_progress_bar", "false",
]  # fmt: skip


@pytest.mark.unit
def test_overrides_and_config_file(tmp_path):
    path = tmp_path / "cfg.yaml"
    path.write_text(
        yaml.safe_dump({"model": {"name": "lstm", "hidden_size": 16}, "trainer": {"max_steps": 7}})
    )
    cfg = parse_fit_config(
        [
            "--config",
            str(path),
            "--model.hidden_size",
            "32",
            "--optim.name",
            "rmsprop",
            "--model.forget_bias",
            "2.0",
        ]
    )
    assert cfg.model.name == "lstm" and cfg.model.hidden_size == 32
    assert cfg.model.forget_bias == 2.0 and cfg.optim.name == "rmsprop"
    assert cfg.trainer["max_steps"] == 7


@pytest.mark.unit
def test_a_group_option_takes_either_spelling():
    dashes = parse_fit_config(["--model.hidden-size", "32", "--task.seq-len=20",
                               "--optim.grad-clip", "0.5", "--trainer.max-steps", "7"])  # fmt: skip
    underscores = parse_fit_config(["--model.hidden_size", "32", "--task.seq_len=20",
                                    "--optim.grad_clip", "0.5", "--trainer.max_steps", "7"])  # fmt: skip
    assert dashes == underscores and dashes.model.hidden_size == 32
    assert dashes.task.seq_len == 20 and dashes.trainer["max_steps"] == 7


@pytest.mark.unit
def test_custom_gru_options_from_the_command_line():
    cfg = parse_fit_config(
        [
            "--model.name",
            "custom_gru",
            "--model.reset_after",
            "false",
            "--model.activation",
            "relu",
            "--model.layer_norm",
            "true",
            "--model.init",
            "chrono",
            "--model.chrono_t_max",
            "50",
        ]
    )
    assert (cfg.model.reset_after, cfg.model.activation, cfg.model.layer_norm) == (
        False,
        "relu",
        True,
    )
    assert cfg.model.init == "chrono" and cfg.model.chrono_t_max == 50


def test_print_config_round_trips(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["fit", "--model.name", "rnn", "--trainer.max_steps", "9", "--print_config"])
    assert exit_info.value.code == 0
    printed = capsys.readouterr().out
    assert yaml.safe_load(printed)["model"]["name"] == "rnn"
    path = tmp_path / "printed.yaml"
    path.write_text(printed)
    cfg = parse_fit_config(["--config", str(path)])
    assert cfg.model.name == "rnn" and cfg.trainer["max_steps"] == 9


def test_fit_from_the_command_line(tracking_uri, client, capsys, tmp_path):
    assert main(["fit", *TINY, "--tracking_uri", tracking_uri]) == 0
    out = capsys.readouterr().out
    (run,) = client.search_runs([client.get_experiment_by_name("grubench").experiment_id])
    assert run.info.run_id in out and "final/val/mse" in out and "grubench ui" in out
    assert run.info.status == "FINISHED"
    # the logged config.yaml is a config file the CLI accepts as is, and gives the same config
    logged = client.download_artifacts(run.info.run_id, "config.yaml", str(tmp_path))
    again = parse_fit_config(["--config", logged])
    assert again.model == parse_fit_config(TINY).model and again.trainer["max_steps"] == 4


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--model.name", "gruu"],
            "unknown model 'gruu'; choose from: " + ", ".join(sorted(MODELS)),
        ),
        (["--task.name", "copy"], "unknown task 'copy'; choose from: adding"),
        (
            ["--optim.name", "adagrad"],
            "unknown optimizer 'adagrad'; choose from: adam, adamw, rmsprop, sgd",
        ),
        (["--model.hidden_size", "0"], "model.hidden_size must be positive, got 0"),
        (["--optim.lr", "-1"], "optim.lr must be positive, got -1"),
        (["--task.seq_len", "1"], "task.seq_len=1 is too short for adding"),
        (["--model.reset_after", "false"], "model.reset_after=False does not apply to torch_gru"),
        (["--model.init", "glorot"], "unknown init 'glorot'"),
        (["--trainer.accelerator", "tpu9"], "trainer:"),
        (
            ["--task.options", "{foo: 3}"],
            "task.options.foo: adding has no option 'foo'; valid options: (none)",
        ),
        (
            ["--task.eval_lengths", "[20, 1]"],
            "task.eval_lengths[1]: task.seq_len=1 is too short for adding",
        ),
    ],
)
def test_bad_option_fails_before_any_run(args, message, tracking_uri, tmp_path, capsys):
    assert main(["fit", *TINY, "--tracking_uri", tracking_uri, *args]) == 2
    err = capsys.readouterr().err
    assert message in err and err.startswith("grubench fit: error:")
    assert not (tmp_path / "store").exists()  # no store, so no run


def test_type_error_and_unknown_command(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["fit", "--model.hidden_size", "big"])
    assert exit_info.value.code == 2
    assert main(["train"]) == 2
    assert (
        "unknown command 'train'; choose from: fit, run, report, readme, list, ui"
        in capsys.readouterr().err
    )


@pytest.mark.system
def test_console_script_is_installed():
    out = subprocess.run(
        [sys.executable, "-m", "grubench", "--help"], capture_output=True, text=True, check=True
    ).stdout
    assert "grubench {fit,run,report,readme,list,ui}" in out


def test_run_passes_trainer_options_and_rejects_other_flags(tracking_uri, capsys):
    from grubench.cli.sweeps import _overrides

    assert _overrides(["--trainer.devices", "2", "--trainer.accelerator=cpu"], "x") == {
        "trainer": {"devices": 2, "accelerator": "cpu"}}  # fmt: skip
    with pytest.raises(SystemExit):
        _overrides(["--name", "lstm"], "grubench run")
    assert "unknown option --name (grubench run --help lists" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:
        main(["run", "experiments/none.py", "--tracking_uri", tracking_uri])
    assert exit_info.value.code == 2 and "no experiment file" in capsys.readouterr().err
    assert main(["run", "x.py", "--profile", "fast"]) == 2
    assert "--profile 'fast': choose from: quick, full" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("model:\n  name: [lstm\n", "cfg.yaml:3:1: malformed YAML: expected ',' or ']'"),
        (
            "model:\n  name: lstm\n  hiden_size: 3\n",
            "cfg.yaml:3: unknown option model.hiden_size; valid: ",
        ),
        ("seed: 1\nmodels:\n  name: lstm\n", "cfg.yaml:2: unknown key 'models'; valid: "),
        ("trainer:\n  max_step: 3\n", "cfg.yaml:2: unknown option trainer.max_step; valid: "),
        ("trainer:\n  logger: false\n", "cfg.yaml:2: unknown option trainer.logger; valid: "),
        ("- model\n", "cfg.yaml:1: expected a mapping of options"),
    ],
)
def test_config_file_errors_name_the_file_and_line(text, message, tmp_path, capsys):
    path = tmp_path / "cfg.yaml"
    path.write_text(text)
    assert main(["fit", "--config", str(path)]) == 2
    err = capsys.readouterr().err
    assert message in err and err.startswith("grubench fit: error: ")
    assert not (tmp_path / "mlruns").exists()  # nothing written to the default store


def test_fit_help_names_its_groups_in_words(capsys):
    """Each option group's title is a sentence, not a dataclass's generated signature."""
    assert main(["fit", "--help"]) == 0
    out = capsys.readouterr().out
    assert "Config(" not in out
    assert "The task and its data" in out and "The optimizer, its learning rate" in out


TINY_QUESTION = (
    "from grubench.sweeps.question import Question\n"
    "QUESTION = Question(name='tiny', text='?', arms={'gru': {}}, "
    "seeds={'quick': [0, 1], 'full': [0]})\n"
)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["fit", "--model.hidden_sise", "64"],
         "unknown option --model.hidden_sise; did you mean --model.hidden_size?"),
        (["fit", "--trainer.max_stepz=5"],
         "unknown option --trainer.max_stepz; did you mean --trainer.max_steps?"),
        (["fit", "--model.hidden_size", "big"], "--model.hidden_size: Expected a <class 'int'>"),
        (["run", "fit.yaml", "--dry-run"],
         "fit.yaml is a fit config, not a question file: train it with grubench fit --config "
         "fit.yaml"),
        (["report", "fit.yaml"], "train it with grubench fit --config fit.yaml"),
        (["run", "q.py", "--trainer.max_stepz", "5", "--dry-run"],
         "--trainer.max_stepz: not a lightning.Trainer option; did you mean --trainer.max_steps?"),
        (["run", "q.py", "--trainer.logger", "x", "--dry-run"],
         "trainer.logger is set by grubench itself and cannot be overridden (all 2 children)"),
        (["run", "q.py", "--trainer.accelerator", "tpu9", "--dry-run"], "(all 2 children)"),
        (["run", "q.py", "--dryrun"], "unknown option --dryrun; did you mean --dry-run?"),
        (["run", "q.py", "--model.hidden_size", "big"],
         "--model.hidden_size: Expected a <class 'int'>"),
        (["report", "q.py", "--task.seq_lem", "5"],
         "unknown option --task.seq_lem; did you mean --task.seq_len?"),
        (["report", "q.py", "--outt", "x"], "unknown option --outt; did you mean --out?"),
        (["ui", "--prot", "5001"], "unknown option --prot; did you mean --port?"),
        (["readme", "--profle", "full"], "unknown option --profle; did you mean --profile?"),
        (["--verison"], "unknown option '--verison'; did you mean --version? (a command comes"),
        (["rnu"], "unknown command 'rnu'; choose from: fit, run, report, readme, list, ui; did you "
         "mean run?"),
    ],
)  # fmt: skip
def test_a_wrong_input_is_one_line_and_exit_2(args, message, tracking_uri, tmp_path, capsys):
    (tmp_path / "fit.yaml").write_text("model:\n  name: lstm\n")
    (tmp_path / "q.py").write_text(TINY_QUESTION)
    argv = [*args, "--tracking_uri", tracking_uri] if args[0] in ("run", "report") else args
    try:
        code = main(argv)
    except SystemExit as exit_:  # argument parsers exit themselves
        code = exit_.code
    out, err = capsys.readouterr()
    assert code == 2, err
    assert message in err and err.count("\n") == 1, err  # one line, no usage dump
    assert not out
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fit.yaml", "q.py"]  # nothing written


def test_dry_run_checks_every_child_and_lists_the_plan(tracking_uri, tmp_path, capsys):
    (tmp_path / "q.py").write_text(TINY_QUESTION)
    assert main(["run", "q.py", "--dry-run", "--trainer.max_steps", "5",
                 "--tracking_uri", tracking_uri]) == 0  # fmt: skip
    out = capsys.readouterr().out
    assert out.startswith("tiny:quick: 2 children: 0 tuning, 2 evaluation")
    assert "gru" in out.splitlines()[1]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["q.py"]  # no store, no run
    assert main(["run", "q.py", "--dry_run", "--trainer.max_steps", "5",
                 "--tracking_uri", tracking_uri]) == 0  # fmt: skip
    assert capsys.readouterr().out == out  # either spelling
    # it reads the store: nothing of this sweep yet; after the sweep, every child finished
    assert out.splitlines()[-1] == (
        "tiny:quick: 2 children: 0 finished, 2 to run, no finished child to estimate the time from"
    )
    argv = ["q.py", "--trainer.max_steps", "5", "--tracking_uri", tracking_uri]
    assert main(["run", "--workers", "1", *argv]) == 0
    capsys.readouterr()
    assert main(["run", "--dry-run", *argv]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == (
        "tiny:quick: 2 children: 2 finished, 0 to run, nothing to run"
    )
    assert main(["run", "--dry-run", *argv[:-1], f"{tracking_uri}-none.db"]) == 0
    assert "0 finished, 2 to run" in capsys.readouterr().out


def test_list_shows_each_question_with_its_state_in_the_store(tracking_uri, tmp_path, capsys):
    questions = tmp_path / "questions"
    questions.mkdir()
    budget = "budgets={'quick': {'trainer': {'max_steps': 5}}}, "
    (questions / "a_done.py").write_text(
        TINY_QUESTION.replace("text='?', ", f"text='Done?', {budget}")
    )  # fmt: skip
    (questions / "b_new.py").write_text(
        TINY_QUESTION.replace("name='tiny'", "name='other'").replace("text='?'", "text='New?'")
    )  # fmt: skip
    base = ["--tracking_uri", tracking_uri]
    assert main(["run", str(questions / "a_done.py"), "--workers", "1", *base]) == 0
    capsys.readouterr()
    assert main(["list", "--experiments", str(questions), *base]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == f"quick profiles in {tracking_uri} (finished/children; time):"
    assert re.fullmatch(r"  a_done  2/2  \d+m\d\ds measured +Done\?", out[1]), out[1]
    assert re.fullmatch(r"  b_new   0/2  no measured time +New\?", out[2]), out[2]
    assert out[3].startswith("no measured time: ") and out[3].endswith(
        "README.md has no answers at a glance to read times from"
    )
    assert main(["list", "--experiments", str(tmp_path / "none"), *base]) == 2
    assert "no question files" in capsys.readouterr().err


def test_list_gives_an_unrun_question_the_time_its_readme_measured(
    tracking_uri, tmp_path, capsys, monkeypatch
):
    """Nothing in the store: the sweep's wall time as ``grubench readme`` wrote it into the
    README's answers at a glance (read back from what render_answers writes), or, without
    one, a plain "no measured time" with the reason."""
    from types import SimpleNamespace

    import grubench.answers.readme as readme_module
    from grubench.answers.readme import ANSWERS_END, ANSWERS_START, Published, render_answers

    questions = tmp_path / "experiments"
    questions.mkdir()
    (questions / "a_ran.py").write_text(TINY_QUESTION.replace("text='?'", "text='Ran?'"))
    (questions / "b_never.py").write_text(
        TINY_QUESTION.replace("name='tiny'", "name='other'").replace("text='?'", "text='Never?'")
    )  # fmt: skip
    monkeypatch.setattr(readme_module, "sentence", lambda report: "An answer.")

    def published(stem: str, seconds: float, missing: int = 0) -> Published:
        report = SimpleNamespace(seconds=seconds, missing=missing, profile="quick")
        question = SimpleNamespace(name=stem, text=f"{stem}?")
        return Published(questions / f"{stem}.py", question, report, [])

    block = render_answers([published("a_ran", 1_351.4), published("b_never", 0.0)],
                           tmp_path, None, tmp_path)  # fmt: skip
    assert "(`grubench run experiments/a_ran.py`: 22m31s here)" in block
    (tmp_path / "README.md").write_text(f"# x\n{ANSWERS_START}\n{block}{ANSWERS_END}\n")

    base = ["list", "--experiments", str(questions), "--tracking_uri", tracking_uri]
    assert main(base) == 0
    out = capsys.readouterr().out.splitlines()
    assert re.fullmatch(r"  a_ran    0/2  about 23 min on the reference machine \(README.md\)  Ran\?",
                        out[1]), out[1]  # fmt: skip
    assert re.fullmatch(r"  b_never  0/2  no measured time +Never\?", out[2]), out[2]
    assert out[3].startswith("on the reference machine: the sweep's wall time in ")
    assert out[4].startswith("no measured time: ") and out[4].endswith(
        "README.md records no finished quick sweep of b_never"
    )
    assert main([*base, "--profile", "full"]) == 0  # the README's times are of the quick sweeps
    out = capsys.readouterr().out.splitlines()
    assert "no measured time" in out[1] and "no measured time" in out[2]
    assert out[3].endswith("README.md records quick sweeps, not full")


@pytest.mark.unit
def test_the_committed_readme_gives_list_its_reference_times():
    from pathlib import Path

    from grubench.cli.sweeps import reference_times

    root = Path(__file__).resolve().parents[1]
    reference = reference_times(root / "README.md")
    assert reference.profile == "quick"
    assert reference.seconds and all(seconds > 0 for seconds in reference.seconds.values())
    assert set(reference.seconds) <= {path.stem for path in (root / "experiments").glob("*.py")}


@pytest.mark.unit
def test_the_dry_run_estimates_the_time_from_the_finished_children():
    from grubench.sweeps.runner import PlanStatus

    class Plan:
        sweep, total, workers = "q:quick", 10, 2

    assert PlanStatus(4, 6, 6 * 120 / 2).line(Plan()) == (
        "q:quick: 10 children: 4 finished, 6 to run, about 6 min with 2 at once"
    )
    assert PlanStatus(10, 0, 0.0).line(Plan()).endswith("0 to run, nothing to run")


@pytest.mark.unit
def test_a_flag_takes_either_spelling():
    from grubench.cli.ui import ui_parser

    dashes = ["--basic-auth", "--allowed-hosts", "h", "--experiment-name", "e",
              "--tracking-uri", "sqlite:///x.db"]  # fmt: skip
    underscores = ["--" + f[2:].replace("-", "_") if f.startswith("--") else f for f in dashes]
    assert vars(ui_parser().parse_args(dashes)) == vars(ui_parser().parse_args(underscores))


def test_report_writes_to_a_scratch_folder_unless_told(tracking_uri, client, tmp_path, capsys):
    """The default keeps the published experiments/results/ as they are; --out publishes."""
    (tmp_path / "questions").mkdir()
    question = tmp_path / "questions" / "q.py"
    question.write_text(TINY_QUESTION)
    client.create_experiment("grubench")  # a store, with no run of this question
    assert main(["report", str(question), "--tracking_uri", tracking_uri]) == 0
    assert sorted(p.name for p in (tmp_path / "reports" / "tiny").iterdir()) == ["tiny-quick.md"]
    assert sorted(p.name for p in (tmp_path / "questions").iterdir()) == ["q.py"]
    published = tmp_path / "questions" / "results"
    assert main(["report", str(question), "--out", str(published),
                 "--tracking_uri", tracking_uri]) == 0  # fmt: skip
    assert (published / "tiny-quick.md").is_file()
    assert "wrote " + str(published / "tiny-quick.md") in capsys.readouterr().out
