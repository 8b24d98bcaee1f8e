"""Faults provoked for real keep the stores in step: a params.yaml edit while a train stage runs
ends in one line, with no model, run.json or registered version made with the old values, and
the MLflow run marked FAILED (DVC records params when a stage ends, so a kept model would be
called up to date with params it never trained on)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import torch
import yaml

from aebench.errors import UserError
from aebench.plan import check_params_unchanged, param_values
from test_reliability import env_for, make_root, prepared, stage


def test_check_params_unchanged_names_every_changed_leaf(tmp_path):
    (tmp_path / "params.yaml").write_text(yaml.safe_dump({"train": {"lr": 0.1, "epochs": 2}, "model": {"ae": {}}}))
    before = param_values(tmp_path, ["train", "model.ae", "runs.x.train"])
    assert before == {"train": {"lr": 0.1, "epochs": 2}, "model.ae": {}, "runs.x.train": None}
    check_params_unchanged(tmp_path, before, "train-x@0")  # nothing changed
    (tmp_path / "params.yaml").write_text(yaml.safe_dump({"train": {"lr": 0.2, "epochs": 2},
                                                          "model": {"ae": {"latent_dim": 8}}}))
    with pytest.raises(UserError, match=r"params\.yaml changed while train-x@0 ran \(train\.lr, "
                                        r"model\.ae\.latent_dim\).*run `dvc repro` again"):
        check_params_unchanged(tmp_path, before, "train-x@0")


@pytest.mark.slow
def test_a_params_edit_during_training_keeps_nothing_made_with_the_old_values(tmp_path):
    root = make_root(tmp_path / "ws", epochs=40)
    env = env_for(root)
    prepared(root, env)
    resume = root / ".aebench" / "resume" / "digits-ae-seed0.pt"
    proc = stage(root, env, "train", "--dataset", "digits", "--model", "ae", "--seed", "0")
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None:
        try:
            if resume.exists() and torch.load(resume, weights_only=True)["epoch"] >= 1:
                break
        except Exception:
            pass  # being replaced right now
        time.sleep(0.05)
    else:
        proc.kill()
        pytest.fail("the training ended or never checkpointed before the edit")
    params = yaml.safe_load((root / "params.yaml").read_text())
    params["model"]["ae"]["latent_dim"] = 3
    (root / "params.yaml").write_text(yaml.safe_dump(params))
    out, _ = proc.communicate(timeout=600)
    errors = [line for line in out.splitlines() if line.startswith("aebench: error:")]
    assert proc.returncode == 2, out[-3000:]
    assert len(errors) == 1 and "Traceback" not in out, out[-3000:]
    assert "params.yaml changed while train-digits-ae@0 ran (model.ae.latent_dim)" in errors[0]
    model_dir = root / "models" / "digits" / "ae" / "seed0"
    assert not (model_dir / "run.json").exists() and not (model_dir / "checkpoint.pt").exists()

    import mlflow

    client = mlflow.MlflowClient(env["MLFLOW_TRACKING_URI"])
    runs = client.search_runs([e.experiment_id for e in client.search_experiments()])
    assert [r.info.status for r in runs] == ["FAILED"]
    assert client.search_model_versions("name='digits-ae'") == []
