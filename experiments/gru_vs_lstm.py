"""GRU or LSTM? The custom GRU against the LSTM, with the tanh RNN as the no-gates control, at
equal hidden size, each with its own learning rate, on the adding problem at a short and a long
length (the full profile adds copy memory and selective copy) and on real data: handwritten
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
(char_lm has no solved threshold and trains its whole budget).
"""

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
QUICK_SYNTHETIC = tasks({"adding": [50, 150]})


QUESTION = Question(
    name="gru_vs_lstm",
    text="GRU or LSTM? (adding problem at two lengths; digits, permuted digits, text)",
    arms={
        "gru": {"model": {"name": "custom_gru"}},
        "lstm": {"model": {"name": "lstm"}},
        "rnn": {"model": {"name": "rnn"}},
    },
    conditions={**QUICK_SYNTHETIC, **REAL},
    conditions_by_profile={
        "full": {
            **tasks(
                {"adding": [200, 1000], "copy_memory": [100, 500], "selective_copy": [256, 1024]}
            ),
            **REAL,
        },
    },
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
                Claim("lstm", "gru", "score", conditions=("adding T=150",)),
            ),
        ),
        Tip(
            "A verdict from synthetic tasks carries over to real data.",
            (
                Claim("gru", "lstm", "score", conditions=tuple(QUICK_SYNTHETIC)),
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
