"""MLflow: one experiment per dataset, one run per trained model, a registered version per
training, and champion promotion.

The tracking URI is `MLFLOW_TRACKING_URI` when set, else a SQLite file at
`<repo>/mlflow.db` with artifacts under `<repo>/mlartifacts`, so `mlflow ui` (or
`aebench ui`) browses everything the pipeline did. Registered versions hold a servable
encoder written as an MLflow "model from code" (`aebench/serving.py`): nothing is
pickled, and the checkpoint inside loads with `torch.load(weights_only=True)`.
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import os
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Iterator

import numpy as np

from aebench import __version__
from aebench.errors import UserError
from aebench.evaluation.directions import DIRECTIONS
from aebench.paths import repo_root

log = logging.getLogger(__name__)
CHAMPION = "champion"


def tracking_uri(root: Path | None = None) -> str:
    return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{(root or repo_root()) / 'mlflow.db'}"


def artifact_root(root: Path | None = None) -> str:
    return ((root or repo_root()) / "mlartifacts").as_uri()


def registered_name(dataset: str, model: str) -> str:
    return f"{dataset}-{model}"


def check_reachable(uri: str, timeout: float = 5.0) -> None:
    """Fail within seconds, naming the URI, when an http(s) tracking server does not answer."""
    if not uri.startswith(("http://", "https://")):
        return
    try:
        with urllib.request.urlopen(uri.rstrip("/") + "/health", timeout=timeout):
            pass
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise UserError(f"MLflow tracking server {uri} is unreachable ({reason}): start it, or unset "
                        f"MLFLOW_TRACKING_URI to use the local sqlite store") from None


# The schemes MLflow's stores accept (a database dialect may name its driver: postgresql+psycopg2)
STORE_SCHEMES = ("sqlite", "postgresql", "mysql", "mssql", "file", "http", "https", "databricks")


def sqlite_path(uri: str) -> Path | None:
    return Path(uri[len("sqlite:///"):]) if uri.startswith("sqlite:///") else None


def check_store(uri: str) -> None:
    """Fail before any work, naming the store and the fix, when the tracking URI cannot be used:
    an unknown scheme, an http(s) server that does not answer, a SQLite file that is read-only,
    in a read-only folder, or locked by another writer."""
    scheme = uri.split("://", 1)[0].split("+", 1)[0].lower() if "://" in uri else ""
    if "://" in uri and scheme not in STORE_SCHEMES:
        raise UserError(f"the MLflow tracking URI `{uri}` (MLFLOW_TRACKING_URI) has an unknown scheme `{scheme}`: "
                        f"use sqlite:///<path>, http(s)://<server> or another of {', '.join(STORE_SCHEMES)}, or unset "
                        f"MLFLOW_TRACKING_URI for the project's own sqlite store")
    check_reachable(uri)
    path = sqlite_path(uri)
    if path is None:
        return
    folder = path.parent
    if not folder.is_dir():
        raise UserError(f"the folder of the MLflow store {path} does not exist: create it, or fix MLFLOW_TRACKING_URI")
    if not os.access(folder, os.W_OK):
        raise UserError(f"the folder of the MLflow store {path} is not writable (SQLite writes its journal beside "
                        f"the file): `chmod u+w {folder}`, or point MLFLOW_TRACKING_URI elsewhere")
    if not path.exists():
        return
    if not os.access(path, os.W_OK):
        raise UserError(f"the MLflow store {path} is read-only: `chmod u+w {path}`, or point MLFLOW_TRACKING_URI "
                        f"elsewhere")
    import sqlite3

    try:
        with contextlib.closing(sqlite3.connect(path, timeout=10)) as db:
            db.execute("BEGIN IMMEDIATE")  # takes the write lock, as every run's logging will
            db.execute("ROLLBACK")
    except sqlite3.DatabaseError as exc:
        if "locked" in str(exc):
            raise UserError(f"the MLflow store {path} is locked by another writer (held for more than 10 s): "
                            f"wait for it or stop it, then rerun") from None
        raise UserError(f"the MLflow store {path} cannot be written ({exc}): restore it from a backup or move "
                        f"it aside (a new store starts empty), then rerun") from None


@contextlib.contextmanager
def store_errors(uri: str, doing: str) -> Iterator[None]:
    """Turn a failure of the MLflow store while `doing` into one line naming the store."""
    try:
        yield
    except UserError:
        raise
    except Exception as exc:  # MlflowException, SQLAlchemy's errors, OSError of the artifact store
        path = sqlite_path(uri)
        reason = " ".join(str(exc).split())[:240]
        if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)):
            where = exc.filename2 or exc.filename or "the store's artifacts"
            raise UserError(f"no space left on the device while {doing} (writing {where}): free some space there, "
                            f"then rerun the stage; nothing was registered") from exc
        if path is not None and not path.exists():
            reason = "it was deleted"
        raise UserError(f"the MLflow store {uri} failed while {doing} ({reason}): restore it (or unset "
                        f"MLFLOW_TRACKING_URI), then rerun the stage") from exc


def client(root: Path | None = None):
    """An MlflowClient on the project's store (checked first: `check_store`)."""
    import mlflow
    from mlflow import MlflowClient

    uri = tracking_uri(root)
    check_store(uri)
    mlflow.set_tracking_uri(uri)
    if not uri.startswith("sqlite:///"):
        return MlflowClient(tracking_uri=uri, registry_uri=uri)
    # The first use of a fresh SQLite store creates its tables; two processes doing that at
    # once (parallel trainings) race in the schema migration, so serialise it.
    from filelock import FileLock

    with FileLock(uri[len("sqlite:///"):] + ".lock", timeout=120), store_errors(uri, "opening it"):
        mlflow_client = MlflowClient(tracking_uri=uri, registry_uri=uri)
        mlflow_client.search_experiments(max_results=1)
        mlflow_client.search_registered_models(max_results=1)
    return mlflow_client


def experiment_id(mlflow_client, dataset: str, root: Path | None = None) -> str:
    exp = mlflow_client.get_experiment_by_name(dataset)
    if exp is not None:
        return exp.experiment_id
    # a local store keeps artifacts in <repo>/mlartifacts; a server decides where its go
    local = tracking_uri(root).startswith("sqlite:")
    try:
        return mlflow_client.create_experiment(
            dataset, artifact_location=f"{artifact_root(root)}/{dataset}" if local else None)
    except Exception:  # another process created it first
        exp = mlflow_client.get_experiment_by_name(dataset)
        if exp is None:
            raise
        return exp.experiment_id


def git_commit(root: Path | None = None) -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root or repo_root(), capture_output=True,
                             text=True, timeout=10, check=True)
        return out.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def code_digest() -> str:
    """sha256 of aebench's own source (every .py file under the package, by relative path): it
    names the code that ran where git's metadata is missing or does not match the files."""
    import hashlib

    package = Path(__file__).resolve().parent
    digest = hashlib.sha256()
    for path in sorted(package.rglob("*.py")):
        digest.update(path.relative_to(package).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def flatten(prefix: str, obj) -> dict[str, str]:
    """Nested dicts as MLflow params: {"train.lr": "0.001", ...}."""
    if isinstance(obj, dict):
        out: dict[str, str] = {}
        for k, v in obj.items():
            out.update(flatten(f"{prefix}.{k}" if prefix else str(k), v))
        return out
    return {prefix: json.dumps(obj) if isinstance(obj, (list, tuple)) else str(obj)}


class RunLogger:
    """Logs into one MLflow run in batches (a row per metric per call into SQLite is slow).

    With `background=True` (the trainer's step metrics) rows are gathered for `every_seconds`
    and then handed to MLflow's asynchronous logging queue in one `log_batch`, so the training
    thread never waits for the store. A SQLite `log_batch` costs ~40 ms whatever its size: one
    per `log_every: 20` steps was half the step time of the small default models when
    synchronous, and 15% of it when queued. `flush()` stores everything logged so far."""

    MAX_ROWS = 1000  # MLflow's limit on metrics per log_batch

    def __init__(self, mlflow_client, run_id: str, background: bool = False, every_seconds: float = 5.0):
        self.client = mlflow_client
        self.run_id = run_id
        self.background = background
        self.every_seconds = every_seconds
        self._rows = []
        self._pending = []
        self._last_submit = time.monotonic()

    def __call__(self, metrics: dict[str, float], step: int) -> None:
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        self._rows += [Metric(k, float(v), now, step) for k, v in metrics.items() if np.isfinite(v)]
        if not self.background or time.monotonic() - self._last_submit >= self.every_seconds:
            self._submit()

    def _submit(self) -> None:
        store = sqlite_path(self.client.tracking_uri)
        if store is not None and not store.exists():
            # SQLite would keep writing into the deleted file's open handle, losing every row
            raise UserError(f"the MLflow store {store} was deleted while this stage ran: restore it (or move the "
                            f"run's resume file aside to start afresh), then rerun; the training's progress is "
                            f"kept in its resume file")
        rows, self._rows = self._rows, []
        self._last_submit = time.monotonic()
        for i in range(0, len(rows), self.MAX_ROWS):
            pending = self.client.log_batch(self.run_id, metrics=rows[i:i + self.MAX_ROWS],
                                            synchronous=not self.background)
            if pending is not None:
                self._pending.append(pending)

    def flush(self) -> None:
        self._submit()
        while self._pending:
            self._pending.pop(0).wait()


def start_run(mlflow_client, dataset: str, model: str, seed: int, tags: dict[str, str], params: dict[str, str],
              run_id: str | None = None, root: Path | None = None) -> str:
    """Reuse `run_id` (a resumed training) when it still exists, else open a new run, named
    `<model>-seed<seed>` and tagged with the dataset, the model and the training seed."""
    from mlflow.entities import Param

    if run_id:
        try:
            mlflow_client.get_run(run_id)
            mlflow_client.update_run(run_id, status="RUNNING")
            return run_id
        except Exception:
            log.info("run %s no longer exists; opening a new one", run_id)
    exp = experiment_id(mlflow_client, dataset, root)
    run_name = f"{model}-seed{seed}"
    run = mlflow_client.create_run(exp, run_name=run_name,
                                   tags={"dataset": dataset, "model": model, "seed": str(seed), **tags})
    items = [Param(k, v[:6000]) for k, v in params.items()]
    for i in range(0, len(items), 100):
        mlflow_client.log_batch(run.info.run_id, params=items[i:i + 100])
    mlflow_client.set_tag(run.info.run_id, "mlflow.runName", run_name)
    return run.info.run_id


def relog_history(mlflow_client, run_id: str, history: list[dict]) -> int:
    """Log the per-epoch records of a resumed training that its MLflow run lacks (a kill loses
    what was still in the background logging queue); returns the rows logged."""
    from mlflow.entities import Metric

    now = int(time.time() * 1000)
    rows = []
    keys = {k for record in history for k in record if k not in ("epoch", "step")}
    for key in sorted(keys):
        stored = {m.step for m in mlflow_client.get_metric_history(run_id, key)}
        rows += [Metric(key, float(r[key]), now, int(r["step"])) for r in history
                 if key in r and "step" in r and int(r["step"]) not in stored and np.isfinite(r[key])]
    for i in range(0, len(rows), RunLogger.MAX_ROWS):
        mlflow_client.log_batch(run_id, metrics=rows[i:i + RunLogger.MAX_ROWS])
    return len(rows)


def drop_unrecorded_versions(mlflow_client, dataset: str, model: str, run_id: str) -> list[str]:
    """Delete the registered versions of `run_id` that its stage never recorded: a stage killed
    between registering and writing run.json leaves one, and its rerun (the same run, resumed)
    registers again. Returns the versions deleted."""
    name = registered_name(dataset, model)
    try:
        versions = mlflow_client.search_model_versions(f"name='{name}' and run_id='{run_id}'")
    except Exception:
        return []
    for version in versions:
        mlflow_client.delete_model_version(name, version.version)
        log.info("deleted %s version %s: registered by a killed attempt of this run", name, version.version)
    return [v.version for v in versions]


def register_encoder(run_id: str, dataset: str, model: str, checkpoint: Path, example: np.ndarray,
                     codes: np.ndarray) -> tuple[str, str]:
    """Log the servable encoder into the run and register it as a new version of
    `<dataset>-<model>`; returns (registered name, version)."""
    import mlflow
    from mlflow.models import ModelSignature
    from mlflow.types import Schema, TensorSpec

    serving = Path(__file__).with_name("serving.py")
    signature = ModelSignature(
        inputs=Schema([TensorSpec(np.dtype(np.float32), (-1, *example.shape[1:]))]),
        outputs=Schema([TensorSpec(np.dtype(np.float32), (-1, codes.shape[1]))]),
    )
    name = registered_name(dataset, model)
    with mlflow.start_run(run_id=run_id):
        info = mlflow.pyfunc.log_model(
            name="encoder",
            python_model=str(serving),
            artifacts={"checkpoint": str(checkpoint)},
            signature=signature,
            input_example=example.astype(np.float32),
            pip_requirements=[f"aebench=={__version__}", "torch", "numpy"],
            registered_model_name=name,
        )
    version = str(info.registered_model_version)
    log.info("registered %s version %s", name, version)
    return name, version


def description(dataset: str, model: str, seed: int, model_type: str, config: dict, doc: str) -> str:
    """What the model is (its docstring's first paragraph names the paper), the dataset, the
    training seed and its params."""
    summary = doc.split("\n\n")[0].replace("\n", " ") if doc else model_type
    params = ", ".join(f"{k}={v}" for k, v in config.items() if not isinstance(v, dict))
    return f"{model} ({model_type}) on {dataset}, training seed {seed}. {summary} Params: {params}."


def describe(mlflow_client, run_id: str, name: str, version: str, dataset: str, model: str, seed: int,
             model_type: str, config: dict, doc: str) -> None:
    """A short description on the run and on the registered version (`description`)."""
    text = description(dataset, model, seed, model_type, config, doc)
    mlflow_client.set_tag(run_id, "mlflow.note.content", text)
    mlflow_client.update_model_version(name, version, description=text)
    mlflow_client.set_model_version_tag(name, version, "seed", str(seed))


def tag_version(mlflow_client, name: str, version: str, metrics: dict[str, float]) -> None:
    """The evaluation's metrics as tags of the registered version, so the registry UI and
    `aebench models` show them beside the version."""
    for key, value in metrics.items():
        if np.isfinite(value):
            mlflow_client.set_model_version_tag(name, version, key, f"{value:.6g}")


def finish_run(mlflow_client, run_id: str, status: str = "FINISHED") -> None:
    mlflow_client.set_terminated(run_id, status=status)


def abandon_run(mlflow_client, run_id: str, logger: RunLogger | None = None) -> None:
    """Best effort after a failure: store what was logged and mark the run FAILED, so no run is
    left RUNNING; a store that is itself the failure only adds a warning, never a second error."""
    try:
        if logger is not None:
            logger.flush()
        finish_run(mlflow_client, run_id, "FAILED")
    except Exception as exc:  # noqa: BLE001 - the original error is the one to report
        log.warning("could not mark MLflow run %s FAILED: %s", run_id, " ".join(str(exc).split())[:200])


def promote(dataset: str, model: str, metric: str, root: Path | None = None) -> str:
    """Move alias `champion` to the newest version of `<dataset>-<model>` only if it beats
    the current champion on `metric`. Returns what happened, in one sentence."""
    if metric not in DIRECTIONS:
        raise UserError(f"unknown metric `{metric}` for --metric; known: {', '.join(sorted(DIRECTIONS))}")
    mlflow_client = client(root)
    name = registered_name(dataset, model)
    try:
        versions = mlflow_client.search_model_versions(f"name='{name}'")
    except Exception:
        versions = []
    if not versions:
        raise UserError(f"no registered model `{name}`: train it first (`dvc repro train-{dataset}-{model}`)")
    newest = max(versions, key=lambda v: int(v.version))
    new_value = _metric_of(mlflow_client, newest, metric)
    if new_value is None:
        raise UserError(f"version {newest.version} of `{name}` has no metric `{metric}`: run `dvc repro "
                        f"evaluate-{dataset}-{model}` first, or pick a metric it has")
    try:
        champion = mlflow_client.get_model_version_by_alias(name, CHAMPION)
    except Exception:
        champion = None
    if champion is None:
        mlflow_client.set_registered_model_alias(name, CHAMPION, newest.version)
        return f"{name}: version {newest.version} is the first champion ({metric} = {new_value:.6g})"
    if str(champion.version) == str(newest.version):
        return f"{name}: version {newest.version} is already the champion; nothing changed"
    old_value = _metric_of(mlflow_client, champion, metric)
    better = old_value is None or (new_value > old_value if DIRECTIONS[metric] == "max" else new_value < old_value)
    if not better:
        return (f"{name}: version {newest.version} ({metric} = {new_value:.6g}) does not beat champion version "
                f"{champion.version} ({metric} = {old_value:.6g}, {'higher' if DIRECTIONS[metric] == 'max' else 'lower'} "
                f"is better); nothing changed")
    mlflow_client.set_registered_model_alias(name, CHAMPION, newest.version)
    was = "no value" if old_value is None else f"{old_value:.6g}"
    return f"{name}: version {newest.version} is the new champion ({metric} {new_value:.6g} vs {was} of version {champion.version})"


def _metric_of(mlflow_client, version, metric: str) -> float | None:
    if not version.run_id:
        return None
    value = mlflow_client.get_run(version.run_id).data.metrics.get(metric)
    return None if value is None or not np.isfinite(value) else float(value)
