"""Difficulty ladders: each arm climbs rung by rung while it solves; the report's frontiers."""

import dataclasses

import pytest

from grubench.answers.frontier import frontiers
from grubench.answers.publish import write_report
from grubench.answers.report import build_report, sentence, to_markdown
from grubench.sweeps.ladder import Ladder, allowed, reach
from grubench.sweeps.question import Question, expand
from grubench.sweeps.runner import plan_sweep, run_sweep
from tests.test_runner import TINY_BASE, children_in_store

TIER = "unit"

ADDING = Ladder("adding T={}", "task.seq_len", {"quick": (2, 3, 4), "full": (10, 20)},
                base={"task": {"name": "adding"}})  # fmt: skip


def test_a_ladder_names_its_rungs_as_conditions():
    assert ADDING.name == "adding T"
    assert ADDING.rung(4) == "T=4"
    assert ADDING.conditions("quick") == {
        f"adding T={t}": {"task": {"name": "adding", "seq_len": t}} for t in (2, 3, 4)
    }
    # a rung is passed with at least `climb` of the seeds solved, and never with none
    assert [ADDING.needed(n) for n in (1, 2, 5, 8)] == [1, 1, 3, 4]
    assert Ladder("x={}", "task.seq_len", {}, climb=0.01).needed(8) == 1
    assert Ladder("x={}", "task.seq_len", {}, climb=1.0).needed(8) == 8


def test_bad_ladders_are_named():
    assert Ladder("adding", "task.seq_len", {"quick": (2,)}).check()
    assert Ladder("T={}", "task.seq_len", {"quick": (2,)}, climb=0).check()
    assert Ladder("T={}", "task.seq_len", {"quick": (2, 2)}).check()
    question = Question("q", "?", arms={"a": {}, "b": {}}, conditions={"adding T=2": {}},
                        ladders=(ADDING,))  # fmt: skip
    assert any("repeat a condition" in p for p in question.check())


def test_reach_climbs_while_an_arm_solves():
    # (solved, finished, seeds) per (arm, rung)
    table = {
        ("gru", "adding T=2"): (2, 2, 2),
        ("gru", "adding T=3"): (1, 2, 2),  # half solved: climbs (climb 0.5)
        ("gru", "adding T=4"): (0, 2, 2),
        ("rnn", "adding T=2"): (0, 2, 2),  # failed the first rung: stops
        ("lstm", "adding T=2"): (2, 1, 2),  # a seed still running: waits
    }
    cells = reach(["gru", "rnn", "lstm"], [ADDING], "quick",
                  lambda a, c: table.get((a, c), (0, 0, 2)))  # fmt: skip
    assert cells == {"adding T=2": {"gru", "rnn", "lstm"}, "adding T=3": {"gru"},
                     "adding T=4": {"gru"}}  # fmt: skip
    assert allowed(cells, "rnn", "adding T=2") and not allowed(cells, "rnn", "adding T=3")
    assert allowed(cells, "rnn", "digits")  # not a rung: every arm runs it
    assert allowed(None, "rnn", "adding T=4")  # no ladders


def test_rungs_follow_the_declared_conditions():
    question = Question("q", "?", arms={"a": {}, "b": {}}, conditions={"digits": {}},
                        ladders=(ADDING,))  # fmt: skip
    assert list(question.conditions_for("quick")) == ["digits", "adding T=2", "adding T=3",
                                                      "adding T=4"]  # fmt: skip
    assert list(question.conditions_for("full")) == ["digits", "adding T=10", "adding T=20"]
    assert question.ladder_of("adding T=3") is ADDING and question.ladder_of("digits") is None
    only = Question("q", "?", arms={"a": {}, "b": {}}, ladders=(ADDING,))
    assert list(only.conditions_for("quick")) == ["adding T=2", "adding T=3", "adding T=4"]


def ladder_question(**kwargs) -> Question:
    """A GRU that solves the adding problem at T=2 within 120 steps (step 60 in a pilot), and
    an arm that trains one step and never solves."""
    options = dict(
        name="tiny_ladder",
        text="How far does each arm climb?",
        arms={
            "gru": {"model": {"name": "torch_gru"}},
            "still": {"model": {"name": "rnn"}, "trainer": {"max_steps": 1}},
        },  # fmt: skip
        ladders=(ADDING,),
        base={
            **TINY_BASE,
            "model": {"hidden_size": 8},
            "task": {**TINY_BASE["task"], "batch_size": 32, "epoch_size": 20},
            "optim": {"lr": 0.03},
            "stop_after_solved": 1,
            "trainer": {**TINY_BASE["trainer"], "max_steps": 120},
        },  # fmt: skip
        seeds={"quick": [0, 1], "full": [0, 1]},
        tuning_seeds={"quick": [100], "full": [100]},
    )
    return Question(**{**options, **kwargs})


@pytest.mark.integration
def test_each_arm_climbs_until_it_fails(tmp_path):
    """A real sweep on a real store: the arm that never solves runs the first rung only; the
    GRU goes on while it solves; the report counts the rungs above an arm's reach as not
    reached (not missing), gives each arm's frontier, and draws the ladder."""
    short = Ladder(
        "adding T={}", "task.seq_len", {"quick": (2, 3)}, base={"task": {"name": "adding"}}
    )
    question = ladder_question(tune={"optim.lr": [0.03]}, ladders=(short,))  # tuned at each rung
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    plan = plan_sweep(question)
    assert len(plan.evaluation) == 2 * 2 * 2  # at most: every arm on every rung
    lines = []
    result = run_sweep(question, tracking_uri=uri, echo=lines.append)
    assert not result.failed
    from grubench.store.tracking import get_client

    runs = children_in_store(get_client(uri), "tiny_ladder")
    ran = {(r.data.tags["grubench.arm"], r.data.tags["grubench.condition"]) for r in runs}
    assert ("still", "adding T=2") in ran
    assert ("still", "adding T=3") not in ran
    assert ("gru", "adding T=3") in ran  # it solved T=2
    assert any("next rung" in line for line in lines)

    report = build_report(question, "quick", uri)
    assert report.missing == []
    cells = {(c.arm, c.condition): c for c in report.cells}
    assert not cells[("still", "adding T=3")].reached
    assert cells[("gru", "adding T=2")].solved == 2
    by_arm = {f.arm: f for f in frontiers(report)}
    assert by_arm["still"].value_text() == "below T=2" and not by_arm["still"].climbing
    assert by_arm["gru"].best is not None and by_arm["gru"].best.value >= 2
    markdown = to_markdown(report)
    assert "**Frontiers**" in markdown and "not reached (failed a rung below)" in markdown
    assert sentence(report).startswith("The hardest adding T each arm solved: gru T=")
    # no verdict line on a rung that only one arm reached
    if not cells[("gru", "adding T=3")].runs:
        pytest.fail("the GRU solved T=2 but did not climb to T=3")
    assert not any(r.claim.conditions == ("adding T=3",) for r in report.verdicts)
    _, paths = write_report(question, "quick", tmp_path / "out", uri)
    assert (tmp_path / "out" / "tiny_ladder-quick-ladder.png") in paths

    # run again: nothing new to run (the climb is decided by what is stored)
    again = run_sweep(question, tracking_uri=uri, echo=lines.append)
    assert again.ran == 0

    # runs above an arm's reach made without the ladder (a fixed condition, the same
    # settings) do not count: the protocol would not have run them
    plain = dataclasses.replace(question, ladders=(), conditions=short.conditions("quick"))
    run_sweep(plain, tracking_uri=uri, echo=lines.append)
    report = build_report(question, "quick", uri)
    cells = {(c.arm, c.condition): c for c in report.cells}
    assert cells[("still", "adding T=3")].runs == 0 and not cells[("still", "adding T=3")].reached
    still = next(f for f in frontiers(report) if f.arm == "still")
    assert len(still.rungs) == 1 and still.stopped_at.condition == "adding T=2"


def test_the_plan_counts_every_rung_at_most():
    question = ladder_question()
    children = expand(question, "quick")
    assert {c.condition for c in children} == set(ADDING.conditions("quick"))
    lines = []
    run_sweep(question, dry_run=True, echo=lines.append)
    assert lines[0].startswith("tiny_ladder:quick: 12 children")
