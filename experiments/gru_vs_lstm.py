"""GRU or LSTM? The custom GRU against the LSTM, with the tanh RNN as the no-gates control, at
equal hidden size, each with its own learning rate, on a ladder of lengths of the adding problem
(each arm climbs while it solves at least half of its seeds; the full profile adds copy memory
and selective copy) and on real data: handwritten
digits read pixel by pixel (plain and permuted) and character-level language modelling on
Python's own source (does the synthetic verdict carry over?).

    grubench run experiments/gru_vs_lstm.py            # quick: this CPU
    grubench run experiments/gru_vs_lstm.py --profile full --trainer.accelerator gpu
    grubench report experiments/gru_vs_lstm.py

Calibration (pilot fits on this 2-core CPU, hidden 64, Adam, clip 1, 3000 steps): adding T=100
was solved by custom_gru at step 300 (lr 1e-2) and 750 (lr 3e-3), by the LSTM at step 1750
(lr 3e-3; forget bias 1), and the tanh RNN stayed at chance; copy memory T=20 reached a recall
accuracy of 0.69 (GRU) and 0.40 (LSTM) after 3000 steps at lr 1e-2, so copy memory needs the
full profile's budget and is left out of the quick one. On the real data, custom_gru reached a
validation accuracy of 0.80 on sequential digits and 2.73 bits per character on char_lm
(seq_len 64) after 300 steps at lr 1e-2. Quick: 3000 steps, a stop 3 validations after solving
(char_lm has no solved threshold and trains its whole budget). In the quick suite's run at T=50
and T=150 (8 seeds) both gated arms solved both lengths 8/8, so the score could not tell them
apart there; the ladder goes on to T=400, where the claim "may do worse on long sequences" can
show (the tanh RNN solved neither and stops at the first rung).
"""

from grubench.sweeps.ladder import Ladder
from grubench.sweeps.question import Claim, Question, Tip


def tasks(spec: dict[str, list[int]]) -> dict:
    return {f"{task} T={t}": {"task": {"name": task, "seq_len": t}}
            for task, lengths in spec.items() for t in lengths}  # fmt: skip


REAL = {  # real data (grubench.tasks.sequential_digits, grubench.tasks.char_lm)
    "digits T=64": {"task": {"name": "sequential_digits", "seq_len": 64}},
    "permuted digits T=64": {
        "task": {"name": "sequential_digits", "seq_len": 64, "options": {"permuted": True}}
    },
    # batch 32: half the compute of a step at the others' 64 (3000 steps still pass over the
    # training block 19 times)
    "char_lm T=64": {"task": {"name": "char_lm", "seq_len": 64, "batch_size": 32}},
}
# the adding problem's length as rungs: each arm climbs while it solves half of its seeds
LENGTHS = Ladder(
    "adding T={}", "task.seq_len", {"quick": (50, 150, 400), "full": (200, 1000, 2000)},
    base={"task": {"name": "adding"}},
)  # fmt: skip
QUICK_SYNTHETIC = ("adding T=50", "adding T=150")  # the rungs every gated arm reaches


QUESTION = Question(
    name="gru_vs_lstm",
    text="GRU or LSTM? (a ladder of adding-problem lengths; digits, permuted digits, text)",
    arms={
        "gru": {"model": {"name": "custom_gru"}},
        "lstm": {"model": {"name": "lstm"}},
        "rnn": {"model": {"name": "rnn"}},
    },
    conditions=REAL,
    conditions_by_profile={
        "full": {**tasks({"copy_memory": [100, 500], "selective_copy": [256, 1024]}), **REAL},
    },
    ladders=(LENGTHS,),
    tune={"optim.lr": [3e-3, 1e-2]},
    base={
        "model": {"hidden_size": 64},
        "optim": {"name": "adam", "grad_clip": 1.0},
        "stop_after_solved": 3,
    },
    tips=[
        Tip(
            "GRU is simpler and computes faster than LSTM but may do worse on long sequences.",
            (
                # benchmarks/results/arm_speed.json: both on grubench's engine, side by side
                Claim("gru", "lstm", "ms_per_step"),
                Claim("lstm", "gru", "score", conditions=("adding T=400",)),
            ),
        ),
        Tip(
            "A verdict from synthetic tasks carries over to real data.",
            (
                Claim("gru", "lstm", "score", conditions=QUICK_SYNTHETIC),
                Claim("gru", "lstm", "score", conditions=tuple(REAL)),
            ),
        ),
    ],
    budgets={
        "quick": {
            "task": {"val_size": 512, "test_size": 512},
            "trainer": {"max_steps": 3000, "enable_progress_bar": False},
        },
        "full": {"model": {"hidden_size": 128}, "trainer": {"max_steps": 20000}},
    },
)
