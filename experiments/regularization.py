"""Does L1/L2 regularization help? None against L2 (weight decay, decoupled as in AdamW), an L1
penalty, and dropout between two layers, on a training set small enough to overfit (256
samples): final validation error and the train-validation gap.

    grubench run experiments/regularization.py
"""

from grubench.experiment import Experiment

EXPERIMENT = Experiment(
    name="regularization",
    question="Does L1/L2 regularization help? (LSTM, adding problem, 256 training samples)",
    configs={
        "none": {},
        "L2 (weight decay 1e-2)": {"optim": {"weight_decay": 1e-2}},
        "L2 (weight decay 1e-1)": {"optim": {"weight_decay": 1e-1}},
        "L1 1e-5": {"optim": {"l1": 1e-5}},
        "L1 1e-4": {"optim": {"l1": 1e-4}},
        "dropout 0.3": {"model": {"dropout": 0.3}},
    },
    base={
        "model": {"name": "lstm", "hidden_size": 64, "num_layers": 2},
        "optim": {"name": "adamw", "lr": 3e-3, "grad_clip": 1.0},
    },  # fmt: skip
    columns={"final train mse": "final/train/{metric}", "gap (val - train)": "final/gap/{metric}"},
    budgets={
        "quick": {
            "task": {
                "name": "adding",
                "seq_len": 30,
                "train_size": 256,
                "batch_size": 32,
                "epoch_size": 40,
                "val_size": 1024,
                "test_size": 1024,
            },
            "trainer": {"max_steps": 800, "enable_progress_bar": False},
        },
        "full": {
            "model": {"hidden_size": 128},
            "task": {"name": "adding", "seq_len": 100, "train_size": 1024},
            "trainer": {"max_steps": 10000},
        },
    },  # fmt: skip
)
