"""MLflow tracking against a real SQLite store: runs, registered versions, the servable
encoder, promotion rules and a fast failure on an unreachable server."""

import socket
import time

import mlflow
import numpy as np
import pytest
import torch

from aebench import tracking
from aebench.errors import UserError
from aebench.models import build_model, checkpoint_payload
from aebench.models.base import DataInfo

INFO = DataInfo((1, 8, 8), "image", 10, 100)


def register_version(tmp_path, metrics: dict, seed: int) -> tuple[str, str]:
    torch.manual_seed(seed)
    model = build_model("ae", {"latent_dim": 3, "width": 4}, INFO)
    ckpt = tmp_path / f"ckpt{seed}.pt"
    torch.save(checkpoint_payload(model, "ae"), ckpt)
    client = tracking.client(tmp_path)
    run_id = tracking.start_run(client, "digits", "ae", seed, tags={"git_commit": "abc", "data_hash": "d"},
                                params={"model.latent_dim": "3"}, root=tmp_path)
    x = torch.rand(4, 1, 8, 8)
    with torch.no_grad():
        codes = model.encode(x).numpy()
    name, version = tracking.register_encoder(run_id, "digits", "ae", ckpt, x.numpy(), codes)
    tracking.RunLogger(client, run_id)(metrics, 0)
    tracking.finish_run(client, run_id)
    return run_id, version


def test_background_logger_gathers_rows_until_flush(tmp_path):
    client = tracking.client(tmp_path)
    run_id = tracking.start_run(client, "digits", "ae", 0, tags={}, params={}, root=tmp_path)
    logger = tracking.RunLogger(client, run_id, background=True, every_seconds=3600)
    for step in range(1, 601):  # 1,200 rows: more than one log_batch may carry
        logger({"step/loss": 1.0 / step, "step/kl": float("nan") if step == 7 else float(step)}, step)
    assert client.get_metric_history(run_id, "step/loss") == []  # still gathered, not stored
    logger.flush()
    assert [m.step for m in client.get_metric_history(run_id, "step/loss")] == list(range(1, 601))
    kl = client.get_metric_history(run_id, "step/kl")
    assert len(kl) == 599 and 7 not in {m.step for m in kl}  # non-finite values are dropped


@pytest.mark.slow
def test_register_serve_and_promote(tmp_path):
    run1, v1 = register_version(tmp_path, {"knn_acc": 0.80, "recon_mse": 0.02}, seed=1)
    assert v1 == "1"
    client = tracking.client(tmp_path)
    run = client.get_run(run1)
    assert run.data.tags["dataset"] == "digits" and run.data.tags["model"] == "ae"
    assert run.data.tags["git_commit"] == "abc"
    assert client.get_experiment(run.info.experiment_id).name == "digits"

    # the registered version is a servable encoder: tensor in, codes out
    served = mlflow.pyfunc.load_model("models:/digits-ae/1")
    codes = served.predict(np.random.rand(5, 1, 8, 8).astype(np.float32))
    assert np.asarray(codes).shape == (5, 3)
    assert served.metadata.signature is not None

    assert "first champion" in tracking.promote("digits", "ae", "knn_acc", tmp_path)
    assert str(client.get_model_version_by_alias("digits-ae", "champion").version) == "1"
    assert "already the champion" in tracking.promote("digits", "ae", "knn_acc", tmp_path)

    # a worse version (lower knn_acc) is not promoted
    _, v2 = register_version(tmp_path, {"knn_acc": 0.70, "recon_mse": 0.01}, seed=2)
    message = tracking.promote("digits", "ae", "knn_acc", tmp_path)
    assert "does not beat" in message and "nothing changed" in message
    assert str(client.get_model_version_by_alias("digits-ae", "champion").version) == "1"
    # but on recon_mse (lower is better) it is better
    assert "new champion" in tracking.promote("digits", "ae", "recon_mse", tmp_path)
    assert str(client.get_model_version_by_alias("digits-ae", "champion").version) == v2

    with pytest.raises(UserError, match="unknown metric"):
        tracking.promote("digits", "ae", "accuracy", tmp_path)
    with pytest.raises(UserError, match="no registered model `digits-vae`"):
        tracking.promote("digits", "vae", "knn_acc", tmp_path)
    with pytest.raises(UserError, match="has no metric `nmi`"):
        tracking.promote("digits", "ae", "nmi", tmp_path)


def test_unreachable_server_fails_fast(monkeypatch):
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"http://127.0.0.1:{port}")
    t0 = time.perf_counter()
    with pytest.raises(UserError, match=f"127.0.0.1:{port}.*unreachable"):
        tracking.client()
    assert time.perf_counter() - t0 < 10


def test_flatten():
    assert tracking.flatten("", {"a": {"b": 1, "c": [1, 2]}, "d": None}) == {"a.b": "1", "a.c": "[1, 2]", "d": "None"}
