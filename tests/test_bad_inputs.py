"""The bad-input catalogue: every mistake a user can make ends with exit code 2, one line
naming the file or key and the fix, no traceback, and nothing already produced lost.

Stages run in-process through their real entry point (`python -m aebench.stages <stage>`); one case
also runs as a subprocess to prove the exit path end to end."""

from __future__ import annotations

import json
import os
import runpy
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]


def base_params() -> dict:
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["datasets"] = ["digits", "loop"]
    params["models"] = ["ae", "vae"]
    params["runs"] = {f"{d}-{m}": {"dataset": d, "model": m} for d in ("digits", "loop") for m in ("ae", "vae")}
    params["data"]["options"] = {"loop": {"n": 600}}
    params["train"].update(epochs=1, max_steps_per_epoch=3)
    params["model"] = {"ae": {"latent_dim": 4}, "vae": {"latent_dim": 4}}
    return params


def write_params(root: Path, params: dict) -> None:
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


def stage(root: Path, capsys, name: str, *args: str) -> tuple[int, str]:
    """Run `python -m aebench.stages <name>` as a user would; returns (exit code, stderr)."""
    argv = sys.argv
    sys.argv = ["aebench.stages", name, *args]
    os.environ["AEBENCH_ROOT"] = str(root)
    code = 0
    try:
        runpy.run_module("aebench.stages", run_name="__main__")
    except SystemExit as exc:
        code = exc.code
    finally:
        sys.argv = argv
    err = capsys.readouterr().err
    return code, err


def assert_one_line_error(code: int, err: str, *needles: str) -> None:
    lines = [line for line in err.splitlines() if line.startswith("aebench: error:")]
    assert code == 2, err
    assert len(lines) == 1, err
    assert "Traceback" not in err
    for needle in needles:
        assert needle in lines[0], lines[0]


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    """A project root with digits and loop downloaded and preprocessed, and ae trained on digits."""
    root = tmp_path_factory.mktemp("proj")
    write_params(root, base_params())
    os.environ["AEBENCH_ROOT"] = str(root)
    os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{root / 'mlflow.db'}"
    from aebench.stages import download, preprocess, train

    for dataset in ("digits", "loop"):
        download.run(dataset, root)
        preprocess.run(dataset, root)
    train.run("digits", "ae", 0, root)
    return root


@pytest.fixture
def proj(project, monkeypatch):
    monkeypatch.setenv("AEBENCH_ROOT", str(project))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{project / 'mlflow.db'}")
    write_params(project, base_params())
    yield project
    write_params(project, base_params())


@pytest.mark.parametrize("edit, needles", [
    (lambda p: p["train"].update(lrate=0.1), ["unknown key `train.lrate`", "params.yaml"]),
    (lambda p: p.update(dataset=["digits"]), ["unknown key `dataset`"]),
    (lambda p: p["train"].update(lr=-1e-3), ["`train.lr`", "greater than 0"]),
    (lambda p: p["train"].update(batch_size=0), ["`train.batch_size`"]),
    (lambda p: p["train"].update(epochs="many"), ["`train.epochs`"]),
    (lambda p: p["model"]["ae"].update(latent_dim=0), ["`model.ae.latent_dim`"]),
    (lambda p: p["model"]["vae"].update(beta=-1), ["`model.vae.beta`"]),
    (lambda p: p["model"]["ae"].update(arch="transformer"), ["`model.ae.arch`"]),
    (lambda p: p["data"].update(val_fraction=0), ["`data.val_fraction`"]),
    (lambda p: p["data"]["options"].update(digits={"noise": 0.1}), ["`data.options.digits.noise`", "remove it"]),
    (lambda p: p.update(models=["ae", "vae", "vea"]), ["unknown type `vea`", "known types"]),
    (lambda p: p["runs"].update({"digits-ae": {"dataset": "digits", "model": "vae"}}), ["`digits-vae`"]),
    (lambda p: p["runs"].update({"shapes-ae": {"dataset": "shapes", "model": "ae"}}), ["`shapes` is not listed"]),
    (lambda p: p.update(models=["../../etc"]), ["`models`", "lower-case", "../../etc"]),
    (lambda p: p.update(models=["ae", "ae"]), ["`models`", "unique"]),
    (lambda p: p.update(models=[]), ["`models`"]),
])
def test_bad_params(proj, capsys, edit, needles):
    params = base_params()
    edit(params)
    write_params(proj, params)
    code, err = stage(proj, capsys, "train", "--dataset", "digits", "--model", "ae", "--seed", "0")
    assert_one_line_error(code, err, *needles)
    assert (proj / "models" / "digits" / "ae" / "seed0" / "checkpoint.pt").exists()  # nothing lost


def test_params_not_yaml(proj, capsys):
    (proj / "params.yaml").write_text("datasets: [digits\n")
    assert_one_line_error(*stage(proj, capsys, "download", "--dataset", "digits"), "not valid YAML")


def test_unknown_dataset(proj, capsys):
    params = base_params()
    params["datasets"] = ["digitz"]
    params["runs"] = {"digitz-ae": {"dataset": "digitz", "model": "ae"}}
    write_params(proj, params)
    assert_one_line_error(*stage(proj, capsys, "download", "--dataset", "digitz"), "unknown dataset `digitz`", "known:")


def test_dataset_not_listed(proj, capsys):
    assert_one_line_error(*stage(proj, capsys, "download", "--dataset", "shapes"), "`shapes` is not listed")


def test_run_not_planned(proj, capsys):
    params = base_params()
    del params["runs"]["loop-ae"]
    write_params(proj, params)
    assert_one_line_error(*stage(proj, capsys, "train", "--dataset", "loop", "--model", "ae", "--seed", "0"),
                          "`loop-ae` is not in `runs`")


def test_missing_upstream_output(proj, capsys):
    params = base_params()
    params["datasets"] = ["digits", "loop", "shapes"]
    params["runs"]["shapes-ae"] = {"dataset": "shapes", "model": "ae"}
    write_params(proj, params)
    assert_one_line_error(*stage(proj, capsys, "preprocess", "--dataset", "shapes"), "raw.npz is missing",
                          "dvc repro download@shapes")
    assert_one_line_error(*stage(proj, capsys, "train", "--dataset", "shapes", "--model", "ae", "--seed", "0"),
                          "train.parquet is missing", "preprocess@shapes")
    assert_one_line_error(*stage(proj, capsys, "evaluate", "--dataset", "loop", "--model", "vae", "--seed", "0"),
                          "run.json is missing", "train-loop-vae@0")


def test_truncated_raw_archive(proj, capsys):
    raw = proj / "data" / "raw" / "loop" / "raw.npz"
    backup = raw.read_bytes()
    raw.write_bytes(backup[: len(backup) // 2])
    try:
        assert_one_line_error(*stage(proj, capsys, "preprocess", "--dataset", "loop"), "raw.npz is unreadable",
                              "download@loop")
        assert (proj / "data" / "processed" / "loop" / "train.parquet").exists()  # the old output survives
    finally:
        raw.write_bytes(backup)


@pytest.mark.parametrize("damage", ["truncate", "schema"])
def test_broken_parquet(proj, capsys, damage):
    path = proj / "data" / "processed" / "loop" / "train.parquet"
    backup = path.read_bytes()
    if damage == "truncate":
        path.write_bytes(backup[: len(backup) // 3])
    else:
        import pyarrow as pa
        import pyarrow.parquet as pq

        pq.write_table(pa.table({"index": [1, 2], "label": [0, 1]}), path)
    try:
        assert_one_line_error(*stage(proj, capsys, "train", "--dataset", "loop", "--model", "ae", "--seed", "0"),
                              "train.parquet", "preprocess@loop")
    finally:
        path.write_bytes(backup)


def test_nan_in_data_is_caught_by_expectations(proj, capsys):
    raw_dir = proj / "data" / "raw" / "loop"
    backup = (raw_dir / "raw.npz").read_bytes()
    with np.load(raw_dir / "raw.npz") as npz:
        arrays = {k: npz[k] for k in npz.files}
    arrays["x"][5, 0] = np.nan
    np.savez(raw_dir / "raw.npz", **arrays)
    try:
        code, err = stage(proj, capsys, "preprocess", "--dataset", "loop")
        assert_one_line_error(code, err, "x_finite", "validation.json")
        report = json.loads((proj / "data" / "processed" / "loop" / "validation.json").read_text())
        assert report["success"] is False
    finally:
        (raw_dir / "raw.npz").write_bytes(backup)


def rewrite_rows(path: Path, column: str, change) -> bytes:
    """Rewrite `column` of a processed split through `change(numpy array)`, keeping its schema
    and metadata (as a hand edit or a buggy tool would); returns the original bytes."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    backup = path.read_bytes()
    table = pq.read_table(path)
    col = table.column(column).combine_chunks()
    if pa.types.is_fixed_size_list(col.type):
        values = col.flatten().to_numpy().copy().reshape(len(col), -1)
        change(values)
        new = pa.FixedSizeListArray.from_arrays(pa.array(values.ravel(), col.type.value_type), col.type.list_size)
    else:
        values = col.to_numpy().copy()
        change(values)
        new = pa.array(values, col.type)
    table = table.set_column(table.column_names.index(column), column, new)
    pq.write_table(table, path)
    return backup


@pytest.mark.parametrize("dataset, split, column, change, needles", [
    ("loop", "train", "x", lambda v: v.__setitem__((slice(3, 8), 0), np.nan),
     ["loop/train.parquet", "'column 'x' holds finite numbers'", "5 of", "row 3"]),
    ("digits", "train", "label", lambda v: v.__setitem__(slice(10, 60), 42),
     ["digits/train.parquet", "labels lie in 0..9", "50 of", "value 42"]),
    ("digits", "val", "index", lambda v: v.__setitem__(1, v[0]),
     ["digits/val.parquet", "names each raw row once"]),
], ids=["nan-rows", "labels-out-of-range", "repeated-index"])
def test_bad_rows_are_named_before_any_training(proj, capsys, dataset, split, column, change, needles):
    """Processed data damaged after preprocessing (its rules checked where it is read): the
    train stage names the file and the rule broken, and starts no MLflow run."""
    from aebench import tracking

    path = proj / "data" / "processed" / dataset / f"{split}.parquet"
    client = tracking.client(proj)
    runs_before = len(client.search_runs([e.experiment_id for e in client.search_experiments()]))
    backup = rewrite_rows(path, column, change)
    try:
        code, err = stage(proj, capsys, "train", "--dataset", dataset, "--model", "vae", "--seed", "0")
        assert_one_line_error(code, err, *needles, f"dvc repro preprocess@{dataset}")
        assert len(client.search_runs([e.experiment_id for e in client.search_experiments()])) == runs_before
    finally:
        path.write_bytes(backup)


def test_dataset_too_small(proj, capsys):
    params = base_params()
    params["data"]["options"] = {"loop": {"n": 3}}
    write_params(proj, params)
    target = proj / "tmp_small"
    from aebench.data.parquet import write_processed
    from aebench.data.datasets.manifolds import make_loop
    from aebench.errors import UserError

    with pytest.raises(UserError, match="val_fraction"):
        write_processed(make_loop(3, 0), "loop", target, seed=0, val_fraction=0.1, test_fraction=0.2)
    params = base_params()
    params["train"]["batch_size"] = 100000
    write_params(proj, params)
    assert_one_line_error(*stage(proj, capsys, "train", "--dataset", "digits", "--model", "vae", "--seed", "0"),
                          "fewer than `train.batch_size`")


def test_checkpoint_of_another_model(proj, capsys):
    vae_dir = proj / "models" / "digits" / "vae" / "seed0"
    vae_dir.mkdir(parents=True, exist_ok=True)
    shutil.copy(proj / "models" / "digits" / "ae" / "seed0" / "checkpoint.pt", vae_dir / "checkpoint.pt")
    shutil.copy(proj / "models" / "digits" / "ae" / "seed0" / "run.json", vae_dir / "run.json")
    try:
        assert_one_line_error(*stage(proj, capsys, "evaluate", "--dataset", "digits", "--model", "vae", "--seed", "0"),
                              "holds model `ae`", "train-digits-vae@0")
    finally:
        shutil.rmtree(vae_dir)


def test_unreachable_tracking_server(proj, capsys, monkeypatch):
    import socket
    import time

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"http://127.0.0.1:{port}")
    t0 = time.perf_counter()
    code, err = stage(proj, capsys, "train", "--dataset", "loop", "--model", "ae", "--seed", "0")
    assert_one_line_error(code, err, f"http://127.0.0.1:{port}", "unreachable")
    assert time.perf_counter() - t0 < 20


def test_nan_loss_registers_nothing(proj, capsys):
    params = base_params()
    params["train"].update(lr=1e30, epochs=2)
    write_params(proj, params)
    code, err = stage(proj, capsys, "train", "--dataset", "loop", "--model", "vae", "--seed", "0")
    assert_one_line_error(code, err, "loss became", "nothing was registered", "train.lr")
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=os.environ["MLFLOW_TRACKING_URI"])
    assert not client.search_model_versions("name='loop-vae'")
    runs = client.search_runs([client.get_experiment_by_name("loop").experiment_id])
    assert [r.info.status for r in runs if r.data.tags["model"] == "vae"] == ["FAILED"]
    assert not (proj / "models" / "loop" / "vae" / "seed0" / "checkpoint.pt").exists()


def test_disk_full_keeps_previous_output(proj, capsys, monkeypatch):
    target = proj / "data" / "processed" / "digits" / "validation.json"
    before = target.read_text()
    import errno

    import aebench.io as aio

    real_replace = os.replace

    def full_disk(src, dst):
        if str(dst) == str(target):
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_replace(src, dst)

    monkeypatch.setattr(aio.os, "replace", full_disk)
    code, err = stage(proj, capsys, "preprocess", "--dataset", "digits")
    assert_one_line_error(code, err, "no space left", "validation.json", "unchanged")
    assert target.read_text() == before
    assert not [p for p in target.parent.iterdir() if p.name.endswith(".tmp")]  # no half-written leftovers


def test_debug_shows_traceback(proj, monkeypatch):
    params = base_params()
    params["train"]["lr"] = -1
    write_params(proj, params)
    env = {**os.environ, "AEBENCH_ROOT": str(proj)}
    quiet = subprocess.run([sys.executable, "-m", "aebench.stages", "train", "--dataset", "digits", "--model", "ae", "--seed", "0"],
                           env=env, capture_output=True, text=True, timeout=120)
    assert quiet.returncode == 2 and quiet.stderr.strip().startswith("aebench: error:") and "Traceback" not in quiet.stderr
    loud = subprocess.run([sys.executable, "-m", "aebench.stages", "train", "--dataset", "digits", "--model", "ae", "--seed", "0"],
                          env={**env, "AEBENCH_DEBUG": "1"}, capture_output=True, text=True, timeout=120)
    assert loud.returncode == 2 and "Traceback" in loud.stderr
