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

The learning rate's range depends on the optimizer (each one's working range; one shared range
left SGD at a score of 0 at every rate and made the optimizer look all-important): every trial
draws a position u in [0, 1] and lr = lo * (hi / lo) ** u within the drawn optimizer's range
(grubench.sweeps.search.LogRangeByChoice), so every trial has the same knobs for fANOVA.

- adam 1e-4..3e-2: around torch's and Kingma & Ba's default 1e-3, two decades either way
  (up to where the gated models' grids here select their best, 1e-2).
- rmsprop 1e-4..3e-2: like Adam, it divides the step by the gradient's RMS, so Adam's
  range; torch's default is 1e-2, Keras' 1e-3, Graves 2013's 1e-4.
- sgd 1e-2..1: SGD with momentum 0.9 (Sutskever et al. 2013; Greff et al.'s setting,
  Nesterov there) is how SGD is used to train RNNs; plain SGD is not a working setting. Its
  step is lr / (1 - 0.9) on mean-reduced losses, not normalized, so its rates lie far above
  the adaptive ones: a decade either side of the usual 0.1. A pilot (2026-12-05; custom GRU,
  H=64, B=64, clip 1, 1500 steps, one seed) placed both edges inside: digits T=64 solved at
  0.1 (val 0.95) and failed at 1.0 (0.07), as at every rate up to 0.03 before; adding T=50
  failed at 0.03 and 0.3 and diverged at 3.0. In the quick sweep that followed, SGD took the
  GRU to 0.98-0.99 on adding at 0.13-0.31 (trials 2, 9, 11; the LSTM 0.97-0.98 in two of
  them) and to 0.96 on digits at 0.21 (its best trial), and failed near both ends.
- momentum: 0.9 for SGD only; RMSprop runs at torch's default 0 (issue 24: a question uses
  the libraries' defaults unless it says otherwise; Adam has no such knob).
"""

from optuna.distributions import CategoricalDistribution as Choice

from grubench.sweeps.question import Question
from grubench.sweeps.search import LogRangeByChoice, Search, ValueByChoice

# each optimizer's learning-rate range (the docstring says why)
LR_RANGES = {"adam": (1e-4, 3e-2), "rmsprop": (1e-4, 3e-2), "sgd": (1e-2, 1.0)}

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
            "optim.lr": LogRangeByChoice("optim.name", LR_RANGES),  # drawn: lr_position
            "model.hidden_size": Choice([32, 64, 128]),
            "task.batch_size": Choice([16, 32, 64, 128]),
            "model.init": Choice(["default", "xavier_uniform", "orthogonal", "chrono"]),
            "optim.grad_clip": Choice([0.0, 0.25, 1.0, 5.0]),
            "optim.name": Choice(["adam", "rmsprop", "sgd"]),
            "optim.momentum": ValueByChoice(
                "optim.name", {"adam": 0.0, "rmsprop": 0.0, "sgd": 0.9}
            ),
        },
        space_by_arm={
            "gru": {
                "model.activation": Choice(["tanh", "relu"]),
                "model.reset_after": Choice([True, False]),
            }
        },
        trials={"quick": 24, "full": 200},
    ),
    base={"stop_after_solved": 3},
    budgets={
        "quick": {
            "task": {"val_size": 512, "test_size": 512},
            "trainer": {"max_steps": 1500, "enable_progress_bar": False},
        },
        "full": {"trainer": {"max_steps": 20000}},
    },
)
