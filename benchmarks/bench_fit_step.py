"""Does the custom GRU's speed reach training? Real fits against the bare model step.

Run from the repository root::

    python benchmarks/bench_fit_step.py                      # copy_memory T=256, B=64, H=128
    python benchmarks/bench_fit_step.py --task adding --flush-denormal
    python benchmarks/bench_fit_step.py --seq-len 1024 --steps 20

For each GRU (nn.GRU, and custom_gru on each backend) it measures, in one process:

- **bare step**: the same model, batch, loss and Adam update as a fit, outside Lightning
  (median of ``--rounds`` × 5 steps, implementations interleaved);
- **fit step**: a real ``grubench`` fit (Lightning Trainer, torchmetrics, MLflow logging into a
  temporary store) of ``--steps`` steps, reading its ``time_per_step_ms`` (median wall time of a
  training batch, data loading excluded) and its whole training wall time per step (data,
  logging and the end-of-run validation included);
- **data**: generating one training batch.

Fit step − bare step is what Lightning and the logging add per step; the ratios to nn.GRU show
how much of the layer's speed-up survives. It only reports.

On the adding problem only the last step has a loss, so ∂L/∂h_t shrinks going back in time
until it is subnormal (below 1.2e-38 in float32), and CPU arithmetic on subnormal floats is
many times slower: ``--flush-denormal`` calls ``torch.set_flush_denormal(True)`` before any
thread starts (subnormals become 0) to measure the difference.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import torch

from grubench.models import ModelConfig, build_model
from grubench.tasks import batch_generator, build_task
from grubench.training.config import FitConfig, quiet_lightning
from grubench.training.data import TaskConfig
from grubench.training.fit import run_fit
from grubench.training.module import OptimConfig

MODELS = {
    "nn.GRU": ModelConfig(name="torch_gru"),
    "custom_gru (C++ BPTT)": ModelConfig(name="custom_gru", backend="cpp"),
    "custom_gru (PyTorch BPTT)": ModelConfig(name="custom_gru", backend="python"),
    "custom_gru (autograd)": ModelConfig(name="custom_gru", backend="autograd"),
}


def bare_steps(configs: dict[str, ModelConfig], args: argparse.Namespace) -> dict[str, float]:
    """Median ms of forward + loss + backward + Adam step, outside Lightning."""
    task = build_task(args.task, args.seq_len)
    inputs, targets = task.generate(args.batch, batch_generator(0, "train", 0), train=True)
    setups = {}
    for name, cfg in configs.items():
        torch.manual_seed(0)
        model = build_model(cfg, task.input_size, task.output_size, task.output_mode, args.seq_len)
        setups[name] = (model, torch.optim.Adam(model.parameters(), lr=1e-3))
    times: dict[str, list[float]] = {name: [] for name in configs}
    for round_ in range(1 + args.rounds):
        for name, (model, optimizer) in setups.items():
            for _ in range(5):
                start = time.perf_counter()
                optimizer.zero_grad()
                task.loss(model(inputs), targets).backward()
                optimizer.step()
                if round_:  # the first round warms up
                    times[name].append((time.perf_counter() - start) * 1e3)
    return {name: statistics.median(values) for name, values in times.items()}


def data_ms(args: argparse.Namespace) -> float:
    task = build_task(args.task, args.seq_len)
    times = []
    for index in range(20):
        start = time.perf_counter()
        task.generate(args.batch, batch_generator(0, "train", index), train=True)
        times.append((time.perf_counter() - start) * 1e3)
    return statistics.median(times)


def fit_steps(
    configs: dict[str, ModelConfig], args: argparse.Namespace
) -> dict[str, tuple[float, float]]:
    """(median training-batch ms, training wall ms per step) of a real fit per model."""
    results: dict[str, tuple[float, float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        uri = f"sqlite:///{Path(tmp) / 'mlflow.db'}"
        for name, cfg in configs.items():
            fit = FitConfig(
                model=cfg,
                task=TaskConfig(
                    name=args.task,
                    seq_len=args.seq_len,
                    batch_size=args.batch,
                    val_size=args.batch,
                    test_size=args.batch,
                ),
                optim=OptimConfig(lr=1e-3),
                trainer={
                    "max_steps": args.steps,
                    "enable_progress_bar": False,
                    "log_every_n_steps": 10,
                },
                tracking_uri=uri,
                test=False,
                flush_denormal=args.flush_denormal,  # as the bare step: kept unless asked
            )
            with quiet_lightning():
                metrics = run_fit(fit).metrics
            results[name] = (
                metrics["time_per_step_ms"],
                1e3 * metrics["wall_time_s"] / metrics["steps"],
            )
    return results


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", default="copy_memory", choices=["copy_memory", "adding"])
    parser.add_argument("--flush-denormal", action="store_true")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--hidden", type=int, default=128)
    parser.add_argument("--seq-len", type=int, default=256)
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    if args.flush_denormal and not torch.set_flush_denormal(True):
        parser.error("--flush-denormal: this CPU cannot flush subnormal floats")
    torch.set_num_threads(args.threads)

    configs = {name: replace(cfg, hidden_size=args.hidden) for name, cfg in MODELS.items()}
    bare = bare_steps(configs, args)
    fits = fit_steps(configs, args)
    data = data_ms(args)
    print(
        f"{args.task} T={args.seq_len}, batch {args.batch}, hidden {args.hidden}, Adam, "
        f"subnormals {'flushed' if args.flush_denormal else 'kept'}, "
        f"{args.threads} threads; bare: median of {5 * args.rounds} steps; fit: "
        f"{args.steps} steps; data: {data:.2f} ms per batch\n"
    )
    print(
        "| model | bare step ms | vs nn.GRU | fit step ms | vs nn.GRU | fit − bare ms "
        "| fit wall ms/step | vs nn.GRU |"
    )
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for name in configs:
        step, wall = fits[name]
        print(
            f"| {name} | {bare[name]:.1f} | {bare[name] / bare['nn.GRU']:.2f}x | {step:.1f} | "
            f"{step / fits['nn.GRU'][0]:.2f}x | {step - bare[name]:.1f} | {wall:.1f} | "
            f"{wall / fits['nn.GRU'][1]:.2f}x |"
        )


if __name__ == "__main__":
    main()
