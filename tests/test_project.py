"""What the README promises: its two commands, the CI hook, the config files, the citation."""

import re
from pathlib import Path

import pytest
import yaml

from grubench.cli.fit import parse_fit_config
from grubench.training.config import validate_fit_config
from grubench.training.fit import run_fit

TIER = "unit"

ROOT = Path(__file__).resolve().parents[1]


def quick_start_commands() -> list[str]:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```bash\n(.+?)\n```", section)[:2]


def test_ci_runs_the_readme_test_command():
    main_job, tests = quick_start_commands()
    assert "grubench" in main_job and "pytest" in tests
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    assert tests in ci


def test_quick_start_runs_an_faq_experiment():
    from grubench.sweeps.question import load_question

    main_job = quick_start_commands()[0]
    path = re.search(r"grubench run (\S+)$", main_job).group(1)
    assert load_question(ROOT / path).text  # smoke-tested in test_experiments.py


@pytest.mark.integration
def test_example_fit_config_is_valid_and_runs(tracking_uri, client):
    cfg = parse_fit_config(["--config", str(ROOT / "experiments" / "lstm_adding.yaml")])
    assert validate_fit_config(cfg) == []
    # the real config, shrunk: a few steps, small eval sets, a temporary store
    cfg.trainer["max_steps"] = 3
    cfg.task.val_size = cfg.task.test_size = 64
    cfg.tracking_uri = tracking_uri
    assert run_fit(cfg).status == "FINISHED"


@pytest.mark.parametrize("path", sorted((ROOT / "experiments").glob("*.yaml")), ids=str)
def test_every_experiment_config_parses(path):
    assert validate_fit_config(parse_fit_config(["--config", str(path)])) == []


def test_citation_cff_has_required_fields():
    cff = yaml.safe_load((ROOT / "CITATION.cff").read_text())
    assert cff["cff-version"] == "1.2.0"
    assert cff["message"] and cff["title"] and cff["authors"]
    assert all("name" in a or "family-names" in a for a in cff["authors"])


def test_store_folder_is_ignored_but_kept():
    assert (ROOT / "mlruns" / ".gitignore").read_text().splitlines()[-2:] == ["*", "!.gitignore"]
