"""The run plan (aebench.plan): plan.yaml follows params.yaml and the models' `needs_diffmap`,
dvc.yaml gives the diffusion map to those runs only, and config.py stays a leaf."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
import yaml

from aebench.errors import UserError
from aebench.models import model_class
from aebench.plan import check_plan, load_params, params_for_stage, stage_plan, train_stage, write_plan

REPO = Path(__file__).resolve().parents[1]


def test_committed_plan_matches_params():
    check_plan(load_params(REPO / "params.yaml"), REPO)


def test_runs_split_by_the_model_class(tmp_path):
    (tmp_path / "params.yaml").write_text(
        "datasets: [digits, loop, lines]\nmodels: [vae, dvae, my_dvae]\nmodel: {my_dvae: {type: dvae}}\n"
        "runs: {digits-vae: {dataset: digits, model: vae}, loop-my_dvae: {dataset: loop, model: my_dvae},\n"
        "       lines-vae: {dataset: lines, model: vae}}\n")
    params = load_params(tmp_path / "params.yaml")
    plan = stage_plan(params)
    assert model_class("dvae").needs_diffmap and not getattr(model_class("vae"), "needs_diffmap", False)
    assert list(plan["train_runs"]) == ["digits-vae", "lines-vae"]
    assert plan["train_on_diffmap_runs"] == {"loop-my_dvae": {"dataset": "loop", "model": "my_dvae"}}
    assert plan["diffmap_datasets"] == ["loop"]
    assert train_stage(params, "loop-my_dvae") == "train_on_diffmap@loop-my_dvae"
    assert train_stage(params, "digits-vae") == "train@digits-vae"


def test_a_stale_plan_stops_a_dvc_stage(tmp_path, monkeypatch):
    (tmp_path / "params.yaml").write_text("datasets: [loop]\nmodels: [vae]\nruns: {loop-vae: {dataset: loop, model: vae}}\n")
    params_for_stage(tmp_path)  # outside DVC no plan is needed
    monkeypatch.setenv("DVC_STAGE", "train@loop-vae")
    with pytest.raises(UserError, match="python -m aebench.plan"):
        params_for_stage(tmp_path)
    write_plan(tmp_path)
    params_for_stage(tmp_path)
    (tmp_path / "params.yaml").write_text("datasets: [loop]\nmodels: [dvae]\nruns: {loop-dvae: {dataset: loop, model: dvae}}\n")
    with pytest.raises(UserError, match="does not match params.yaml"):
        params_for_stage(tmp_path)


def test_only_diffmap_runs_depend_on_the_diffusion_map():
    stages = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]
    assert stages["train"]["foreach"] == "${train_runs}"
    assert not any("diffmap" in dep for dep in stages["train"]["do"]["deps"])
    assert "data/diffmap/${item.dataset}" in stages["train_on_diffmap"]["do"]["deps"]
    assert stages["diffmap"]["foreach"] == "${diffmap_datasets}"
    assert "DVAE" not in (REPO / "dvc.yaml").read_text() and "dvae" not in (REPO / "dvc.yaml").read_text()


def test_config_is_a_leaf():
    tree = ast.parse((REPO / "src" / "aebench" / "config.py").read_text())
    imported = {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module}
    imported |= {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    assert {m for m in imported if m.startswith("aebench")} <= {"aebench.errors"}
