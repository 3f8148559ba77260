"""The model and task registries: their names and options are read without torch, and each
entry named as ``"file:name"`` resolves to what it names at its first use."""

import json
import subprocess
import sys

import pytest

from grubench.models import MODELS, ModelSpec
from grubench.tasks import TASKS

TIER = "unit"

PROBE = """
import json, sys
from dataclasses import fields
from grubench.models import MODELS, ModelConfig, computed_settings, implementation
from grubench.tasks import TASKS
from grubench.training.config import FitConfig

cfg = FitConfig(model=ModelConfig(name="lstm"))
computed_settings(vars(cfg.model)), implementation(cfg.model), sorted(TASKS), list(MODELS)
print(json.dumps([m for m in ("torch", "lightning", "mlflow") if m in sys.modules]))
"""


def test_configs_and_registries_import_no_torch():
    """What ``grubench fit --help`` and a sweep's plan read: the configs, the registries'
    names, the settings hash's inputs."""
    done = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True,
                          timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.strip().splitlines()[-1]) == []


@pytest.mark.parametrize("name", sorted(MODELS))
def test_every_model_entry_resolves(name):
    from grubench.models.layers import GateLayout

    spec = MODELS[name]
    assert callable(spec.build)
    assert isinstance(spec.layout, GateLayout)
    assert spec.after_init is None or callable(spec.after_init)


def test_a_spec_takes_objects_as_well_as_references():
    def build(*args):
        return None

    spec = ModelSpec(build, "torch_rnns:GRU_LAYOUT")
    assert spec.build is build and spec.layout is MODELS["torch_gru"].layout
    with pytest.raises(AttributeError):
        _ = ModelSpec("torch_rnns:no_such_builder", "torch_rnns:GRU_LAYOUT").build


@pytest.mark.parametrize("name", sorted(TASKS))
def test_every_task_is_registered_under_its_own_name(name):
    from grubench.tasks import Task

    assert issubclass(TASKS[name], Task) and TASKS[name].name == name


def test_the_task_registry_is_a_mapping_tests_can_patch(monkeypatch):
    class Toy:
        name = "toy"

    monkeypatch.setitem(TASKS, "toy", Toy)
    assert TASKS["toy"] is Toy and "toy" in list(TASKS)
    monkeypatch.undo()
    assert "toy" not in TASKS
