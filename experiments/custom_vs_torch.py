"""Is the custom GRU the same as nn.GRU? Learning curves of custom_gru (reset_after, the
cuDNN/PyTorch form) against torch_gru from the same seeds, the original reset-before form
beside them, and the time per step of each.

    grubench run experiments/custom_vs_torch.py
"""

from grubench.experiment import Experiment

EXPERIMENT = Experiment(
    name="custom_vs_torch",
    question="Is the custom GRU the same as nn.GRU? (adding problem)",
    configs={
        "torch_gru": {"model": {"name": "torch_gru"}},
        "custom_gru reset_after": {"model": {"name": "custom_gru"}},
        "custom_gru reset_before": {"model": {"name": "custom_gru", "reset_after": False}},
    },
    base={"model": {"hidden_size": 32}, "optim": {"name": "adam", "lr": 3e-3, "grad_clip": 1.0}},
    budgets={
        "quick": {
            "task": {"name": "adding", "seq_len": 50, "val_size": 512, "test_size": 512},
            "trainer": {"max_steps": 500, "enable_progress_bar": False},
        },
        "full": {
            "model": {"hidden_size": 128},
            "task": {"name": "adding", "seq_len": 400},
            "trainer": {"max_steps": 20000},
        },
    },  # fmt: skip
)
