"""Forward + backward time of CustomGRU (both reset forms) against nn.GRU and nn.LSTM.

Run from the repository root (CPU by default, 2 threads)::

    python benchmarks/bench_custom_gru.py
    python benchmarks/bench_custom_gru.py --seq-len 1024 --hidden 256 --threads 4
    python benchmarks/bench_custom_gru.py --device cuda   # where a GPU is available

All implementations run in one process on the same batch. Every round times each of them
once, in a rotated order, after ``--warmup`` untimed rounds, so drift (thermal, other load)
hits all of them alike; the table gives each one's median over ``--rounds`` and its ratio to
nn.GRU (PyTorch's fused kernel: oneDNN/ATen on CPU, cuDNN on GPU). It only reports, it
asserts nothing.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch
from torch import nn

from grubench.models.custom_gru import CustomGRU


def build(args: argparse.Namespace) -> dict[str, nn.Module]:
    size = (args.input, args.hidden)
    return {
        "nn.GRU": nn.GRU(*size, batch_first=True),
        "CustomGRU reset_after": CustomGRU(*size, batch_first=True),
        "CustomGRU reset_before": CustomGRU(*size, batch_first=True, reset_after=False),
        "nn.LSTM": nn.LSTM(*size, batch_first=True),
    }


def step(module: nn.Module, x: torch.Tensor) -> None:
    """One training-style forward + backward (gradients for the parameters only)."""
    for p in module.parameters():
        p.grad = None
    output, _ = module(x)  # (B, T, H)
    output.sum().backward()


def time_once(fn: Callable[[], None], device: torch.device) -> float:
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    fn()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return (time.perf_counter() - start) * 1e3


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--input", type=int, default=8)
    parser.add_argument("--hidden", type=int, default=128)
    parser.add_argument("--seq-len", type=int, default=256)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    device = torch.device(args.device)
    modules = {name: m.to(device) for name, m in build(args).items()}
    x = torch.randn(args.batch, args.seq_len, args.input, device=device)

    names = list(modules)
    times: dict[str, list[float]] = {name: [] for name in names}
    for round_ in range(args.warmup + args.rounds):
        shift = round_ % len(names)
        for name in names[shift:] + names[:shift]:
            ms = time_once(lambda m=modules[name]: step(m, x), device)
            if round_ >= args.warmup:
                times[name].append(ms)

    medians = {name: statistics.median(t) for name, t in times.items()}
    print(
        f"forward+backward, batch {args.batch}, input {args.input}, hidden {args.hidden}, "
        f"seq_len {args.seq_len}, {args.rounds} rounds after {args.warmup} warm-up, "
        f"{args.device}, {args.threads} threads, torch {torch.__version__}\n"
    )
    print("| implementation | median ms | vs nn.GRU |")
    print("| --- | ---: | ---: |")
    for name in names:
        print(f"| {name} | {medians[name]:.1f} | {medians[name] / medians['nn.GRU']:.2f}x |")


if __name__ == "__main__":
    main()
