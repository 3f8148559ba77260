"""Overhead of the gradient-flow diagnostics: the same fit with and without the probe.

    python benchmarks/bench_diagnostics.py                       # adding T=100, every 250 steps
    python benchmarks/bench_diagnostics.py --every 50 --model lstm --seq-len 200

Both fits run in this process, alternating, into a temporary MLflow store; the table gives
each one's median fit wall time over ``--rounds`` and the ratio. It only reports.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from pathlib import Path

from grubench.models import ModelConfig
from grubench.training.config import FitConfig, quiet_lightning
from grubench.training.data import TaskConfig
from grubench.training.fit import run_fit


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="torch_gru")
    parser.add_argument("--hidden", type=int, default=64)
    parser.add_argument("--seq-len", type=int, default=100)
    parser.add_argument("--steps", type=int, default=500)
    parser.add_argument("--every", type=int, default=250, help="the probe's cadence in steps")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        uri = f"sqlite:///{Path(tmp) / 'mlflow.db'}"
        times: dict[str, list[float]] = {"off": [], f"every {args.every} steps": []}
        for _ in range(args.rounds):
            for label, every in (("off", 0), (f"every {args.every} steps", args.every)):
                cfg = FitConfig(
                    model=ModelConfig(name=args.model, hidden_size=args.hidden),
                    task=TaskConfig(seq_len=args.seq_len, val_size=256, test_size=256),
                    trainer={"max_steps": args.steps, "enable_progress_bar": False},
                    tracking_uri=uri,
                    test=False,
                    diagnostics_every_n_steps=every,
                    flush_denormal=False,  # the README's numbers: subnormals kept
                )
                with quiet_lightning():
                    times[label].append(run_fit(cfg).metrics["wall_time_s"])
    base = statistics.median(times["off"])
    print(f"{args.model} H={args.hidden}, adding T={args.seq_len}, {args.steps} steps, "
          f"median of {args.rounds} fits each (fit wall time, validation included)\n")  # fmt: skip
    print("| diagnostics | median s | vs off |\n| --- | ---: | ---: |")
    for label, values in times.items():
        median = statistics.median(values)
        print(f"| {label} | {median:.2f} | {median / base:.3f}x |")


if __name__ == "__main__":
    main()
