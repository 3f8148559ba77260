"""Which initialization? PyTorch's default against Xavier/Glorot, orthogonal and chrono for the
GRU and the LSTM, and the LSTM's forget-gate bias (1.0, Jozefowicz et al. 2015, against 0).

    grubench run experiments/initialization.py
"""

from grubench.experiment import Experiment, grid

INITS = ["default", "xavier_uniform", "xavier_normal", "orthogonal", "chrono"]

configs = grid(
    model={f"torch_gru {init}": {"model": {"name": "torch_gru", "init": init}} for init in INITS}
    | {f"lstm {init}": {"model": {"name": "lstm", "init": init}} for init in INITS}
    | {"lstm default, forget_bias 0": {"model": {"name": "lstm", "forget_bias": 0.0}}},
)

EXPERIMENT = Experiment(
    name="initialization",
    question="Which initialization? (adding problem)",
    configs=configs,
    base={"model": {"hidden_size": 32}, "optim": {"name": "adam", "lr": 3e-3, "grad_clip": 1.0}},
    budgets={
        "quick": {
            "task": {"name": "adding", "seq_len": 100, "val_size": 512, "test_size": 512},
            "trainer": {"max_steps": 500, "enable_progress_bar": False},
        },
        "full": {
            "model": {"hidden_size": 128},
            "task": {"name": "adding", "seq_len": 400},
            "trainer": {"max_steps": 20000},
        },
    },
)
