"""What batch size? B = 16, 64 and 256, each with its own learning rate from the same grid, on
a finite training set: how fast each solves, and the generalization gap (normalized train
score minus validation score).

    grubench run experiments/batch_size.py
    python benchmarks/arm_speed.py experiments/batch_size.py   # the time per step it reads

"How fast" is three measures, because a step of B=256 carries 16 times the samples of a step
of B=16 and costs more time, so fewer steps alone says little:

- steps to solve: optimizer updates until the run solved;
- samples to solve: steps to solve × the run's global batch (training samples seen);
- seconds to solve: steps to solve × the arm's median time per training step measured side
  by side with the other arms in one process on 1 thread (benchmarks/results/arm_speed.json),
  not the sweep's wall time, whose runs share cores.

A run that never solved counts as never on each. The tip's "converge faster" is tested in
samples and in seconds; steps stay a verdict measure.

Calibration: in the earlier 600-step runs at one fixed rate (3e-3), only B=128 and B=256 left
the chance plateau, and with the rate scaled with the batch B=128 and 256 solved (B=256 after
400 steps); here each batch size picks its own rate from the same grid, and 2000 steps (a stop
3 validations after solving) let the small batches, which take more steps, solve too.
"""

from grubench.sweeps.question import Claim, Question, Tip

QUESTION = Question(
    name="batch_size",
    text="What batch size? (LSTM, adding problem, 4096 training samples)",
    arms={f"B={b}": {"task": {"batch_size": b}} for b in (16, 64, 256)},
    conditions={"adding T=50": {"task": {"name": "adding", "seq_len": 50}}},
    tune={"optim.lr": [3e-3, 1e-2, 3e-2]},
    base={
        "model": {"name": "lstm", "hidden_size": 32},
        "optim": {"name": "adam", "grad_clip": 1.0},
        "task": {"train_size": 4096},
        "stop_after_solved": 3,
    },
    # not steps: a step of B=256 is 16 of B=16's samples, and every test added to the family
    # raises what the others need to be detected (the table still gives median steps)
    verdict_measures=("score", "samples_to_solve", "seconds_to_solve"),
    tips=[
        Tip(
            "Larger batches converge faster but may overfit.",
            (
                Claim("B=256", "B=16", "samples_to_solve"),
                Claim("B=256", "B=16", "seconds_to_solve"),
                Claim("B=16", "B=256", "gap"),
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
            "task": {"seq_len": 200, "train_size": 16384},
            "trainer": {"max_steps": 10000},
        },
    },
)
