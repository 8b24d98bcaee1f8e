"""Crash safety and shared stores: a SIGKILLed training resumes to the same result, two
trainings writing one MLflow store at once lose nothing, and a real `mlflow server` works: its REST
API shows the run, metrics, artifacts, the registered version and the alias `aebench promote` sets."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
import torch
import yaml

REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow


def make_root(path: Path, seed: int = 0, **train) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params.update(datasets=["digits"], models=["ae"], runs={"digits-ae": {"dataset": "digits", "model": "ae"}},
                  seeds=[seed])
    params["train"].update({"epochs": 4, "max_steps_per_epoch": 15, "num_threads": 1, "checkpoint_seconds": 0, **train})
    params["model"] = {"ae": {"latent_dim": 4}}
    (path / "params.yaml").write_text(yaml.safe_dump(params))
    return path


def env_for(root: Path, uri: str | None = None) -> dict:
    return {**os.environ, "AEBENCH_ROOT": str(root), "MLFLOW_TRACKING_URI": uri or f"sqlite:///{root / 'mlflow.db'}"}


def stage(root: Path, env: dict, name: str, *args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "aebench.stages", name, *args], env=env, cwd=root,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def finish(proc: subprocess.Popen) -> str:
    out, _ = proc.communicate(timeout=600)
    assert proc.returncode == 0, out[-4000:]
    return out


def prepared(root: Path, env: dict) -> None:
    finish(stage(root, env, "download", "--dataset", "digits"))
    finish(stage(root, env, "preprocess", "--dataset", "digits"))


def test_sigkill_mid_training_resumes_to_the_same_metrics(tmp_path):
    reference, killed = make_root(tmp_path / "reference"), make_root(tmp_path / "killed")
    for root in (reference, killed):
        prepared(root, env_for(root))
    finish(stage(reference, env_for(reference), "train", "--dataset", "digits", "--model", "ae", "--seed", "0"))
    finish(stage(reference, env_for(reference), "evaluate", "--dataset", "digits", "--model", "ae", "--seed", "0"))

    resume = killed / ".aebench" / "resume" / "digits-ae-seed0.pt"
    proc = stage(killed, env_for(killed), "train", "--dataset", "digits", "--model", "ae", "--seed", "0")
    deadline = time.time() + 300
    while time.time() < deadline:
        if resume.exists():
            try:
                if torch.load(resume, weights_only=True)["epoch"] >= 2:
                    break
            except Exception:
                pass  # being replaced right now
        time.sleep(0.05)
    else:
        proc.kill()
        pytest.fail("the training never wrote a resume checkpoint")
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    assert not (killed / "models" / "digits" / "ae" / "seed0" / "run.json").exists()

    out = finish(stage(killed, env_for(killed), "train", "--dataset", "digits", "--model", "ae", "--seed", "0"))
    assert "resuming from epoch" in out
    finish(stage(killed, env_for(killed), "evaluate", "--dataset", "digits", "--model", "ae", "--seed", "0"))
    run_ref = json.loads((reference / "models/digits/ae/seed0/run.json").read_text())
    run_killed = json.loads((killed / "models/digits/ae/seed0/run.json").read_text())
    assert run_killed["resumed_from_epoch"] >= 2
    assert run_killed["best_val_loss"] == run_ref["best_val_loss"]
    metrics_ref = json.loads((reference / "eval/digits/ae/seed0/metrics.json").read_text())
    metrics_killed = json.loads((killed / "eval/digits/ae/seed0/metrics.json").read_text())
    for key in ("recon_mse", "psnr", "knn_acc", "linear_acc", "cluster_acc", "nmi"):
        assert metrics_killed[key] == metrics_ref[key], key
    assert not resume.exists()  # discarded after success
    import mlflow  # the resumed run re-logged what the kill lost from the logging queue

    history = mlflow.MlflowClient(env_for(killed)["MLFLOW_TRACKING_URI"]).get_metric_history(
        run_killed["run_id"], "val_loss")
    assert len({m.step for m in history}) == run_killed["epochs"]


def test_two_trainings_share_one_store(tmp_path):
    store = f"sqlite:///{tmp_path / 'shared.db'}"
    roots = [make_root(tmp_path / f"r{i}", seed=i) for i in range(2)]
    for root in roots:
        prepared(root, env_for(root, store))
    procs = [stage(root, env_for(root, store), "train", "--dataset", "digits", "--model", "ae", "--seed", str(i))
             for i, root in enumerate(roots)]
    for proc in procs:
        finish(proc)
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=store, registry_uri=store)
    versions = sorted(int(v.version) for v in client.search_model_versions("name='digits-ae'"))
    assert versions == [1, 2]
    for i, root in enumerate(roots):
        run_id = json.loads((root / f"models/digits/ae/seed{i}/run.json").read_text())["run_id"]
        history = client.get_metric_history(run_id, "val_loss")
        assert len(history) == 4  # every epoch's metric arrived


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rest(uri: str, endpoint: str, **query: str) -> dict:
    """GET `<uri>/api/2.0/mlflow/<endpoint>?<query>` from the tracking server, as JSON."""
    url = f"{uri}/api/2.0/mlflow/{endpoint}?{urllib.parse.urlencode(query)}"
    with urllib.request.urlopen(url, timeout=30) as response:
        return json.loads(response.read())


def aebench_cli() -> list[str]:
    """The installed `aebench` command beside this interpreter (its console script)."""
    script = Path(sys.executable).with_name("aebench")
    return [str(script)] if script.exists() else [sys.executable, "-c", "from aebench.cli import main; main()"]


def test_real_tracking_server(tmp_path):
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(port),
         "--backend-store-uri", f"sqlite:///{tmp_path / 'server.db'}", "--artifacts-destination",
         str(tmp_path / "server-artifacts"), "--workers", "1"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    uri = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 120
        while time.time() < deadline:
            try:
                urllib.request.urlopen(uri + "/health", timeout=2)
                break
            except OSError:
                time.sleep(0.5)
        else:
            pytest.fail("mlflow server did not start")
        root = make_root(tmp_path / "proj", epochs=1)
        prepared(root, env_for(root, uri))
        finish(stage(root, env_for(root, uri), "train", "--dataset", "digits", "--model", "ae", "--seed", "0"))
        finish(stage(root, env_for(root, uri), "evaluate", "--dataset", "digits", "--model", "ae", "--seed", "0"))
        from mlflow import MlflowClient

        client = MlflowClient(tracking_uri=uri, registry_uri=uri)
        (version,) = client.search_model_versions("name='digits-ae'")
        run = client.get_run(version.run_id)
        assert "knn_acc" in run.data.metrics and run.info.status == "FINISHED"
        assert any((tmp_path / "server-artifacts").rglob("checkpoint.pt"))

        # The same through the server's REST API: run, metrics, artifacts, the registered version ...
        run_id = json.loads((root / "models/digits/ae/seed0/run.json").read_text())["run_id"]
        rest_run = rest(uri, "runs/get", run_id=run_id)["run"]
        assert rest_run["info"]["status"] == "FINISHED"
        metrics = {m["key"]: m["value"] for m in rest_run["data"]["metrics"]}
        assert {"knn_acc", "recon_mse", "val_loss"} <= set(metrics)
        plots = rest(uri, "artifacts/list", run_id=run_id, path="plots").get("files", [])
        assert any(f["path"].endswith(".png") and not f["is_dir"] for f in plots), plots
        (rest_version,) = rest(uri, "model-versions/search", filter="name='digits-ae'")["model_versions"]
        assert rest_version["version"] == "1" and rest_version["run_id"] == run_id
        assert rest_version["status"] == "READY"
        assert not rest(uri, "registered-models/get", name="digits-ae")["registered_model"].get("aliases")

        # ... and the alias that `aebench promote` sets.
        promoted = subprocess.run([*aebench_cli(), "promote", "digits", "ae", "--metric", "knn_acc"],
                                  env=env_for(root, uri), cwd=root, capture_output=True, text=True, timeout=300)
        assert promoted.returncode == 0, promoted.stdout + promoted.stderr
        assert "version 1 is the first champion" in promoted.stdout
        by_alias = rest(uri, "registered-models/alias", name="digits-ae", alias="champion")["model_version"]
        assert by_alias["version"] == "1" and by_alias["run_id"] == run_id and "champion" in by_alias["aliases"]
        registered = rest(uri, "registered-models/get", name="digits-ae")["registered_model"]
        assert {"alias": "champion", "version": "1"} in registered["aliases"]
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
