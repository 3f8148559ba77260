"""Which optimizer? Adam, RMSprop and SGD with momentum, each over its own learning-rate grid
of the same size: the score at each one's best rate, and how sensitive each is to the rate
(the tuning table is half of the answer here).

    grubench run experiments/optimizer.py

Calibration: in the earlier 500-step runs (LSTM hidden 32, adding T=50) Adam solved at lr 3e-2
(3/3) and 1e-2 (2/3), RMSprop's best rate (1e-2) reached MSE 0.079 with no seed solved, and SGD
with momentum stayed at chance at every rate from 1e-2 to 3e-1. Quick: 2000 steps, a stop 3
validations after solving.
"""

from grubench.sweeps.question import Claim, Question, Tip

QUESTION = Question(
    name="optimizer",
    text="Which optimizer and learning rate? (LSTM, adding problem)",
    # each optimizer as its library defines it, except SGD, which practitioners run with momentum
    arms={
        "adam": {"optim": {"name": "adam"}},
        "rmsprop": {"optim": {"name": "rmsprop"}},
        "sgd": {"optim": {"name": "sgd", "momentum": 0.9}},
    },
    baseline="sgd",
    tune_by_arm={
        "adam": {"optim.lr": [3e-3, 1e-2, 3e-2]},
        "rmsprop": {"optim.lr": [1e-3, 3e-3, 1e-2]},
        "sgd": {"optim.lr": [3e-2, 1e-1, 3e-1]},
    },
    tuning_note=(
        "Tuning is the subject of this question: each optimizer searches its own grid of "
        "three rates (SGD's an order of magnitude higher, as its updates are not normalized); "
        "the tuning table shows each one's sensitivity to the rate, the main table its score "
        "at its own best rate."
    ),
    conditions={"adding T=50": {"task": {"name": "adding", "seq_len": 50}}},
    base={
        "model": {"name": "lstm", "hidden_size": 32},
        "optim": {"grad_clip": 1.0},
        "stop_after_solved": 3,
    },
    tips=[
        Tip(
            "Adam or RMSprop adapt the learning rate and train faster.",
            (Claim("adam", "sgd", "steps_to_solve"), Claim("rmsprop", "sgd", "steps_to_solve")),
        )
    ],
    budgets={
        "quick": {
            "task": {"val_size": 512, "test_size": 512},
            "trainer": {"max_steps": 2000, "enable_progress_bar": False},
        },
        "full": {
            "model": {"hidden_size": 128},
            "task": {"seq_len": 200},
            "trainer": {"max_steps": 10000},
        },
    },
)
