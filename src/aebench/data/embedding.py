"""The diffusion-map stage's files, `data/diffmap/<dataset>/`: written by
`aebench.stages.diffmap`, read by the models that train on the map (`load_embedding`).

- `embedding.parquet`: one row per processed row of every split, keyed by `index` (the stable
  row id), with `split` and the diffusion coordinates `dc_1 .. dc_m`.
- `diffmap.json`: the eigenvalues, the bandwidth actually used, the parameters, the processed
  data's hash and timings.
- `embedding.png`: the first coordinates of the train embedding.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from aebench import paths
from aebench.errors import UserError
from aebench.io import atomic_path

EMBEDDING_FILE = "embedding.parquet"
INFO_FILE = "diffmap.json"
FIGURE_FILE = "embedding.png"
COLUMN_PREFIX = "dc_"


def write_embedding(folder: Path, index: np.ndarray, split: np.ndarray, coords: np.ndarray) -> None:
    """The embedding table: `index` (N,) row ids, `split` (N,) names, `coords` (N, m)."""
    names = [f"{COLUMN_PREFIX}{i + 1}" for i in range(coords.shape[1])]
    columns = {"index": pa.array(index.astype(np.int64)), "split": pa.array(split.astype(str))}
    columns.update({name: pa.array(coords[:, i]) for i, name in enumerate(names)})
    with atomic_path(folder / EMBEDDING_FILE) as tmp:
        pq.write_table(pa.table(columns), tmp, compression="zstd")


def load_embedding(dataset: str, root: Path | None = None) -> tuple[np.ndarray, np.ndarray, dict]:
    """(index (N,) int64, coordinates (N, m) float64, info) of a stage output, every split."""
    folder = paths.diffmap_dir(dataset, root)
    path = folder / EMBEDDING_FILE
    if not path.exists():
        raise UserError(f"{path} is missing: run `dvc repro diffmap@{dataset}`")
    try:
        table = pq.read_table(path)
        info = json.loads((folder / INFO_FILE).read_text())
    except Exception as exc:  # noqa: BLE001 - truncated or foreign files
        raise UserError(f"{folder} is unreadable ({type(exc).__name__}): delete it and run `dvc repro diffmap@{dataset}`") from exc
    names = sorted((c for c in table.column_names if c.startswith(COLUMN_PREFIX)), key=lambda c: int(c[len(COLUMN_PREFIX):]))
    if "index" not in table.column_names or not names:
        raise UserError(f"{path} has the wrong schema: run `dvc repro diffmap@{dataset}`")
    coords = np.stack([table.column(c).to_numpy() for c in names], axis=1).astype(np.float64)
    return table.column("index").to_numpy().astype(np.int64), coords, info
