"""The speed benchmarks run and print complete tables (tiny sizes; no timing is asserted)."""

from __future__ import annotations

import re
import runpy
from pathlib import Path

from grubench.models import MODELS

TIER = "integration"

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"


def _main(script: str):
    return runpy.run_path(str(BENCHMARKS / script), run_name="benchmark")["main"]


def _rows(out: str) -> dict[str, list[str]]:
    rows = {}
    for line in out.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("| ") and not cells[0].startswith(("implementation", "model", "---")):
            rows.setdefault(cells[0], []).append(cells[1:])
    return rows


def test_bench_custom_gru_prints_every_model_per_length_and_thread_count(capsys):
    argv = "--batch 2 --input 3 --hidden 4 --seq-len 5 7 --threads 1 2 --rounds 1 --warmup 0"
    _main("bench_custom_gru.py")(argv.split())
    out = capsys.readouterr().out
    assert out.startswith(f"`python benchmarks/bench_custom_gru.py {argv}`")  # how to regenerate
    assert "matmul peak" in out and out.count("seq_len ") == 4
    rows = _rows(out)
    assert set(MODELS) <= set(rows)  # every registered model, the day it is registered
    assert {"custom_gru backend=python", "min_gru scan=sequential"} <= set(rows)
    assert all(len(cells) == 4 for cells in rows.values())  # one row per (length, threads)
    for cells in rows["torch_gru"]:
        assert cells[1] == "1.00x"
    for cells in (c for table in rows.values() for c in table):
        ms, ratio, gflops, peak = cells
        assert float(ms) > 0 and re.fullmatch(r"\d+\.\d\dx", ratio) and float(gflops) >= 0
        assert peak.endswith("%")


def test_bench_custom_gru_only_keeps_the_baseline(capsys):
    _main("bench_custom_gru.py")(
        "--batch 2 --input 1 --hidden 4 --seq-len 5 --threads 1 --rounds 1 --warmup 0 "
        "--only min_gru min_lstm".split()
    )
    assert set(_rows(capsys.readouterr().out)) == {"torch_gru", "min_gru", "min_lstm"}


def test_bench_fit_step_compares_bare_and_fit_steps(capsys):
    _main("bench_fit_step.py")("--batch 4 --hidden 4 --seq-len 6 --steps 3 --rounds 1".split())
    out = capsys.readouterr().out
    rows = _rows(out)
    assert set(rows) == {
        "nn.GRU",
        "custom_gru (C++ BPTT)",
        "custom_gru (PyTorch BPTT)",
        "custom_gru (autograd)",
    }
    for (cells,) in rows.values():
        assert len(cells) == 7 and all(float(c.rstrip("x")) == float(c.rstrip("x")) for c in cells)
    assert "data:" in out and "ms per batch" in out


def test_bench_engine_prints_every_arm_on_both_engines(capsys):
    argv = "--batch 2 --hidden 4 --seq-len 5 --threads 1 --rounds 1 --warmup 0"
    _main("bench_engine.py")(argv.split())
    out = capsys.readouterr().out
    assert out.startswith(f"`python benchmarks/bench_engine.py {argv}`")
    rows = _rows(out)
    assert set(rows) == {"gru", "lstm", "rnn", "min_gru", "min_lstm", "arm"}
    for arm in ("gru", "lstm", "rnn", "min_gru", "min_lstm"):
        ((threads, hidden, seq_len, ms, ratio, gflops, peak, train, train_ratio, per_gru),) = rows[
            arm
        ]
        assert (threads, hidden, seq_len) == ("1", "4", "5") and float(ms) > 0 < float(train)
        assert re.fullmatch(r"\d+\.\d\dx", ratio) and re.fullmatch(r"\d+\.\d\dx", train_ratio)
        assert float(gflops) >= 0 and peak.endswith("%")
    assert rows["gru"][0][-1] == "1.00x"
    assert "sgemm on a 2048² product: " in out


def test_train_steps_prints_every_registered_arm(capsys):
    _main("train_steps.py")("--sizes 4x5 --rounds 2 --steps 1".split())
    out = capsys.readouterr().out
    header = next(line for line in out.splitlines() if line.startswith("| H |"))
    assert header.strip("| ").split(" | ")[2:] == list(MODELS)
    ((*arms,),) = _rows(out)["4"]
    assert arms[0] == "5" and len(arms) == 1 + len(MODELS) and all(float(c) > 0 for c in arms[1:])
