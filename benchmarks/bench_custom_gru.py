"""Forward + backward speed of every registered model (grubench.models.MODELS) against nn.GRU.

Run from the repository root (CPU by default; the README's table is this command's output)::

    python benchmarks/bench_custom_gru.py
    python benchmarks/bench_custom_gru.py --seq-len 256 --threads 2 --rounds 3   # quicker
    python benchmarks/bench_custom_gru.py --device cuda --threads 1   # against cuDNN's nn.GRU
    python benchmarks/bench_custom_gru.py --only min_gru min_lstm --input 2 --threads 2

The rows are every model of the registry with its default options (one layer; a model added
to ``MODELS`` is benchmarked the day it is added), then ``VARIANTS``: other options of some of
them (custom_gru's backends and forms, minGRU's and minLSTM's sequential mode). For each
sequence length and thread count, all of them run in one process on the same batch; every
round times each of them once, in a rotated order, after ``--warmup`` untimed rounds, so drift
(other load, frequency) hits all alike. The table gives each one's median over ``--rounds``,
its ratio to nn.GRU (``torch_gru``) from the same rounds, and the arithmetic rate of its
matmuls: forward + backward is three times the forward's 2·B·T·(the layer's weight count)
floating-point operations, e.g. 18·B·T·H·(I+H) for a GRU, 24·B·T·H·(I+H) for an LSTM,
6·B·T·H·(I+H) for a tanh RNN, 12·B·T·H·I for minGRU (its gates read x_t only; the scan's
pointwise work is not counted). For context the header gives the matmul rate this machine
reaches on a large square product with the same thread count. It only reports; it asserts
nothing.
"""

from __future__ import annotations

import argparse
import shlex
import statistics
import sys
import time
from collections.abc import Callable

import torch
from torch import nn

from grubench.models import MODELS
from grubench.models.gru_bptt import load_extension

BASELINE = "torch_gru"  # nn.GRU

# label -> (registered model, options for its builder)
VARIANTS: dict[str, tuple[str, dict]] = {
    "custom_gru backend=python": ("custom_gru", {"backend": "python"}),
    "custom_gru backend=autograd": ("custom_gru", {"backend": "autograd"}),
    "custom_gru activation=relu": ("custom_gru", {"activation": "relu"}),
    "custom_gru reset_after=False": ("custom_gru", {"reset_after": False}),
    "custom_gru layer_norm=True": ("custom_gru", {"layer_norm": True}),
    "min_gru scan=sequential": ("min_gru", {"scan": "sequential"}),
    "min_lstm scan=sequential": ("min_lstm", {"scan": "sequential"}),
}
ROWS: dict[str, tuple[str, dict]] = {name: (name, {}) for name in MODELS} | VARIANTS


def build(label: str, input_size: int, hidden_size: int) -> nn.Module:
    """One batch-first layer of ``label``'s model, by its registry builder."""
    name, options = ROWS[label]
    return MODELS[name].build(input_size, hidden_size, 1, 0.0, **options)


def forward_flops(label: str, batch: int, seq_len: int, input_size: int, hidden: int) -> int:
    """2·B·T·(weights): every weight multiplies once per step and sample in the forward."""
    layout = MODELS[ROWS[label][0]].layout
    return 2 * batch * seq_len * layout.parameter_count(input_size, hidden, bias=False)


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
    """Median ms per forward + backward for each row, rounds interleaved."""
    torch.manual_seed(args.seed)
    modules = {name: build(name, args.input, args.hidden).to(device) for name in names}
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
        "--only", nargs="+", choices=list(ROWS), help=f"a subset ({BASELINE} is kept)"
    )
    argv = sys.argv[1:] if argv is None else argv
    args = parser.parse_args(argv)

    device = torch.device(args.device)
    names = [n for n in ROWS if n == BASELINE or not args.only or n in args.only]
    names.sort(key=lambda n: n != BASELINE)  # the baseline first
    compiled = device.type == "cpu" and load_extension() is not None
    command = shlex.join(["python", "benchmarks/bench_custom_gru.py", *argv])
    print(f"`{command}`")
    print(
        f"\nforward+backward of one layer, batch {args.batch}, input {args.input}, "
        f"hidden {args.hidden}, median of {args.rounds} rounds after {args.warmup} warm-up, "
        f"{args.device}, torch {torch.__version__}, "
        f"CPU capability {torch.backends.cpu.get_cpu_capability()}; custom_gru runs "
        f"{'the compiled C++ loops' if compiled else 'the PyTorch loops'} (backend auto)"
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
            print("| model | median ms | vs nn.GRU | GFLOP/s | % of matmul peak |")
            print("| --- | ---: | ---: | ---: | ---: |")
            for name in names:
                flops = 3 * forward_flops(name, args.batch, seq_len, args.input, args.hidden)
                rate = flops / (medians[name] * 1e-3) / 1e9
                print(
                    f"| {name} | {medians[name]:.1f} | "
                    f"{medians[name] / medians[BASELINE]:.2f}x | {rate:.1f} | "
                    f"{100 * rate / peak:.0f}% |",
                    flush=True,
                )


if __name__ == "__main__":
    main()
