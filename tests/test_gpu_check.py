"""scripts/gpu_check.py, the script to run when a GPU is lent: its CPU-runnable parts run here
(tiny sizes), so it works the day a GPU comes."""

from __future__ import annotations

import runpy
from pathlib import Path

import mlflow

TIER = "integration"
ROOT = Path(__file__).resolve().parents[1]


def test_gpu_check_runs_its_parts_on_cpu(tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)  # the question path is the repository's
    script = runpy.run_path(str(ROOT / "scripts" / "gpu_check.py"))
    out, uri = tmp_path / "gpu_check.md", f"sqlite:///{tmp_path / 'mlflow.db'}"
    code = script["main"](["--device", "cpu", "--quick", "--rounds", "1", "--out", str(out),
                           "--tracking-uri", uri])  # fmt: skip
    text = out.read_text()
    assert code == 0, text
    assert "failed" not in text
    for title in ("## speed", "## fit", "## full child"):
        assert title in text
    assert "custom_gru / nn.GRU" in text and "min_gru / nn.GRU" in text
    assert "steps capped at 3" in text
    client = mlflow.MlflowClient(tracking_uri=uri)  # both fits logged, finished
    ids = [e.experiment_id for e in client.search_experiments()]
    runs = client.search_runs(ids)
    assert len(runs) == 2 and {r.info.status for r in runs} == {"FINISHED"}


def test_gpu_check_refuses_cuda_without_a_gpu(tmp_path, capsys):
    import pytest
    import torch

    if torch.cuda.is_available():
        pytest.skip("a GPU is here")
    script = runpy.run_path(str(ROOT / "scripts" / "gpu_check.py"))
    with pytest.raises(SystemExit) as exit_:
        script["main"](["--out", str(tmp_path / "x.md")])
    assert exit_.value.code == 2 and "no GPU here" in capsys.readouterr().err
