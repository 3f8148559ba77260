"""tanh or ReLU for the candidate state? The custom GRU with each, in both reset forms, each
activation with its own learning rate from the same grid: score, time per step, divergence.

    grubench run experiments/activation.py

Calibration: in the earlier 400-step runs (hidden 32, adding T=50, one seed set of 3), tanh
solved in 3/3 seeds at lr 3e-2 in both reset forms, ReLU in 1/3 and 2/3, and nothing solved
at 3e-3 in that budget; the custom GRU solved T=50 within 200-300 steps at lr 1e-2 in the pilot
fits of custom_vs_torch. Quick: 1500 steps, a stop 3 validations after solving.

Looking for a condition that separates the arms (issue 25), pilot fits at adding T=200 (seed
1000, hidden 32, reset_after, `grubench fit --model.activation relu --task.seq_len 200 ...`,
2026-12-05): every fit solved, tanh at lr 1e-2 and 3e-2 in 500 and 400 steps (test scores
0.997, 0.998), ReLU in 600 and 400 (0.977, 0.997); T=200 is at the ceiling too. Parity is the
harder condition at a length the CPU affords (training strings of length 1 to T, a test at T):
pilot fits at parity T<=40 (seeds 1000-1001, hidden 32, reset_after, 1500 steps, a stop 3
validations after solving; `grubench fit --model.name custom_gru --model.activation relu
--task.name parity --task.seq_len 40 --optim.lr 1e-2 ...`, 2026-12-05): tanh at lr 3e-2 solved
in 500 steps; ReLU at 1e-2 in 600 and 700 steps, at 3e-2 it stayed at chance (score -0.06). nn.GRU
of the same width solved parity T<=60 in 1000 of the 1500 steps and the two-layer 128-64 models
none of parity T<=100, so T<=60 sits near the frontier: the quick profile's discriminating
condition.
"""

from grubench.sweeps.question import Claim, Question, Tip

QUESTION = Question(
    name="activation",
    text="tanh or ReLU for the candidate state? (custom GRU, adding problem and parity)",
    arms={
        "tanh": {"model": {"activation": "tanh"}},
        "relu": {"model": {"activation": "relu"}},
    },
    conditions={
        "reset_after, T=50": {"model": {"reset_after": True}},
        "reset_before, T=50": {"model": {"reset_after": False}},
        "reset_after, parity T<=60": {
            "model": {"reset_after": True},
            "task": {"name": "parity", "seq_len": 60},
        },
    },
    tune={"optim.lr": [3e-3, 1e-2, 3e-2]},
    base={
        "model": {"name": "custom_gru", "hidden_size": 32},
        "task": {"name": "adding", "seq_len": 50},
        "optim": {"name": "adam", "grad_clip": 1.0},
        "stop_after_solved": 3,
    },
    tips=[
        Tip(
            "ReLU is cheaper but can cause vanishing gradients.",
            # time per step: benchmarks/results/arm_speed.json, both arms side by side on one
            # engine per condition (reset_after: grubench's; reset_before: PyTorch ops)
            (Claim("relu", "tanh", "ms_per_step"), Claim("tanh", "relu", "score")),
        )
    ],
    budgets={
        "quick": {
            "task": {"val_size": 512, "test_size": 512},
            "trainer": {"max_steps": 1500, "enable_progress_bar": False},
        },
        "full": {
            "model": {"hidden_size": 128},
            "task": {"seq_len": 400},
            "trainer": {"max_steps": 20000},
        },
    },
)
