"""Were RNNs all we needed? minGRU and minLSTM (Feng et al. 2024: the gates read x_t only,
so training runs as a parallel scan over time) against the custom GRU, each with its own
learning rate, on the adding problem and on sequential digits: score, steps to solve and
time per step.

    grubench run experiments/min_rnns.py

The paper stacks several minGRU layers and reports them matching Mamba and Transformers on
its tasks; here one layer of each, hidden 64, against one GRU layer, and three minGRU layers
(about the GRU's parameter count), on this CPU. The budget
is custom_vs_torch's (1500 steps, a stop 3 validations after solving), the learning rates
the architecture questions' two; minGRU/minLSTM keep nn.Linear's initialization, as in the
paper's code.

Parity (issue 25: a condition that separates the arms): minGRU's and minLSTM's transitions lie
in [0, 1] and depend on x_t only, so they cannot track parity (Grazzi et al. 2024, "Unlocking
State-Tracking in Linear RNNs Through Negative Eigenvalues"; Sarrof et al. 2024); the GRU can.
Calibration, pilot fits (seed 1000, hidden 64, parity T<=10, 1500 steps, a stop 3 validations
after solving; `grubench fit --task.name parity --task.seq_len 10 ...`, 2026-12-05): the GRU
solved at lr 1e-2 and 3e-3 (test score 1.0, 30-40 s each); one layer of minGRU or minLSTM
stayed at chance at both rates (test scores -0.06 to -0.02); three minGRU layers (a
nonlinearity between layers) did not solve either but learned part of it at 3e-3 (0.06 at
1e-2, 0.43 at 3e-3). The tip's claims are about the single layers.
"""

from grubench.sweeps.question import Claim, Question, Tip

QUESTION = Question(
    name="min_rnns",
    text="Were RNNs all we needed? minGRU and minLSTM against the GRU (adding, digits, parity)",
    arms={
        "gru": {"model": {"name": "custom_gru"}},
        "min_gru": {"model": {"name": "min_gru"}},
        "min_lstm": {"model": {"name": "min_lstm"}},
        # one layer's gates see x_t only and it has no recurrent weights (449 parameters at
        # hidden 64 against the GRU's 13,121): the paper stacks layers; three come to ~17k
        "min_gru 3 layers": {"model": {"name": "min_gru", "num_layers": 3}},
    },
    baseline="gru",
    # time per step: benchmarks/results/arm_speed.json (python benchmarks/arm_speed.py), every
    # arm on grubench's engine side by side; on CPU minGRU/minLSTM run its compiled sequential
    # loop (scan=auto), not the tip's parallel scan
    verdict_measures=("score", "steps_to_solve", "ms_per_step"),
    tune={"optim.lr": [3e-3, 1e-2]},
    base={
        "model": {"hidden_size": 64},
        "optim": {"name": "adam", "grad_clip": 1.0},
        "stop_after_solved": 3,
    },
    conditions={
        "adding T=50": {"task": {"name": "adding", "seq_len": 50}},
        "digits T=64": {"task": {"name": "sequential_digits", "seq_len": 64}},
        "parity T<=10": {"task": {"name": "parity", "seq_len": 10}},
    },
    conditions_by_profile={
        "full": {
            "adding T=400": {"task": {"name": "adding", "seq_len": 400}},
            "digits T=64": {"task": {"name": "sequential_digits", "seq_len": 64}},
            "parity T<=10": {"task": {"name": "parity", "seq_len": 10}},
        }
    },
    tips=[
        Tip(
            "minGRU and minLSTM train faster per step than a GRU (a parallel scan, not a loop).",
            (Claim("min_gru", "gru", "ms_per_step"), Claim("min_lstm", "gru", "ms_per_step")),
        ),
        Tip(
            "A linear recurrence with gates in [0, 1] (minGRU, minLSTM) cannot track parity; "
            "a GRU can.",
            (
                Claim("gru", "min_gru", "score", ("parity T<=10",)),
                Claim("gru", "min_lstm", "score", ("parity T<=10",)),
            ),
        ),
    ],
    budgets={
        "quick": {
            "task": {"val_size": 512, "test_size": 512},
            "trainer": {"max_steps": 1500, "enable_progress_bar": False},
        },
        "full": {"model": {"hidden_size": 128}, "trainer": {"max_steps": 20000}},
    },
)
