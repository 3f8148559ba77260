"""Forward + backward speed of every recurrent layer grubench trains, against nn.GRU.

Run from the repository root (CPU by default; the README's table is this command's output)::

    python benchmarks/bench_custom_gru.py
    python benchmarks/bench_custom_gru.py --seq-len 256 --threads 2 --rounds 3   # quicker
    python benchmarks/bench_custom_gru.py --device cuda --threads 1   # against cuDNN's nn.GRU

For each sequence length and thread count, all implementations run in one process on the same
batch; every round times each of them once, in a rotated order, after ``--warmup`` untimed
rounds, so drift (other load, frequency) hits all alike. The table gives each one's median over
``--rounds``, its ratio to nn.GRU from the same rounds, and the arithmetic rate it achieved:
a GRU layer's forward + backward is 18·B·T·H·(I+H) floating-point operations (three gate
matmuls of 2·B·(I+H)·H each forward, twice that backward), an LSTM's 24·B·T·H·(I+H) and a
tanh RNN's 6·B·T·H·(I+H). For context the header gives the matmul rate this machine reaches on
a large square product with the same thread count. It only reports; it asserts nothing.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch
from torch import nn

from grubench.models.custom_gru import CustomGRU
from grubench.models.gru_bptt import load_extension

# name -> (constructor(I, H), matmul blocks per step: 3 for a GRU, 4 LSTM, 1 RNN)
IMPLEMENTATIONS: dict[str, tuple[Callable[[int, int], nn.Module], int]] = {
    "nn.GRU": (lambda i, h: nn.GRU(i, h, batch_first=True), 3),
    "custom_gru (C++ BPTT)": (lambda i, h: CustomGRU(i, h, batch_first=True, backend="cpp"), 3),
    "custom_gru (PyTorch BPTT)": (
        lambda i, h: CustomGRU(i, h, batch_first=True, backend="python"),
        3,
    ),
    "custom_gru (autograd)": (
        lambda i, h: CustomGRU(i, h, batch_first=True, backend="autograd"),
        3,
    ),
    "custom_gru relu": (lambda i, h: CustomGRU(i, h, batch_first=True, activation="relu"), 3),
    "custom_gru reset_before": (
        lambda i, h: CustomGRU(i, h, batch_first=True, reset_after=False),
        3,
    ),
    "custom_gru layer_norm": (lambda i, h: CustomGRU(i, h, batch_first=True, layer_norm=True), 3),
    "nn.LSTM": (lambda i, h: nn.LSTM(i, h, batch_first=True), 4),
    "nn.RNN tanh": (lambda i, h: nn.RNN(i, h, batch_first=True), 1),
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


def matmul_peak(device: torch.device, size: int = 2048, repeats: int = 5) -> float:
    """GFLOP/s of the best of ``repeats`` (size × size) @ (size × size) fp32 products."""
    a = torch.randn(size, size, device=device)
    b = torch.randn(size, size, device=device)
    a @ b  # warm-up
    best = min(time_once(lambda: a @ b, device) for _ in range(repeats))
    return 2 * size**3 / (best * 1e-3) / 1e9


def measure(
    names: list[str], args: argparse.Namespace, seq_len: int, device: torch.device
) -> dict[str, float]:
    """Median ms per forward + backward for each implementation, rounds interleaved."""
    torch.manual_seed(args.seed)
    modules = {name: IMPLEMENTATIONS[name][0](args.input, args.hidden).to(device) for name in names}
    x = torch.randn(args.batch, seq_len, args.input, device=device)
    times: dict[str, list[float]] = {name: [] for name in names}
    for round_ in range(args.warmup + args.rounds):
        shift = round_ % len(names)
        for name in names[shift:] + names[:shift]:
            ms = time_once(lambda m=modules[name]: step(m, x), device)
            if round_ >= args.warmup:
                times[name].append(ms)
    return {name: statistics.median(t) for name, t in times.items()}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--input", type=int, default=8)
    parser.add_argument("--hidden", type=int, default=128)
    parser.add_argument("--seq-len", type=int, nargs="+", default=[256, 1024])
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--only", nargs="+", choices=list(IMPLEMENTATIONS), help="a subset (nn.GRU is kept)"
    )
    args = parser.parse_args(argv)

    device = torch.device(args.device)
    names = list(IMPLEMENTATIONS)
    if args.only:
        names = [n for n in names if n == "nn.GRU" or n in args.only]
    if device.type != "cpu" or load_extension() is None:
        names.remove("custom_gru (C++ BPTT)")  # CPU only; auto falls back to the PyTorch loops
    print(
        f"forward+backward, batch {args.batch}, input {args.input}, hidden {args.hidden}, "
        f"median of {args.rounds} rounds after {args.warmup} warm-up, {args.device}, "
        f"torch {torch.__version__}, CPU capability {torch.backends.cpu.get_cpu_capability()}"
    )
    for threads in args.threads:
        torch.set_num_threads(threads)
        peak = matmul_peak(device)
        for seq_len in args.seq_len:
            medians = measure(names, args, seq_len, device)
            print(
                f"\nseq_len {seq_len}, {threads} thread(s); "
                f"matmul peak {peak:.0f} GFLOP/s (2048² fp32)\n"
            )
            print("| implementation | median ms | vs nn.GRU | GFLOP/s | % of matmul peak |")
            print("| --- | ---: | ---: | ---: | ---: |")
            for name in names:
                blocks = IMPLEMENTATIONS[name][1]
                flops = 6 * blocks * args.batch * seq_len * args.hidden * (args.input + args.hidden)
                rate = flops / (medians[name] * 1e-3) / 1e9
                print(
                    f"| {name} | {medians[name]:.1f} | "
                    f"{medians[name] / medians['nn.GRU']:.2f}x | {rate:.1f} | "
                    f"{100 * rate / peak:.0f}% |",
                    flush=True,
                )


if __name__ == "__main__":
    main()
