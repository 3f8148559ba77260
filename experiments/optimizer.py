"""Which optimizer and learning rate? Adam, RMSprop and SGD with momentum over a learning-rate
grid: the best rate of each and how sensitive each is to it (the spread across its rates).

    grubench run experiments/optimizer.py
"""

from grubench.experiment import Experiment, grid

RATES = {"adam": [1e-3, 3e-3, 1e-2, 3e-2], "rmsprop": [1e-3, 3e-3, 1e-2, 3e-2],
         "sgd": [1e-2, 3e-2, 1e-1, 3e-1]}  # fmt: skip

configs = {}
for name, rates in RATES.items():
    configs |= grid(
        optimizer={name: {"optim": {"name": name}}},
        lr={f"lr {lr:g}": {"optim": {"lr": lr}} for lr in rates},
    )

EXPERIMENT = Experiment(
    name="optimizer",
    question="Which optimizer and learning rate? (LSTM, adding problem)",
    configs=configs,
    base={
        "model": {"name": "lstm", "hidden_size": 32},
        "optim": {"momentum": 0.9, "grad_clip": 1.0},
    },  # fmt: skip
    budgets={
        "quick": {
            "task": {"name": "adding", "seq_len": 50, "val_size": 512, "test_size": 512},
            "trainer": {"max_steps": 500, "enable_progress_bar": False},
        },
        "full": {
            "model": {"hidden_size": 128},
            "task": {"name": "adding", "seq_len": 200},
            "trainer": {"max_steps": 10000},
        },
    },
)
