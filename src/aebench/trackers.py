"""Where a run's record goes: MLflow when it is installed, or plain files where it is not.

The train and evaluate stages record through a tracker, so the same stage functions run under
DVC and MLflow (`dvc repro`, `aebench profile`) and on a machine that has neither, such as a
short GPU lease with torch and the scientific stack only (`benchmarks/paper_scale.py`). Both
trackers keep the same record: a run per trained model (its params, tags, metrics per step
and status) and a registered version per training holding the checkpoint.

- `MlflowTracker`: the project's MLflow store (`aebench.tracking`), checked before any work.
- `FileTracker`: `<folder>/runs/<run id>/` (`run.json` with params, tags and status;
  `metrics.jsonl`, one row per metric and step) and `<folder>/registry/<name>/<version>/`
  (the checkpoint and `version.json`). Readable with any JSON tool; nothing to install.

`open_tracker(root)` picks MLflow unless it cannot be imported or `AEBENCH_TRACKER=files`.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import logging
import os
import shutil
import time
import uuid
from pathlib import Path
from typing import Iterator

import numpy as np

from aebench import tracking
from aebench.errors import UserError
from aebench.io import write_json_atomic

log = logging.getLogger(__name__)


class MlflowTracker:
    """The MLflow store of `aebench.tracking`: runs, metrics, registered versions."""

    def __init__(self, root: Path):
        self.root = root
        self.uri = tracking.tracking_uri(root)
        self.client = tracking.client(root)  # checks the store first

    def errors(self, doing: str):
        return tracking.store_errors(self.uri, doing)

    def start_run(self, dataset: str, model: str, seed: int, tags: dict, params: dict, run_id: str | None) -> str:
        return tracking.start_run(self.client, dataset, model, seed, tags=tags, params=params, run_id=run_id,
                                  root=self.root)

    def relog_history(self, run_id: str, history: list[dict]) -> int:
        return tracking.relog_history(self.client, run_id, history)

    def logger(self, run_id: str, background: bool = False) -> tracking.RunLogger:
        return tracking.RunLogger(self.client, run_id, background=background)

    def drop_unrecorded_versions(self, dataset: str, model: str, run_id: str) -> list[str]:
        return tracking.drop_unrecorded_versions(self.client, dataset, model, run_id)

    def register(self, run_id: str, dataset: str, model: str, checkpoint: Path, example: np.ndarray,
                 codes: np.ndarray) -> tuple[str, str]:
        return tracking.register_encoder(run_id, dataset, model, checkpoint, example, codes)

    def describe(self, run_id: str, name: str, version: str, dataset: str, model: str, seed: int, model_type: str,
                 config: dict, doc: str) -> None:
        tracking.describe(self.client, run_id, name, version, dataset, model, seed, model_type, config, doc)

    def finish(self, run_id: str, status: str = "FINISHED") -> None:
        tracking.finish_run(self.client, run_id, status)

    def abandon(self, run_id: str, logger=None) -> None:
        tracking.abandon_run(self.client, run_id, logger)

    def log_evaluation(self, run_id: str, name: str, version: str, metrics: dict, plots: Path) -> None:
        tracking.RunLogger(self.client, run_id)(metrics, 0)
        self.client.log_artifacts(run_id, str(plots), "plots")
        tracking.tag_version(self.client, name, version, metrics)


class FileLogger:
    """`RunLogger`'s interface over a run's `metrics.jsonl`: appended per call, nothing queued."""

    def __init__(self, path: Path):
        self.path = path

    def __call__(self, metrics: dict[str, float], step: int) -> None:
        now = int(time.time() * 1000)
        rows = [json.dumps({"key": k, "value": float(v), "step": int(step), "timestamp": now})
                for k, v in metrics.items() if np.isfinite(v)]
        with self.path.open("a", encoding="utf-8") as fh:
            fh.write("".join(row + "\n" for row in rows))

    def flush(self) -> None:
        pass


class FileTracker:
    """The same record as MLflow's, in plain files under `folder`."""

    def __init__(self, folder: Path):
        self.folder = Path(folder)
        self.uri = self.folder.as_uri()
        try:
            (self.folder / "runs").mkdir(parents=True, exist_ok=True)
            (self.folder / "registry").mkdir(exist_ok=True)
        except OSError as exc:
            raise UserError(f"the tracking folder {self.folder} cannot be written ({exc.strerror}): make it "
                            f"writable or set another") from None

    @contextlib.contextmanager
    def errors(self, doing: str) -> Iterator[None]:
        try:
            yield
        except OSError as exc:
            raise UserError(f"the tracking folder {self.folder} failed while {doing} ({exc.strerror}): free space "
                            f"or fix its permissions, then rerun the stage") from exc

    def _run(self, run_id: str) -> Path:
        return self.folder / "runs" / run_id

    def _meta(self, run_id: str) -> dict:
        return json.loads((self._run(run_id) / "run.json").read_text())

    def start_run(self, dataset: str, model: str, seed: int, tags: dict, params: dict, run_id: str | None) -> str:
        if run_id and (self._run(run_id) / "run.json").is_file():
            meta = self._meta(run_id)
            write_json_atomic(self._run(run_id) / "run.json", {**meta, "status": "RUNNING"})
            return run_id
        run_id = uuid.uuid4().hex
        self._run(run_id).mkdir(parents=True)
        write_json_atomic(self._run(run_id) / "run.json", {
            "run_id": run_id, "name": f"{model}-seed{seed}", "status": "RUNNING",
            "tags": {"dataset": dataset, "model": model, "seed": str(seed), **tags}, "params": params})
        return run_id

    def metrics(self, run_id: str) -> list[dict]:
        path = self._run(run_id) / "metrics.jsonl"
        return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []

    def relog_history(self, run_id: str, history: list[dict]) -> int:
        stored = {(m["key"], m["step"]) for m in self.metrics(run_id)}
        logger, n = self.logger(run_id), 0
        for record in history:
            missing = {k: v for k, v in record.items()
                       if k not in ("epoch", "step") and "step" in record and (k, record["step"]) not in stored}
            if missing:
                logger(missing, record["step"])
                n += len(missing)
        return n

    def logger(self, run_id: str, background: bool = False) -> FileLogger:
        return FileLogger(self._run(run_id) / "metrics.jsonl")

    def _versions(self, name: str) -> dict[str, dict]:
        folder = self.folder / "registry" / name
        return {p.name: json.loads((p / "version.json").read_text()) for p in folder.glob("*")
                if (p / "version.json").is_file()} if folder.is_dir() else {}

    def drop_unrecorded_versions(self, dataset: str, model: str, run_id: str) -> list[str]:
        name = tracking.registered_name(dataset, model)
        dropped = [v for v, meta in self._versions(name).items() if meta["run_id"] == run_id]
        for version in dropped:
            shutil.rmtree(self.folder / "registry" / name / version)
        return dropped

    def register(self, run_id: str, dataset: str, model: str, checkpoint: Path, example: np.ndarray,
                 codes: np.ndarray) -> tuple[str, str]:
        name = tracking.registered_name(dataset, model)
        versions = self._versions(name)
        version = str(max((int(v) for v in versions), default=0) + 1)
        target = self.folder / "registry" / name / version
        target.mkdir(parents=True)
        shutil.copy2(checkpoint, target / "checkpoint.pt")
        write_json_atomic(target / "version.json", {"name": name, "version": version, "run_id": run_id,
                                                    "code_shape": list(np.asarray(codes).shape[1:]), "tags": {}})
        return name, version

    def _update_version(self, name: str, version: str, **changes) -> None:
        path = self.folder / "registry" / name / version / "version.json"
        meta = json.loads(path.read_text())
        write_json_atomic(path, {**meta, **changes, "tags": {**meta["tags"], **changes.get("tags", {})}})

    def describe(self, run_id: str, name: str, version: str, dataset: str, model: str, seed: int, model_type: str,
                 config: dict, doc: str) -> None:
        self._update_version(name, version, description=tracking.description(dataset, model, seed, model_type,
                                                                             config, doc), tags={"seed": str(seed)})

    def finish(self, run_id: str, status: str = "FINISHED") -> None:
        write_json_atomic(self._run(run_id) / "run.json", {**self._meta(run_id), "status": status})

    def abandon(self, run_id: str, logger=None) -> None:
        with contextlib.suppress(OSError, ValueError):
            self.finish(run_id, "FAILED")

    def log_evaluation(self, run_id: str, name: str, version: str, metrics: dict, plots: Path) -> None:
        self.logger(run_id)(metrics, 0)
        shutil.copytree(plots, self._run(run_id) / "plots", dirs_exist_ok=True)
        self._update_version(name, version, tags={k: f"{v:.6g}" for k, v in metrics.items() if np.isfinite(v)})


def open_tracker(root: Path):
    """MLflow's store when mlflow is installed (unless `AEBENCH_TRACKER=files`), else plain files
    under `<root>/tracking`."""
    choice = os.environ.get("AEBENCH_TRACKER", "auto")
    if choice not in ("auto", "mlflow", "files"):
        raise UserError(f"AEBENCH_TRACKER is {choice!r}: use auto, mlflow or files")
    if choice == "files" or (choice == "auto" and importlib.util.find_spec("mlflow") is None):
        if choice == "auto":
            log.info("mlflow is not installed: recording runs as files under %s", root / "tracking")
        return FileTracker(root / "tracking")
    return MlflowTracker(root)
