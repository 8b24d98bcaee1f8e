"""Where things live, relative to the repository root (the folder holding dvc.yaml).

Every output path of the DAG is built here so stages, tests and the CLI agree on it.
`AEBENCH_ROOT` overrides the root (tests run the pipeline in temporary copies).
"""

from __future__ import annotations

import os
from pathlib import Path


def repo_root() -> Path:
    env = os.environ.get("AEBENCH_ROOT")
    if env:
        return Path(env).resolve()
    here = Path.cwd().resolve()
    for folder in (here, *here.parents):
        if (folder / "dvc.yaml").exists() or (folder / "params.yaml").exists():
            return folder
    return here


def raw_dir(dataset: str, root: Path | None = None) -> Path:
    return (root or repo_root()) / "data" / "raw" / dataset


def processed_dir(dataset: str, root: Path | None = None) -> Path:
    return (root or repo_root()) / "data" / "processed" / dataset


def seed_folder(seed: int) -> str:
    """The folder of one training seed's outputs (`seed0`), under a run's model and eval folders."""
    return f"seed{seed}"


def model_dir(dataset: str, model: str, seed: int, root: Path | None = None) -> Path:
    return (root or repo_root()) / "models" / dataset / model / seed_folder(seed)


def eval_dir(dataset: str, model: str, seed: int, root: Path | None = None) -> Path:
    return (root or repo_root()) / "eval" / dataset / model / seed_folder(seed)


def reports_dir(root: Path | None = None) -> Path:
    return (root or repo_root()) / "reports"


def resume_dir(root: Path | None = None) -> Path:
    """Resume checkpoints live outside DVC outputs, which DVC deletes before a rerun."""
    return (root or repo_root()) / ".aebench" / "resume"


def diffmap_dir(dataset: str, root: Path | None = None) -> Path:
    return (root or repo_root()) / "data" / "diffmap" / dataset
