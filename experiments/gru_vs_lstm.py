"""GRU or LSTM? The custom GRU and torch's GRU against the LSTM, with the tanh RNN as the
no-gates control, on the adding problem and copy memory at two lengths each, at equal hidden
size and (LSTM) at the GRU's parameter count.

    grubench run experiments/gru_vs_lstm.py            # quick: this CPU, minutes
    grubench run experiments/gru_vs_lstm.py --profile full --trainer.accelerator gpu
    grubench report experiments/gru_vs_lstm.py
"""

from grubench.experiment import Experiment, grid
from grubench.models import ModelConfig, build_model, count_parameters, matched_hidden_size
from grubench.tasks import build_task


def models(hidden: int, task: str, seq_len: int) -> dict:
    """The four models at equal hidden size, plus an LSTM with the GRU's parameter count."""
    t = build_task(task, seq_len)
    gru = build_model(ModelConfig(name="torch_gru", hidden_size=hidden), t.input_size,
                      t.output_size, t.output_mode)  # fmt: skip
    lstm_hidden = matched_hidden_size(
        ModelConfig(name="lstm"), count_parameters(gru), t.input_size, t.output_size
    )
    return {
        "custom_gru": {"model": {"name": "custom_gru", "hidden_size": hidden}},
        "torch_gru": {"model": {"name": "torch_gru", "hidden_size": hidden}},
        "lstm": {"model": {"name": "lstm", "hidden_size": hidden}},
        f"lstm H={lstm_hidden} (=GRU params)": {
            "model": {"name": "lstm", "hidden_size": lstm_hidden}
        },
        "rnn": {"model": {"name": "rnn", "hidden_size": hidden}},
    }


def configs(hidden: int, lengths: dict[str, list[int]]) -> dict:
    out = {}
    for task, seq_lens in lengths.items():
        for seq_len in seq_lens:
            out.update(grid(
                model=models(hidden, task, seq_len),
                task={f"{task} T={seq_len}": {"task": {"name": task, "seq_len": seq_len}}},
            ))  # fmt: skip
    return out


EXPERIMENT = Experiment(
    name="gru_vs_lstm",
    question="GRU or LSTM? (adding and copy memory, two lengths each)",
    configs={},
    configs_by_profile={
        "quick": configs(32, {"adding": [50, 100], "copy_memory": [10, 20]}),
        "full": configs(
            128, {"adding": [200, 1000], "copy_memory": [100, 500], "selective_copy": [256, 1024]}
        ),
    },
    base={"optim": {"name": "adam", "lr": 3e-3, "grad_clip": 1.0}},
    budgets={
        "quick": {
            "task": {"epoch_size": 100, "val_size": 512, "test_size": 512},
            "trainer": {"max_steps": 500, "enable_progress_bar": False},
        },
        "full": {"trainer": {"max_steps": 20000}},
    },
    seeds={"quick": [0, 1, 2], "full": [0, 1, 2, 3, 4]},
    compare_within=["task.name", "task.seq_len"],
)
