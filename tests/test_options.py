"""One option style: a fit option is one declaration (``option(default, help)`` in the file
that owns it), from which its flag, its help, its config key and its part in the settings
hash all follow."""

from __future__ import annotations

import dataclasses

import pytest

import grubench.training.config as config_module
from grubench.cli.fit import fit_parser, parse_fit_config
from grubench.options import option
from grubench.sweeps.question import Child
from grubench.training.config import FitConfig, config_keys, top_level_options
from grubench.training.module import OptimConfig

TIER = "unit"


@dataclasses.dataclass
class FitConfigWithNewOptions(FitConfig):
    probe_every: int = option(3, "a new option that changes what a run computes")
    note: str = option("", "a new option that only labels the run", hashed=False)


@pytest.fixture
def new_options(monkeypatch):
    """FitConfig as it would be with two lines added to it, and nothing else edited."""
    monkeypatch.setattr(config_module, "FitConfig", FitConfigWithNewOptions)
    config_keys.cache_clear()
    yield FitConfigWithNewOptions
    config_keys.cache_clear()


def test_a_new_fit_option_is_one_line(new_options, capsys):
    help_text = fit_parser().format_help()
    assert "--probe_every" in help_text and "a new option that changes what" in help_text
    cfg = parse_fit_config(["--probe_every", "5", "--note", "hello"])
    assert isinstance(cfg, new_options) and cfg.probe_every == 5 and cfg.note == "hello"
    assert {"probe_every", "note"} <= config_keys()[""]  # a --config file and experiment files
    base = Child("a", "", 0, new_options())
    changed = Child("a", "", 0, new_options(probe_every=4))
    labelled = Child("a", "", 0, new_options(note="x"))
    assert changed.config_hash() != base.config_hash()
    assert labelled.config_hash() == base.config_hash()


def test_every_fit_and_optimizer_option_has_its_flag_and_help():
    help_text = fit_parser().format_help()
    for name, (field, _) in top_level_options().items():
        assert f"--{name}" in help_text and field.metadata["help"], name
    for field in dataclasses.fields(OptimConfig):
        assert f"--optim.{field.name}" in help_text and field.metadata["help"], field.name


def test_where_a_run_is_recorded_stays_out_of_the_hash():
    base = Child("a", "", 0, FitConfig())
    for name, value in [("tracking_uri", "sqlite:///x.db"), ("run_name", "r"),
                        ("experiment_name", "e"), ("tags", {"k": "v"})]:  # fmt: skip
        moved = Child("a", "", 0, dataclasses.replace(FitConfig(), **{name: value}))
        assert moved.config_hash() == base.config_hash(), name
    assert Child("a", "", 0, FitConfig(seed=1)).config_hash() != base.config_hash()
