"""Every recurrent arm on grubench's engine against torch's implementation of the same arm.

Run from the repository root on free cores (benchmarks/results/engine.md is this output)::

    python benchmarks/bench_engine.py
    python benchmarks/bench_engine.py --hidden 64 --seq-len 150 --threads 1 --rounds 3

The arms come from the registry (grubench.models.MODELS): for each model whose builder takes a
``backend`` or ``scan`` option, the engine's setting and torch's (custom_gru against ``nn.GRU``,
the registry's ``torch_gru``; lstm and rnn ``backend=cpp`` against ``backend=torch``, which is
``nn.LSTM``'s oneDNN path and ``nn.RNN``'s ATen path; min_gru and min_lstm ``scan=sequential``,
the compiled loop, against ``scan=parallel``, the paper's log-space scan in torch ops). For each
size all of them run in one process on the same batch, each round timing every row once in a
rotated order, so drift and other load hit all alike. Two measures:

- **fwd+bwd**: one layer's forward and backward (``output.sum().backward()``);
- **train step**: the adding problem's whole step as a fit runs it: the model with its output
  head, the loss, backward, gradient clipping and an Adam update.

The ratio is the engine's median over torch's; the last column is each arm's train step over
the engine's GRU's (an architecture comparison on one engine). GFLOP/s counts the matmuls of fwd+bwd
(3 × 2·B·T·weights) against this machine's sgemm rate on a 2048² product at the same thread
count (the best of 20 products before and after the rows: other load only lowers it). It
only reports; it asserts nothing.
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

from grubench.models import MODELS, ModelConfig, build_model
from grubench.models.gru_bptt import load_extension, subnormals_flushed
from grubench.tasks import batch_generator, build_task
from grubench.training.config import FitConfig
from grubench.training.data import TaskConfig  # (these paths work on older trees too:
from grubench.training.module import OptimConfig, build_optimizer  # train_steps.py's use)

# arm -> ((model, options) on grubench's engine, (model, options) on torch's)
ARMS: dict[str, tuple[tuple[str, dict], tuple[str, dict]]] = {
    "gru": (("custom_gru", {}), ("torch_gru", {})),
    "lstm": (("lstm", {"backend": "cpp"}), ("lstm", {"backend": "torch"})),
    "rnn": (("rnn", {"backend": "cpp"}), ("rnn", {"backend": "torch"})),
    "min_gru": (("min_gru", {"scan": "sequential"}), ("min_gru", {"scan": "parallel"})),
    "min_lstm": (("min_lstm", {"scan": "sequential"}), ("min_lstm", {"scan": "parallel"})),
}
assert {m for pair in ARMS.values() for m, _ in pair} == set(MODELS), "an arm per model"


def time_ms(fn: Callable[[], None]) -> float:
    start = time.perf_counter()
    fn()
    return (time.perf_counter() - start) * 1e3


def sgemm_rate(size: int = 2048, repeats: int = 20) -> float:
    """The best of ``repeats`` products: a peak, which other load can only lower (the table
    takes the best of this before and after its rows)."""
    a, b = torch.randn(size, size), torch.randn(size, size)
    a @ b
    return 2 * size**3 / (min(time_ms(lambda: a @ b) for _ in range(repeats)) * 1e-3) / 1e9


def layer_step(module: nn.Module, x: torch.Tensor) -> Callable[[], None]:
    def step() -> None:
        for p in module.parameters():
            p.grad = None
        module(x)[0].sum().backward()

    return step


def train_step(name: str, options: dict, hidden: int, seq_len: int, batch: int) -> Callable:
    """The adding problem's step at ``batch``, Adam at 1e-3, the norm clipped at 1."""
    return config_step(FitConfig(
        model=ModelConfig(name=name, hidden_size=hidden, **options),
        task=TaskConfig(name="adding", seq_len=seq_len, batch_size=batch),
        optim=OptimConfig(lr=1e-3, grad_clip=1.0),
    ))  # fmt: skip


def config_step(cfg: FitConfig, batches: int = 1) -> Callable[[], None]:
    """One training step of ``cfg`` as its fit runs it, less Lightning's logging and metrics
    (the same for every arm): the model (built under the run's seed) with its output head, the
    loss (with the L1 penalty, if any), backward, gradient clipping and the optimizer's update.
    The data are made beforehand: ``batches`` training batches, taken in turn."""
    task = build_task(cfg.task.name, cfg.task.seq_len, **cfg.task.options)
    data = [task.generate(cfg.task.batch_size, batch_generator(cfg.seed, "train", i), train=True)
            for i in range(batches)]  # fmt: skip
    torch.manual_seed(cfg.seed)
    model = build_model(cfg.model, task.input_size, task.output_size, task.output_mode,
                        task.seq_len)  # fmt: skip
    optimizer = build_optimizer(cfg.optim, model.parameters())
    l1_weights = [p for n, p in model.named_parameters() if "weight" in n and p.ndim > 1]
    clip, turn = cfg.optim.grad_clip, [0]

    def step() -> None:
        x, y = data[turn[0] % batches]
        turn[0] += 1
        optimizer.zero_grad()
        loss = task.loss(model(x), y)
        if cfg.optim.l1 > 0:
            loss = loss + cfg.optim.l1 * sum(w.abs().sum() for w in l1_weights)
        loss.backward()
        if clip > 0 and cfg.optim.grad_clip_algorithm == "norm":
            nn.utils.clip_grad_norm_(model.parameters(), clip)
        elif clip > 0:
            nn.utils.clip_grad_value_(model.parameters(), clip)
        optimizer.step()

    return step


def rounds_ms(
    steps: dict[str, Callable[[], None]], rounds: int, warmup: int, repeat: int = 1
) -> dict[str, list[float]]:
    """Per round, each step's ms (the mean of ``repeat`` calls in a row), every step once a
    round in an order rotated by one each round, after ``warmup`` rounds that are not kept."""
    names = list(steps)
    times: dict[str, list[float]] = {n: [] for n in names}
    for round_ in range(warmup + rounds):
        shift = round_ % len(names)
        for name in names[shift:] + names[:shift]:
            step = steps[name]
            start = time.perf_counter()
            for _ in range(repeat):
                step()
            ms = (time.perf_counter() - start) * 1e3 / repeat
            if round_ >= warmup:
                times[name].append(ms)
    return times


def measure(steps: dict[str, Callable[[], None]], rounds: int, warmup: int) -> dict[str, float]:
    return {n: statistics.median(t) for n, t in rounds_ms(steps, rounds, warmup).items()}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--input", type=int, default=2, help="the adding problem's")
    parser.add_argument("--hidden", type=int, nargs="+", default=[32, 64, 128])
    parser.add_argument("--seq-len", type=int, nargs="+", default=[50, 256])
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=1)
    argv = sys.argv[1:] if argv is None else argv
    args = parser.parse_args(argv)
    if load_extension() is None:
        parser.error("the compiled loops are not available here: nothing to compare")
    print(f"`{shlex.join(['python', 'benchmarks/bench_engine.py', *argv])}`\n")
    print(f"batch {args.batch}, input {args.input}, median of {args.rounds} rounds after "
          f"{args.warmup} warm-up, subnormals flushed, torch {torch.__version__}, CPU "
          f"capability {torch.backends.cpu.get_cpu_capability()}\n")  # fmt: skip
    print("| arm | threads | H | T | engine fwd+bwd ms | vs torch's | GFLOP/s | % of sgemm "
          "| engine train step ms | vs torch's | vs the engine's gru |")  # fmt: skip
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    peaks, rows = {}, []
    with subnormals_flushed(True):
        for threads in args.threads:
            torch.set_num_threads(threads)
            peak = sgemm_rate()
            for hidden in args.hidden:
                for seq_len in args.seq_len:
                    x = torch.randn(args.batch, seq_len, args.input)
                    layers, trains = {}, {}
                    for arm, sides in ARMS.items():
                        for side, (name, options) in zip(("engine", "torch"), sides):
                            torch.manual_seed(0)
                            module = MODELS[name].build(args.input, hidden, 1, 0.0, **options)
                            layers[arm, side] = layer_step(module, x)
                            trains[arm, side] = train_step(name, options, hidden, seq_len,
                                                           args.batch)  # fmt: skip
                    layer_ms = measure(layers, args.rounds, args.warmup)
                    train_ms = measure(trains, args.rounds, args.warmup)
                    rows.append((threads, hidden, seq_len, layer_ms, train_ms))
            peaks[threads] = max(peak, sgemm_rate())
    for threads, hidden, seq_len, layer_ms, train_ms in rows:
        for arm, ((name, _), _) in ARMS.items():
            weights = MODELS[name].layout.parameter_count(args.input, hidden, False)
            ms, train = layer_ms[arm, "engine"], train_ms[arm, "engine"]
            per_gru = train / train_ms["gru", "engine"]
            rate = 3 * 2 * args.batch * seq_len * weights / (ms * 1e-3) / 1e9
            print(
                f"| {arm} | {threads} | {hidden} | {seq_len} | {ms:.2f} | "
                f"{ms / layer_ms[arm, 'torch']:.2f}x | {rate:.1f} | "
                f"{100 * rate / peaks[threads]:.0f}% | {train:.2f} | "
                f"{train / train_ms[arm, 'torch']:.2f}x | {per_gru:.2f}x |"
            )
    rates = ", ".join(f"{rate:.0f} GFLOP/s with {n} thread(s)" for n, rate in peaks.items())
    print(f"\nsgemm on a 2048² product: {rates}")


if __name__ == "__main__":
    main()
