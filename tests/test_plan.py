"""The run plan (aebench.plan): every run trains once per training seed, dvc.yaml's per-run
stages follow params.yaml and the models' `needs_diffmap`, adding a seed reruns nothing already
trained (a real `dvc status`), and config.py stays a leaf."""

from __future__ import annotations

import ast
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from aebench.errors import UserError
from aebench.plan import MARKER, check_plan, load_params, params_for_stage, run_stages, train_stage, write_plan

REPO = Path(__file__).resolve().parents[1]
DVC = [sys.executable, "-m", "dvc"]


def params_text(seeds=(0,), dvae_seeds=(3, 4), vae_seeds=None, train: dict | None = None) -> str:
    """The repository's params.yaml with one dataset and two runs, the DVAE one with its own seeds."""
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    vae = {"dataset": "loop", "model": "vae", **({"seeds": list(vae_seeds)} if vae_seeds else {}),
           **({"train": train} if train else {})}
    params.update(datasets=["loop"], seeds=list(seeds),
                  runs={"loop-vae": vae, "loop-dvae": {"dataset": "loop", "model": "dvae", "seeds": list(dvae_seeds)}})
    return yaml.safe_dump(params, sort_keys=False)


PARAMS = params_text()


def workspace(tmp_path: Path, params: str = PARAMS) -> Path:
    """A folder with the repository's dvc.yaml head and `params`, its per-run stages written."""
    (tmp_path / "params.yaml").write_text(params)
    head = (REPO / "dvc.yaml").read_text()
    (tmp_path / "dvc.yaml").write_text(head[:head.index(MARKER) + len(MARKER)])
    write_plan(tmp_path)
    return tmp_path


def test_committed_dvc_yaml_matches_params():
    check_plan(load_params(REPO / "params.yaml"), REPO)


def test_every_run_is_a_matrix_over_its_seeds(tmp_path):
    stages = run_stages(load_params(workspace(tmp_path) / "params.yaml"))
    assert list(stages) == ["diffmap", "train-loop-vae", "evaluate-loop-vae", "train-loop-dvae", "evaluate-loop-dvae"]
    assert stages["train-loop-vae"]["matrix"] == {"seed": "${seeds}"}
    assert stages["train-loop-dvae"]["matrix"] == {"seed": "${runs.loop-dvae.seeds}"}
    assert stages["train-loop-vae"]["outs"] == ["models/loop/vae/seed${item.seed}"]
    assert "--seed ${item.seed}" in stages["evaluate-loop-vae"]["cmd"]
    # only runs whose model declares needs_diffmap depend on the diffusion map
    assert "data/diffmap/loop" in stages["train-loop-dvae"]["deps"]
    assert not any("diffmap" in dep for dep in stages["train-loop-vae"]["deps"])
    assert stages["diffmap"]["foreach"] == ["loop"]
    assert train_stage("loop-dvae", 3) == "train-loop-dvae@3"
    text = (REPO / "dvc.yaml").read_text()
    assert "dvae" not in text[:text.index(MARKER)].lower()  # the hand-written head names no model


def test_a_train_seed_is_refused_and_seeds_are_checked(tmp_path):
    params = yaml.safe_load(PARAMS)
    params["train"]["seed"] = 1
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    with pytest.raises(UserError, match="`train`.*top-level `seeds`"):
        load_params(tmp_path / "params.yaml")
    (tmp_path / "params.yaml").write_text(params_text(seeds=(1, 1)))
    with pytest.raises(UserError, match="`seeds`: seeds must be distinct"):
        load_params(tmp_path / "params.yaml")
    (tmp_path / "params.yaml").write_text(params_text(train={"seed": 2}))
    with pytest.raises(UserError, match="runs.loop-vae.train.seed"):
        load_params(tmp_path / "params.yaml")


def test_a_stale_plan_stops_a_dvc_stage_but_a_new_seed_does_not(tmp_path, monkeypatch):
    root = workspace(tmp_path)
    monkeypatch.setenv("DVC_STAGE", "train-loop-vae@0")
    params_for_stage(root)
    # `dvc exp run -S 'seeds=[0,1,2]'` only edits params.yaml: the stages read the seeds from it
    (root / "params.yaml").write_text(params_text(seeds=(0, 1, 2)))
    params_for_stage(root)
    (root / "params.yaml").write_text(params_text(vae_seeds=(5,)))
    with pytest.raises(UserError, match="does not match params.yaml"):
        params_for_stage(root)


def _git_dvc_workspace(tmp_path: Path) -> tuple[Path, dict]:
    """A git + DVC repository holding the code the stages depend on and fake outputs of every
    stage, committed to dvc.lock with `dvc commit` (nothing is trained)."""
    root = workspace(tmp_path)
    for folder in ("src", "stages"):
        shutil.copytree(REPO / folder, root / folder, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    for rel in ("data/raw/loop/raw.npz", "data/processed/loop/train.parquet", "data/diffmap/loop/embedding.parquet",
                "reports/index.html"):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(rel)
    for model, seeds in (("vae", [0]), ("dvae", [3, 4])):
        for seed in seeds:
            for rel in (f"models/loop/{model}/seed{seed}/run.json", f"eval/loop/{model}/seed{seed}/metrics.json",
                        f"eval/loop/{model}/seed{seed}/plots/x.csv"):
                (root / rel).parent.mkdir(parents=True, exist_ok=True)
                (root / rel).write_text("{}")
    env = {**os.environ, "DVC_NO_ANALYTICS": "1", "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t"}
    # twice: the first commit adds .gitignore files under models/, a dependency of the report
    for cmd in (["git", "init", "-q"], DVC + ["init", "-q"], DVC + ["commit", "-f", "-q"], DVC + ["commit", "-f", "-q"]):
        subprocess.run(cmd, cwd=root, env=env, check=True, capture_output=True)
    return root, env


def _changed(root: Path, env: dict) -> set[str]:
    done = subprocess.run(DVC + ["status", "--json"], cwd=root, env=env, check=True, capture_output=True, text=True)
    return set(json.loads(done.stdout))


@pytest.mark.slow
def test_adding_a_seed_reruns_nothing_already_trained(tmp_path):
    root, env = _git_dvc_workspace(tmp_path)
    assert _changed(root, env) == set()
    (root / "params.yaml").write_text(params_text(seeds=(0, 1)))  # as `dvc exp run -S` does
    assert _changed(root, env) == {"train-loop-vae@1", "evaluate-loop-vae@1", "report"}
    (root / "params.yaml").write_text(params_text(dvae_seeds=(3, 4, 5)))
    write_plan(root)  # a run's own seeds are read from params.yaml too: the plan is unchanged
    assert _changed(root, env) == {"train-loop-dvae@5", "evaluate-loop-dvae@5", "report"}


def test_config_is_a_leaf():
    tree = ast.parse((REPO / "src" / "aebench" / "config.py").read_text())
    imported = {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module}
    imported |= {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    assert {m for m in imported if m.startswith("aebench")} <= {"aebench.errors"}


def test_params_yaml_lists_the_seeds_in_block_style():
    """`dvc exp run -S 'seeds=[0,1,2]'` rewrites the list in block style: the file has it so."""
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    assert isinstance(params["seeds"], list) and "seeds:" in (REPO / "params.yaml").read_text()


@pytest.mark.slow
def test_editing_one_model_reruns_only_its_runs(tmp_path):
    """Each run depends on its own model's code (`model_sources`), not the whole models folder:
    a docstring edit in the DVAE's package reruns the DVAE's stages and the report only, and an
    edit to a model no run uses reruns the report alone (it reads every model's declared
    metrics, in seconds)."""
    root, env = _git_dvc_workspace(tmp_path)
    models = root / "src" / "aebench" / "models"
    with (models / "ae.py").open("a") as fh:
        fh.write("\n# a comment in a model no run trains\n")
    assert _changed(root, env) == {"report"}
    dvae = models / "dvae" / "model.py"
    dvae.write_text(dvae.read_text().replace('"""', '"""Edited. ', 1))
    assert _changed(root, env) == {"train-loop-dvae@3", "train-loop-dvae@4", "evaluate-loop-dvae@3",
                                   "evaluate-loop-dvae@4", "report"}
    acn = models / "acn" / "model.py"  # the VAE shares ACN's claim suite, not ACN's code
    acn.write_text(acn.read_text().replace('"""', '"""Edited. ', 1))
    assert _changed(root, env) == {"train-loop-dvae@3", "train-loop-dvae@4", "evaluate-loop-dvae@3",
                                   "evaluate-loop-dvae@4", "report"}


def test_a_runs_code_is_its_model_and_what_that_imports():
    from aebench.plan import model_sources

    vae, dvae = model_sources("vae"), model_sources("dvae")
    assert "src/aebench/models/vae.py" in vae and "src/aebench/models/dvae.py" not in vae
    assert "src/aebench/models/dvae" in dvae and "src/aebench/data/embedding.py" in dvae
    assert not any(p.endswith(("/errors.py", "/io.py", "/paths.py")) for p in vae + dvae)  # plumbing
    assert "src/aebench/models/vae.py" not in dvae


def test_no_models_runs_depend_on_another_models_code():
    """What two models share lives in a module of its own (`coding_cost`, `pixelcnn`, ...), so
    editing one model's file or package never reruns another model's runs."""
    from aebench.models import known_types, model_class
    from aebench.plan import model_sources

    def own(model_type: str) -> str:
        parts = model_class(model_type).__module__.split(".")
        return "src/" + "/".join(parts[:3]) + ("" if len(parts) > 3 else ".py")

    owners = {t: own(t) for t in known_types()}
    assert owners["acn"] == "src/aebench/models/acn" and owners["vae"] == "src/aebench/models/vae.py"
    shared = {t: sorted(owners[o] for o in owners if owners[o] != owners[t] and owners[o] in model_sources(t))
              for t in owners}
    assert {t: s for t, s in shared.items() if s} == {}
