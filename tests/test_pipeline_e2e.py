"""End to end: `dvc repro` on a tiny profile in a temporary copy of the repository, then
checks of every output, the MLflow runs and registered versions, a promotion, a no-op rerun
and that changing one model's params reruns that model only."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent

pytestmark = pytest.mark.slow


def repo_files() -> list[str]:
    out = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard"], cwd=REPO,
                         capture_output=True, text=True, check=True).stdout
    return [f for f in out.splitlines() if (REPO / f).is_file()]


def tiny_params(params: dict) -> dict:
    params["datasets"] = ["digits"]
    params["models"] = ["ae", "vae"]
    params["runs"] = {f"digits-{m}": {"dataset": "digits", "model": m} for m in ("ae", "vae")}
    params["train"].update(epochs=2, max_steps_per_epoch=5)
    params["evaluate"]["figure_examples"] = 4
    return params


def run(cmd: list[str], cwd: Path, env: dict, check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=900)
    if check and proc.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}")
    return proc


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    root = tmp_path_factory.mktemp("repo")
    for rel in repo_files():
        dest = root / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / rel, dest)
    params = tiny_params(yaml.safe_load((root / "params.yaml").read_text()))
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    # stages run as `make repro` runs them: forked from the warm stage server (aebench.warm)
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}", "AEBENCH_ROOT": str(root),
           "AEBENCH_WARM": "1", "AEBENCH_WARM_IDLE": "15",
           "MLFLOW_TRACKING_URI": "", "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t"}
    env.pop("MLFLOW_TRACKING_URI")
    run([str(BIN / "python"), "-m", "aebench.plan"], root, env)  # as `make repro` does
    run(["git", "init", "-q"], root, env)
    run(["git", "add", "-A"], root, env)
    run(["git", "commit", "-qm", "copy"], root, env)
    repro = run([str(BIN / "dvc"), "repro"], root, env)
    return root, env, repro


def test_outputs(project):
    root, _, _ = project
    processed = root / "data" / "processed" / "digits"
    for split in ("train", "val", "test"):
        assert (processed / f"{split}.parquet").exists()
    assert json.loads((processed / "validation.json").read_text())["success"] is True
    for model in ("ae", "vae"):
        run_info = json.loads((root / "models" / "digits" / model / "seed0" / "run.json").read_text())
        assert run_info["registered_name"] == f"digits-{model}" and run_info["version"] == "1"
        metrics = json.loads((root / "eval" / "digits" / model / "seed0" / "metrics.json").read_text())
        for key in ("recon_mse", "psnr", "knn_acc", "linear_acc", "cluster_acc", "nmi", "train_seconds",
                    "train_samples_per_s"):
            assert isinstance(metrics[key], float), key
        assert metrics["knn_acc"] > 0.3  # far above chance even after a few steps
        plots = root / "eval" / "digits" / model / "seed0" / "plots"
        assert (plots / "reconstructions.png").exists() and (plots / "codes_2d.png").exists()
    vae = json.loads((root / "eval" / "digits" / "vae" / "seed0" / "metrics.json").read_text())
    assert vae["neg_elbo"] > 0
    assert (root / "eval" / "digits" / "vae" / "seed0" / "plots" / "samples.png").exists()
    html = (root / "reports" / "index.html").read_text()
    assert "digits" in html and "knn_acc" in html and "data:image/png;base64" in html
    assert (root / "reports" / "summary.md").exists()


def test_mlflow_runs_and_registry(project):
    root, _, _ = project
    from mlflow import MlflowClient

    uri = f"sqlite:///{root / 'mlflow.db'}"
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    exp = client.get_experiment_by_name("digits")
    runs = client.search_runs([exp.experiment_id])
    assert {r.data.tags["model"] for r in runs} == {"ae", "vae"}
    for r in runs:
        assert r.info.status == "FINISHED"
        assert {"git_commit", "data_hash", "dataset"} <= set(r.data.tags)
        assert "knn_acc" in r.data.metrics and "val_loss" in r.data.metrics
        assert r.info.artifact_uri.startswith((root / "mlartifacts").as_uri())
    names = {m.name for m in client.search_registered_models()}
    assert names == {"digits-ae", "digits-vae"}


def test_promote_cli(project):
    root, env, _ = project
    out = run([str(BIN / "aebench"), "promote", "digits", "vae", "--metric", "knn_acc"], root, env)
    assert "first champion" in out.stdout
    out = run([str(BIN / "aebench"), "promote", "digits", "vae", "--metric", "nonsense"], root, env, check=False)
    assert out.returncode == 2 and "unknown metric" in out.stderr and "Traceback" not in out.stderr


def test_registry_descriptions_tags_and_sample(project):
    root, env, _ = project
    from mlflow import MlflowClient

    uri = f"sqlite:///{root / 'mlflow.db'}"
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    version = client.get_model_version("digits-vae", "1")
    assert "digits" in version.description and "vae" in version.description
    assert float(version.tags["knn_acc"]) > 0.3  # evaluate tagged the version with its metrics
    run = client.get_run(version.run_id)
    assert run.data.tags["mlflow.note.content"] == version.description
    listing = subprocess.run([str(BIN / "aebench"), "models"], cwd=root, env=env, capture_output=True, text=True)
    assert "digits-vae" in listing.stdout and "knn_acc=" in listing.stdout
    grid = root / "grid.png"
    made = subprocess.run([str(BIN / "aebench"), "sample", "digits", "vae", "--alias", "champion", "-n", "16", "-o",
                           str(grid)], cwd=root, env=env, capture_output=True, text=True)
    assert made.returncode == 0, made.stderr[-2000:]
    assert grid.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    ae = subprocess.run([str(BIN / "aebench"), "sample", "digits", "ae", "-o", str(grid)], cwd=root, env=env,
                        capture_output=True, text=True)
    assert ae.returncode == 2 and "no generative process" in ae.stderr


def test_dvc_remote_round_trip(project, tmp_path):
    """Push to a local-folder remote, lose the cache and the outputs, pull: all up to date."""
    root, env, _ = project
    dvc = str(BIN / "dvc")
    run([dvc, "remote", "add", "-d", "-f", "store", str(tmp_path / "remote")], root, env)
    run([dvc, "push", "-q"], root, env)
    shutil.rmtree(root / ".dvc" / "cache")
    shutil.rmtree(root / "data" / "processed")
    shutil.rmtree(root / "models")
    run([dvc, "pull", "-q"], root, env)
    assert (root / "models" / "digits" / "vae" / "seed0" / "checkpoint.pt").exists()
    status = run([dvc, "status"], root, env).stdout.lower()
    assert "up to date" in status, status


def test_noop_and_targeted_rerun(project):
    root, env, _ = project
    status = run([str(BIN / "dvc"), "status"], root, env)
    assert "up to date" in status.stdout.lower() or status.stdout.strip() == ""
    params = yaml.safe_load((root / "params.yaml").read_text())
    params["model"]["vae"]["beta"] = 2.0
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    status = run([str(BIN / "dvc"), "status"], root, env).stdout
    assert "train-digits-vae@0" in status and "train-digits-ae@0" not in status


def test_a_new_seed_trains_only_its_own_stages(project):
    """`dvc exp run -S 'seeds=[0,1]'`: seed 1's stages run, seed 0's are skipped; seed 1 is its own
    MLflow run and registered version, and the report decides over both seeds."""
    root, env, _ = project
    run(["git", "checkout", "params.yaml"], root, env)  # undo the edit of the test above
    out = run([str(BIN / "dvc"), "exp", "run", "-S", "seeds=[0,1]"], root, env).stdout
    ran = {line.split("'")[1] for line in out.splitlines() if line.startswith("Running stage")}
    assert ran == {"train-digits-ae@1", "train-digits-vae@1", "evaluate-digits-ae@1", "evaluate-digits-vae@1",
                   "report"}, out
    from mlflow import MlflowClient

    uri = f"sqlite:///{root / 'mlflow.db'}"
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    seed1 = json.loads((root / "models" / "digits" / "vae" / "seed1" / "run.json").read_text())
    assert seed1["seed"] == 1 and seed1["version"] != "1"
    assert client.get_run(seed1["run_id"]).data.tags["seed"] == "1"
    assert client.get_model_version("digits-vae", seed1["version"]).tags["seed"] == "1"
    from aebench.report.collect import collect

    models = {r.name: r for ds in collect(root).datasets for r in ds.models}
    assert all(set(r.seed_metrics) == {0, 1} and None not in r.seed_metrics.values() for r in models.values())
    assert models["vae"].metrics["knn_acc"] == pytest.approx(
        sum(m["knn_acc"] for m in models["vae"].seed_metrics.values()) / 2)  # the tables show the mean


def test_the_seed_grid_runs_in_parallel_through_dvcs_queue(project):
    """Two workers of DVC's experiment queue train seeds 2 and 3 at once, each in a temporary copy
    logging to the project's MLflow store; the workspace then takes both seeds' trainings from
    DVC's run-cache instead of training them again (their evaluations, whose outputs DVC does
    not cache, and the report run)."""
    root, env, _ = project
    queue_env = {k: v for k, v in env.items() if k not in ("AEBENCH_ROOT", "AEBENCH_WARM")}
    queue_env["MLFLOW_TRACKING_URI"] = f"sqlite:///{root / 'mlflow.db'}"  # one absolute store for every worker
    dvc = str(BIN / "dvc")
    for seed in (2, 3):
        run([dvc, "exp", "run", "--queue", "-S", f"seeds=[{seed}]"], root, queue_env)
    run([dvc, "exp", "run", "--run-all", "-j", "2"], root, queue_env)
    out = run([dvc, "exp", "run", "-S", "seeds=[0,1,2,3]"], root, queue_env).stdout
    ran = {line.split("'")[1] for line in out.splitlines() if line.startswith("Running stage")}
    cached = {line.split("'")[1] for line in out.splitlines() if "is cached - skipping run" in line}
    assert cached == {f"train-digits-{m}@{s}" for m in ("ae", "vae") for s in (2, 3)}, out
    assert ran == {f"evaluate-digits-{m}@{s}" for m in ("ae", "vae") for s in (2, 3)} | {"report"}, out
    from mlflow import MlflowClient

    uri = queue_env["MLFLOW_TRACKING_URI"]
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    for seed in (2, 3):
        info = json.loads((root / "models" / "digits" / "vae" / f"seed{seed}" / "run.json").read_text())
        assert info["seed"] == seed and client.get_run(info["run_id"]).data.tags["seed"] == str(seed)
        assert (root / "eval" / "digits" / "vae" / f"seed{seed}" / "metrics.json").is_file()
