"""Where a report's numbers come from: code version, libraries, machine, and time per stage.

Time per stage: DVC records no stage durations (dvc.lock holds hashes and sizes only), so
the report reads what the stages themselves record: `train_seconds` in each
`models/<dataset>/<model>/seed<seed>/run.json`, `eval_seconds` in each `eval/.../metrics.json` (when the
evaluate stage writes it), and `total_seconds` in `data/diffmap/<dataset>/diffmap.json`.
Each row of the table names its source; a stage that records nothing is shown as such.
"""

from __future__ import annotations

import os
import platform
import subprocess
from dataclasses import dataclass
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any, Iterable

from aebench.report.formatting import is_finite

VERSION_PACKAGES = ("aebench", "torch", "numpy", "scipy", "scikit-learn", "pyarrow", "pandas", "matplotlib",
                    "pydantic", "great-expectations", "mlflow", "dvc")


@dataclass
class Environment:
    generated: str
    git_commit: str
    git_dirty: bool | None  # None: unknown (not a git repository)
    versions: dict[str, str]
    machine: dict[str, str]
    params_text: str | None


def _git(root: Path, *args: str) -> str | None:
    try:
        proc = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return proc.stdout if proc.returncode == 0 else None


def git_commit(root: Path) -> str:
    commit = (_git(root, "rev-parse", "HEAD") or "").strip()
    return commit or "unknown"


def git_dirty(root: Path) -> bool | None:
    """True when tracked files differ from the commit (the numbers may not match it)."""
    status = _git(root, "status", "--porcelain", "--untracked-files=no")
    return None if status is None else bool(status.strip())


def package_versions() -> dict[str, str]:
    """Python and key package versions from metadata; nothing is imported."""
    versions = {"python": platform.python_version()}
    for name in VERSION_PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def _proc_value(path: str, key: str) -> str | None:
    try:
        with open(path, encoding="utf-8") as fh:
            for line in fh:
                name, _, value = line.partition(":")
                if name.strip() == key:
                    return value.strip()
    except OSError:
        return None
    return None


def machine_info() -> dict[str, str]:
    info = {
        "platform": platform.platform(),
        "machine": platform.machine() or "unknown",
        "cpu": _proc_value("/proc/cpuinfo", "model name") or platform.processor() or "unknown",
        "cpu count": str(os.cpu_count() or "unknown"),
    }
    mem = _proc_value("/proc/meminfo", "MemTotal")
    if mem and mem.split()[0].isdigit():
        info["memory"] = f"{int(mem.split()[0]) / 2**20:.1f} GiB"
    return info


def generation_time() -> str:
    """Now in UTC, or SOURCE_DATE_EPOCH when set (for byte-identical rebuilds)."""
    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    moment = (datetime.fromtimestamp(int(epoch), tz=timezone.utc) if epoch and epoch.isdigit()
              else datetime.now(timezone.utc))
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC")


def environment(root: Path, params_text: str | None) -> Environment:
    return Environment(generated=generation_time(), git_commit=git_commit(root), git_dirty=git_dirty(root),
                       versions=package_versions(), machine=machine_info(), params_text=params_text)


@dataclass
class StageTime:
    stage: str
    timed: int  # instances with a recorded time
    total: int  # instances expected
    seconds: float
    source: str


def stage_times(datasets: Iterable[Any]) -> list[StageTime]:
    """Summed recorded seconds per stage over the run's datasets, models and seeds (see module doc)."""
    datasets = list(datasets)
    diffmap = [ds.diffmap_seconds for ds in datasets]
    train = [(run or {}).get("train_seconds") for ds in datasets for r in ds.models for run in r.seed_runs.values()]
    evals = [(m or {}).get("eval_seconds") for ds in datasets for r in ds.models for m in r.seed_metrics.values()]
    rows = [
        ("diffmap", diffmap, "data/diffmap/<dataset>/diffmap.json: total_seconds"),
        ("train", train, "models/<dataset>/<model>/seed<seed>/run.json: train_seconds"),
        ("evaluate", evals, "eval/<dataset>/<model>/seed<seed>/metrics.json: eval_seconds"),
    ]
    out = []
    for stage, values, source in rows:
        finite = [float(v) for v in values if is_finite(v)]
        out.append(StageTime(stage, len(finite), len(values), sum(finite), source))
    return out


def runs_devices(datasets: Iterable[Any]) -> str:
    """The devices the runs trained on (run.json `device`), e.g. 'cpu' or 'cpu, cuda:0'."""
    devices = sorted({str(r.run["device"]) for ds in datasets for r in ds.models if r.run and r.run.get("device")})
    return ", ".join(devices) if devices else "unknown"
