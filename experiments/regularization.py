"""Does L1/L2 regularization help? None against L2 (weight decay, decoupled as in AdamW), an L1
penalty, and dropout between two layers, on a training set small enough to overfit (256
samples), each with its own learning rate: test score and the train-validation gap.

    grubench run experiments/regularization.py

Calibration: in the earlier 800-step runs at lr 3e-3 the unregularized model reached
validation MSE 0.0029 and barely overfit (gap 7e-4), L1 1e-4 kept the model at chance (so the
L1 arm uses 1e-5 here). Quick: 1200 steps and no early stop, since generalization is read at
the end of training.
"""

from grubench.sweeps.question import Claim, Question, Tip

QUESTION = Question(
    name="regularization",
    text="Does L1/L2 regularization help? (LSTM, adding problem, 256 training samples)",
    arms={
        "none": {},
        "L2 (weight decay 1e-2)": {"optim": {"weight_decay": 1e-2}},
        "L1 1e-5": {"optim": {"l1": 1e-5}},
        "dropout 0.3": {"model": {"dropout": 0.3}},
    },
    baseline="none",
    tune={"optim.lr": [3e-3, 1e-2]},
    conditions={"adding T=30, 256 samples": {"task": {"name": "adding", "seq_len": 30}}},
    base={
        "model": {"name": "lstm", "hidden_size": 64, "num_layers": 2},
        "optim": {"name": "adamw", "grad_clip": 1.0},
        "task": {"train_size": 256, "batch_size": 32, "epoch_size": 40},
    },
    tips=[
        Tip(
            "L1/L2 regularization improves generalization.",
            (Claim("L2 (weight decay 1e-2)", "none", "score"), Claim("L1 1e-5", "none", "score")),
        )
    ],
    budgets={
        "quick": {
            "task": {"val_size": 1024, "test_size": 1024},
            "trainer": {"max_steps": 1200, "enable_progress_bar": False},
        },
        "full": {
            "model": {"hidden_size": 128},
            "task": {"seq_len": 100, "train_size": 1024},
            "trainer": {"max_steps": 10000},
        },
    },
)
