"""The README's "How to add a model" example works as written: its model file registers a
type, its params.yaml snippet validates, and the model trains one epoch through the trainer.

Both blocks are read from README.md, so the README cannot drift from what is tested.
"""

from __future__ import annotations

import importlib.util
import math
import re
import sys
from pathlib import Path

import pytest
import torch
import yaml

from aebench import models
from aebench.config import TrainConfig
from aebench.plan import load_params, resolve_model
from aebench.errors import UserError
from aebench.models import build_model, checkpoint_payload, known_types, load_checkpoint
from aebench.models.base import DataInfo
from aebench.training import train

README = Path(__file__).resolve().parents[1] / "README.md"
MODEL_FILE = "# src/aebench/models/linear_ae.py"
PARAMS_FILE = "# params.yaml: add the name to `models`"


def readme_block(language: str, first_line: str) -> str:
    """The fenced ```language block of README.md whose first line starts with `first_line`."""
    for block in re.findall(rf"```{language}\n(.*?)```", README.read_text(), flags=re.S):
        if block.startswith(first_line):
            return block
    raise AssertionError(f"README.md has no ```{language} block starting with {first_line!r}")


@pytest.fixture
def example_model(tmp_path, monkeypatch):
    """Import the README's model file as a module of its own; its registration is undone afterwards."""
    known_types()  # the shipped models first, so the copy below holds them all
    monkeypatch.setattr(models, "_TYPES", dict(models._TYPES))
    path = tmp_path / "linear_ae.py"
    path.write_text(readme_block("python", MODEL_FILE))
    spec = importlib.util.spec_from_file_location("aebench_readme_linear_ae", path)
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, module)
    spec.loader.exec_module(module)
    return module


def test_readme_snippet_is_short():
    code = readme_block("python", MODEL_FILE)
    assert len([line for line in code.splitlines() if line.strip()]) <= 40


def test_example_registers_validates_and_trains_one_epoch(example_model, tmp_path):
    assert "linear_ae" in known_types()
    assert models.model_class("linear_ae") is example_model.LinearAE

    # The README's params.yaml lines, in a minimal params file, validate and reach the config class.
    snippet = yaml.safe_load(readme_block("yaml", PARAMS_FILE))
    params_path = tmp_path / "params.yaml"
    params_path.write_text(yaml.safe_dump({"datasets": ["digits"], **snippet}))
    params = load_params(params_path)
    model_type, config, train_cfg = resolve_model(params, "linear_ae", params_path)
    assert model_type == "linear_ae" and config.code_penalty == 0.01 and config.latent_dim == 8
    assert train_cfg.epochs == 5

    # A misspelled key stops with one line naming it.
    bad = yaml.safe_load(params_path.read_text())
    bad["model"]["linear_ae"]["code_penalti"] = 0.1
    params_path.write_text(yaml.safe_dump(bad))
    with pytest.raises(UserError, match=r"unknown key `model\.linear_ae\.code_penalti`"):
        load_params(params_path)

    # One epoch through the trainer on digits-shaped data.
    info = DataInfo((1, 8, 8), "image", 10, 256)
    torch.manual_seed(0)
    model = build_model(model_type, config, info)
    g = torch.Generator().manual_seed(0)

    def split(n):
        return {"x": torch.rand(n, 1, 8, 8, generator=g), "label": torch.randint(0, 10, (n,), generator=g),
                "group": torch.zeros(n, dtype=torch.long), "index": torch.arange(n), "pos": torch.arange(n)}

    logged = []
    result = train(model, split(256), split(64), TrainConfig(epochs=1, batch_size=32, log_every=2),
                   resume_path=tmp_path / "resume.pt", fingerprint="readme",
                   log_fn=lambda metrics, step: logged.append(metrics))
    assert result.epochs_run == 1 and math.isfinite(result.best_val_loss)
    # the model's named terms are logged as they are
    assert {"step/mse", "step/code_penalty"} <= set().union(*logged)
    assert {"val_loss", "train_mse", "train_code_penalty"} <= set(logged[-1])
    z = model.encode(torch.rand(5, 1, 8, 8))
    assert z.shape == (5, 8)
    out = model.decode(z)
    assert out.shape == (5, 1, 8, 8) and 0 <= out.min() and out.max() <= 1

    # The checkpoint round trip the pipeline and MLflow serving rely on.
    torch.save(checkpoint_payload(model, "linear_ae"), tmp_path / "checkpoint.pt")
    loaded, payload = load_checkpoint(tmp_path / "checkpoint.pt")
    assert payload["model_type"] == "linear_ae"
    assert torch.equal(loaded.encode(torch.ones(2, 1, 8, 8)), model.encode(torch.ones(2, 1, 8, 8)))


def test_example_meets_the_contract_on_every_shape(example_model):
    import test_models

    for shape, kind in test_models.SHAPES:
        test_models.test_contract("linear_ae", shape, kind)
