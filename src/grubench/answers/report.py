"""The answer to a question, read from the MLflow store only.

``build_report`` takes the newest FINISHED run of every child of the experiment's current
definition (tuning and evaluation stages), redoes the selection from the tuning runs, and
aggregates the evaluation runs per (arm, condition) with the statistics of
:mod:`grubench.answers.stats`: the IQM of the normalized test scores with a bootstrap interval, the
solved rate with a Wilson interval, the median steps to solve with unsolved runs censored.

The verdict speaks of arms, per condition first: each pair of arms (or each arm against the
baseline) gets P(A > B) with its interval and an exact test in every condition, and a pooled
verdict over the conditions (a stratified permutation test) only where no two conditions
point opposite ways; where they do, the pooled line says "mixed" and where each arm is ahead.
The tests of the question's family (``Question.family``: its verdict lines and its tips'
claims) are corrected together with Holm's procedure; "better" and "supported" are said only
of what survives it, and every "not detected" says which effect it would have detected
(:mod:`grubench.answers.stats`). A condition where every arm is at the ceiling or at the
floor (``Question.calibration``) cannot discriminate the arms: its lines on the measures the
bound makes equal say so and are not tests (they stay out of the family), and pooled verdicts
leave it out, naming it. ``sentence`` puts the answer in one line. ``write_report``
renders the Markdown and the learning curves (one panel per condition, one colour per arm)
and logs them as artifacts of the sweep's newest parent run.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass, field
from typing import Any

from grubench.answers import frontier, stats
from grubench.answers import speed as speeds
from grubench.models import implementation
from grubench.store.measures import MEASURES
from grubench.store.runs import diverged, run_score
from grubench.store.schema import (
    CHANCE_LEVEL,
    OBJECTIVE,
    PARAM_COUNT,
    PARENT_RUN,
    POINT,
    STEPS,
    TEST_SCORE,
    RunStatus,
)
from grubench.store.tracking import get_client, resolve_tracking_uri
from grubench.sweeps.children import finished_by_key, sweep_runs
from grubench.sweeps.ladder import allowed, reach
from grubench.sweeps.question import (
    CALIBRATED,
    Claim,
    Question,
    Tip,
    claim_key,
    expand,
    expand_tuning,
    sweep_id,
)
from grubench.sweeps.selection import Selection, select, selection_flags
from grubench.tasks import build_task


@dataclass
class Cell:
    """An arm under a condition: its evaluation runs and their statistics."""

    arm: str
    condition: str
    metric: str = ""  # the objective, e.g. "mse"
    selected: str = ""  # the tuning point it was evaluated at
    tuning: Selection | None = None
    run_ids: list[str] = field(default_factory=list)
    scores: list[float] = field(default_factory=list)  # normalized test score per run
    steps: list[float] = field(default_factory=list)  # steps to solve, inf if never
    ms_per_step: list[float] = field(default_factory=list)
    gaps: list[float] = field(default_factory=list)  # normalized train - validation score
    # normalized test score at the longest of task.eval_lengths (runs that set it)
    length_scores: list[float] = field(default_factory=list)
    test_values: list[float] = field(default_factory=list)  # the objective on the test split
    diverged: int = 0
    params: int | None = None
    chance: float | None = None  # the task's chance level of the metric
    solvable: bool = True  # False: the task has no solved threshold (char_lm), no steps to solve
    # the normalized score of the solved threshold where runs stop once solved: a solved run's
    # score at the common budget is known only to be at least this (see ``measure``)
    censor_at: float | None = None
    implementation: str = ""  # who runs the arm's recurrence (models.implementation)
    other: dict[str, list[float]] = field(default_factory=dict)  # other measures' values
    # False: a ladder's rung the arm did not reach (it failed a rung below; grubench.sweeps.ladder)
    reached: bool = True

    @property
    def name(self) -> str:
        return ", ".join(part for part in (self.arm, self.condition) if part)

    @property
    def runs(self) -> int:
        return len(self.run_ids)

    @property
    def solved(self) -> int:
        return sum(math.isfinite(s) for s in self.steps)

    # each measure's values, per run (the measure's name -> the list it fills)
    _LISTS = {"score": "scores", "steps_to_solve": "steps", "ms_per_step": "ms_per_step",
              "gap": "gaps", "length_generalization": "length_scores"}  # fmt: skip

    def values(self, name: str) -> list[float]:
        if name not in MEASURES:
            raise ValueError(f"unknown measure {name!r}; choose from: {', '.join(MEASURES)}")
        if name not in self._LISTS:
            return self.other.setdefault(name, [])
        return getattr(self, self._LISTS[name])

    def measure(self, name: str) -> list[float]:
        """Per run, the measure with higher = better (what P(A > B) compares). Where runs
        stop once solved (``censor_at``), scores are compared censored at the solved level:
        a solved run counts as exactly that, an unsolved one as its score up to it; so two
        solved runs tie, however early either stopped, instead of the score rewarding the
        run that learned fastest (steps to solve measures that)."""
        values = self.values(name)
        if name == "score" and self.censor_at is not None:
            solved = ([math.isfinite(s) for s in self.steps] if len(self.steps) == len(values)
                      else [False] * len(values))  # fmt: skip
            values = [self.censor_at if done else min(value, self.censor_at)
                      for value, done in zip(values, solved)]  # fmt: skip
        return MEASURES[name].oriented(values)


@dataclass
class ClaimResult:
    """A claim tested: P(claim.better > claim.worse) with its interval over the conditions
    compared, the test's p-value, the same for each of those conditions, and (once the family
    is corrected) the Holm-adjusted p-value and the effect the test could have detected."""

    claim: Claim
    p: stats.Interval
    fewest_seeds: int
    conditions: tuple[str, ...] = ()  # the conditions compared
    p_value: float = math.nan  # the exact (stratified) permutation test, two-sided
    seeds: tuple[int, int] = (0, 0)  # the fewest runs of better, of worse, in a condition
    # with several conditions, each one's (condition, P(better > worse), p-value uncorrected)
    by_condition: list[tuple[str, stats.Interval, float]] = field(default_factory=list)
    adjusted: float = math.nan  # Holm within the question's family
    family: int = 0  # the number of tests in the family
    detectable: float = math.nan  # the smallest P >= 0.5 detected with 80% power, corrected
    # the conditions left out because they cannot discriminate the arms: (condition, why)
    left_out: tuple[tuple[str, str], ...] = ()
    cannot_discriminate: bool = False  # every condition the claim names was left out
    not_reached: bool = False  # every condition it names is a rung an arm did not reach
    # a claim on time per step: read from the controlled measurement, not tested on seeds
    speed: speeds.SpeedResult | None = None

    @property
    def tested(self) -> bool:
        """In the family: measured, with enough seeds in every condition it names (a claim on
        time per step is a measurement, not a test: never in the family)."""
        return (self.speed is None and not math.isnan(self.p_value)
                and self.fewest_seeds >= stats.MIN_SEEDS)  # fmt: skip

    def ahead(self) -> tuple[list[str], list[str]]:
        """The conditions where better, and where worse, is ahead with an uncorrected p-value
        under alpha: the heterogeneity check."""
        sure = [(c, p) for c, p, value in self.by_condition if value <= stats.ALPHA]
        return ([c for c, p in sure if p.estimate > 0.5], [c for c, p in sure if p.estimate < 0.5])

    @property
    def mixed(self) -> bool:
        """Conditions that point opposite ways: no pooled verdict."""
        better, worse = self.ahead()
        return bool(better and worse)

    @property
    def label(self) -> str:
        """supported, contradicted, not detected (after the correction), mixed, too few
        seeds, cannot discriminate (every arm at the ceiling or the floor), not reached (a
        ladder's rung an arm stopped below) or not measured;
        on time per step, the controlled measurement's (``speeds.SpeedResult.label``)."""
        if self.speed is not None:
            return self.speed.label
        if self.cannot_discriminate:
            return "cannot discriminate"
        if self.not_reached:
            return "not reached"
        if math.isnan(self.p.estimate):
            return "not measured"
        if self.fewest_seeds < stats.MIN_SEEDS:
            return "too few seeds"
        if self.mixed:
            return "mixed"
        if self.adjusted <= stats.ALPHA and self.p.estimate != 0.5:
            return "supported" if self.p.estimate > 0.5 else "contradicted"
        return "not detected"


@dataclass
class Report:
    question: Question
    profile: str
    cells: list[Cell]
    missing: list[str]  # children without a finished run
    verdicts: list[ClaimResult]  # per pair and measure: per condition, then pooled
    tips: list[tuple[Tip, list[ClaimResult]]]
    seconds: float = 0.0  # wall time of the sweep's invocations (parent runs)
    steps_trained: int = 0  # over every finished run of both stages
    steps_budgeted: int = 0  # what their max_steps allowed
    stop_after_solved: int = 0  # the children's stop rule (validations held solved)
    other_settings: int = 0  # children counted with a run of settings other than the file's
    search: Any = (
        None  # a search's SearchSummary (grubench.answers.importance): importances, best trials
    )
    speed: speeds.Artifact | None = None  # where the claims on time per step were read

    @property
    def comparisons(self) -> list[tuple[str, str, str, stats.Interval, int]]:
        """(measure, A, B, P(A > B), fewest seeds) over all conditions, per pair and measure."""
        return [(r.claim.measure, r.claim.better, r.claim.worse, r.p, r.fewest_seeds)
                for r in self.verdicts if not r.claim.conditions]  # fmt: skip

    @property
    def family(self) -> int:
        """The number of tests corrected together."""
        return max((r.family for r in self.verdicts + _tip_results(self.tips)), default=0)

    @property
    def bounds(self) -> dict[str, tuple[str, str]]:
        """The conditions that cannot discriminate the arms: condition -> (bound, why)."""
        return condition_bounds(self.question, self.cells)

    @property
    def verdict(self) -> str:
        if not any(cell.runs for cell in self.cells):
            return "No finished evaluation runs to compare yet."
        lines = [verdict_line(result) for result in self.verdicts]
        return "\n".join(f"- {line}" for line in lines) or "Only one arm has results."


MEASURE_WORDS = {name: measure.words for name, measure in MEASURES.items()}


def _cells(question: Question, profile: str) -> list[tuple[str, str]]:
    return [(a, c) for a in question.arms for c in question.conditions_for(profile)]


def _tip_results(tips: list[tuple[Tip, list[ClaimResult]]]) -> list[ClaimResult]:
    return [result for _, results in tips for result in results]


def condition_bounds(question: Question, cells: list[Cell]) -> dict[str, tuple[str, str]]:
    """The conditions where every arm of the question is at the ceiling or at the floor
    (``question.calibration``): condition -> (bound, why, in words). A condition where some
    arm has fewer evaluation runs than a test needs (``stats.MIN_SEEDS``: its lines say "too
    few seeds"), or (on a solvable task) runs without steps to solve, is not judged."""
    by_condition: dict[str, dict[str, Cell]] = {}
    present: dict[str, set[str]] = {}  # condition -> the arms that run there (ladders: reached)
    for cell in cells:
        if cell.reached:
            present.setdefault(cell.condition, set()).add(cell.arm)
        if cell.runs >= stats.MIN_SEEDS and len(cell.scores) == cell.runs:
            by_condition.setdefault(cell.condition, {})[cell.arm] = cell
    bounds = {}
    calibration = question.calibration
    for condition, arms in by_condition.items():
        if set(arms) != present.get(condition, set(question.arms)) or len(arms) < 2:
            continue
        solvable = all(cell.solvable for cell in arms.values())
        if solvable and any(len(cell.steps) != cell.runs for cell in arms.values()):
            continue  # whether every run solved is not known
        scores = [stats.iqm(cell.scores) for cell in arms.values()]
        solved = [(cell.solved, cell.runs) for cell in arms.values()]
        if bound := calibration.bound(scores, solved, solvable):
            bounds[condition] = (bound, calibration.describe(bound, solvable))
    return bounds


def claim_result(
    cells: list[Cell],
    claim: Claim,
    conditions: list[str],
    bounds: dict[str, tuple[str, str]] | None = None,
) -> ClaimResult:
    """P(claim.better beats claim.worse) on the claim's measure over its conditions (those of
    ``conditions`` the claim names, or all), its interval and its test (uncorrected); a
    condition where either arm has no evaluation runs yet leaves the claim at "too few
    seeds", whatever the others say. The conditions in ``bounds`` (``condition_bounds``) at a
    bound that makes the measure equal are left out; a claim with none left "cannot
    discriminate" and is not a test."""
    by_arm: dict[str, dict[str, Cell]] = {}
    unsolvable = {cell.condition for cell in cells if not cell.solvable}
    unreached = {(cell.arm, cell.condition) for cell in cells if not cell.reached}
    for cell in cells:
        if cell.runs:
            by_arm.setdefault(cell.arm, {})[cell.condition] = cell
    better, worse = by_arm.get(claim.better, {}), by_arm.get(claim.worse, {})
    wanted = [c for c in conditions if not claim.conditions or c in claim.conditions]
    if MEASURES[claim.measure].to_solve:  # only where the task can be solved
        wanted = [c for c in wanted if c not in unsolvable]
    bounds = bounds or {}
    equal_at = CALIBRATED.get(claim.measure, ())  # the bounds that make the measure equal
    left_out = tuple((c, bounds[c][1]) for c in wanted if c in bounds and bounds[c][0] in equal_at)
    # a ladder's rung that either arm did not reach: nothing to compare there
    not_reached = tuple((c, f"{_and(arms)} did not reach {'them' if len(wanted) > 1 else 'it'}")
                        for c in wanted if c not in dict(left_out)
                        and (arms := [a for a in (claim.better, claim.worse)
                                      if (a, c) in unreached]))  # fmt: skip
    calibrated = bool(left_out)
    left_out += not_reached
    wanted = [c for c in wanted if c not in dict(left_out)]
    both = [c for c in wanted if c in better and c in worse]
    a = [better[c].measure(claim.measure) for c in both]
    b = [worse[c].measure(claim.measure) for c in both]
    complete = len(both) == len(wanted)
    fewest = min([len(x) for x in a + b], default=0) if complete else 0
    by_condition = []
    if len(both) > 1:
        by_condition = [(c, stats.probability_of_improvement([x], [y]),
                         stats.permutation_p_value([x], [y]))
                        for c, x, y in zip(both, a, b)]  # fmt: skip
    return ClaimResult(
        claim,
        stats.probability_of_improvement(a, b),
        fewest,
        conditions=tuple(both),
        p_value=stats.permutation_p_value(a, b),
        seeds=(min(map(len, a), default=0), min(map(len, b), default=0)),
        by_condition=by_condition,
        left_out=left_out,
        cannot_discriminate=calibrated and not wanted,
        not_reached=bool(not_reached) and not calibrated and not wanted,
    )


def correct(results: list[ClaimResult]) -> None:
    """Holm's correction over the family (``results``: every claim of the question): its
    distinct tests that were run (a claim restating another, either way round, is the same
    test and gets the same adjusted p-value); each gets the family's size and the effect it
    would detect at its seeds at the family's Bonferroni level (Holm's first step)."""
    tests: dict[tuple, float] = {}
    for result in results:
        if result.tested:
            tests.setdefault(claim_key(result.claim, tuple(result.conditions)), result.p_value)
    adjusted = dict(zip(tests, stats.holm(list(tests.values()))))
    for result in results:
        key = claim_key(result.claim, tuple(result.conditions))
        if result.tested:
            result.adjusted, result.family = adjusted[key], len(tests)
            n, m = result.seeds
            result.detectable = stats.detectable_effect(
                n, m, stats.ALPHA / len(tests), len(result.conditions)
            )


def answer(
    question: Question, profile: str, cells: list[Cell], speed: speeds.Artifact | None = None
) -> tuple[list[ClaimResult], list[tuple[Tip, list[ClaimResult]]]]:
    """The verdict lines (those with runs to compare, or that cannot discriminate) and the
    tips' labels from the cells: every claim of the question's family (``Question.family``)
    tested, then corrected together; claims in conditions that cannot discriminate are not
    tests and stay out of the correction. Claims on time per step are read from ``speed``,
    the controlled measurement (none: "not measured"), and are no tests either."""
    conditions = list(question.conditions_for(profile))
    bounds = condition_bounds(question, cells)
    speeds.fill_timed(speed, question, profile, cells)  # seconds to solve, where measured
    timed = _speed_claims(question, profile, conditions, speed)
    tips = [(tip, [timed(claim) or claim_result(cells, claim, conditions, bounds)
                   for claim in tip.claims])
            for tip in question.tips]  # fmt: skip
    verdicts = [timed(claim) or claim_result(cells, claim, conditions, bounds)
                for claim in question.verdict_claims(profile)]  # fmt: skip
    verdicts = [result for result in verdicts if result.speed is not None
                or result.cannot_discriminate or not math.isnan(result.p.estimate)]  # fmt: skip
    correct(verdicts + _tip_results(tips))
    return verdicts, tips


def _speed_claims(
    question: Question, profile: str, conditions: list[str], artifact: speeds.Artifact | None
):
    """claim -> its ClaimResult read from the controlled measurement, or None for a claim on
    another measure."""
    configs = None
    if (
        artifact is not None
        and not artifact.problem
        and any(speeds.reads_artifact(claim.measure) for claim in question.family(profile))
    ):
        try:  # the settings the artifact must have measured
            configs = speeds.speed_configs(question, profile)
        except ValueError as err:
            artifact = speeds.Artifact(artifact.path, problem=str(err))

    def timed(claim: Claim) -> ClaimResult | None:
        if not speeds.reads_artifact(claim.measure):
            return None
        where = [c for c in conditions if not claim.conditions or c in claim.conditions]
        result = speeds.measure_claim(artifact, question, profile, claim.better, claim.worse,
                                      where, configs)  # fmt: skip
        if claim.measure != speeds.MEASURE and not result.missing:
            return None  # seconds to solve, measured: tested on the seeds (fill_timed)
        nothing = stats.Interval(math.nan, math.nan, math.nan)
        return ClaimResult(claim, nothing, 0, conditions=tuple(where), speed=result)

    return timed


def build_report(question: Question, profile: str, tracking_uri: str | None = None,
                 overrides: dict[str, Any] | None = None) -> Report:  # fmt: skip
    """The report of the store's runs; a search's studies are synced with them first."""
    uri = resolve_tracking_uri(tracking_uri)
    return build_report_from(get_client(uri), question, profile, uri, overrides)


def build_report_from(client, question: Question, profile: str, uri: str | None = None,
                      overrides: dict[str, Any] | None = None) -> Report:  # fmt: skip
    """The report from ``client``'s store (``uri``: where a search's Optuna studies live;
    ``overrides``: the command line's, as the sweep was run with them)."""
    mlflow_experiment = client.get_experiment_by_name(question.name)
    finished, newest, seconds, sweep_children = {}, {}, 0.0, None
    if mlflow_experiment is not None:
        sweep = sweep_id(question, profile)
        sweep_children = sweep_runs(client, mlflow_experiment.experiment_id, sweep)
        finished = finished_by_key(sweep_children)
        for (key, _), run in finished.items():  # newest first
            newest.setdefault(key, run)
    other_settings: set[str] = set()

    def run_of(child):
        """The child's newest finished run with the file's settings; else, with a note, its
        newest with others (a sweep run with command-line Trainer options, such as
        accelerator and devices, is still the same child)."""
        run = finished.get((child.key, child.config_hash()))
        if run is None and child.key in newest:
            run = newest[child.key]
            other_settings.add(child.key)
        return run

    tuning = expand_tuning(question, profile, overrides)
    tuning_runs = {c.key: run for c in tuning if (run := run_of(c)) is not None}
    selection = select(tuning, tuning_runs)
    used = list(tuning_runs.values())
    # (arm, condition) -> the children without a finished run, in words
    missing: dict[tuple[str, str], list[str]] = {}
    for child in tuning:
        if child.key not in tuning_runs:
            missing.setdefault((child.arm, child.condition), []).append(child.key)
    points = {cell: kept.point for cell, kept in selection.items()}
    cells = {}
    for child in expand(question, profile, overrides, selected=points):
        cell = cells.get((child.arm, child.condition))
        if cell is None:  # built once per cell: its task says whether it can be solved
            cell = cells[(child.arm, child.condition)] = Cell(
                child.arm, child.condition, selected=child.point,
                tuning=selection.get((child.arm, child.condition)),
            )  # fmt: skip
            cell.implementation = implementation(child.config.model)
            level = _solved_level(child.config.task)
            cell.solvable = level is not None
            if child.config.stop_after_solved:
                cell.censor_at = level
        run = run_of(child)
        if run is None or (question.tuned and run.data.tags.get(POINT) != child.point):
            # not run yet at the selected point
            missing.setdefault((child.arm, child.condition), []).append(child.key)
            other_settings.discard(child.key)
            continue
        if math.isnan(run_score(run, TEST_SCORE)):
            missing.setdefault((child.arm, child.condition), []).append(
                f"{child.key} (no test score)"
            )
            continue
        used.append(run)
        metrics = run.data.metrics
        cell.metric = run.data.tags.get(OBJECTIVE, "")
        cell.run_ids.append(run.info.run_id)
        cell.params = int(metrics.get(PARAM_COUNT, 0)) or cell.params
        cell.chance = metrics.get(CHANCE_LEVEL, cell.chance)
        for measure in MEASURES.values():
            if (value := measure.read(run)) is not None:
                cell.values(measure.name).append(value)
        if diverged(run):
            cell.diverged += 1
        elif f"test/{cell.metric}" in metrics:
            cell.test_values.append(metrics[f"test/{cell.metric}"])
    for arm, condition in _cells(question, profile):  # cells still being tuned
        if (arm, condition) not in cells:
            cells[(arm, condition)] = Cell(arm, condition)
            if child := next((c for c in tuning if (c.arm, c.condition) == (arm, condition)), None):
                cells[(arm, condition)].implementation = implementation(child.config.model)
            missing.setdefault((arm, condition), []).append(
                f"{arm}, {condition} (evaluation: tuning not finished)"
            )
    cells = {key: cells[key] for key in _cells(question, profile)}  # the declared order
    if question.ladders:  # rungs above an arm's reach: not run, and not missing
        seeds = len(question.seeds[profile])
        reached = reach(question.arms, question.ladders, profile,
                        lambda a, c: (cells[(a, c)].solved, cells[(a, c)].runs, seeds))  # fmt: skip
        for (arm, condition), cell in cells.items():
            if not allowed(reached, arm, condition):
                # runs made before the ladder was declared do not count: the protocol would
                # not have run them
                fresh = cells[(arm, condition)] = Cell(arm, condition, reached=False)
                fresh.implementation, fresh.solvable = cell.implementation, cell.solvable
                gone = set(cell.run_ids)
                used = [run for run in used if run.info.run_id not in gone]
                missing.pop((arm, condition), None)
    missing = [text for texts in missing.values() for text in texts]
    if sweep_children is not None:
        seconds = sweep_seconds(client, question, profile, sweep_children, used)
    artifact = speeds.load()  # the controlled measurement of time per step
    verdicts, tips = answer(question, profile, list(cells.values()), artifact)
    trained = budgeted = 0
    for run in used:
        if STEPS in run.data.metrics and "trainer.max_steps" in run.data.params:
            trained += int(run.data.metrics[STEPS])
            budgeted += int(run.data.params["trainer.max_steps"])
    children = tuning or expand(question, profile, overrides)
    stop = max((c.config.stop_after_solved for c in children), default=0)
    report = Report(question, profile, list(cells.values()), missing, verdicts, tips,
                    seconds, trained, budgeted, stop, len(other_settings),
                    speed=artifact)  # fmt: skip
    if question.search is not None and uri is not None:
        from grubench.answers.importance import summarize

        report.search = summarize(question, profile, uri, tuning, finished)
    return report


def _solved_level(task_config) -> float | None:
    """The normalized score of the task's solved threshold (None: it has none)."""
    task = build_task(task_config.name, task_config.seq_len, **task_config.options)
    threshold = task.objective.solved_threshold
    return None if threshold is None else task.normalized_score(threshold)


def _fmt(value: float | None) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if math.isinf(value):
        return "never"
    if value == 0:
        return "0"
    if abs(value) >= 1000 or abs(value) < 0.001:
        return f"{value:.2e}"
    return f"{value:.4g}"


def duration(seconds: float) -> str:
    minutes, seconds = divmod(int(round(seconds)), 60)
    return f"{minutes}m{seconds:02d}s"


def to_markdown(report: Report, heading: str = "###") -> str:
    question = report.question
    lines = [
        f"{heading} {question.text}",
        "",
        "Score: the normalized test score (0 = the task's chance level, 1 = perfect), IQM over "
        "the evaluation seeds with its 95% bootstrap interval; solved: rate with its 95% Wilson "
        "interval; steps to solve: median, runs that never solved counted as never.",
        "",
        "| arm | condition | selected | score IQM [95% CI] | test metric (mean) | solved "
        "| median steps to solve | ms/step (sweep, under load) | params | diverged | runs on |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for cell in report.cells:
        if not cell.runs:
            state = "not run yet" if cell.reached else "not reached (failed a rung below)"
            lines.append(f"| {cell.arm} | {cell.condition} | {cell.selected or '–'} | "
                         f"{state} | | | | | | | {cell.implementation} |")  # fmt: skip
            continue
        score = stats.bootstrap_interval(cell.scores)
        solved = stats.wilson_interval(cell.solved, cell.runs)
        mean = statistics.fmean(cell.test_values) if cell.test_values else None
        ms = statistics.median(cell.ms_per_step) if cell.ms_per_step else None
        solved_text, steps_text = "n/a (no threshold)", "n/a"
        if cell.solvable:
            solved_text = f"{cell.solved}/{cell.runs} [{solved.low:.2f}, {solved.high:.2f}]"
            steps_text = _fmt(stats.censored_median(cell.steps))
        lines.append(
            f"| {cell.arm} | {cell.condition or '–'} | {cell.selected or '–'} | {score} "
            f"({cell.runs}) | {cell.metric} {_fmt(mean)} | {solved_text} | {steps_text} "
            f"| {_fmt(ms)} | {cell.params if cell.params is not None else '–'} "
            f"| {cell.diverged} | {cell.implementation} |"
        )
    tuned = [cell for cell in report.cells if cell.tuning]
    if tuned:
        points = list(dict.fromkeys(p for cell in tuned for p in cell.tuning.scores))
        seeds = len(question.tuning_seeds[report.profile])
        lines += [
            "",
            f"Tuning (mean validation score over {seeds} tuning seed(s) per point; **kept**):",
            "",
            "| arm | condition | " + " | ".join(points) + " |",
            "|---|---|" + "---|" * len(points),
        ]
        for cell in tuned:
            values = []
            for point in points:
                value = cell.tuning.scores.get(point)
                text = "–" if value is None or math.isnan(value) else f"{value:.3f}"
                values.append(f"**{text}**" if point == cell.tuning.point else text)
            lines.append(f"| {cell.arm} | {cell.condition or '–'} | " + " | ".join(values) + " |")
        flagged = [
            (cell, flags)
            for cell in tuned
            if (flags := selection_flags(cell.tuning, question.point_values(cell.arm)))
        ]
        if flagged:
            lines += ["", "Selections to read with care (the grid did not contain a clear best):",
                      ""]  # fmt: skip
            lines += [f"- {cell.arm}, {cell.condition or '–'}: " + "; ".join(flags)
                      for cell, flags in flagged]  # fmt: skip
    if question.tuning_note:
        lines += ["", question.tuning_note]
    if ladder_lines := frontier.markdown(report):
        lines += ["", *ladder_lines]
    if report.steps_budgeted:
        share = report.steps_trained / report.steps_budgeted
        rule = (f"runs stop {report.stop_after_solved} validations after solving"
                if report.stop_after_solved else "no early stop")  # fmt: skip
        stages = "tuning and evaluation " if question.tuned else ""
        lines += ["", f"Compute: the {stages}runs trained "
                  f"{report.steps_trained} of the {report.steps_budgeted} steps their budgets "
                  f"allow ({share:.0%}; {rule})."]  # fmt: skip
    censored = CENSORED_NOTE if any(c.censor_at is not None for c in report.cells) else ""
    lines += ["", VERDICT_NOTE.format(family=report.family, alpha=stats.ALPHA,
                                      censored=censored)]  # fmt: skip
    if note := speed_note(report):
        lines += ["", note]
    if any(cell.runs for cell in report.cells):
        lines += ["", calibration_line(report)]
    if report.verdicts:
        lines += ["", f"In one sentence: {sentence(report)}"]
    lines += ["", report.verdict]
    if report.tips:
        lines += ["", "**Tips:**", ""]
        lines += [tip_line(tip, results) for tip, results in report.tips]
    if report.search is not None:
        lines.append(report.search.markdown().rstrip("\n"))
    if report.other_settings:
        lines += ["", f"{report.other_settings} children are counted with a run whose settings "
                  "differ from the file's (command-line Trainer options, or an older "
                  "definition): rerun the sweep to replace them."]  # fmt: skip
    if report.missing:
        more = " ..." if len(report.missing) > 20 else ""
        lines += ["", f"Missing ({len(report.missing)} children without a finished run): "
                  + ", ".join(report.missing[:20]) + more]  # fmt: skip
    return "\n".join(lines) + "\n"


VERDICT_NOTE = (
    "**Verdict** (P(A > B): the chance that a run of A scores above a run of B in the same "
    "condition, ties counting one half, averaged over conditions when pooled, with its 95% "
    "score interval (Newcombe); p: the exact two-sided Mann-Whitney test in one condition, a "
    "stratified permutation test pooled over several; Holm's correction over this question's "
    "{family} tests (its verdict lines and its tips' claims), and *better* only where the "
    "corrected p is at most {alpha:g}. A pooled verdict only where no two conditions point "
    "opposite ways (each with an uncorrected p at most {alpha:g}), else *mixed* with where "
    "each arm is ahead. A *not detected* gives the smallest P the test detects with 80% "
    "power at its seeds after the correction (a normal shift, at Holm's strictest level). "
    "A condition where every arm is at the ceiling or at the floor *cannot discriminate*: "
    "its lines on the measures the bound makes equal (the score at either, the gap at the "
    "ceiling, steps, samples and seconds to solve at the floor) are not tests, stay out of "
    "the correction, and pooled verdicts leave it out.{censored})"
)
CENSORED_NOTE = (
    " Runs stop once solved, so scores are compared censored at the solved level: every "
    "solved run counts as that level (its score at the common budget is known only to be at "
    "least that), an unsolved run as its own score up to it; how fast an arm solves is "
    "compared by steps (and, where the question asks, samples or seconds) to solve."
)


def speed_note(report: Report) -> str:
    """How the claims on time per step, and on a measure scaled by it (seconds to solve),
    were decided, once (empty if the question has none)."""
    compared = {claim.measure for claim in report.question.family(report.profile)}
    scaled = [MEASURE_WORDS[m] for m in compared if m in MEASURES and MEASURES[m].controlled_time]
    if speeds.MEASURE not in compared and not scaled:
        return ""
    text = ""
    if speeds.MEASURE in compared:
        text = (
            f"**Time per step** is read from a controlled measurement, {speeds.SHOWN} "
            f"(`{speeds.SCRIPT}`: every arm's whole training step timed side by side in one "
            "process, 1 thread, interleaved rounds after warm-up), not from this sweep's runs: "
            "the table's ms/step is measured under load and only describes them. Per pair, "
            "the ratio of times per step, its median over the rounds and the distribution-free "
            f"{speeds.CONFIDENCE:.0%} interval of that median; *faster* where the interval "
            f"excludes 1 and the arms differ by {speeds.MARGIN:.0%} or more, else *no "
            "difference*; over several conditions *supported* only where one arm is faster in "
            "each. A measurement, not a test on seeds: outside the Holm family above."
        )
    if scaled:
        text += (
            f"{' ' if text else ''}**{_and(sorted(scaled)).capitalize()}**: each run's steps to "
            f"solve times its arm's median time per step in {speeds.SHOWN} (`{speeds.SCRIPT}`: "
            "every arm's whole training step timed side by side in one process, 1 thread), not "
            "the sweep's wall time under load; then tested on the seeds like steps to solve, in "
            "the Holm family (the per-step time's own spread, a few percent, is not carried in)."
        )
    entry = report.speed.entry(report.question, report.profile) if report.speed else None
    if entry and "measured" in entry:
        run = entry["measured"]
        machine = run.get("machine", {})
        text += (f" Measured {run.get('date', '?')} at commit {run.get('commit', '?')} on "
                 f"{machine.get('cpu', '?')} ({machine.get('cores', '?')} cores), torch "
                 f"{machine.get('torch', '?')}: `{run.get('command', '?')}`.")  # fmt: skip
    return text


def calibration_line(report: Report) -> str:
    """Which conditions discriminate the arms, which cannot (and why), which are not judged
    yet (some arm has too few runs there)."""
    bounds = report.bounds
    ran: dict[str, set[str]] = {}
    present: dict[str, set[str]] = {}  # the arms that run there (a ladder's rung: reached it)
    for cell in report.cells:
        if cell.runs >= stats.MIN_SEEDS:
            ran.setdefault(cell.condition, set()).add(cell.arm)
        if cell.reached:
            present.setdefault(cell.condition, set()).add(cell.arm)
    conditions = list(report.question.conditions_for(report.profile))
    judged = [c for c in conditions if len(ran.get(c, ())) > 1 and ran[c] == present.get(c)]
    alone = [c for c in conditions if len(present.get(c, ())) < 2 and c not in judged
             and len(present.get(c, ())) == len(ran.get(c, ()))]  # fmt: skip
    parts = [f"discriminate: {', '.join(_named(c) for c in judged if c not in bounds) or 'none'}"]
    if bounds:
        parts.append("cannot discriminate: " + _bounded(bounds))
    if alone:  # a ladder's rungs that one arm or none reached: nothing to compare
        parts.append("reached by one arm or none (nothing to compare): " + ", ".join(alone))
        judged += alone
    if waiting := [_named(c) for c in conditions if c not in judged]:
        parts.append(
            f"not judged yet (an arm with under {stats.MIN_SEEDS} runs): " + ", ".join(waiting)
        )
    return (f"**Calibration** (ceiling: IQM score ≥ {report.question.calibration.ceiling:g} and "
            f"all solved; floor: ≤ {report.question.calibration.floor:g} and none solved): "
            + "; ".join(parts) + ".")  # fmt: skip


def _named(condition: str) -> str:
    return condition or "the one condition"


def _why(bounds: dict[str, tuple[str, str]]) -> dict[str, list[str]]:
    """Why conditions cannot discriminate -> those conditions, in order."""
    groups: dict[str, list[str]] = {}
    for condition, (_, why) in bounds.items():
        groups.setdefault(why, []).append(condition)
    return groups


def _bounded(bounds: dict[str, tuple[str, str]]) -> str:
    """Conditions grouped by why they cannot discriminate: "c1 and c2, every arm at the
    ceiling (...); c3, every arm at the floor (...)" (a question's one unnamed condition:
    the why alone)."""
    return "; ".join(f"{_and(found)}, {why}" if any(found) else why
                     for why, found in _why(bounds).items())  # fmt: skip


def _left_out(result: ClaimResult) -> str:
    """Why the claim's conditions were left out (naming them, unless the claim names the one
    condition it is about)."""
    named = len(result.claim.conditions) != 1
    return _bounded({(c if named else ""): ("", why) for c, why in result.left_out})


def _p(value: float) -> str:
    return f"{value:.2g}"


def _where(result: ClaimResult) -> str:
    """The measure and conditions a verdict line speaks of."""
    words = MEASURE_WORDS[result.claim.measure]
    if result.claim.conditions:
        where = f"{words}, {', '.join(result.claim.conditions)}"
    elif result.cannot_discriminate:
        where = f"{words}, pooled" if len(result.left_out) > 1 else words
    elif len(result.conditions) > 1 or result.left_out:
        count = len(result.conditions)
        where = f"{words}, pooled over {count} condition{'s' * (count != 1)}"
    else:
        where = words
    if result.left_out and not result.cannot_discriminate:
        where += f", leaving out {_left_out(result)}"
    return where


def _numbers(result: ClaimResult, name: str = "") -> str:
    """P(A > B) with its interval, then the test's p-value before and after the correction."""
    text = f"{name or 'P'} = {result.p}"
    if result.tested:
        text += (f", p = {_p(result.p_value)} (Holm: {_p(result.adjusted)}, "
                 f"{result.family} tests)")  # fmt: skip
    return text


def _detectable(result: ClaimResult) -> str:
    """What a "not detected" could have detected: P rounded up to two decimals."""
    n, m = result.seeds
    if math.isnan(result.detectable):
        smallest = stats.smallest_p_value(n, m, len(result.conditions))
        return (f"nothing detectable at {n} vs {m} seeds (the smallest p, {_p(smallest)}, "
                f"is above {stats.ALPHA:g}/{result.family})")  # fmt: skip
    at_least = _up(result.detectable)
    return f"would detect P ≥ {at_least:.2f} (or ≤ {1 - at_least:.2f})"


def _up(value: float) -> float:
    return math.ceil(round(value * 100, 6)) / 100


def _ahead(result: ClaimResult) -> str:
    """Where each arm is ahead (by P of the arm ahead over the other), for a "mixed"."""
    a, b = result.claim.better, result.claim.worse
    parts = []
    for arm, sign in ((a, 1), (b, -1)):
        where = [f"{c} ({0.5 + sign * (p.estimate - 0.5):.2f})"
                 for c, p, _ in result.by_condition if sign * (p.estimate - 0.5) > 0]  # fmt: skip
        if where:
            parts.append(f"{arm} ahead in {', '.join(where)}")
    return "; ".join(parts)


def verdict_line(result: ClaimResult) -> str:
    """One verdict line: the measure and conditions, the outcome, the numbers."""
    if result.speed is not None:
        return _speed_line(result)
    a, b = result.claim.better, result.claim.worse
    where, numbers = _where(result), _numbers(result, f"P({a} > {b})")
    label = result.label
    if label == "cannot discriminate":
        return f"{where}: {a} vs {b}: cannot discriminate: {_left_out(result)}"
    if label == "too few seeds":
        return (f"{where}: {a} vs {b}: too few seeds ({result.fewest_seeds} < "
                f"{stats.MIN_SEEDS} in some condition), {numbers}")  # fmt: skip
    if label == "mixed":
        return f"{where}: {a} vs {b}: mixed ({_ahead(result)}), {numbers}"
    if label == "supported":
        return f"{where}: **{a} better than {b}**, {numbers}"
    if label == "contradicted":
        return f"{where}: **{b} better than {a}**, {numbers}"
    return f"{where}: {a} vs {b}: not detected; {_detectable(result)}, {numbers}"


def _speed_where(result: ClaimResult) -> str:
    """The measure, where it was read and the conditions, for a line on time per step."""
    measure = result.claim.measure
    where = MEASURE_WORDS[measure] + (f" (controlled, {speeds.SHOWN})"
                                      if measure == speeds.MEASURE else "")  # fmt: skip
    if result.claim.conditions:
        return f"{where}, {', '.join(result.claim.conditions)}"
    count = len(result.conditions)
    return f"{where}, over {count} conditions" if count > 1 else where


def _speed_line(result: ClaimResult) -> str:
    """A verdict line on time per step, from the controlled measurement (speeds.decide)."""
    measured, where = result.speed, _speed_where(result)
    a, b = measured.better, measured.worse
    label = measured.label
    if label == "not measured":
        return f"{where}: {a} vs {b}: {speeds.missing_text(measured)}"
    numbers = speeds.summary(measured)
    if label == "supported":
        return f"{where}: **{a} faster than {b}**, {numbers}"
    if label == "contradicted":
        return f"{where}: **{b} faster than {a}**, {numbers}"
    if label == "mixed":
        return f"{where}: {a} vs {b}: mixed, {numbers}"
    if len(measured.conditions) == 1:
        why = speeds.why_same(measured.conditions[0].ratio)
    else:
        why = f"in each condition: the interval includes 1 or under {speeds.MARGIN:.0%} apart"
    return f"{where}: {a} vs {b}: no difference ({why}), {numbers}"


def claim_text(result: ClaimResult) -> str:
    claim = result.claim
    where = f" ({', '.join(claim.conditions)})" if claim.conditions else ""
    text = f"{claim.better} beats {claim.worse} on {MEASURE_WORDS[claim.measure]}{where}"
    if result.speed is not None:  # read from the controlled measurement
        if result.label == "not measured":
            return f"*not measured*: {text} ({speeds.missing_reason(result.speed)})"
        return f"*{result.label}*: {text} (controlled: {speeds.summary(result.speed)})"
    if result.cannot_discriminate:
        return f"*cannot discriminate*: {text} ({_left_out(result)})"
    if result.not_reached:
        return f"*not reached*: {text} ({_left_out(result)})"
    if math.isnan(result.p.estimate):
        return f"*not measured yet*: {text}"
    extra = f"; leaving out {_left_out(result)}" if result.left_out else ""
    if result.label == "not detected":
        extra += f"; {_detectable(result)}"
    elif result.label == "mixed":
        extra += f"; {_ahead(result)}"
    return f"*{result.label}*: {text}, {_numbers(result)}{extra}"


def sentence(report: Report, measure: str | None = None) -> str:
    """The answer in one plain sentence, from the per-condition verdicts on ``measure`` (the
    question's first verdict measure by default): for each pair of arms, which one wins
    where and by how much (P of the winner over the other), where no difference was detected
    and what it would have detected, the pooled verdict, and which conditions cannot
    discriminate the arms (every arm at the ceiling or the floor); when none can, it says so."""
    question = report.question
    measure = measure or question.verdict_measures[0]
    words = MEASURE_WORDS[measure]
    if measure == speeds.MEASURE:
        return _speed_sentence(report)
    bounds = {c: bound for c, bound in report.bounds.items()
              if bound[0] in CALIBRATED.get(measure, ())}  # fmt: skip
    if bounds and set(question.conditions_for(report.profile)) <= set(bounds):
        return (f"No condition of this profile discriminates the arms on {words}: "
                f"{_bounded(bounds)}.")  # fmt: skip
    clauses = []
    for a, b in question.pairs():
        results = [r for r in report.verdicts if r.claim.measure == measure
                   and (r.claim.better, r.claim.worse) == (a, b)
                   and not r.cannot_discriminate]  # fmt: skip
        if clause := results and _pair_clause(a, b, results):
            clauses.append(clause)
    climbed = frontier.clause(report)
    if report.search is not None and report.search.importances:
        from grubench.answers.importance import clause as importance_clause

        found = importance_clause(report.search.importances)
        climbed = f"{climbed}. {found[0].upper()}{found[1:]}" if climbed else found
    if not clauses:
        return f"{climbed[0].upper()}{climbed[1:]}." if climbed else f"No {words} to compare yet."
    clauses += [f"{_and([_named(c) for c in found])} cannot discriminate: {why}"
                for why, found in _why(bounds).items()]  # fmt: skip
    lead = f"{climbed[0].upper()}{climbed[1:]}. " if climbed else ""
    return f"{lead}On {words}, " + "; ".join(clauses) + "."


def _speed_sentence(report: Report) -> str:
    """The answer on time per step, from the controlled measurement: per pair, which arm is
    faster and by how much, or that no difference was measured."""
    clauses = []
    for a, b in report.question.pairs():
        result = next((r for r in report.verdicts if r.speed is not None
                       and (r.claim.better, r.claim.worse) == (a, b)
                       and not r.claim.conditions), None)  # fmt: skip
        if result is None:
            continue
        measured, label = result.speed, result.label
        if label == "not measured":
            clauses.append(f"{a} vs {b} is not measured ({speeds.missing_reason(measured)})")
        elif label == "supported":
            clauses.append(f"{a} is faster than {b} ({speeds.summary(measured)})")
        elif label == "contradicted":
            clauses.append(f"{b} is faster than {a} ({speeds.summary(measured)})")
        elif label == "mixed":
            clauses.append(f"{a} vs {b} is mixed ({speeds.summary(measured)})")
        else:
            clauses.append(f"no difference between {a} and {b} was measured "
                           f"({speeds.summary(measured)})")  # fmt: skip
    if not clauses:
        return f"No {MEASURE_WORDS[speeds.MEASURE]} compared."
    return (f"On {MEASURE_WORDS[speeds.MEASURE]} (controlled, {speeds.SHOWN}), "
            + "; ".join(clauses) + ".")  # fmt: skip


def _pair_clause(a: str, b: str, results: list[ClaimResult]) -> str:
    per_condition = [r for r in results if r.claim.conditions]
    pooled = next((r for r in results if not r.claim.conditions), None)
    named = bool(per_condition)
    groups: dict[str, list[ClaimResult]] = {}
    for result in per_condition or results:
        groups.setdefault(result.label, []).append(result)

    def at(found: list[ClaimResult], flip: bool = False) -> str:
        numbers = [(r.claim.conditions[0] + " " if named else "")
                   + f"(P = {1 - r.p.estimate if flip else r.p.estimate:.2f})"
                   for r in found]  # fmt: skip
        return (" at " if named else " ") + _and(numbers)

    parts = []
    if "supported" in groups:
        parts.append(f"{a} beats {b}{at(groups['supported'])}")
    if "contradicted" in groups:
        parts.append(f"{b} beats {a}{at(groups['contradicted'], flip=True)}")
    if quiet := groups.get("not detected"):
        where = ""
        if named:
            everywhere = len(quiet) == len(per_condition)
            where = " in any condition" if everywhere else " at " + _and(
                [r.claim.conditions[0] for r in quiet])  # fmt: skip
        parts.append(f"no difference between {a} and {b} was detected{where} "
                     f"({_could(quiet)})")  # fmt: skip
    if few := groups.get("too few seeds"):
        where = " at " + _and([r.claim.conditions[0] for r in few]) if named else ""
        parts.append(f"{a} vs {b} has too few seeds{where}")
    if named and pooled is not None and len(pooled.conditions) > 1:  # else a condition's test
        label = pooled.label
        if label == "supported":
            parts.append(f"pooled, {a} beats {b} (P = {pooled.p.estimate:.2f})")
        elif label == "contradicted":
            parts.append(f"pooled, {b} beats {a} (P = {1 - pooled.p.estimate:.2f})")
        elif label == "mixed":
            parts.append(f"pooled, mixed ({_ahead(pooled)})")
        elif label == "not detected":
            parts.append(f"pooled, nothing detected ({_could([pooled])})")
    return ", ".join(parts)


def _could(results: list[ClaimResult]) -> str:
    """What the "not detected" tests could have detected, in words."""
    values = sorted({_up(r.detectable) for r in results if not math.isnan(r.detectable)})
    if not values:
        n, m = results[0].seeds
        return (f"no effect was detectable at {n} vs {m} seeds after the correction over "
                f"{results[0].family} tests")  # fmt: skip
    span = f"{values[0]:.2f}" if len(values) == 1 else f"{values[0]:.2f} to {values[-1]:.2f}"
    return f"it would have detected P ≥ {span}"


def _and(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def tip_line(tip: Tip, results: list[ClaimResult]) -> str:
    return f'- "{tip.text}" ' + "; ".join(claim_text(r) for r in results) + "."


def sweep_seconds(client, question: Question, profile: str, children=None, used=None) -> float:
    """Wall time during which the sweep ran: the union of its parent runs' intervals (drivers
    that ran at once count once). A parent left RUNNING with no end time (its driver died
    unmarked, or still lives) counts until its last child ended; ``children``: the sweep's
    child runs, if the caller has read them already; ``used``: the runs the report counts,
    if only the drivers that ran one of them should count (a driver whose runs all had
    settings the question no longer has, or ran nothing, is left out)."""
    found = client.get_experiment_by_name(question.name)
    if found is None:
        return 0.0
    sweep = sweep_id(question, profile)
    parents = sweep_runs(client, found.experiment_id, sweep, "parent")
    if used is not None:
        drivers = {run.data.tags.get(PARENT_RUN) for run in used}
        parents = [p for p in parents if p.info.run_id in drivers]
    last_child_end: dict[str, int] = {}
    if any(not p.info.end_time and p.info.status == RunStatus.RUNNING for p in parents):
        if children is None:
            children = sweep_runs(client, found.experiment_id, sweep)
        for child in children:
            parent, end = child.data.tags.get(PARENT_RUN), child.info.end_time
            if parent and end:
                last_child_end[parent] = max(end, last_child_end.get(parent, 0))
    spans = []
    for parent in parents:
        end = parent.info.end_time
        if not end and parent.info.status == RunStatus.RUNNING:
            end = last_child_end.get(parent.info.run_id)
        if end:
            spans.append((parent.info.start_time, end))
    spans.sort()
    total, end = 0, None
    for start, stop in spans:
        if end is None or start > end:
            total += stop - start
            end = stop
        elif stop > end:
            total += stop - end
            end = stop
    return total / 1000
