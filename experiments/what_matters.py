"""Which knob matters most? A seeded random search over the learning rate, hidden size, batch
size, initialization, gradient clipping and optimizer (and, for the GRU, the candidate
activation and the reset form), for the custom GRU and the LSTM on the adding problem and on
sequential digits; the importance of each knob by fANOVA (Greff et al. 2017 did this for the
LSTM: the learning rate mattered most, and the hyperparameters barely interacted).

    grubench run experiments/what_matters.py      # quick: this CPU (resumable)
    grubench report experiments/what_matters.py   # the table, the importances, the plots

Each trial is a tuning child (one run, one tuning seed); the best trial per model and task is
re-run on the evaluation seeds and scored on the test split: that is the recommendation.
The Optuna study lives in optuna.db beside the MLflow store (grubench.sweeps.search). The quick
profile's budget, 1500 steps with a stop 3 validations after solving, is half of what the
other questions give a run: the search spends its compute on trials.
"""

from optuna.distributions import CategoricalDistribution as Choice
from optuna.distributions import FloatDistribution

from grubench.sweeps.question import Question
from grubench.sweeps.search import Search

QUESTION = Question(
    name="what_matters",
    text="Which knob matters most? (random search, fANOVA; custom GRU and LSTM)",
    arms={
        "gru": {"model": {"name": "custom_gru"}},
        "lstm": {"model": {"name": "lstm"}},
    },
    conditions={
        "adding T=50": {"task": {"name": "adding", "seq_len": 50}},
        "digits T=64": {"task": {"name": "sequential_digits", "seq_len": 64}},
    },
    search=Search(
        space={  # shared dimensions first: both arms draw the same values of them
            "optim.lr": FloatDistribution(1e-4, 3e-2, log=True),
            "model.hidden_size": Choice([32, 64, 128]),
            "task.batch_size": Choice([16, 32, 64, 128]),
            "model.init": Choice(["default", "xavier_uniform", "orthogonal", "chrono"]),
            "optim.grad_clip": Choice([0.0, 0.25, 1.0, 5.0]),
            "optim.name": Choice(["adam", "rmsprop", "sgd"]),
        },
        space_by_arm={
            "gru": {
                "model.activation": Choice(["tanh", "relu"]),
                "model.reset_after": Choice([True, False]),
            }
        },
        trials={"quick": 24, "full": 200},
    ),
    # momentum 0.9 for sgd and rmsprop, as this file's trials have run since the start (issue 24
    # item 8 redraws the optimizer's ranges)
    base={"stop_after_solved": 3, "optim": {"momentum": 0.9}},
    budgets={
        "quick": {
            "task": {"val_size": 512, "test_size": 512},
            "trainer": {"max_steps": 1500, "enable_progress_bar": False},
        },
        "full": {"trainer": {"max_steps": 20000}},
    },
)
