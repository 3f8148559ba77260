"""Time per training step of each question's arms, measured side by side: the numbers the
report's time-per-step verdicts and tips read, and its seconds to solve (steps to solve × this
time per step; grubench.answers.speed).

Run from the repository root on free cores (nothing else running)::

    python benchmarks/arm_speed.py                     # every question that compares speed
    python benchmarks/arm_speed.py experiments/gru_vs_lstm.py --rounds 31

For every question whose verdicts or tips compare arms on ``ms_per_step`` or
``seconds_to_solve`` (or only the files named), each arm's model is built per condition at
the profile's settings, as its children train it (``speed_configs``: the first seed of the
first tuning point; the learning rate changes no step's work), and one whole training step
(forward, loss, backward, clipping, the optimizer's update: bench_engine's ``config_step``) is
timed for every arm of the condition in one process, on 1 torch thread: ``--warmup`` rounds,
then ``--rounds`` rounds of ``--steps`` steps per arm, the arms' order rotated each round so
drift hits all alike.
The engine each arm ran on (grubench's compiled loops, torch's oneDNN LSTM, or PyTorch ops one
at a time) is read from the kernels one step calls.

It writes ``--out`` (JSON: per question, condition and arm the per-round ms, the engine, the
settings' hash; the machine, torch, the date and this command; other questions' entries are
kept) and a Markdown table beside it (same name, .md) with each pair's ratio and verdict.
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import os
import platform
import shlex
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch
from torch.utils._python_dispatch import TorchDispatchMode

from grubench.answers import speed
from grubench.models import count_parameters
from grubench.models.gru_bptt import subnormals_flushed
from grubench.sweeps.question import Question, load_question, sweep_id

sys.path.insert(0, str(Path(__file__).resolve().parent))  # run as a script or by runpy
from bench_engine import config_step, rounds_ms  # noqa: E402 - the step bench_engine times

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / speed.SHOWN


class Kernels(TorchDispatchMode):
    """The ops a step dispatches, as ``namespace::name``."""

    def __init__(self) -> None:
        super().__init__()
        self.names: set[str] = set()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # noqa: ANN001, ANN204
        self.names.add(f"{func.namespace}::{func.__name__.split('.')[0]}")
        return func(*args, **(kwargs or {}))


def engine(kernels: set[str]) -> str:
    """Which implementation ran the recurrence, from the kernels of one step."""
    if any(name.startswith("grubench") for name in kernels):
        return "grubench's engine"
    if any("mkldnn_rnn" in name for name in kernels):
        return "oneDNN"
    return "PyTorch ops"


def machine() -> dict[str, object]:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "capability": torch.backends.cpu.get_cpu_capability(),
        "system": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "torch": torch.__version__,
    }


def commit() -> str:
    """HEAD, and whether the code measured (src/, benchmarks/) differs from it."""
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, text=True,
                              capture_output=True, check=True).stdout.strip()  # fmt: skip
        changed = subprocess.run(["git", "status", "--porcelain", "--", "src", "benchmarks"],
                                 cwd=ROOT, text=True, capture_output=True, check=True)  # fmt: skip
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return f"{head} with uncommitted changes" if changed.stdout.strip() else head


def cpu_seconds() -> tuple[float, float]:
    """(seconds every core was busy, this process's CPU seconds), to tell how much else ran."""
    try:
        fields = [int(v) for v in Path("/proc/stat").read_text().split("\n")[0].split()[1:]]
    except (OSError, ValueError):
        return math.nan, math.nan
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    own = os.times()
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK"), own.user + own.system


def pairs(question: Question) -> list[tuple[str, str]]:
    """The pairs the question compares on time (per step, or seconds to solve): its tips'
    claims' (as they say it), then its verdict's."""
    found = [(c.better, c.worse) for tip in question.tips for c in tip.claims
             if speed.reads_artifact(c.measure)]  # fmt: skip
    timed = any(speed.reads_artifact(m) for m in question.verdict_measures)
    found += list(question.pairs()) if timed else []
    unique: dict[frozenset, tuple[str, str]] = {}
    for a, b in found:
        unique.setdefault(frozenset((a, b)), (a, b))
    return list(unique.values())


def measure_question(question: Question, profile: str, args: argparse.Namespace) -> dict:
    configs = speed.speed_configs(question, profile)
    conditions: dict[str, dict] = {}
    for condition in question.conditions_for(profile):
        cells = {arm: configs[arm, condition] for arm in question.arms}
        flush = {cfg.flush_denormal for cfg in cells.values()}
        if len(flush) > 1:
            raise ValueError(f"{question.name}, {condition}: arms differ in flush_denormal")
        arms, steps = {}, {}
        with subnormals_flushed(flush.pop() is True):
            for arm, cfg in cells.items():
                steps[arm] = config_step(cfg, batches=args.batches)
                with Kernels() as kernels:  # one step: also the first warm-up
                    steps[arm]()
                arms[arm] = {"engine": engine(kernels.names),
                             "kernels": sorted(k for k in kernels.names
                                               if not k.startswith(("aten::", "prim::"))),
                             "settings_hash": speed.settings_hash(cfg),
                             "settings": speed.settings_key(cfg)}  # fmt: skip
            times = rounds_ms(steps, args.rounds, args.warmup, repeat=args.steps)
        for arm, record in arms.items():
            record["ms_per_step"] = round(statistics.median(times[arm]), 4)
            record["rounds_ms"] = [round(ms, 4) for ms in times[arm]]
        conditions[condition] = {"arms": arms}
        print(f"{question.name}, {condition or '–'}: " + ", ".join(
            f"{arm} {r['ms_per_step']:.2f} ms" for arm, r in arms.items()), flush=True)  # fmt: skip
    return {"question": question.name, "profile": profile, "conditions": conditions}


def params(question: Question, profile: str) -> dict[tuple[str, str], int]:
    """Each cell's parameter count (for the table only)."""
    from grubench.models import build_model
    from grubench.tasks import build_task

    counts = {}
    for (arm, condition), cfg in speed.speed_configs(question, profile).items():
        task = build_task(cfg.task.name, cfg.task.seq_len, **cfg.task.options)
        model = build_model(cfg.model, task.input_size, task.output_size, task.output_mode,
                            task.seq_len)  # fmt: skip
        counts[arm, condition] = count_parameters(model)
    return counts


def markdown(data: dict, questions: dict[str, Question]) -> str:
    """The artifact as tables: per question, each arm's ms per step and engine, then each
    pair's ratio, its interval and the verdict (speed.decide)."""
    lines = [
        "# Time per training step, arm against arm, measured side by side",
        "",
        "The report's time-per-step verdicts and tips read these numbers, and its seconds "
        "to solve (a run's steps to solve × its arm's median here) "
        f"([arm_speed.json](arm_speed.json); `grubench.answers.speed`), not the sweeps' "
        "runs, which share cores under load. One whole training step (forward, loss, "
        "backward, clipping, the optimizer's update; data made beforehand, Lightning's logging "
        "left out: the same for every arm) per arm, at the question's settings per condition, "
        "all arms of a condition in one process on 1 torch thread, rounds in a rotated order "
        "after warm-up rounds. Ratio: A's time per step over B's per round, its median and the "
        f"distribution-free {speed.CONFIDENCE:.0%} interval of that median (order statistics "
        f"of the rounds). A is *faster* when the interval lies below 1 and the median is at most "
        f"1/{1 + speed.MARGIN:g}, *slower* the other way round, else *no difference*.",
    ]
    for key, entry in data["questions"].items():
        run = entry["measured"]
        m = run["machine"]
        lines += [
            "",
            f"## {key}",
            "",
            f"`{run['command']}` ({run['seconds']:.0f} s for this question; measured "
            f"{run['date']} at commit {run['commit']}; {m['cpu']}, {m['cores']} cores, "
            f"{m['capability']}, torch {m['torch']}; {run['threads']} thread, {run['rounds']} "
            f"rounds of {run['steps']} steps after {run['warmup']} warm-up round(s); "
            + (
                f"other processes kept {run['others_busy_cores']:.2f} cores busy on average"
                if "others_busy_cores" in run
                else f"load average {run['load_before']:.2f} before, {run['load_after']:.2f} after"
            )
            + ")",
            "",
            "| condition | arm | engine | params | ms per step (median) |",
            "| --- | --- | --- | ---: | ---: |",
        ]
        for condition, cell in entry["conditions"].items():
            for arm, record in cell["arms"].items():
                params = record.get("params", "–")
                lines.append(f"| {condition or '–'} | {arm} | {record['engine']} | {params} | "
                             f"{record['ms_per_step']:.2f} |")  # fmt: skip
        question = questions.get(key)
        compared = pairs(question) if question is not None else []
        if compared:
            lines += ["", "| condition | A / B | time ratio [95%] | A is | engines |",
                      "| --- | --- | ---: | --- | --- |"]  # fmt: skip
            for condition, cell in entry["conditions"].items():
                for a, b in compared:
                    arms = cell["arms"]
                    r = speed.ratio(arms[a]["rounds_ms"], arms[b]["rounds_ms"])
                    engines = speed.engines_text(a, b, (arms[a]["engine"], arms[b]["engine"]))
                    lines.append(f"| {condition or '–'} | {a} / {b} | {r} | "
                                 f"{speed.decide(r)} | {engines} |")  # fmt: skip
    return "\n".join(lines) + "\n"


def default_questions() -> list[Path]:
    found = []
    for path in sorted((ROOT / "experiments").glob("*.py")):
        if speed.compares_speed(load_question(path)):
            found.append(path)
    return found


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "questions",
        nargs="*",
        help="question files (default: every file "
        "under experiments/ whose verdicts or tips compare time per step)",
    )
    parser.add_argument("--profile", default="quick", choices=["quick", "full"])
    parser.add_argument("--rounds", type=int, default=21, help="kept rounds (at least 6)")
    parser.add_argument("--warmup", type=int, default=2, help="rounds not kept")
    parser.add_argument("--steps", type=int, default=10, help="steps per arm and round")
    parser.add_argument("--batches", type=int, default=4, help="training batches, in turn")
    parser.add_argument("--out", type=Path, default=OUT, help=f"(default: {speed.SHOWN})")
    argv = sys.argv[1:] if argv is None else argv
    args = parser.parse_args(argv)
    if speed.median_rank(args.rounds) == 0:
        parser.error(f"--rounds {args.rounds}: at least 6 give a 95% interval of the median")
    if args.warmup < 0 or args.steps < 1 or args.batches < 1:
        parser.error("--warmup must be >= 0, --steps and --batches >= 1")
    try:
        paths = [Path(p) for p in args.questions] or default_questions()
        questions = {}
        for path in paths:
            question = load_question(path)
            if not speed.compares_speed(question):
                parser.error(
                    f"{path}: its verdicts and tips compare no arms on time per step "
                    "or seconds to solve"
                )
            questions[sweep_id(question, args.profile)] = question
    except ValueError as err:
        parser.error(str(err))
    data = {"questions": {}}
    if args.out.is_file():
        data = json.loads(args.out.read_text())
    torch.set_num_threads(1)
    command = shlex.join(["python", "benchmarks/arm_speed.py", *argv])
    measured_at = commit()  # the code this process loaded
    for key, question in questions.items():
        start, load_before = time.perf_counter(), os.getloadavg()[0]
        busy_before, own_before = cpu_seconds()
        try:
            entry = measure_question(question, args.profile, args)
        except ValueError as err:
            parser.error(str(err))
        busy, own = (
            after - before for after, before in zip(cpu_seconds(), (busy_before, own_before))
        )
        counts = params(question, args.profile)
        for condition, cell in entry["conditions"].items():
            for arm, record in cell["arms"].items():
                record["params"] = counts[arm, condition]
        entry["measured"] = {
            "command": command,
            "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "commit": measured_at,
            "machine": machine(),
            "threads": torch.get_num_threads(),
            "rounds": args.rounds,
            "warmup": args.warmup,
            "steps": args.steps,
            "batches": args.batches,
            "seconds": round(time.perf_counter() - start, 1),
            "load_before": load_before,
            "load_after": os.getloadavg()[0],
            # cores kept busy by other processes, on average, while this question was measured
            "others_busy_cores": round((busy - own) / (time.perf_counter() - start), 2),
        }
        data["questions"][key] = entry
    data["questions"] = dict(sorted(data["questions"].items()))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(data, indent=1, sort_keys=False) + "\n")
    known = {k: q for k, q in questions.items()}
    for key in data["questions"]:  # entries kept from earlier runs: their pairs too
        name = key.split(":")[0]
        path = ROOT / "experiments" / f"{name}.py"
        if key not in known and path.is_file():
            known[key] = load_question(path)
    text = markdown(data, known)
    args.out.with_suffix(".md").write_text(text)
    print(f"\nwrote {args.out} and {args.out.with_suffix('.md')}")


if __name__ == "__main__":
    main()
