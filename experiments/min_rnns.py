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
"""

from grubench.sweeps.question import Claim, Question, Tip

QUESTION = Question(
    name="min_rnns",
    text="Were RNNs all we needed? minGRU and minLSTM against the GRU (adding, digits)",
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
    },
    conditions_by_profile={
        "full": {
            "adding T=400": {"task": {"name": "adding", "seq_len": 400}},
            "digits T=64": {"task": {"name": "sequential_digits", "seq_len": 64}},
        }
    },
    tips=[
        Tip(
            "minGRU and minLSTM train faster per step than a GRU (a parallel scan, not a loop).",
            (Claim("min_gru", "gru", "ms_per_step"), Claim("min_lstm", "gru", "ms_per_step")),
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
