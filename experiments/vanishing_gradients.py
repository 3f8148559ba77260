"""How do I beat vanishing gradients? The tanh RNN against the remedies people reach for:
orthogonal initialization with clipping, ReLU with identity initialization (IRNN), gating
(GRU, LSTM), chrono initialization, layer normalization; each with its own learning rate, on
a ladder of lengths of the adding problem: each remedy climbs from T=25 while it solves at
least half of its 8 evaluation seeds, and its frontier (the longest T it solved) is the answer.
Every run probes its gradient flow (the norm of dL/dh_t at each time step, at initialization and
during training), and the report plots those curves.

    grubench run experiments/vanishing_gradients.py

Calibration: in the earlier 500-step runs (hidden 32, lr 3e-3) only the layer-normalized GRU
solved T=150, and no RNN remedy solved either length; in the gru_vs_lstm quick profile
(hidden 64, up to 3000 steps) the GRU solved T=150 in a median 300 steps, the LSTM in 1400,
the tanh RNN never. In the quick suite's run at T=50 and T=150 (8 seeds each, 2000 steps) every
gated arm solved both lengths 8/8 (the ceiling), the IRNN solved 2/8 at T=50 and no tanh RNN
variant solved either: two lengths could not tell the gated remedies apart nor place the RNN
remedies, hence the ladder: T=25 to place the RNN remedies (they fail T=50), on to T=400,
beyond the gated arms' known reach.
Quick: 2000 steps, a stop 3 validations after solving.
"""

from grubench.sweeps.ladder import Ladder
from grubench.sweeps.question import Claim, Question, Tip

REMEDIES = {
    "rnn": {"model": {"name": "rnn"}},
    "rnn + orthogonal": {"model": {"name": "rnn", "init": "orthogonal"}},
    "irnn (relu + identity)": {"model": {"name": "rnn", "activation": "relu", "init": "identity"}},
    "torch_gru": {"model": {"name": "torch_gru"}},
    "lstm": {"model": {"name": "lstm"}},
    "lstm + chrono": {"model": {"name": "lstm", "init": "chrono"}},
    "custom_gru + layer norm": {"model": {"name": "custom_gru", "layer_norm": True}},
}  # fmt: skip


# rungs of the adding problem's length; a remedy climbs while it solves half of its seeds
LENGTHS = Ladder(
    "adding T={}", "task.seq_len", {"quick": (25, 50, 150, 400), "full": (100, 400, 1000)}
)


QUESTION = Question(
    name="vanishing_gradients",
    text="How do I beat vanishing gradients? (adding problem, a ladder of lengths)",
    arms=REMEDIES,
    baseline="rnn",
    ladders=(LENGTHS,),
    tune={"optim.lr": [3e-3, 1e-2]},
    base={
        "model": {"hidden_size": 32},
        "task": {"name": "adding"},
        "optim": {"name": "adam", "grad_clip": 1.0},
        "diagnostics_every_n_steps": 500,
        "stop_after_solved": 3,
    },
    tips=[
        Tip(
            "Vanishing gradients are cured by the choice of activation, optimizer, "
            "regularization and gating.",
            (
                Claim("torch_gru", "rnn"),
                Claim("lstm", "rnn"),
                Claim("irnn (relu + identity)", "rnn"),
            ),
        )
    ],
    budgets={
        "quick": {
            "task": {"val_size": 512, "test_size": 512},
            "trainer": {"max_steps": 2000, "enable_progress_bar": False},
        },
        "full": {
            "model": {"hidden_size": 128},
            "trainer": {"max_steps": 20000},
            "diagnostics_every_n_steps": 2000,
        },
    },
)
