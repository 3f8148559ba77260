"""How do I beat vanishing gradients? A sequence-length sweep of the adding problem for the
tanh RNN, the GRU and the LSTM, with the remedies people reach for: gradient clipping,
orthogonal and chrono initialization, layer normalization, and gating itself. The report adds
the longest length each configuration solves (in at least half of its seeds) and a plot of the
final error against the sequence length. Every run probes its gradient flow (the norm of
dL/dh_t at each time step, at initialization and during training), and the report plots those
curves for every configuration side by side.

    grubench run experiments/vanishing_gradients.py
"""

from grubench.experiment import Experiment, grid

REMEDIES = {
    "rnn": {"model": {"name": "rnn"}},
    "rnn + orthogonal + clip": {"model": {"name": "rnn", "init": "orthogonal"},
                                "optim": {"grad_clip": 1.0}},
    "rnn relu + identity (IRNN) + clip": {"model": {"name": "rnn", "activation": "relu",
                                          "init": "identity"}, "optim": {"grad_clip": 1.0}},
    "torch_gru": {"model": {"name": "torch_gru"}},
    "lstm": {"model": {"name": "lstm"}},
    "lstm + chrono": {"model": {"name": "lstm", "init": "chrono"}},
    "custom_gru + layer norm + clip": {"model": {"name": "custom_gru", "layer_norm": True},
                                       "optim": {"grad_clip": 1.0}},
}  # fmt: skip


def lengths(values):
    return {f"T={t}": {"task": {"seq_len": t}} for t in values}


EXPERIMENT = Experiment(
    name="vanishing_gradients",
    question="How do I beat vanishing gradients? (adding problem, sequence-length sweep)",
    configs={},
    configs_by_profile={
        "quick": grid(remedy=REMEDIES, length=lengths([50, 150])),
        "full": grid(remedy=REMEDIES, length=lengths([50, 100, 200, 400, 750, 1000])),
    },
    base={
        "model": {"hidden_size": 32},
        "task": {"name": "adding"},
        "optim": {"name": "adam", "lr": 3e-3},
        "diagnostics_every_n_steps": 250,
    },
    plot_against="task.seq_len",
    compare_within=["task.seq_len"],
    budgets={
        "quick": {
            "task": {"val_size": 512, "test_size": 512},
            "trainer": {"max_steps": 500, "enable_progress_bar": False},
        },
        "full": {
            "model": {"hidden_size": 128},
            "trainer": {"max_steps": 20000},
            "diagnostics_every_n_steps": 2000,
        },
    },  # fmt: skip
)
