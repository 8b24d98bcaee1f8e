"""The raw-data contract between the download and preprocess stages.

Every source (embedded generator or real download) produces a `RawDataset`; the download
stage stores it as `data/raw/<dataset>/raw.npz` plus `meta.json`, and preprocess reads it
back. Images are uint8 arrays shaped (N, C, H, W); vector data is float32 shaped (N, D).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from aebench.errors import UserError
from aebench.io import atomic_path, write_json_atomic


@dataclass
class RawDataset:
    x: np.ndarray  # (N, C, H, W) uint8 images, or (N, D) float32 vectors
    label: np.ndarray  # (N,) int64; -1 where there is no label
    factors: dict[str, np.ndarray] = field(default_factory=dict)  # name -> (N,) float64
    official_split: np.ndarray | None = None  # (N,) "train"/"test" when the source fixes one
    meta: dict = field(default_factory=dict)  # source, url, checksums, licence, notes

    def __post_init__(self) -> None:
        n = len(self.x)
        if self.x.dtype == np.uint8:
            if self.x.ndim != 4:
                raise ValueError(f"image data must be (N, C, H, W), got {self.x.shape}")
        elif self.x.ndim != 2:
            raise ValueError(f"vector data must be (N, D) floats, got {self.x.shape} {self.x.dtype}")
        self.label = np.asarray(self.label, dtype=np.int64)
        if self.label.shape != (n,):
            raise ValueError(f"label must have shape ({n},), got {self.label.shape}")
        for name, values in self.factors.items():
            if np.shape(values) != (n,):
                raise ValueError(f"factor {name!r} must have shape ({n},)")
        if self.official_split is not None and np.shape(self.official_split) != (n,):
            raise ValueError(f"official_split must have shape ({n},)")

    def __len__(self) -> int:
        return len(self.x)

    @property
    def is_image(self) -> bool:
        return self.x.dtype == np.uint8


def save_raw(raw: RawDataset, folder: Path) -> None:
    """Write raw.npz and meta.json atomically into `folder`."""
    arrays = {"x": raw.x, "label": raw.label}
    arrays.update({f"factor_{k}": np.asarray(v, dtype=np.float64) for k, v in raw.factors.items()})
    if raw.official_split is not None:
        arrays["official_split"] = np.asarray(raw.official_split).astype("U5")
    folder.mkdir(parents=True, exist_ok=True)
    with atomic_path(folder / "raw.npz") as tmp:
        with open(tmp, "wb") as fh:
            np.savez(fh, **arrays)
    write_json_atomic(folder / "meta.json", {**raw.meta, "n": len(raw), "x_shape": list(raw.x.shape[1:])})


def load_raw(folder: Path) -> RawDataset:
    path = folder / "raw.npz"
    if not path.exists():
        raise UserError(f"{path} is missing: run `dvc repro download@{folder.name}` first")
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
        meta = json.loads((folder / "meta.json").read_text()) if (folder / "meta.json").exists() else {}
    except Exception as exc:  # truncated or corrupt archive
        raise UserError(f"{path} is unreadable ({exc}): delete it and rerun `dvc repro download@{folder.name}`") from exc
    factors = {k[len("factor_"):]: v for k, v in arrays.items() if k.startswith("factor_")}
    return RawDataset(
        x=arrays["x"], label=arrays["label"], factors=factors,
        official_split=arrays.get("official_split"), meta=meta,
    )
