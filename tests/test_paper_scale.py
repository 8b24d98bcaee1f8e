"""One path for every run: the stages under MLflow (as `dvc repro` calls them) and
`benchmarks/paper_scale.py` with the plain-files tracker (as a machine without DVC or MLflow
runs it) train and evaluate a tiny run to identical metrics, and both records say which code ran."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
import yaml

from aebench.trackers import FileTracker, MlflowTracker, open_tracker

REPO = Path(__file__).resolve().parents[1]


def tiny_profile(path: Path) -> Path:
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params.update(datasets=["digits"], models=["ae"], seeds=[0],
                  runs={"digits-ae": {"dataset": "digits", "model": "ae"}})
    params["train"].update(epochs=2, max_steps_per_epoch=5, num_threads=1)
    params["model"] = {"ae": {"latent_dim": 4}}
    path.write_text(yaml.safe_dump(params, sort_keys=False))
    return path


def driver():
    spec = importlib.util.spec_from_file_location("paper_scale", REPO / "benchmarks" / "paper_scale.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def measured(root: Path) -> dict:
    metrics = json.loads((root / "eval" / "digits" / "ae" / "seed0" / "metrics.json").read_text())
    return {k: v for k, v in metrics.items() if not k.endswith(("_seconds", "_per_s"))}  # timings differ


@pytest.mark.slow
def test_stages_under_mlflow_and_the_driver_on_files_agree(tmp_path, monkeypatch):
    from aebench.stages import download, evaluate, preprocess, train

    profile = tiny_profile(tmp_path / "tiny.yaml")
    staged = tmp_path / "staged"
    staged.mkdir()
    (staged / "params.yaml").write_text(profile.read_text())
    download.run("digits", staged)
    preprocess.run("digits", staged)
    assert isinstance(open_tracker(staged), MlflowTracker)
    by_stage = train.run("digits", "ae", 0, staged)
    evaluate.run("digits", "ae", 0, staged)

    monkeypatch.setenv("AEBENCH_TRACKER", "files")
    assert driver().main([str(profile), "--out", str(tmp_path / "driven"), "--bundle", str(tmp_path)]) == 0
    driven = tmp_path / "driven" / "tiny"
    assert measured(driven) == measured(staged)
    by_driver = json.loads((driven / "models" / "digits" / "ae" / "seed0" / "run.json").read_text())
    assert by_driver["best_val_loss"] == by_stage["best_val_loss"]
    assert by_driver["code_digest"] == by_stage["code_digest"] and len(by_stage["code_digest"]) == 16
    assert by_driver["tracking_uri"].startswith("file://") and by_stage["tracking_uri"].startswith("sqlite:")

    # the files record holds what MLflow does: the run, its metrics, the registered version
    tracker = FileTracker(driven / "tracking")
    run = json.loads((driven / "tracking" / "runs" / by_driver["run_id"] / "run.json").read_text())
    assert run["status"] == "FINISHED" and run["tags"]["seed"] == "0" and run["params"]["model.latent_dim"] == "4"
    keys = {m["key"] for m in tracker.metrics(by_driver["run_id"])}
    assert {"val_loss", "best_val_loss", "recon_mse"} <= keys
    version = json.loads((driven / "tracking" / "registry" / "digits-ae" / "1" / "version.json").read_text())
    assert version["run_id"] == by_driver["run_id"] and version["tags"]["seed"] == "0"
    assert (driven / "tracking" / "registry" / "digits-ae" / "1" / "checkpoint.pt").is_file()
    assert (driven / "reports" / "summary.md").is_file()
    import tarfile

    with tarfile.open(tmp_path / "paper_scale.tgz") as tar:
        names = tar.getnames()
    assert "tiny/eval/digits/ae/seed0/metrics.json" in names and not any(n.endswith(".pt") for n in names)


def test_a_files_run_resumes_and_relogs_only_what_it_lacks(tmp_path):
    tracker = FileTracker(tmp_path)
    run_id = tracker.start_run("d", "m", 0, tags={}, params={"a": "1"}, run_id=None)
    tracker.logger(run_id)({"val_loss": 1.0}, 10)
    assert tracker.start_run("d", "m", 0, tags={}, params={}, run_id=run_id) == run_id
    history = [{"epoch": 1, "step": 10, "val_loss": 1.0}, {"epoch": 2, "step": 20, "val_loss": 0.5}]
    assert tracker.relog_history(run_id, history) == 1
    assert sorted((m["step"], m["value"]) for m in tracker.metrics(run_id)) == [(10, 1.0), (20, 0.5)]
    tracker.abandon(run_id)
    assert json.loads((tmp_path / "runs" / run_id / "run.json").read_text())["status"] == "FAILED"


def test_the_tracker_is_chosen_by_what_is_installed(tmp_path, monkeypatch):
    monkeypatch.setenv("AEBENCH_TRACKER", "files")
    assert isinstance(open_tracker(tmp_path), FileTracker)
    monkeypatch.setenv("AEBENCH_TRACKER", "auto")
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "mlflow" else True)
    assert isinstance(open_tracker(tmp_path), FileTracker)  # no mlflow here
    monkeypatch.setenv("AEBENCH_TRACKER", "wandb")
    from aebench.errors import UserError

    with pytest.raises(UserError, match="AEBENCH_TRACKER"):
        open_tracker(tmp_path)


def test_the_driver_stays_thin():
    assert len((REPO / "benchmarks" / "paper_scale.py").read_text().splitlines()) < 150


@pytest.mark.parametrize("profile", ["paper-scale-acn", "paper-scale-gwae"])
def test_smoke_params_cut_data_steps_and_chains_and_stay_valid(tmp_path, profile):
    from aebench.plan import load_params

    params = driver().workspace_params(REPO / "profiles" / f"{profile}.yaml", str(REPO.parent / "shared" / "data"),
                                       smoke=True)
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    checked = load_params(tmp_path / "params.yaml")
    assert checked.data.options_for("mnist").n == 500 and checked.train.max_steps_per_epoch == 1
    assert checked.evaluate.max_recon == 2 and Path(checked.data.mirror).is_absolute()
    for key, run in checked.runs.items():
        assert (run.train or {}).get("max_steps_per_epoch", 1) == 1, key
    if "acn" in profile:
        assert params["model"]["acn_pixelcnn"]["daydream_steps"] == 1
