"""A full disk in the middle of a fit: one line naming the run and how to continue it, the
run's last checkpoint kept (a partial save removed), and ``grubench fit --resume`` finishing the
same run once space is freed. The store lives on a 3 MB tmpfs (mounting needs root; else the
test skips and says why)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from grubench.cli import main
from grubench.store.tracking import checkpoint_dir, get_client
from tests.faults import tiny_fit

TIER = "integration"

FIT = tiny_fit(seed=3, max_steps=300)


@pytest.fixture
def small_disk(tmp_path):
    mount = tmp_path / "small"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", str(mount)],
                          capture_output=True, text=True)  # fmt: skip
    if done.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here ({done.stderr.strip() or 'not root'})")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=False)


def fill(mount: Path, leave_kb: int) -> Path:
    """A file taking all but ``leave_kb`` of the filesystem's free space."""
    import os

    stat = os.statvfs(mount)
    free_kb = stat.f_bavail * stat.f_frsize // 1024
    filler = mount / "filler"
    with open(filler, "wb") as handle:
        handle.write(b"\0" * (max(0, free_kb - leave_kb) * 1024))
    return filler


def test_a_full_disk_is_one_line_and_resume_finishes_the_run(small_disk, capsys):
    uri = f"sqlite:///{small_disk / 'store' / 'mlflow.db'}"
    get_client(uri)  # the store's schema (about 1 MB), then all but 150 kB of the rest taken
    filler = fill(small_disk, 150)
    assert main(["fit", *FIT, "--tracking_uri", uri]) == 1
    err = capsys.readouterr().err
    (run,) = MlflowClient(uri).search_runs(["0", "1"])
    run_id = run.info.run_id
    lines = [line for line in err.splitlines() if "grubench fit" in line]
    assert len(lines) == 1 and "Traceback" not in err, err
    assert "no space left on the disk holding the store or its checkpoints" in lines[0]
    assert f"grubench fit --resume {run_id} --tracking_uri {uri}" in lines[0]
    assert run.info.status in ("FAILED", "RUNNING")
    checkpoints = checkpoint_dir(uri, run_id)
    assert (checkpoints / "last.ckpt").is_file()
    assert not list(checkpoints.glob(".*.partial"))  # a save that failed left nothing behind

    filler.unlink()  # space freed: the same run continues from its checkpoint
    assert main(["fit", "--resume", run_id, "--tracking_uri", uri]) == 0
    out = capsys.readouterr().out
    assert f"run {run_id}: FINISHED" in out
    (finished,) = MlflowClient(uri).search_runs(["0", "1"])
    assert finished.info.run_id == run_id and finished.data.metrics["steps"] == 300
