"""What batch size? 16 to 256 with a fixed learning rate and with one scaled linearly with the
batch (lr = 3e-3 * B / 64), on a finite training set: steps, samples and wall-clock to solve,
and the generalization gap (validation minus training MSE).

    grubench run experiments/batch_size.py
"""

from grubench.experiment import Experiment

BATCHES = [16, 32, 64, 128, 256]
LR = 3e-3  # the fixed rate, and the scaled rate's value at B = 64

configs = {f"fixed lr, B={b}": {"task": {"batch_size": b}} for b in BATCHES} | {
    f"scaled lr, B={b}": {"task": {"batch_size": b}, "optim": {"lr": LR * b / 64}} for b in BATCHES
}

EXPERIMENT = Experiment(
    name="batch_size",
    question="What batch size? (LSTM, adding problem, 4096 training samples)",
    configs=configs,
    base={
        "model": {"name": "lstm", "hidden_size": 32},
        "optim": {"name": "adam", "lr": LR, "grad_clip": 1.0},
    },  # fmt: skip
    columns={
        "samples to solve": "samples_to_solve",
        "s to solve": "seconds_to_solve",
        "gap (val - train)": "final/gap/{metric}",
    },  # fmt: skip
    budgets={
        "quick": {
            "task": {
                "name": "adding",
                "seq_len": 50,
                "train_size": 4096,
                "val_size": 512,
                "test_size": 512,
            },
            "trainer": {"max_steps": 600, "enable_progress_bar": False},
        },
        "full": {
            "model": {"hidden_size": 128},
            "task": {"name": "adding", "seq_len": 200, "train_size": 16384},
            "trainer": {"max_steps": 10000},
        },
    },  # fmt: skip
)
