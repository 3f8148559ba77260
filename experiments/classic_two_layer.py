"""The classic two-layer example that GRU tutorials show: a GRU of 128 units returning
sequences, a GRU of 64 units, a softmax classifier; Adam, cross-entropy, batch 64. Here on a
sequence-classification task of the suite (parity of a bit string), with torch_gru and
custom_gru (and the LSTM in the same shape for reference), each with its own learning rate.

    grubench run experiments/classic_two_layer.py

Calibration: in the earlier runs (lr 1e-3, 1500 steps) every model solved parity T<=10 within
400-600 steps; 400 steps at lengths up to 20 had left every model at chance (0.50). Every arm
at parity T<=10 is at the ceiling (8/8 solved, score 1.000), so the quick profile adds a
longer parity: pilot fits of torch_gru 128-64 (seed 1000, lr 3e-3, 1500 steps, a stop 3
validations after solving; `grubench fit --model.name torch_gru --model.layer_sizes '[128, 64]'
--task.name parity --task.seq_len 40 --task.batch_size 64 --optim.lr 3e-3 ...`, 2026-12-05)
solved T<=20 at step 500 and T<=40 at step 1000; torch_gru and the LSTM 128-64 both stayed at
chance at T<=100. T<=50 lies between: the discriminating condition.
"""

from grubench.sweeps.question import Question

QUESTION = Question(
    name="classic_two_layer",
    text="The classic two-layer GRU (128 -> 64 -> softmax) on parity",
    arms={
        "torch_gru 128-64": {"model": {"name": "torch_gru"}},
        "custom_gru 128-64": {"model": {"name": "custom_gru"}},
        "lstm 128-64": {"model": {"name": "lstm"}},
    },
    baseline="torch_gru 128-64",
    tune={"optim.lr": [1e-3, 3e-3]},
    base={
        "model": {"layer_sizes": [128, 64]},
        "task": {"name": "parity", "batch_size": 64},
        "optim": {"name": "adam"},
        "stop_after_solved": 3,
    },
    conditions={
        "parity T<=10": {"task": {"seq_len": 10}},
        "parity T<=50": {"task": {"seq_len": 50}},
    },
    conditions_by_profile={"full": {"parity T<=100": {"task": {"seq_len": 100}}}},
    budgets={
        "quick": {
            "task": {"val_size": 512, "test_size": 512},
            "trainer": {"max_steps": 1500, "enable_progress_bar": False},
        },
        "full": {"trainer": {"max_steps": 20000}},
    },
)
