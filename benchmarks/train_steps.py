"""One training step per registered arm, as a fit runs it, on whichever grubench is imported:
to compare two commits, run it on each (``PYTHONPATH`` picks the tree) on free cores.

The adding problem's step (the model with its output head, the loss, backward, gradient
clipping, an Adam update), batch 64, one thread, subnormals flushed; every arm's step in one
process, rounds interleaved in a rotated order; by default the median of 7 rounds of 5 steps
after a warm-up round. benchmarks/results/engine.md has its output before and after the
engine::

    git worktree add /tmp/before c62a36a
    PYTHONPATH=/tmp/before/src python benchmarks/train_steps.py   # before
    python benchmarks/train_steps.py                              # after
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

import torch

import grubench
from grubench.models import MODELS
from grubench.models.gru_bptt import subnormals_flushed

sys.path.insert(0, str(Path(__file__).resolve().parent))  # run as a script or by runpy
from bench_engine import rounds_ms, train_step  # noqa: E402 - bench_engine's step and rounds


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", nargs="+", default=["32x50", "64x150"], help="HIDDENxT")
    parser.add_argument("--rounds", type=int, default=8, help="the first warms up")
    parser.add_argument("--steps", type=int, default=5, help="per arm and round")
    args = parser.parse_args(argv)
    sizes = [tuple(int(n) for n in size.split("x")) for size in args.sizes]
    torch.set_num_threads(1)
    arms = list(MODELS)
    print(f"grubench from {grubench.__file__}; torch {torch.__version__}, 1 thread\n")
    print("| H | T | " + " | ".join(arms) + " |")
    print("| ---: | ---: |" + " ---: |" * len(arms))
    with subnormals_flushed(True):
        for hidden, seq_len in sizes:
            steps = {arm: train_step(arm, {}, hidden, seq_len, 64) for arm in arms}
            times = rounds_ms(steps, args.rounds - 1, 1, repeat=args.steps)  # 1 warms up
            cells = " | ".join(f"{statistics.median(times[arm]):.2f}" for arm in arms)
            print(f"| {hidden} | {seq_len} | {cells} |", flush=True)


if __name__ == "__main__":
    main()
