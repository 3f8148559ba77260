"""Is the custom GRU the same as nn.GRU? custom_gru (reset_after, the cuDNN/PyTorch form) and
its original reset-before form against torch_gru, each with its own learning rate, on the
adding problem and on parity: score, steps to solve and time per step.

    grubench run experiments/custom_vs_torch.py     # the Quick start's main job

Calibration (pilot fits, hidden 32, adding T=50, Adam, clip 1): custom_gru and torch_gru solve
within 400-600 steps at lr 3e-3 and 1e-2, so 1500 steps with a stop 3 validations after solving
leaves every GRU room to solve; the same-seed fits of custom_gru and torch_gru agree to float
rounding (tests/test_custom_gru.py), so "no difference detected" is the expected answer.
Adding T=50 leaves every arm at the ceiling (8/8 solved, score 0.99+), where no difference can
show; parity T<=60 is the condition near the frontier: pilot fits (seed 1000, hidden 32, lr
1e-2, 1500 steps, a stop 3 validations after solving; `grubench fit --model.name torch_gru
--task.name parity --task.seq_len 60 --optim.lr 1e-2 ...`, 2026-12-05) solved T<=40 in 700
steps and T<=60 in 1000; the two-layer 128-64 GRU and LSTM stayed at chance at T<=100.
"""

from grubench.sweeps.question import Question

QUESTION = Question(
    name="custom_vs_torch",
    text="Is the custom GRU the same as nn.GRU? (adding problem and parity)",
    arms={
        "torch_gru": {"model": {"name": "torch_gru"}},
        "custom_gru": {"model": {"name": "custom_gru"}},
        "custom_gru reset_before": {"model": {"name": "custom_gru", "reset_after": False}},
    },
    baseline="torch_gru",
    # time per step: benchmarks/results/arm_speed.json (python benchmarks/arm_speed.py), the
    # implementations side by side in one process; here the engines differ by design
    verdict_measures=("score", "steps_to_solve", "ms_per_step"),
    tune={"optim.lr": [3e-3, 1e-2]},
    base={
        "model": {"hidden_size": 32},
        "optim": {"name": "adam", "grad_clip": 1.0},
        "stop_after_solved": 3,
    },
    conditions={
        "adding T=50": {"task": {"name": "adding", "seq_len": 50}},
        "parity T<=60": {"task": {"name": "parity", "seq_len": 60}},
    },
    conditions_by_profile={"full": {"adding T=400": {"task": {"name": "adding", "seq_len": 400}}}},
    budgets={
        "quick": {
            "task": {"val_size": 512, "test_size": 512},
            "trainer": {"max_steps": 1500, "enable_progress_bar": False},
        },
        "full": {"model": {"hidden_size": 128}, "trainer": {"max_steps": 20000}},
    },
)
