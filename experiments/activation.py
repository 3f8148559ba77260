"""tanh or ReLU for the GRU's candidate state? The custom GRU with each, in both reset forms,
at a moderate and a high learning rate: final error, speed, and how often training diverges.

    grubench run experiments/activation.py
"""

from grubench.experiment import Experiment, grid

EXPERIMENT = Experiment(
    name="activation",
    question="tanh or ReLU for the candidate state? (custom GRU, adding problem)",
    configs=grid(
        activation={
            "tanh": {"model": {"activation": "tanh"}},
            "relu": {"model": {"activation": "relu"}},
        },
        form={
            "reset_after": {"model": {"reset_after": True}},
            "reset_before": {"model": {"reset_after": False}},
        },
        lr={"lr 3e-3": {"optim": {"lr": 3e-3}}, "lr 3e-2": {"optim": {"lr": 3e-2}}},
    ),  # fmt: skip
    base={"model": {"name": "custom_gru", "hidden_size": 32}, "optim": {"name": "adam"}},
    budgets={
        "quick": {
            "task": {"name": "adding", "seq_len": 50, "val_size": 512, "test_size": 512},
            "trainer": {"max_steps": 400, "enable_progress_bar": False},
        },
        "full": {
            "model": {"hidden_size": 128},
            "task": {"name": "adding", "seq_len": 400},
            "trainer": {"max_steps": 20000},
        },
    },
)
