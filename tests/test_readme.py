"""The README's FAQ block is what `grubench readme` writes from the store."""

import re
from pathlib import Path

import pytest

from grubench.answers.readme import FAQ_END, FAQ_START, faq_block
from grubench.cli import main
from grubench.sweeps.question import load_question

TIER = "integration"

ROOT = Path(__file__).resolve().parents[1]

QUESTION = '''"""Does a tiny GRU beat a tiny RNN?"""
from grubench.sweeps.question import Claim, Question, Tip

QUESTION = Question(
    name="tiny_readme", text="Does a tiny GRU beat a tiny RNN?",
    arms={"gru": {"model": {"name": "torch_gru"}}, "rnn": {"model": {"name": "rnn"}}},
    tune={"optim.lr": [1e-3, 1e-2]},
    base={"model": {"hidden_size": 8},
          "task": {"seq_len": 10, "batch_size": 16, "epoch_size": 3, "val_size": 32,
                   "test_size": 32},
          "trainer": {"max_steps": 3, "enable_progress_bar": False}},
    seeds={"quick": [0, 1], "full": [0]}, tuning_seeds={"quick": [9], "full": [9]},
    tips=[Tip("Gates help.", (Claim("gru", "rnn"),))],
)
'''


def test_readme_block_is_what_the_command_writes(tracking_uri, tmp_path, capsys):
    (tmp_path / "experiments").mkdir()
    question = tmp_path / "experiments" / "tiny_readme.py"
    question.write_text(QUESTION)
    readme = tmp_path / "README.md"
    before, after = "# title\n\nintro\n", "\n## after\n\nkept as it is\n"
    readme.write_text(f"{before}{FAQ_START}\nstale text\n{FAQ_END}{after}")
    assert main(["run", str(question), "--tracking_uri", tracking_uri]) == 0
    printed = capsys.readouterr().out
    # the sweep's parent run carries the printed table and verdict as its description
    from mlflow.tracking import MlflowClient

    from grubench.sweeps.children import sweep_runs

    client = MlflowClient(tracking_uri)
    found = client.get_experiment_by_name("tiny_readme")
    (parent,) = sweep_runs(client, found.experiment_id, "tiny_readme:quick", "parent")
    note = parent.data.tags["mlflow.note.content"]
    assert note.startswith("### Does a tiny GRU beat a tiny RNN?") and "**Verdict**" in note
    assert note in printed
    argv = ["readme", "--readme", str(readme), "--experiments", str(tmp_path / "experiments"),
            "--tracking_uri", tracking_uri]  # fmt: skip
    assert main(argv) == 0
    text = readme.read_text()
    assert text.startswith(f"{before}{FAQ_START}\n") and text.endswith(f"{FAQ_END}{after}")
    block = text.split(FAQ_START + "\n", 1)[1].split(FAQ_END, 1)[0]
    expected = faq_block([question], "quick", tmp_path / "experiments" / "results", tmp_path,
                         tracking_uri)  # fmt: skip
    assert block == expected
    assert "stale text" not in text
    assert "### Does a tiny GRU beat a tiny RNN?" in block
    # the sweep's measured wall time (minutes on a loaded machine, seconds on a free one)
    assert re.search(r"grubench run experiments/tiny_readme.py      # \d+m(\d\ds)? here", block)
    assert '- "Gates help." *too few seeds*: gru beats rnn on test score, P = ' in block
    assert "![tiny_readme-quick-curves](experiments/results/tiny_readme-quick-curves.png)" in block
    assert (tmp_path / "experiments" / "results" / "tiny_readme-quick-curves.png").is_file()
    # running it again on the same store writes the same block
    assert main(argv) == 0
    assert readme.read_text() == text


def test_readme_writes_the_answers_at_a_glance_and_the_docs_pages(tracking_uri, tmp_path):
    """The README's answers link to the FAQ on docs/answers.md; each page's links are
    relative to its own folder, the commands to the repository; the options go wherever
    their markers are."""
    from grubench.answers.docs import OPTIONS_END, OPTIONS_START, options_block
    from grubench.answers.readme import ANSWERS_END, ANSWERS_START

    experiments, docs = tmp_path / "experiments", tmp_path / "docs"
    experiments.mkdir(), docs.mkdir()
    (experiments / "tiny_readme.py").write_text(QUESTION)
    (experiments / "tiny_other.py").write_text(
        QUESTION.replace('name="tiny_readme"', 'name="tiny_other"')
        .replace("Does a tiny GRU beat a tiny RNN?", "Not run yet?")
    )  # fmt: skip
    readme = tmp_path / "README.md"
    readme.write_text(f"# top\n{ANSWERS_START}\nstale\n{ANSWERS_END}\nend\n")
    (docs / "answers.md").write_text(f"# answers\n{FAQ_START}\nstale\n{FAQ_END}\n")
    (docs / "usage.md").write_text(f"# usage\n{OPTIONS_START}\nstale\n{OPTIONS_END}\n")
    (docs / "plain.md").write_text("# no markers\n")
    assert main(["run", str(experiments / "tiny_readme.py"), "--tracking_uri", tracking_uri]) == 0
    argv = ["readme", "--readme", str(readme), "--experiments", str(experiments),
            "--tracking_uri", tracking_uri]  # fmt: skip
    assert main(argv) == 0
    answers = readme.read_text().split(ANSWERS_START + "\n", 1)[1].split(ANSWERS_END, 1)[0]
    first, second, _, total = answers.rstrip("\n").split("\n")
    assert first.startswith("- **[Not run yet?](docs/answers.md#tiny-other)** No test score")
    assert first.endswith("(`grubench run experiments/tiny_other.py`: not run into this store yet)")
    assert second.startswith(
        "- **[Does a tiny GRU beat a tiny RNN?](docs/answers.md#tiny-readme)**"
    )
    assert re.search(r"\(`grubench run experiments/tiny_readme.py`: \d+m\d\ds here\)$", second)
    assert re.fullmatch(r"The 1 finished quick sweeps in this store took \d+m\d\ds in all "
                        r"\(.+\); 1 not finished\.", total)  # fmt: skip
    faq = (docs / "answers.md").read_text()
    assert '<a id="tiny-readme"></a>' in faq and "stale" not in faq
    assert "grubench run experiments/tiny_readme.py      # " in faq
    assert "](../experiments/results/tiny_readme-quick-curves.png)" in faq
    usage = (docs / "usage.md").read_text()
    assert usage == f"# usage\n{OPTIONS_START}\n{options_block()}{OPTIONS_END}\n"
    assert (docs / "plain.md").read_text() == "# no markers\n"
    assert main(argv) == 0  # the same store writes the same pages
    assert (docs / "answers.md").read_text() == faq


def test_readme_command_errors(tmp_path, capsys):
    (tmp_path / "README.md").write_text("no markers\n")
    (tmp_path / "q").mkdir()
    assert main(["readme", "--readme", str(tmp_path / "nope.md")]) == 2
    assert "--readme" in capsys.readouterr().err
    assert main(["readme", "--readme", str(tmp_path / "README.md")]) == 2
    assert "no <!-- faq:start --> ... <!-- faq:end --> or <!-- answers:start -->" in (
        capsys.readouterr().err
    )
    (tmp_path / "README.md").write_text(f"{FAQ_START}\n{FAQ_END}\n")
    assert main(["readme", "--readme", str(tmp_path / "README.md"), "--experiments",
                 str(tmp_path / "q")]) == 2  # fmt: skip
    assert "no question files" in capsys.readouterr().err


@pytest.mark.unit
def test_the_repository_readme_holds_every_question():
    block = (ROOT / "docs" / "answers.md").read_text().split(FAQ_START, 1)[1].split(FAQ_END, 1)[0]
    for path in sorted((ROOT / "experiments").glob("*.py")):
        experiment = load_question(path)
        assert f"### {experiment.text}" in block, path.name
        for tip in experiment.tips:
            assert f'- "{tip.text}" ' in block, tip.text


def test_a_long_report_is_cut_at_a_line_in_the_run_description(tracking_uri):
    from mlflow.tracking import MlflowClient
    from mlflow.utils.validation import MAX_TAG_VAL_LENGTH

    from grubench.answers.publish import describe_parent

    client = MlflowClient(tracking_uri)
    run_id = client.create_run(client.create_experiment("long")).info.run_id
    lines = [f"| row {i} | {'x' * 60} |" for i in range(400)]
    describe_parent(client, run_id, "\n".join(lines))
    note = client.get_run(run_id).data.tags["mlflow.note.content"]
    assert len(note) <= MAX_TAG_VAL_LENGTH
    kept, tail = note.split("\n\n... (cut: ", 1)
    assert kept.split("\n") == lines[: len(kept.split("\n"))]  # whole lines only
    assert tail.startswith("`grubench report` writes the whole report")


@pytest.mark.unit
def test_the_readme_options_tables_are_the_definitions():
    """Generated from the models' option dataclasses, the task constructors and the shared
    settings (grubench.answers.docs): an option added anywhere shows up here or this test fails."""
    from grubench.answers.docs import OPTIONS_END, OPTIONS_START, options_block

    text = (ROOT / "docs" / "usage.md").read_text()
    block = text.split(OPTIONS_START + "\n", 1)[1].split(OPTIONS_END, 1)[0]
    assert block == options_block(), "run: grubench readme --options_only"


def test_readme_options_only_needs_no_store(tmp_path, capsys):
    from grubench.answers.docs import OPTIONS_END, OPTIONS_START, options_block

    readme = tmp_path / "README.md"
    readme.write_text(f"top\n{OPTIONS_START}\nstale\n{OPTIONS_END}\nbottom\n")
    assert main(["readme", "--readme", str(readme), "--options_only"]) == 0
    assert readme.read_text() == f"top\n{OPTIONS_START}\n{options_block()}{OPTIONS_END}\nbottom\n"
    (tmp_path / "plain.md").write_text("no markers\n")
    assert main(["readme", "--readme", str(tmp_path / "plain.md"), "--options_only"]) == 2
    assert "no <!-- options:start -->" in capsys.readouterr().err


@pytest.mark.unit
def test_a_sweep_under_way_is_in_progress_not_finished(tmp_path):
    from grubench.answers.readme import Published
    from grubench.answers.report import Report

    (tmp_path / "q.py").write_text(QUESTION)
    question = load_question(tmp_path / "q.py")

    def ran(missing, seconds):
        report = Report(question, "quick", [], missing, [], [], seconds)
        return Published(tmp_path / "q.py", question, report, []).ran()

    assert ran(["gru | seed=1"], 90.0) == "in progress: 1m30s so far here"
    assert ran([], 90.0) == "1m30s here"
    assert ran(["gru | seed=1"], 0.0) == "not run into this store yet"
