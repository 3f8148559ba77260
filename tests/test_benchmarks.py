"""The speed benchmarks run and print complete tables (tiny sizes; no timing is asserted)."""

from __future__ import annotations

import re
import runpy
from pathlib import Path

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


def test_bench_custom_gru_prints_every_layer_per_length_and_thread_count(capsys):
    _main("bench_custom_gru.py")(
        "--batch 2 --input 3 --hidden 4 --seq-len 5 7 --threads 1 2 --rounds 1 --warmup 0".split()
    )
    out = capsys.readouterr().out
    assert "matmul peak" in out and out.count("seq_len ") == 4
    rows = _rows(out)
    assert {"nn.GRU", "custom_gru (C++ BPTT)", "custom_gru (PyTorch BPTT)", "nn.LSTM"} <= set(rows)
    assert all(len(cells) == 4 for cells in rows.values())  # one row per (length, threads)
    for cells in rows["nn.GRU"]:
        assert cells[1] == "1.00x"
    for cells in (c for table in rows.values() for c in table):
        ms, ratio, gflops, peak = cells
        assert float(ms) > 0 and re.fullmatch(r"\d+\.\d\dx", ratio) and float(gflops) >= 0
        assert peak.endswith("%")


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
