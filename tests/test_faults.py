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


# -- the stores stay in step under real faults ------------------------------------------------
# Each case runs real stage processes on one workspace (digits, the AE, seed 0 trained and
# evaluated); where a case needs a read-only or full filesystem it mounts one in a private
# mount namespace of the stage's process (root only: elsewhere those cases are skipped).

import hashlib  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import shutil  # noqa: E402
import signal  # noqa: E402
import sqlite3  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402

from test_reliability import aebench_cli, finish  # noqa: E402

CAN_MOUNT = os.geteuid() == 0 and shutil.which("unshare") is not None and subprocess.run(
    ["unshare", "-m", "true"], capture_output=True).returncode == 0
needs_mount = pytest.mark.skipif(not CAN_MOUNT, reason="needs root and mount namespaces (unshare -m)")
TRAIN = ("train", "--dataset", "digits", "--model", "ae", "--seed")


@pytest.fixture(scope="module")
def ws(tmp_path_factory):
    root = make_root(tmp_path_factory.mktemp("faults") / "ws", epochs=2)
    params = yaml.safe_load((root / "params.yaml").read_text())
    (root / "params.yaml").write_text(yaml.safe_dump({**params, "seeds": [0, 1, 2]}))
    (root / "store").mkdir()
    env = env_for(root, f"sqlite:///{root / 'store' / 'mlflow.db'}")
    prepared(root, env)
    finish(stage(root, env, *TRAIN, "0"))
    finish(stage(root, env, "evaluate", "--dataset", "digits", "--model", "ae", "--seed", "0"))
    return root, env


def run_stage(root: Path, env: dict, *args: str, mounts: tuple[str, ...] = ()) -> tuple[int, str]:
    """A stage process to its end: (exit code, output); `mounts` are shell commands run first in
    the process's own mount namespace."""
    command = [sys.executable, "-m", "aebench.stages", *args]
    if mounts:
        command = ["unshare", "-m", "sh", "-c", " && ".join([*mounts, 'exec "$@"']), "sh", *command]
    done = subprocess.run(command, env=env, cwd=root, capture_output=True, text=True, timeout=600)
    return done.returncode, done.stdout + done.stderr


def one_line(code: int, out: str, *needles: str) -> str:
    errors = [line for line in out.splitlines() if line.startswith("aebench: error:")]
    assert code == 2 and len(errors) == 1 and "Traceback" not in out, out[-3000:]
    print(errors[0])  # shown with `pytest -rP`
    for needle in needles:
        assert needle in errors[0], errors[0]
    return errors[0]


def state(root: Path, env: dict) -> dict:
    """What every store says: run.json and checkpoint digest per seed, MLflow runs, versions."""
    import mlflow

    client = mlflow.MlflowClient(env["MLFLOW_TRACKING_URI"])
    seeds = {}
    for run_json in sorted((root / "models" / "digits" / "ae").glob("seed*/run.json")):
        checkpoint = run_json.parent / "checkpoint.pt"
        seeds[run_json.parent.name] = (json.loads(run_json.read_text()),
                                       hashlib.sha256(checkpoint.read_bytes()).hexdigest())
    runs = client.search_runs([e.experiment_id for e in client.search_experiments()])
    versions = client.search_model_versions("name='digits-ae'")
    return {"seeds": seeds, "runs": {r.info.run_id: r.info.status for r in runs},
            "versions": {str(v.version): v.run_id for v in versions}}


def assert_in_step(root: Path, env: dict) -> dict:
    """models/, run.json, the MLflow runs and the registry agree: every run.json names a version
    of its own run, every version is named by a run.json, and no run is left RUNNING."""
    now = state(root, env)
    named = {info["version"]: info["run_id"] for info, _ in now["seeds"].values()}
    assert named == now["versions"], now
    assert all(now["runs"][run_id] == "FINISHED" for run_id in named.values()), now
    assert "RUNNING" not in now["runs"].values(), now
    return now


@pytest.mark.slow
def test_a_misspelled_store_scheme_is_named_before_any_work(ws):
    root, env = ws
    before = assert_in_step(root, env)
    code, out = run_stage(root, {**env, "MLFLOW_TRACKING_URI": "sqlit:///" + str(root / "store" / "mlflow.db")},
                          *TRAIN, "0")
    one_line(code, out, "unknown scheme `sqlit`", "MLFLOW_TRACKING_URI")
    assert "training" not in out
    assert assert_in_step(root, env) == before


@pytest.mark.slow
def test_a_locked_store_is_named(ws):
    root, env = ws
    before = assert_in_step(root, env)
    holder = sqlite3.connect(root / "store" / "mlflow.db", timeout=1)
    holder.execute("BEGIN IMMEDIATE")  # another writer holds the write lock
    try:
        code, out = run_stage(root, env, *TRAIN, "0")
    finally:
        holder.rollback()
        holder.close()
    one_line(code, out, "locked by another writer", "mlflow.db")
    assert assert_in_step(root, env) == before


@needs_mount
@pytest.mark.slow
@pytest.mark.parametrize("target, needle", [("store/mlflow.db", "is read-only"), ("store", "is not writable")],
                         ids=["file", "folder"])
def test_a_read_only_store_is_named_before_any_work(ws, target, needle):
    root, env = ws
    before = assert_in_step(root, env)
    path = root / target
    code, out = run_stage(root, env, *TRAIN, "0", mounts=(f"mount --bind -o ro {path} {path}",))
    one_line(code, out, needle, "chmod u+w")
    assert "training" not in out
    assert assert_in_step(root, env) == before


@pytest.mark.slow
@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
def test_a_gpu_device_on_a_machine_without_one_is_refused_before_any_run(ws):
    root, env = ws
    before = assert_in_step(root, env)
    params = yaml.safe_load((root / "params.yaml").read_text())
    original = (root / "params.yaml").read_text()
    params["train"]["device"] = "cuda"
    (root / "params.yaml").write_text(yaml.safe_dump(params))
    try:
        code, out = run_stage(root, env, *TRAIN, "0")
    finally:
        (root / "params.yaml").write_text(original)
    one_line(code, out, "`train.device` is cuda", "no CUDA GPU")
    assert assert_in_step(root, env) == before  # no FAILED run left behind


@needs_mount
@pytest.mark.slow
def test_a_full_models_disk_fails_the_run_and_registers_nothing(ws):
    root, env = ws
    before = assert_in_step(root, env)
    out_dir = root / "models" / "digits" / "ae" / "seed1"
    out_dir.mkdir(parents=True, exist_ok=True)
    code, out = run_stage(root, env, *TRAIN, "1", mounts=(f"mount -t tmpfs -o size=8k tmpfs {out_dir}",))
    one_line(code, out, "seed1", "free some space")
    shutil.rmtree(out_dir)
    now = assert_in_step(root, env)
    assert now["versions"] == before["versions"]
    assert [s for r, s in now["runs"].items() if r not in before["runs"]] == ["FAILED"]


@needs_mount
@pytest.mark.slow
def test_a_full_artifact_disk_keeps_the_previous_model_and_version(ws):
    root, env = ws
    before = assert_in_step(root, env)
    artifacts = root / "mlartifacts"
    code, out = run_stage(root, env, *TRAIN, "0", mounts=(f"mount -t tmpfs -o size=16k tmpfs {artifacts}",))
    one_line(code, out, "no space left on the device while registering the model", "mlartifacts",
             "nothing was registered")
    now = assert_in_step(root, env)
    assert now["seeds"] == before["seeds"] and now["versions"] == before["versions"]
    assert [s for r, s in now["runs"].items() if r not in before["runs"]] == ["FAILED"]


@pytest.mark.slow
def test_a_version_whose_files_are_gone_is_named_with_its_path(ws, tmp_path):
    root, env = ws
    artifacts = root / "mlartifacts"
    shutil.copytree(artifacts, tmp_path / "backup")
    shutil.rmtree(artifacts)
    try:
        done = subprocess.run([*aebench_cli(), "sample", "digits", "ae", "-o", str(tmp_path / "grid.png")],
                              env=env, cwd=root, capture_output=True, text=True)
    finally:
        shutil.copytree(tmp_path / "backup", artifacts)
    version = assert_in_step(root, env)["seeds"]["seed0"][0]["version"]
    one_line(done.returncode, done.stdout + done.stderr, f"version {version} of `digits-ae` has lost its files",
             "dvc repro train-digits-ae")


@needs_mount
@pytest.mark.slow
def test_a_read_only_reports_folder_is_named(ws):
    root, env = ws
    reports = root / "reports"
    reports.mkdir(exist_ok=True)
    code, out = run_stage(root, env, "report", mounts=(f"mount --bind -o ro {reports} {reports}",))
    one_line(code, out, "reports", "not writable")


@pytest.mark.slow
def test_a_store_deleted_mid_training_stops_it_within_seconds(tmp_path):
    root = make_root(tmp_path / "ws", epochs=200)
    env = env_for(root)
    prepared(root, env)
    resume = root / ".aebench" / "resume" / "digits-ae-seed0.pt"
    proc = stage(root, env, *TRAIN, "0")
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None and not resume.exists():
        time.sleep(0.05)
    (root / "mlflow.db").unlink()
    out, _ = proc.communicate(timeout=120)
    one_line(proc.returncode, out, "was deleted while this stage ran", "resume file")
    assert not (root / "models" / "digits" / "ae" / "seed0" / "run.json").exists()
    assert resume.exists()  # the progress is kept
    assert torch.load(resume, weights_only=True)["epoch"] < 200  # it did not train to the end first


@pytest.mark.slow
def test_a_kill_right_after_registering_is_reconciled_by_the_rerun(ws):
    """SIGKILL as soon as the new version appears in the registry: whatever the kill left, the
    rerun ends with run.json naming the one version of its run (the orphan deleted)."""
    import mlflow

    root, env = ws
    client = mlflow.MlflowClient(env["MLFLOW_TRACKING_URI"])
    known = {v.version for v in client.search_model_versions("name='digits-ae'")}
    proc = stage(root, env, *TRAIN, "2")
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None:
        if {v.version for v in client.search_model_versions("name='digits-ae'")} - known:
            proc.send_signal(signal.SIGKILL)
            break
        time.sleep(0.02)
    proc.communicate(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    assert not (root / "models" / "digits" / "ae" / "seed2" / "run.json").exists()  # an orphan version now
    finish(stage(root, env, *TRAIN, "2"))
    now = assert_in_step(root, env)
    run_id = now["seeds"]["seed2"][0]["run_id"]
    assert list(now["versions"].values()).count(run_id) == 1
