"""The importance report's trial-count estimate (grubench.answers.importance): how many trials
would separate the top two knobs' bootstrap intervals, on constructed importances."""

import pytest

from grubench.answers.importance import Importance, SearchSummary, knob, separation

TIER = "unit"


def _importance(trials, mean, bootstrap):
    return Importance(trials=trials, mean=mean, seed_range={k: (v, v) for k, v in mean.items()},
                      bootstrap=bootstrap)  # fmt: skip


def test_overlapping_intervals_give_the_trials_that_would_separate_them():
    # gap 0.2; the top's lower end 0.3 below its mean, the second's upper end 0.1 above its
    # own: separated when 0.2 > 0.4 * sqrt(24 / n), i.e. n > 24 * 4 = 96
    imp = _importance(
        24,
        {"optim.lr": 0.5, "optim.name": 0.3, "model.init": 0.2},
        {"optim.lr": (0.2, 0.7), "optim.name": (0.1, 0.4), "model.init": (0.0, 0.5)},
    )
    assert imp.trials_to_separate() == 96
    shrink = (24 / 96) ** 0.5  # at 96 trials the ends meet, one more and they part
    assert 0.5 - 0.3 * shrink == pytest.approx(0.3 + 0.1 * shrink)
    shrink = (24 / 97) ** 0.5
    assert 0.5 - 0.3 * shrink > 0.3 + 0.1 * shrink
    text = separation(imp)
    assert text.startswith("lr 0.50 (lower end 0.20) over optimizer 0.30 (upper end 0.40)")
    assert text.endswith("would separate at about 96 trials (now 24)")


def test_separated_and_tied_intervals():
    apart = _importance(24, {"a.x": 0.7, "a.y": 0.2}, {"a.x": (0.5, 0.8), "a.y": (0.1, 0.4)})
    assert apart.trials_to_separate() == 24 and separation(apart).endswith("separate at 24 trials")
    tied = _importance(24, {"a.x": 0.4, "a.y": 0.4}, {"a.x": (0.2, 0.6), "a.y": (0.2, 0.6)})
    assert tied.trials_to_separate() is None and "tied" in separation(tied)
    barely = _importance(10, {"a.x": 0.5, "a.y": 0.3}, {"a.x": (0.4, 0.6), "a.y": (0.2, 0.4)})
    assert barely.trials_to_separate() == 11  # ends touch at 0.4: one more trial than now


def test_the_report_says_it_for_each_study():
    imp = _importance(
        24,
        {"optim.lr_position": 0.5, "optim.name": 0.3},
        {"optim.lr_position": (0.2, 0.7), "optim.name": (0.1, 0.4)},
    )
    text = SearchSummary({("gru", "adding T=50"): imp}, {}).markdown()
    assert "- gru, adding T=50: lr 0.50 (lower end 0.20) over optimizer" in text
    assert "| lr | 0.50" in text and knob("optim.lr_position") == "lr"
    assert "learning rate ranks gru, adding T=50: 1st of 2 (0.50)" in text


def test_the_one_sentence_clause_names_the_top_knob_and_whether_it_separates():
    from grubench.answers.importance import Importance, clause

    def study(trials, lr, clip, lr_low, clip_high):
        return Importance(trials, {"optim.lr": lr, "optim.grad_clip": clip},
                          {"optim.lr": (lr, lr), "optim.grad_clip": (clip, clip)},
                          {"optim.lr": (lr_low, 0.9), "optim.grad_clip": (0.0, clip_high)})  # fmt: skip

    apart = study(24, 0.6, 0.1, 0.5, 0.2)  # lr's lower end 0.5 above clip's upper end 0.2
    close = study(24, 0.5, 0.3, 0.2, 0.6)  # overlap: gap 0.2, spread 0.3 + 0.3 -> 24 * 9
    text = clause({("gru", "adding"): apart, ("lstm", "adding"): close})
    assert text.startswith("the knob that mattered most (fANOVA): lr in 2 of 2 studies")
    assert "overlap in 1 of 2 studies at 24 trials" in text
    assert f"about {24 * 9} trials" in text
    assert "clears the second's in every study" in clause({("gru", "adding"): apart})
    assert clause({}) == ""
