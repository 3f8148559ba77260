"""Batch generation throughput of every registered task, next to one GRU training step.

Run from the repository root (CPU, 2 threads by default)::

    python benchmarks/bench_tasks.py
    python benchmarks/bench_tasks.py --seq-len 4096 --batch 32 --threads 4

For each task at ``--seq-len`` (evaluation batches, ``train=False``, so that every batch has
the stated length; a variable-length task's training batches are shorter on average), each
round times one ``task.generate`` of a ``--batch`` batch and then one training step (forward,
backward and an Adam step) of a 1-layer ``nn.GRU`` with ``--hidden`` units and a linear head
on that very batch, in one process. After ``--warmup`` untimed rounds the table gives the
medians over ``--rounds``: generation time per batch and samples per second, the training
step's time, and their ratio, the share of a step that generating its batch on the fly would
add in a single process. It only reports, it asserts nothing.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from torch import nn

from grubench.tasks import TASKS, Task, batch_generator, build_task


class GRUModel(nn.Module):
    def __init__(self, task: Task, hidden: int) -> None:
        super().__init__()
        self.gru = nn.GRU(task.input_size, hidden, batch_first=True)
        self.head = nn.Linear(hidden, task.output_size)
        self.last = task.output_mode == "last"

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        outputs, _ = self.gru(inputs)  # (B, T, H)
        return self.head(outputs[:, -1] if self.last else outputs)


def milliseconds(start: float) -> float:
    return (time.perf_counter() - start) * 1e3


def bench(task: Task, args: argparse.Namespace) -> dict[str, float]:
    model = GRUModel(task, args.hidden)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    generate_ms, step_ms = [], []
    for round_ in range(args.warmup + args.rounds):
        start = time.perf_counter()
        inputs, targets = task.generate(args.batch, batch_generator(args.seed, "val", round_))
        generated = milliseconds(start)
        start = time.perf_counter()
        optimizer.zero_grad(set_to_none=True)
        task.loss(model(inputs), targets).backward()
        optimizer.step()
        stepped = milliseconds(start)
        if round_ >= args.warmup:
            generate_ms.append(generated)
            step_ms.append(stepped)
    gen, step = statistics.median(generate_ms), statistics.median(step_ms)
    return {"steps": inputs.shape[1], "gen": gen, "step": step}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--seq-len", type=int, default=1000)
    parser.add_argument("--hidden", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    print(
        f"batch {args.batch}, seq_len {args.seq_len}, GRU H={args.hidden}, "
        f"{args.threads} threads, median of {args.rounds} rounds, torch {torch.__version__}\n"
    )
    print(
        "| task | steps | input size | generation ms/batch | samples/s | "
        "GRU train step ms | generation / step |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|")
    for name in sorted(TASKS):
        cls = TASKS[name]  # a data set may fix its length (sequential_digits: 64)
        length = max(cls.min_seq_len(), min(args.seq_len, cls.max_seq_len() or args.seq_len))
        task = build_task(name, length)
        r = bench(task, args)
        print(
            f"| {name} | {r['steps']} | {task.input_size} | {r['gen']:.2f} | "
            f"{args.batch / r['gen'] * 1e3:,.0f} | {r['step']:.1f} | "
            f"{r['gen'] / r['step']:.3f} |"
        )


if __name__ == "__main__":
    main()
