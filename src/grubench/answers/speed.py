"""Time per step from a controlled measurement, not from the sweep's runs.

A sweep's ``ms_per_step`` is measured on shared cores under load (workers and other sweeps
compete), so the report does not compare arms on it. ``benchmarks/arm_speed.py`` builds each
arm's model at a question's settings per condition and times one whole training step of every
arm side by side in one process (1 torch thread, warm-up rounds, then rounds in a rotated
order), and writes the per-round times to ``benchmarks/results/arm_speed.json``. The report
reads that file (``ARTIFACT``); a question or condition it lacks, or measured at other
settings, is "not measured", never filled in from the sweep.

The rule (``decide``): per pair, the ratio of times per step A/B in each round; its median
(taken in log space, so B/A is exactly its inverse) and the distribution-free 95% interval of
that median from the rounds' order statistics (``median_interval``; at least 6 rounds). A is
*faster* when the interval lies below 1 and the median ratio is at most 1/1.05 (5% or more
less time), *slower* the other way round, else *no difference* (the interval includes 1, or
the gap is under 5%). These verdicts are measurements, not tests on seeds: they are not part
of the question's Holm family.

Seconds to solve (a measure with ``controlled_time``, grubench.store.measures) reads the same
file: each run's steps to solve times its arm's median ms per step in its condition
(``fill_timed``), then compared between arms on the seeds like steps to solve (a test, in the
family). The per-step time's own spread over the rounds (a few percent) is not carried into
that test. An arm the file lacks, or measured at other settings, has no seconds: its claims
are "not measured" with the command that measures them.

>>> r = ratio([10.0, 11.0, 10.5, 10.2, 10.1, 10.3], [14.0, 15.0, 14.2, 14.1, 14.3, 14.6])
>>> str(r), decide(r)
('0.72x [0.71, 0.74]', 'faster')
"""

from __future__ import annotations

import hashlib
import json
import math
import statistics
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from grubench.models import computed_settings
from grubench.store.measures import MEASURES
from grubench.sweeps.question import Question, expand, expand_tuning, sweep_id

MEASURE = "ms_per_step"
STEPS = "steps_to_solve"  # what a measure with controlled_time multiplies by the time per step
SHOWN = "benchmarks/results/arm_speed.json"  # as a verdict line names it
ARTIFACT = Path(__file__).resolve().parents[3] / SHOWN  # in the source tree
SCRIPT = "python benchmarks/arm_speed.py"
MARGIN = 0.05  # a difference under 5% is no difference
CONFIDENCE = 0.95
FASTER, SLOWER, SAME = "faster", "slower", "no difference"


@dataclass(frozen=True)
class Ratio:
    """Time per step of A over B: the median over rounds and its interval."""

    estimate: float
    low: float
    high: float

    def inverse(self) -> Ratio:
        return Ratio(1 / self.estimate, 1 / self.high, 1 / self.low)

    def __str__(self) -> str:
        return f"{self.estimate:.2f}x [{self.low:.2f}, {self.high:.2f}]"


def median_rank(n: int, confidence: float = CONFIDENCE) -> int:
    """The 1-based rank k whose order statistics (k-th smallest, k-th largest) bound the
    median of n values with at least ``confidence`` (the binomial sign-test interval); 0 when
    n is too small for any (n < 6 at 95%)."""
    k, tail = 0, 0.0
    for j in range(n):
        tail += math.comb(n, j) / 2**n
        if 2 * tail > 1 - confidence:
            break
        k = j + 1
    return k


def median_interval(values: list[float], confidence: float = CONFIDENCE) -> tuple[float, float]:
    """The distribution-free interval of the median of ``values`` (order statistics)."""
    k = median_rank(len(values), confidence)
    if k == 0:
        raise ValueError(f"{len(values)} rounds give no {confidence:.0%} interval; want >= 6")
    ordered = sorted(values)
    return ordered[k - 1], ordered[len(values) - k]


def ratio(a_ms: list[float], b_ms: list[float]) -> Ratio:
    """A's time per step over B's, per round (the rounds paired by index)."""
    if len(a_ms) != len(b_ms) or not a_ms:
        raise ValueError(f"want as many rounds of each arm, got {len(a_ms)} and {len(b_ms)}")
    if min(a_ms + b_ms) <= 0:
        raise ValueError("times per step must be positive")
    logs = [math.log(a / b) for a, b in zip(a_ms, b_ms)]
    low, high = median_interval(logs)
    return Ratio(math.exp(statistics.median(logs)), math.exp(low), math.exp(high))


def decide(r: Ratio, margin: float = MARGIN) -> str:
    """A against B: "faster", "slower" or "no difference" (the module's rule)."""
    if r.high < 1 and r.estimate <= 1 / (1 + margin):
        return FASTER
    if r.low > 1 and r.estimate >= 1 + margin:
        return SLOWER
    return SAME


def why_same(r: Ratio, margin: float = MARGIN) -> str:
    return "the interval includes 1" if r.low <= 1 <= r.high else f"under {margin:.0%} apart"


def settings_key(config) -> dict[str, Any]:
    """What a training step's work depends on: the model (every setting its run's hash
    counts), the task's name, length, batch and options, the optimizer and its settings but
    the learning rate (the tuned value: it moves the weights, not the work), and the
    subnormals rule. A setting added or changed makes a measurement stale ("not measured"):
    the safe side."""
    optim = asdict(config.optim)
    optim.pop("lr")
    task = config.task
    return {
        "model": computed_settings(asdict(config.model)),
        "task": {
            "name": task.name,
            "seq_len": task.seq_len,
            "batch_size": task.batch_size,
            "options": task.options,
        },  # fmt: skip
        "optim": optim,
        "flush_denormal": config.flush_denormal,
    }


def settings_hash(config) -> str:
    text = json.dumps(settings_key(config), sort_keys=True, default=str)
    return hashlib.sha1(text.encode()).hexdigest()[:12]


def speed_configs(question: Question, profile: str) -> dict[tuple[str, str], Any]:
    """Each (arm, condition)'s FitConfig as its children train it (the first seed of its
    first tuning point); ValueError where the tuning points change the step's work (a grid
    over the model or the batch): the speed would depend on the point selected."""
    children = expand_tuning(question, profile) or expand(question, profile)
    configs: dict[tuple[str, str], Any] = {}
    for child in children:
        cell = (child.arm, child.condition)
        if cell not in configs:
            configs[cell] = child.config
        elif settings_hash(child.config) != settings_hash(configs[cell]):
            raise ValueError(f"{question.name}: {child.cell}: the tuning points change a step's "
                             "work; time per step depends on the point selected")  # fmt: skip
    return configs


def reads_artifact(measure: str) -> bool:
    """Whether claims on ``measure`` read the controlled measurement: time per step, or a
    measure scaled by it (``Measure.controlled_time``: seconds to solve)."""
    return measure == MEASURE or MEASURES[measure].controlled_time


def compares_speed(question: Question) -> bool:
    """Whether the question's verdicts or tips compare arms on time per step, or on a measure
    scaled by it (seconds to solve)."""
    return any(reads_artifact(m) for m in question.verdict_measures) or any(
        reads_artifact(claim.measure) for tip in question.tips for claim in tip.claims
    )


@dataclass
class Artifact:
    """The measurements file: ``questions[sweep_id]`` holds, per condition and arm, the
    per-round ms per step, the engine and the settings' hash; ``problem``: why it cannot be
    read (then nothing in it is used)."""

    path: Path
    questions: dict[str, Any] = field(default_factory=dict)
    problem: str = ""

    def entry(self, question: Question, profile: str) -> dict[str, Any] | None:
        return self.questions.get(sweep_id(question, profile))


def load(path: Path | None = None) -> Artifact:
    """The artifact at ``path`` (default ``ARTIFACT``); a missing or unreadable file gives
    an Artifact with its problem in one line."""
    path = Path(path or ARTIFACT)
    if not path.is_file():
        return Artifact(path, problem=f"{SHOWN} does not exist")
    try:
        data = json.loads(path.read_text())
        questions = data["questions"]
        if not isinstance(questions, dict):
            raise TypeError("questions is not a mapping")
    except (ValueError, KeyError, TypeError) as err:
        return Artifact(path, problem=f"{SHOWN} is not a speed artifact ({err})")
    return Artifact(path, questions)


def arm_ms(
    artifact: Artifact | None,
    question: Question,
    profile: str,
    arm: str,
    condition: str,
    configs: dict[tuple[str, str], Any],
) -> float | None:
    """The arm's median ms per step in ``condition`` from the artifact; None where it has no
    such record, or one measured at other settings than ``configs`` (``speed_configs``)."""
    entry = artifact.entry(question, profile) if artifact and not artifact.problem else None
    arms = ((entry or {}).get("conditions", {}).get(condition) or {}).get("arms", {})
    record = arms.get(arm)
    if not record or (arm, condition) not in configs:
        return None
    if record.get("settings_hash") != settings_hash(configs[arm, condition]):
        return None
    try:
        rounds = [float(ms) for ms in record["rounds_ms"]]
    except (KeyError, TypeError, ValueError):
        return None
    return statistics.median(rounds) if rounds and min(rounds) > 0 else None


def fill_timed(artifact: Artifact | None, question: Question, profile: str, cells: list) -> None:
    """Each cell's values of the measures with ``controlled_time`` that the question compares:
    its runs' steps to solve (``inf``: never) times its arm's median ms per step there, in
    seconds; none where the artifact lacks the arm (or the question's tuning changes a step's
    work). ``cells``: the report's Cells (``arm``, ``condition``, ``values(name)``)."""
    compared = {claim.measure for claim in question.family(profile)}
    timed = [m.name for m in MEASURES.values() if m.controlled_time and m.name in compared]
    if not timed or not cells:
        return
    try:
        configs = speed_configs(question, profile)
    except ValueError:
        configs = {}
    for cell in cells:
        ms = arm_ms(artifact, question, profile, cell.arm, cell.condition, configs)
        for name in timed:
            values = [] if ms is None else [s * ms / 1000 for s in cell.values(STEPS)]
            cell.values(name)[:] = values


@dataclass
class ConditionSpeed:
    """A pair in one condition: the ratio of A's time over B's and the engines; ``ratio``
    None with ``missing`` saying why."""

    condition: str
    ratio: Ratio | None = None
    ms: tuple[float, float] = (math.nan, math.nan)  # median ms per step of A, of B
    engines: tuple[str, str] = ("", "")
    missing: str = ""

    @property
    def decision(self) -> str:
        return decide(self.ratio) if self.ratio is not None else ""


@dataclass
class SpeedResult:
    """A claim on time per step read from the artifact: A (``better``) against B over the
    claim's conditions."""

    better: str
    worse: str
    conditions: list[ConditionSpeed]
    command: str  # what measures the missing ones

    @property
    def missing(self) -> list[ConditionSpeed]:
        return [c for c in self.conditions if c.ratio is None]

    @property
    def label(self) -> str:
        """supported (A faster in every condition), contradicted (slower in every one), no
        difference (in every one), mixed, or not measured (some condition lacks it)."""
        if self.missing or not self.conditions:
            return "not measured"
        decisions = {c.decision for c in self.conditions}
        if decisions == {FASTER}:
            return "supported"
        if decisions == {SLOWER}:
            return "contradicted"
        if decisions == {SAME}:
            return "no difference"
        return "mixed"


def measure_claim(
    artifact: Artifact | None,
    question: Question,
    profile: str,
    better: str,
    worse: str,
    conditions: list[str],
    configs: dict[tuple[str, str], Any] | None = None,
) -> SpeedResult:
    """``better`` against ``worse`` on time per step in each of ``conditions``, from the
    artifact; a condition it lacks, or measured at settings other than the question's now
    (``configs``: ``speed_configs``), is missing."""
    command = f"{SCRIPT} experiments/{question.name}.py" + (
        f" --profile {profile}" if profile != "quick" else ""
    )
    entry = artifact.entry(question, profile) if artifact and not artifact.problem else None
    results = []
    for condition in conditions:
        result = ConditionSpeed(condition)
        results.append(result)
        if artifact is None or artifact.problem:
            result.missing = artifact.problem if artifact else f"no {SHOWN} read"
            continue
        arms = ((entry or {}).get("conditions", {}).get(condition) or {}).get("arms", {})
        found = [arms.get(better), arms.get(worse)]
        if not all(found):
            result.missing = f"{SHOWN} has no {question.name} ({profile}) " + (
                f"{condition}, " if condition else "") + "for both arms"  # fmt: skip
            continue
        if configs is not None:
            stale = [
                arm
                for arm, record in zip((better, worse), found)
                if (arm, condition) not in configs
                or record.get("settings_hash") != settings_hash(configs[arm, condition])
            ]
            if stale:
                result.missing = (f"{SHOWN} measured {' and '.join(stale)} at other settings "
                                  "than the question's now")  # fmt: skip
                continue
        try:
            result.ratio = ratio(found[0]["rounds_ms"], found[1]["rounds_ms"])
        except (ValueError, KeyError, TypeError) as err:
            result.missing = f"{SHOWN}: {question.name}, {condition}: {err}"
            continue
        result.ms = (statistics.median(found[0]["rounds_ms"]),
                     statistics.median(found[1]["rounds_ms"]))  # fmt: skip
        result.engines = (found[0].get("engine", "?"), found[1].get("engine", "?"))
    return SpeedResult(better, worse, results, command)


def engines_text(a: str, b: str, engines: tuple[str, str]) -> str:
    """ "both on grubench" or "gru on grubench, lstm on oneDNN"."""
    if engines[0] == engines[1]:
        return f"both on {engines[0]}"
    return f"{a} on {engines[0]}, {b} on {engines[1]}"


def ratio_text(a: str, b: str, result: ConditionSpeed) -> str:
    """The slower arm's time as a multiple of the faster's: "lstm 1.42x gru [1.38, 1.46]"
    (A's over B's when neither is faster)."""
    r = result.ratio
    slow, fast = (b, a) if result.decision == FASTER else (a, b)
    r = r.inverse() if result.decision == FASTER else r
    return f"{slow} {r.estimate:.2f}x {fast} [{r.low:.2f}, {r.high:.2f}]"


def summary(result: SpeedResult) -> str:
    """The numbers of a measured claim in words: one condition's ratio and engines, or over
    several the range of the median ratios (where each arm is faster, if mixed)."""
    a, b = result.better, result.worse
    if len(result.conditions) == 1:
        (only,) = result.conditions
        return f"{ratio_text(a, b, only)}, {engines_text(a, b, only.engines)}"
    label = result.label
    slow, fast = (b, a) if label == "supported" else (a, b)
    values = [c.ratio.estimate for c in result.conditions]
    if slow == b:
        values = [1 / v for v in values]
    engines = {c.engines for c in result.conditions}
    text = (f"{slow} {min(values):.2f}x to {max(values):.2f}x {fast} over "
            f"{len(values)} conditions")  # fmt: skip
    if label == "mixed":
        groups = {FASTER: f"{a} faster at", SLOWER: f"{b} faster at", SAME: "no difference at"}
        parts = [f"{words} {', '.join(c.condition for c in result.conditions if c.decision == d)}"
                 for d, words in groups.items()
                 if any(c.decision == d for c in result.conditions)]  # fmt: skip
        text += " (" + "; ".join(parts) + ")"
    if len(engines) == 1:
        text += ", " + engines_text(a, b, engines.pop())
    else:  # e.g. both on grubench's engine in one condition, both on PyTorch ops in another
        text += ", " + "; ".join(f"{engines_text(a, b, c.engines)} at {c.condition}"
                                 for c in result.conditions)  # fmt: skip
    return text


def missing_reason(result: SpeedResult) -> str:
    """Why a claim is not measured, and the command that measures it."""
    why = list(dict.fromkeys(c.missing for c in result.missing)) or ["no condition"]
    return f"{'; '.join(why)}; run: {result.command}"


def missing_text(result: SpeedResult) -> str:
    return f"not measured ({missing_reason(result)})"
