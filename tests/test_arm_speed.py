"""benchmarks/arm_speed.py on a tiny question (seconds; no timing asserted), the report
reading what it wrote, and ``grubench report`` writing the same files twice, byte for byte."""

from __future__ import annotations

import json
import math
import runpy
import statistics
from pathlib import Path

import pytest

from grubench.answers import speed as speeds
from grubench.answers.report import Cell, build_report
from grubench.cli import main
from grubench.sweeps.question import load_question

TIER = "integration"

SCRIPT = Path(__file__).resolve().parent.parent / "benchmarks" / "arm_speed.py"
ENGINES = {"grubench's engine", "oneDNN", "PyTorch ops"}

TINY = """
from grubench.sweeps.question import Claim, Question, Tip

QUESTION = Question(
    name="tiny_speed",
    text="Is the custom GRU faster than nn.GRU?",
    arms={"torch_gru": {"model": {"name": "torch_gru"}},
          "custom_gru": {"model": {"name": "custom_gru"}}},
    conditions={"T=5": {"task": {"seq_len": 5}}, "T=7": {"task": {"seq_len": 7}}},
    verdict_measures=("score", "ms_per_step"),
    base={"model": {"hidden_size": 4},
          "task": {"batch_size": 4, "epoch_size": 2, "val_size": 8, "test_size": 8},
          "optim": {"grad_clip": 1.0},
          "trainer": {"max_steps": 4, "enable_progress_bar": False}},
    seeds={"quick": [0, 1, 2, 3, 4], "full": [0]},
    tips=[Tip("The custom GRU is faster.",
              (Claim("custom_gru", "torch_gru", "ms_per_step"),))],
)
"""


def arm_speed(argv: list[str]) -> None:
    runpy.run_path(str(SCRIPT), run_name="benchmark")["main"](argv)


@pytest.fixture
def tiny_question(tmp_path) -> Path:
    path = tmp_path / "tiny_speed.py"
    path.write_text(TINY)
    return path


def test_the_script_measures_every_arm_per_condition_and_the_report_reads_it(
    tiny_question, tmp_path, monkeypatch, capsys
):
    out = tmp_path / "results" / "arm_speed.json"
    argv = [str(tiny_question), "--rounds", "6", "--warmup", "0", "--steps", "1",
            "--batches", "2", "--out", str(out)]  # fmt: skip
    arm_speed(argv)
    assert f"wrote {out}" in capsys.readouterr().out
    question = load_question(tiny_question)
    data = json.loads(out.read_text())
    entry = data["questions"]["tiny_speed:quick"]
    configs = speeds.speed_configs(question, "quick")
    assert list(entry["conditions"]) == ["T=5", "T=7"]
    for condition, cell in entry["conditions"].items():
        assert list(cell["arms"]) == ["torch_gru", "custom_gru"]
        for arm, record in cell["arms"].items():
            assert len(record["rounds_ms"]) == 6 and min(record["rounds_ms"]) > 0
            assert record["engine"] in ENGINES and record["params"] > 0
            assert record["settings_hash"] == speeds.settings_hash(configs[arm, condition])
    assert entry["conditions"]["T=5"]["arms"]["torch_gru"]["engine"] == "PyTorch ops"
    measured = entry["measured"]
    assert measured["command"].startswith("python benchmarks/arm_speed.py ")
    assert measured["threads"] == 1 and measured["rounds"] == 6
    assert {"cpu", "cores", "torch"} <= set(measured["machine"]) and measured["date"]
    table = out.with_suffix(".md").read_text()
    assert "| T=5 | custom_gru / torch_gru | " in table and "| T=7 | torch_gru | " in table

    monkeypatch.setattr(speeds, "ARTIFACT", out)
    report = build_report(question, "quick", f"sqlite:///{tmp_path / 'store.db'}")
    ((_, (tip,)),) = report.tips
    assert tip.label in ("supported", "contradicted", "no difference", "mixed")
    assert tip.speed is not None and not tip.tested


def test_a_second_question_keeps_the_first_ones_entry(tiny_question, tmp_path):
    out = tmp_path / "arm_speed.json"
    arm_speed([str(tiny_question), "--rounds", "6", "--warmup", "0", "--steps", "1",
               "--out", str(out)])  # fmt: skip
    other = tmp_path / "other.py"
    other.write_text(TINY.replace('name="tiny_speed"', 'name="other"'))
    arm_speed([str(other), "--rounds", "6", "--warmup", "0", "--steps", "1", "--out", str(out)])
    assert list(json.loads(out.read_text())["questions"]) == ["other:quick", "tiny_speed:quick"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--rounds", "5"], "--rounds 5: at least 6 give a 95% interval of the median"),
        (["--steps", "0"], "--warmup must be >= 0, --steps and --batches >= 1"),
        (["missing.py"], "no experiment file 'missing.py'"),
    ],
)
def test_bad_input_is_one_line(tiny_question, args, message, capsys):
    argv = args if args[0].endswith(".py") else [str(tiny_question), *args]
    with pytest.raises(SystemExit):
        arm_speed(argv)
    err = capsys.readouterr().err
    assert message in err and err.strip().splitlines()[-1].endswith(message)


def test_a_question_without_speed_claims_is_refused(tmp_path, capsys):
    path = tmp_path / "no_speed.py"
    path.write_text(TINY.replace('"ms_per_step"', '"score"'))
    with pytest.raises(SystemExit):
        arm_speed([str(path)])
    assert "compare no arms on time per step" in capsys.readouterr().err


def test_grubench_report_twice_writes_the_same_files_byte_for_byte(
    tiny_question, tmp_path, tracking_uri, monkeypatch
):
    """A real tiny sweep (5 seeds per arm and condition), the speed artifact measured, then
    the report twice: its Markdown and every plot identical, byte for byte."""
    out = tmp_path / "arm_speed.json"
    arm_speed([str(tiny_question), "--rounds", "6", "--warmup", "0", "--steps", "1",
               "--out", str(out)])  # fmt: skip
    monkeypatch.setattr(speeds, "ARTIFACT", out)
    assert main(["run", str(tiny_question), "--tracking_uri", tracking_uri]) == 0
    folders = [tmp_path / "first", tmp_path / "second"]
    for folder in folders:
        argv = ["report", str(tiny_question), "--out", str(folder), "--tracking_uri", tracking_uri]
        assert main(argv) == 0
    first, second = ({p.name: p.read_bytes() for p in sorted(f.iterdir())} for f in folders)
    assert list(first) == ["tiny_speed-quick-curves.png", "tiny_speed-quick-intervals.png",
                           "tiny_speed-quick.md"]  # fmt: skip
    assert first == second
    text = first["tiny_speed-quick.md"].decode()
    assert "time per step (controlled, benchmarks/results/arm_speed.json)" in text
    assert "not measured" not in text


BATCHES = """
from grubench.sweeps.question import Claim, Question, Tip

QUESTION = Question(
    name="tiny_batches",
    text="What batch size?",
    arms={"B=2": {"task": {"batch_size": 2}}, "B=8": {"task": {"batch_size": 8}}},
    verdict_measures=("score", "steps_to_solve", "samples_to_solve", "seconds_to_solve"),
    base={"model": {"name": "lstm", "hidden_size": 4}, "task": {"seq_len": 5}},
    tips=[Tip("Larger batches solve sooner.", (Claim("B=8", "B=2", "seconds_to_solve"),))],
)
"""


def test_a_question_on_seconds_to_solve_is_measured_beside_the_others(tiny_question, tmp_path):
    """Arms that differ in batch size only: each is timed at its own batch (another settings
    hash), the file keeps the other question's entry, and the table has the pair's ratio."""
    out = tmp_path / "arm_speed.json"
    tiny = ["--rounds", "6", "--warmup", "0", "--steps", "1", "--out", str(out)]
    arm_speed([str(tiny_question), *tiny])
    path = tmp_path / "tiny_batches.py"
    path.write_text(BATCHES)
    arm_speed([str(path), *tiny])
    data = json.loads(out.read_text())
    assert list(data["questions"]) == ["tiny_batches:quick", "tiny_speed:quick"]
    (cell,) = data["questions"]["tiny_batches:quick"]["conditions"].values()
    records = cell["arms"]
    assert [r["settings"]["task"]["batch_size"] for r in records.values()] == [2, 8]
    assert records["B=2"]["settings_hash"] != records["B=8"]["settings_hash"]
    assert "| – | B=8 / B=2 | " in out.with_suffix(".md").read_text()
    question = load_question(path)
    cells = [Cell(arm, "", run_ids=["0", "1"], steps=[10.0, math.inf]) for arm in question.arms]
    speeds.fill_timed(speeds.load(out), question, "quick", cells)
    for cell in cells:
        ms = statistics.median(records[cell.arm]["rounds_ms"])
        assert cell.values("seconds_to_solve") == [10 * ms / 1000, math.inf]
