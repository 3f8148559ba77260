"""An FAQ question as data: the arms it compares, the conditions, what each arm tunes, seeds,
budgets, and the README tips its numbers label.

An experiment file (``experiments/<question>.py``) defines ``QUESTION = Question(...)``. Arms
and conditions are nested overrides of :class:`~grubench.training.config.FitConfig`; a child's
config is ``base``, then its arm, its condition, the profile's budget, its tuning point and the
command line's overrides, then the seed. ``expand_tuning`` gives the tuning stage's children
(every grid point on the tuning seeds), ``expand`` the evaluation stage's (the selected point
on the evaluation seeds): the units the runner runs, skips when already finished, and the
report aggregates by their arm and condition (never by parsing a label).

Calibration: a condition where every arm is at the ceiling or at the floor cannot
discriminate the arms, and the report makes no test there. The margins are
``Question.calibration`` (a :class:`Calibration`); by default the ceiling is every run solved
and every arm's IQM test score at least 0.99, the floor no run solved and every arm's IQM
score at most 0.05 (0 is the task's chance level; a task without a solved threshold is judged
on the score alone). A bound leaves out only the measures it makes equal (``CALIBRATED``): the
score at either bound, the train-validation gap at the ceiling (no room left between train and
validation; at the floor a model may still fit its training set), steps to solve at the floor
(every run "never"); at the ceiling steps to solve still tell how fast each arm learned, and
time per step is never bounded. Those lines read "cannot discriminate", stay out of the Holm
family, and pooled verdicts leave such conditions out, naming them.
"""

from __future__ import annotations

import hashlib
import importlib.util
import itertools
import json
import math
import traceback
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from grubench.models import ModelConfig, computed_settings
from grubench.options import hashed
from grubench.store.measures import MEASURES as MEASURE_REGISTRY
from grubench.store.schema import EVAL, TUNE
from grubench.sweeps.ladder import Ladder
from grubench.sweeps.overrides import merge, nested
from grubench.sweeps.search import Search
from grubench.training.config import FitConfig, config_keys, top_level_options, unknown_key
from grubench.training.data import TaskConfig
from grubench.training.module import OptimConfig

PROFILES = ("quick", "full")
_GROUPS = {"model": ModelConfig, "task": TaskConfig, "optim": OptimConfig}


def fit_config_from_dict(values: dict[str, Any], where: str = "config") -> FitConfig:
    """A FitConfig from nested dicts; unknown keys raise ValueError naming the valid ones (the
    trainer's options are Lightning's, checked with the config: validate_fit_config)."""
    keys = config_keys()
    problems = [unknown_key(keys, "", key) for key in values]
    problems += [unknown_key(keys, group, key) for group in _GROUPS
                 for key in values.get(group, {})]  # fmt: skip
    if problems := [p for p in problems if p]:
        raise ValueError(f"{where}: {'; '.join(problems)}")
    kwargs = {k: v for k, v in values.items() if k not in _GROUPS}
    for group, cls in _GROUPS.items():
        kwargs[group] = cls(**values.get(group, {}))
    return FitConfig(**kwargs)


@dataclass(frozen=True)
class Claim:
    """One testable half of a tip: ``better`` beats ``worse`` on ``measure``.

    Measures (each "beats" in its own direction): ``score`` (the normalized test score,
    higher), ``steps_to_solve`` (fewer; a run that never solved counts as never),
    ``ms_per_step`` (less) and ``gap`` (the normalized train score minus the validation score,
    smaller: less overfitting). ``conditions`` restricts the claim (empty: every condition).
    """

    better: str
    worse: str
    measure: str = "score"
    conditions: tuple[str, ...] = ()


MEASURES = tuple(MEASURE_REGISTRY)  # the names a claim or verdict may compare on


def claim_key(claim: Claim, conditions: tuple[str, ...]) -> tuple:
    """What a claim tests, whichever arm it names first: the two arms, the measure and the
    conditions it compares (those of ``conditions`` it names, or all of them)."""
    where = tuple(c for c in conditions if not claim.conditions or c in claim.conditions)
    return tuple(sorted((claim.better, claim.worse))), claim.measure, where


@dataclass(frozen=True)
class Tip:
    """A tip as the tutorials state it, with the claims its question's numbers label."""

    text: str
    claims: tuple[Claim, ...]


CEILING, FLOOR = "ceiling", "floor"
# measure -> the bounds at which every arm's values on it are equal (nothing to test)
CALIBRATED = {"score": (CEILING, FLOOR), "gap": (CEILING,), "steps_to_solve": (FLOOR,),
              "samples_to_solve": (FLOOR,), "seconds_to_solve": (FLOOR,)}  # fmt: skip


@dataclass(frozen=True)
class Calibration:
    """The margins within which a condition cannot discriminate the arms: every arm at the
    ceiling (each arm's IQM normalized test score at least ``ceiling``, every run solved) or
    at the floor (each at most ``floor``, no run solved). Where the task has no solved
    threshold, the score alone decides."""

    ceiling: float = 0.99
    floor: float = 0.05

    def bound(self, scores: list[float], solved: list[tuple[int, int]], solvable: bool) -> str:
        """The bound every arm is at ("ceiling", "floor" or ""), from each arm's IQM score
        and (solved, runs)."""
        every_run = not solvable or all(n == runs for n, runs in solved)
        no_run = not solvable or all(n == 0 for n, _ in solved)
        if every_run and all(score >= self.ceiling for score in scores):
            return CEILING
        if no_run and all(score <= self.floor for score in scores):
            return FLOOR
        return ""

    def describe(self, bound: str, solvable: bool = True) -> str:
        """Why a condition cannot discriminate, e.g. "every arm at the ceiling (IQM score ≥
        0.99, all solved)"."""
        margin = (f"IQM score ≥ {self.ceiling:g}" if bound == CEILING
                  else f"IQM score ≤ {self.floor:g}")  # fmt: skip
        if solvable:
            margin += ", all solved" if bound == CEILING else ", none solved"
        return f"every arm at the {bound} ({margin})"

    def check(self) -> list[str]:
        if not 0 <= self.floor < self.ceiling <= 1:
            return [f"calibration: want 0 <= floor < ceiling <= 1, got floor {self.floor:g}, "
                    f"ceiling {self.ceiling:g}"]  # fmt: skip
        return []


# Evaluation seeds per arm and condition, from a power calculation
# (grubench.answers.stats.detectable_effect: the exact Mann-Whitney test, 80% power, a normal
# shift, Holm's first step at 0.05 / m in a family of m tests). At 5 seeds the smallest
# p-value is 2/252 = 0.0079: in a family of 8 or more nothing is detectable per condition.
#   quick, 8 seeds:  P(A > B) >= 0.86 alone, 0.92 (m = 4), 0.94 (m = 8), 0.95 (m = 16);
#                    pooled over 3 conditions 0.73 alone, 0.79 (m = 8)
#   full, 16 seeds:  0.77 alone, 0.82 (m = 4), 0.84 (m = 8), 0.85 (m = 16); pooled 0.67-0.72
# tests/test_stats.py checks these numbers against the function.
EVALUATION_SEEDS = {"quick": 8, "full": 16}


@dataclass
class Question:
    """A question: the *arms* it compares (the factor: models, initializations, optimizers),
    the *conditions* they are compared under (task x length x ...), and what each arm tunes.

    The protocol (Melis et al. 2018): every arm tries the same number of points of its grid
    (``tune``, or its own ``tune_by_arm``) on the tuning seeds and keeps the point with the
    best mean validation score, per condition; the kept settings then run on the evaluation
    seeds (disjoint from the tuning seeds) and are scored on the test split. Without a grid
    there is no tuning stage and every arm runs as declared.
    """

    name: str  # also the MLflow experiment's name
    text: str
    arms: dict[str, dict[str, Any]]  # arm -> FitConfig overrides
    conditions: dict[str, dict[str, Any]] = field(default_factory=lambda: {"": {}})
    # profile -> conditions, replacing ``conditions`` for that profile (longer sequences in
    # "full" than a CPU can train in "quick")
    conditions_by_profile: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    # dotted FitConfig key -> values tried by every arm, e.g. {"optim.lr": [1e-3, 1e-2]}
    tune: dict[str, list[Any]] = field(default_factory=dict)
    # arm -> its own grid (replacing ``tune``); every arm must try as many points
    tune_by_arm: dict[str, dict[str, list[Any]]] = field(default_factory=dict)
    base: dict[str, Any] = field(default_factory=dict)  # overrides shared by every child
    # evaluation seeds, scored on the test split; how many: see EVALUATION_SEEDS
    seeds: dict[str, list[int]] = field(
        default_factory=lambda: {p: list(range(n)) for p, n in EVALUATION_SEEDS.items()}
    )
    tuning_seeds: dict[str, list[int]] = field(
        default_factory=lambda: {"quick": [1000], "full": [1000, 1001]}
    )
    budgets: dict[str, dict[str, Any]] = field(default_factory=dict)  # profile -> overrides
    tips: list[Tip] = field(default_factory=list)
    # how this question's tuning differs from the protocol's (e.g. tuning is its subject)
    tuning_note: str = ""
    # the verdict compares every arm with this one (None: every pair of arms)
    baseline: str | None = None
    # what the verdict compares arms on (see Claim for the measures)
    verdict_measures: tuple[str, ...] = ("score", "steps_to_solve")
    # a random search (grubench.sweeps.search.Search) as the tuning stage instead of a grid: its
    # trials are the tuning points, the same for every condition
    search: Search | None = None
    # the margins within which a condition cannot discriminate the arms (see Calibration);
    # not a setting of any child: it changes no settings hash
    calibration: Calibration = field(default_factory=Calibration)
    # difficulty ladders (grubench.sweeps.ladder): their rungs are conditions too, after the
    # others, and each arm climbs them while it solves
    ladders: tuple[Ladder, ...] = ()

    def conditions_for(self, profile: str) -> dict[str, dict[str, Any]]:
        """The conditions under ``profile``: the declared ones, then every ladder's rungs."""
        conditions = dict(self.conditions_by_profile.get(profile, self.conditions))
        if self.ladders and list(conditions) == [""] and not conditions[""]:
            conditions = {}  # the default unnamed condition gives way to the rungs
        for ladder in self.ladders:
            conditions.update(ladder.conditions(profile))
        return conditions

    def ladder_of(self, condition: str) -> Ladder | None:
        """The ladder whose rung ``condition`` is (None: not a rung)."""
        for ladder in self.ladders:
            if any(condition in ladder.values(p) for p in ladder.rungs):
                return ladder
        return None

    def grid_for(self, arm: str) -> dict[str, list[Any]]:
        return self.tune_by_arm.get(arm, self.tune)

    def point_values(self, arm: str) -> dict[str, dict[str, Any]]:
        """The arm's grid points: label -> {grid key: value} (empty for a search)."""
        if self.search is not None:
            return {}
        grid_ = self.grid_for(arm)
        combos = [dict(zip(grid_, combo)) for combo in itertools.product(*grid_.values())]
        return dict(zip(self.points_for(arm), combos))

    def points_for(self, arm: str, profile: str = "quick") -> dict[str, dict[str, Any]]:
        """The arm's tuning points: label (e.g. "lr=0.003", or "trial=3" for a search) ->
        nested overrides."""
        if self.search is not None:
            return self.search.points(arm, profile)
        grid_ = self.grid_for(arm)
        points = {}
        for combo in itertools.product(*grid_.values()):
            label = ", ".join(f"{key.rsplit('.', 1)[-1]}={value:g}" if isinstance(value, float)
                              else f"{key.rsplit('.', 1)[-1]}={value}"
                              for key, value in zip(grid_, combo))  # fmt: skip
            overrides: dict[str, Any] = {}
            for key, value in zip(grid_, combo):
                overrides = merge(overrides, nested(key, value))
            points[label] = overrides
        return points

    def pairs(self) -> list[tuple[str, str]]:
        """The pairs of arms the verdict compares: each arm against the baseline when the
        question names one, else every pair."""
        arms = list(self.arms)
        if self.baseline:
            return [(a, self.baseline) for a in arms if a != self.baseline]
        return list(itertools.combinations(arms, 2))

    def verdict_claims(self, profile: str) -> list[Claim]:
        """The verdict's claims under ``profile``: for each verdict measure and pair of arms,
        one per condition and (with several conditions) one pooled over them."""
        conditions = tuple(self.conditions_for(profile))
        claims = []
        for measure in self.verdict_measures:
            for a, b in self.pairs():
                if len(conditions) > 1:
                    claims += [Claim(a, b, measure, (condition,)) for condition in conditions]
                claims.append(Claim(a, b, measure))
        return claims

    def family(self, profile: str) -> list[Claim]:
        """The claims this question's answer tests under ``profile``, corrected together: the
        verdict's claims, then its tips'. A claim that restates one before it (the same two
        arms either way round, measure and conditions) is one test, listed once. The report
        tests fewer where a condition cannot discriminate (``Calibration``): those claims
        leave the family, and pooled claims leave such conditions out."""
        conditions = tuple(self.conditions_for(profile))
        unique: dict[tuple, Claim] = {}
        for claim in self.verdict_claims(profile) + [c for tip in self.tips for c in tip.claims]:
            unique.setdefault(claim_key(claim, conditions), claim)
        return list(unique.values())

    @property
    def tuned(self) -> bool:
        return bool(self.tune or self.tune_by_arm or self.search is not None)

    def check(self) -> list[str]:
        """Problems with the declaration itself (before any child is built)."""
        problems = []
        if not self.arms:
            problems.append(f"{self.name}: no arms to compare")
        if self.baseline is not None and self.baseline not in self.arms:
            problems.append(f"{self.name}: baseline {self.baseline!r} is not an arm")
        unknown = sorted(set(self.tune_by_arm) - set(self.arms))
        if unknown:
            problems.append(f"{self.name}: tune_by_arm names unknown arm(s) {unknown}")
        if self.search is not None:
            if self.tune or self.tune_by_arm:
                problems.append(f"{self.name}: a search replaces the grid; drop tune/tune_by_arm")
            problems += [f"{self.name}: {p}" for p in self.search.check(self.arms)]
        elif self.tuned:
            for arm in self.arms:
                grid_ = self.grid_for(arm)
                combos = math.prod(len(values) for values in grid_.values())
                if len(self.points_for(arm)) != combos:
                    problems.append(f"{self.name}: {arm}'s grid {grid_} has points whose labels "
                                    "coincide")  # fmt: skip
            sizes = {arm: len(self.points_for(arm)) for arm in self.arms}
            if len(set(sizes.values())) > 1:
                problems.append(
                    f"{self.name}: unequal tuning budgets {sizes}; every arm tries as many points"
                )
        for profile in PROFILES:
            overlap = set(self.seeds.get(profile, [])) & set(self.tuning_seeds.get(profile, []))
            if self.tuned and overlap:
                problems.append(
                    f"{self.name}: {profile} tuning and evaluation seeds overlap: {sorted(overlap)}"
                )
        problems += [f"{self.name}: {p}" for p in self.calibration.check()]
        for ladder in self.ladders:
            problems += [f"{self.name}: {p}" for p in ladder.check()]
            for profile in PROFILES:
                declared = self.conditions_by_profile.get(profile, self.conditions)
                clash = sorted(set(declared) & set(ladder.conditions(profile)))
                if clash:
                    problems.append(f"{self.name}: ladder rung(s) {clash} repeat a condition")
        bad = [m for m in self.verdict_measures if m not in MEASURES]
        if bad:
            problems.append(
                f"{self.name}: verdict measure(s) {bad}; choose from: {', '.join(MEASURES)}"
            )
        names = set(self.conditions).union(*self.conditions_by_profile.values())
        names = names.union(*(ladder.values(p) for ladder in self.ladders for p in ladder.rungs))
        for tip in self.tips:
            for claim in tip.claims:
                unknown = sorted(set(claim.conditions) - names)
                if unknown:
                    problems.append(f"{self.name}: tip claim names unknown condition(s) {unknown}")
                for arm in (claim.better, claim.worse):
                    if arm not in self.arms:
                        problems.append(f"{self.name}: tip claim names unknown arm {arm!r}")
                if claim.measure not in MEASURES:
                    problems.append(
                        f"{self.name}: tip claim measure {claim.measure!r}; "
                        f"choose from: {', '.join(MEASURES)}"
                    )
        return problems


@dataclass
class Child:
    """One fit of the protocol: an arm under a condition, at a tuning point or (evaluation)
    at the arm's selected point, for one seed."""

    arm: str
    condition: str
    seed: int
    config: FitConfig
    stage: str = EVAL
    point: str = ""  # the tuning point's label (evaluation: the selected one)

    @property
    def cell(self) -> str:
        """arm and condition: the unit the report aggregates."""
        return ", ".join(part for part in (self.arm, self.condition) if part)

    @property
    def label(self) -> str:
        return ", ".join(part for part in (self.cell, self.point) if part)

    @property
    def key(self) -> str:
        """Names the child in the store; evaluation keys leave out the selected point, so a
        new selection supersedes the old evaluation runs instead of adding to them."""
        if self.stage == TUNE:
            return f"tune {self.label} | seed={self.seed}"
        return f"{self.cell} | seed={self.seed}"

    def config_hash(self) -> str:
        """What the child computes: changes when any setting that affects the result does
        (the model, its options, the task, the optimizer, the seed, the budget), and not with
        where it runs (accelerator, devices, strategy, nodes) or where it is recorded."""
        settings = asdict(self.config)
        for name, (declared, _) in top_level_options().items():
            if not hashed(declared):  # where the run is recorded, not what it computes
                settings.pop(name)
        settings["model"] = computed_settings(settings["model"])
        settings["trainer"] = {
            k: v for k, v in settings["trainer"].items() if k not in _WHERE_IT_RUNS
        }
        text = json.dumps(settings, sort_keys=True, default=str)
        return hashlib.sha1(text.encode()).hexdigest()[:12]


# Trainer options that choose the hardware, not the settings (the global batch, batch_size x
# processes, is a run's summary metric global_batch_size)
_WHERE_IT_RUNS = ("accelerator", "devices", "strategy", "num_nodes")


def load_question(path: str | Path) -> Question:
    """Import ``QUESTION`` from an experiment file (a name resolves under experiments/)."""
    path = Path(path)
    if not path.exists() and not path.suffix:
        path = path.with_suffix(".py")
    if not path.is_file():
        raise ValueError(f"no experiment file {str(path)!r}")
    spec = importlib.util.spec_from_file_location(f"grubench_experiment_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except SyntaxError as err:  # the file's own line, not grubench's frames
        raise ValueError(f"{path}:{err.lineno}: SyntaxError: {err.msg}") from None
    except Exception as err:  # anything the file raises while it is imported
        line = next((frame.lineno for frame in reversed(traceback.extract_tb(err.__traceback__))
                     if Path(frame.filename) == path), None)  # fmt: skip
        where = f"{path}:{line}" if line else str(path)
        raise ValueError(f"{where}: {type(err).__name__}: {err}") from None
    question = getattr(module, "QUESTION", None)
    if not isinstance(question, Question):
        raise ValueError(f"{path} does not define QUESTION = Question(...)")
    return question


def sweep_id(question: Question, profile: str) -> str:
    return f"{question.name}:{profile}"


def _values(
    question: Question,
    profile: str,
    arm: str,
    condition: str,
    point: dict[str, Any],
    overrides: dict[str, Any] | None,
) -> dict[str, Any]:
    values = question.base
    for layer in (
        question.arms[arm],
        question.conditions_for(profile)[condition],
        question.budgets.get(profile, {}),
        point,
        overrides or {},
    ):
        values = merge(values, layer)
    return {**values, "experiment_name": question.name}  # fmt: skip


def _check(question: Question, profile: str) -> None:
    if profile not in PROFILES:
        raise ValueError(f"unknown profile {profile!r}; choose from: {', '.join(PROFILES)}")
    problems = question.check()
    if problems:
        raise ValueError("; ".join(problems))


def expand_tuning(
    question: Question, profile: str, overrides: dict[str, Any] | None = None
) -> list[Child]:
    """The tuning stage: every (arm, condition, grid point, tuning seed); empty without a
    grid."""
    _check(question, profile)
    if not question.tuned:
        return []
    children = []
    for arm in question.arms:
        for condition in question.conditions_for(profile):
            for label, point in question.points_for(arm, profile).items():
                seeds = question.tuning_seeds[profile]
                children += _seeded(question, profile, arm, condition, (label, point), seeds,
                                    TUNE, overrides)  # fmt: skip
    return children


def _seeded(question: Question, profile: str, arm: str, condition: str,
            point: tuple[str, dict[str, Any]], seeds: list[int], stage: str,
            overrides: dict[str, Any] | None) -> list[Child]:  # fmt: skip
    """One child per seed of the cell (arm, condition) at the labelled point."""
    label, values = point[0], _values(question, profile, arm, condition, point[1], overrides)
    where = f"{question.name}: " + ", ".join(p for p in (arm, condition, label) if p)
    return [
        Child(arm, condition, seed, fit_config_from_dict({**values, "seed": seed}, where),
              stage, label)
        for seed in seeds
    ]  # fmt: skip


def expand(
    question: Question,
    profile: str,
    overrides: dict[str, Any] | None = None,
    selected: dict[tuple[str, str], str] | None = None,
) -> list[Child]:
    """The evaluation stage: every (arm, condition, evaluation seed), in a stable order, at
    the point ``selected[(arm, condition)]`` picked by tuning (a cell missing from it is left
    out: its tuning has not finished). Without a grid every arm runs as declared.

    ``overrides`` (e.g. Trainer options from the command line) apply to every child last.
    """
    _check(question, profile)
    children = []
    for arm in question.arms:
        for condition in question.conditions_for(profile):
            label, point = "", {}
            if question.tuned:
                if selected is None or (arm, condition) not in selected:
                    continue
                label = selected[(arm, condition)]
                point = question.points_for(arm, profile)[label]
            seeds = question.seeds[profile]
            children += _seeded(question, profile, arm, condition, (label, point), seeds,
                                EVAL, overrides)  # fmt: skip
    return children


def grid(**axes: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The product of named axes: ``grid(task={"adding": {...}}, length={"T=100": {...}})``
    -> ``{"adding, T=100": {...merged...}, ...}`` (conditions over several factors)."""
    configs = {}
    for combo in itertools.product(*(axis.items() for axis in axes.values())):
        label = ", ".join(name for name, _ in combo)
        merged: dict[str, Any] = {}
        for _, overrides in combo:
            merged = merge(merged, overrides)
        configs[label] = merged
    return configs
