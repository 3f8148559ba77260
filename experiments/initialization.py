"""Which initialization? PyTorch's default against Xavier/Glorot, orthogonal and chrono, for
the GRU and the LSTM (conditions), each initialization with its own learning rate.

    grubench run experiments/initialization.py

Calibration: in the earlier 500-step runs (hidden 32, adding T=100, lr 3e-3) torch_gru solved
in 0/3 seeds with PyTorch's default and 1/3 to 3/3 with Xavier or orthogonal, and no LSTM left
the chance plateau; a pilot LSTM (hidden 64, lr 1e-2) solved T=100 at step 900. Quick: 2000
steps, a stop 3 validations after solving, so that "speeds up convergence" is read from steps
to solve rather than from who is still at chance when the budget ends.

Toward a long-lag condition (issue 25; Tallec & Ollivier 2018), pilot fits at adding T=300
(seed 1000, hidden 32, lr 1e-2, 2000 steps, `grubench fit --model.name lstm --model.init chrono
--task.seq_len 300 ...`, 2026-12-05, on 2 shared cores): the LSTM with PyTorch's default init
(and its forget bias of 1) solved only at step 2000, the last of its budget (208 s), with chrono
init at step 700 (82 s). Not yet a condition here: at 8 seeds and 4 inits it would add about
40 minutes to the quick suite; a difficulty ladder over T is the way to spend that.
"""

from grubench.sweeps.question import Claim, Question, Tip

QUESTION = Question(
    name="initialization",
    text="Which initialization? (torch_gru and LSTM, adding problem)",
    arms={
        init: {"model": {"init": init}}
        for init in ("default", "xavier_uniform", "orthogonal", "chrono")
    },
    baseline="default",
    conditions={
        "torch_gru, adding T=100": {"model": {"name": "torch_gru"}},
        "lstm, adding T=100": {"model": {"name": "lstm"}},
    },
    tune={"optim.lr": [3e-3, 1e-2]},
    base={
        "model": {"hidden_size": 32},
        "task": {"name": "adding", "seq_len": 100},
        "optim": {"name": "adam", "grad_clip": 1.0},
        "stop_after_solved": 3,
    },
    tips=[
        Tip(
            "Xavier/Glorot initialization speeds up convergence.",
            (Claim("xavier_uniform", "default", "steps_to_solve"),),
        )
    ],
    budgets={
        "quick": {
            "task": {"val_size": 512, "test_size": 512},
            "trainer": {"max_steps": 2000, "enable_progress_bar": False},
        },
        "full": {
            "model": {"hidden_size": 128},
            "task": {"seq_len": 400},
            "trainer": {"max_steps": 20000},
        },
    },
)
