"""The GPU check, prepared before a GPU is lent: run it once on the device machine and commit
its output file with the command.

    python scripts/gpu_check.py --out benchmarks/results/gpu_check.md          # on a GPU
    python scripts/gpu_check.py --device cpu --quick --out /tmp/gpu_check.md   # what CPU can run

Three parts, each written to ``--out`` as it finishes (a part that fails is written as its
one-line error, and the next part still runs):

1. **speed**: forward + backward of one layer, batch 64, each arm against ``nn.GRU`` on the
   same device (cuDNN on a GPU), all rows in one process, rounds interleaved: custom_gru (on
   CUDA its hand-written backward in PyTorch ops, ``backend="python"``), min_gru and min_lstm
   (``scan="auto"``: the log-space parallel scan off CPU), the LSTM for context (cuDNN's on both
   sides of nothing: torch's own on CUDA);
2. **fit**: a grubench fit on the device (Lightning Trainer, ``accelerator`` of the device),
   logged to an MLflow store (``--tracking-uri``, default ``./mlruns_gpu_check``);
3. **full child**: the first child of a question's ``full`` profile (``--question``), run as the
   sweep runs it, into the same store; ``--child-steps`` caps its steps (the cap is written in
   the output).

``--quick`` shrinks every part (tiny sizes, a few steps) so that tests/test_gpu_check.py runs it
on CPU and the script does not rot.
"""

from __future__ import annotations

import argparse
import shlex
import statistics
import sys
import time
import traceback
from dataclasses import replace
from pathlib import Path

import torch

from grubench.models import MODELS, ModelConfig
from grubench.sweeps.question import load_question
from grubench.sweeps.runner import plan_sweep
from grubench.training.config import FitConfig, quiet_lightning
from grubench.training.data import TaskConfig
from grubench.training.fit import run_fit

ROWS = {  # label -> (model, options); the first is the baseline
    "torch_gru (nn.GRU)": ("torch_gru", {}),
    "custom_gru": ("custom_gru", {}),
    "min_gru": ("min_gru", {}),
    "min_lstm": ("min_lstm", {}),
    "lstm": ("lstm", {}),
}


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def speed(device: torch.device, sizes: list[tuple[int, int]], rounds: int) -> list[str]:
    lines = ["| H | T | " + " | ".join(f"{label} ms" for label in ROWS) + " | "
             + " | ".join(f"{label} / nn.GRU" for label in list(ROWS)[1:]) + " |"]  # fmt: skip
    lines.append("|" + " ---: |" * (2 + 2 * len(ROWS) - 1))
    for hidden, seq_len in sizes:
        torch.manual_seed(0)
        modules = {label: MODELS[name].build(8, hidden, 1, 0.0, **options).to(device)
                   for label, (name, options) in ROWS.items()}  # fmt: skip
        x = torch.randn(64, seq_len, 8, device=device)
        times: dict[str, list[float]] = {label: [] for label in ROWS}
        for round_ in range(rounds + 1):  # the first round warms up
            for label, module in modules.items():
                _sync(device)
                start = time.perf_counter()
                module(x)[0].sum().backward()
                _sync(device)
                if round_:
                    times[label].append((time.perf_counter() - start) * 1e3)
        ms = {label: statistics.median(t) for label, t in times.items()}
        base = ms["torch_gru (nn.GRU)"]
        lines.append(f"| {hidden} | {seq_len} | " + " | ".join(f"{ms[k]:.2f}" for k in ROWS)
                     + " | " + " | ".join(f"{ms[k] / base:.2f}x" for k in list(ROWS)[1:])
                     + " |")  # fmt: skip
    return lines


def _accelerator(device: torch.device) -> dict:
    return {"accelerator": "gpu" if device.type == "cuda" else "cpu", "devices": 1}


def _fit_line(result, seconds: float) -> str:
    metrics = result.metrics
    keys = ("steps", "time_per_step_ms", "val/score", "test/score")
    shown = ", ".join(
        f"{k} {metrics[k]:.4g}" for k in keys if isinstance(metrics.get(k), float | int)
    )
    return f"run `{result.run_id}` {result.status.value} {result.outcome}: {shown}; {seconds:.0f} s"


def fit(device: torch.device, uri: str, quick: bool) -> list[str]:
    steps = 5 if quick else 2000
    cfg = FitConfig(
        model=ModelConfig(name="custom_gru", hidden_size=16 if quick else 128),
        task=TaskConfig(name="adding", seq_len=20 if quick else 200, val_size=64, test_size=64),
        trainer={"max_steps": steps, "enable_progress_bar": False, **_accelerator(device)},
        tracking_uri=uri,
    )
    start = time.perf_counter()
    with quiet_lightning():
        result = run_fit(cfg)
    what = f"custom_gru H={cfg.model.hidden_size}, adding T={cfg.task.seq_len}, {steps} steps"
    return [f"{what} on {device}: " + _fit_line(result, time.perf_counter() - start)]


def full_child(device: torch.device, uri: str, question: str, cap: int | None) -> list[str]:
    plan = plan_sweep(load_question(question), "full")
    child = (plan.tuning or plan.evaluation)[0]
    trainer = {**child.config.trainer, **_accelerator(device), "enable_progress_bar": False}
    if cap is not None:
        trainer["max_steps"] = min(cap, trainer.get("max_steps", cap))
    cfg = replace(child.config, trainer=trainer, tracking_uri=uri)
    start = time.perf_counter()
    with quiet_lightning():
        result = run_fit(cfg)
    capped = f", steps capped at {cap}" if cap is not None else ""
    return [f"{question} full, child `{child.key}` on {device}{capped}: "
            + _fit_line(result, time.perf_counter() - start)]  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--out", required=True)
    parser.add_argument("--tracking-uri", default="./mlruns_gpu_check")
    parser.add_argument("--question", default="experiments/gru_vs_lstm.py")
    parser.add_argument("--child-steps", type=int, default=None)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--quick", action="store_true", help="tiny sizes: the tests' run")
    argv = sys.argv[1:] if argv is None else argv
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: no GPU here (use --device cpu --quick for the CPU parts)")
    sizes = [(8, 10)] if args.quick else [(64, 256), (128, 256), (128, 1024), (256, 1024)]
    cap = 3 if args.quick else args.child_steps
    out = Path(args.out)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    text = [f"`{shlex.join(['python', 'scripts/gpu_check.py', *argv])}`", "",
            f"{name}, torch {torch.__version__}, {time.strftime('%Y-%m-%d')}"]  # fmt: skip
    parts = {
        "speed (forward + backward, batch 64, input 8)": lambda: speed(device, sizes, args.rounds),
        "fit": lambda: fit(device, args.tracking_uri, args.quick),
        "full child": lambda: full_child(device, args.tracking_uri, args.question, cap),
    }
    failed = 0
    for title, part in parts.items():
        try:
            lines = part()
        except Exception as error:  # noqa: BLE001 - a part's failure is its result; go on
            failed += 1
            traceback.print_exc()
            lines = [f"failed: {type(error).__name__}: {error}".splitlines()[0]]
        text += ["", f"## {title}", "", *lines]
        out.write_text("\n".join(text) + "\n")
        print(f"{title}: done", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
