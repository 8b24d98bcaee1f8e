"""The `diffmap@<dataset>` stage: a diffusion map of the train split, extended to val and test.

Reads `data/processed/<dataset>/{train,val,test}.parquet` and writes `data/diffmap/<dataset>/`:

- `embedding.parquet`: one row per processed row of every split, keyed by `index` (the stable
  row id), with `split` and the diffusion coordinates `dc_1 .. dc_m`. Train rows hold the
  exact diffusion map of the train split; val and test rows its Nystrom extension, so a model
  (DVAE) has targets for validation too and the test codes can be compared with it.
- `diffmap.json`: the eigenvalues, the bandwidth actually used, the parameters, the processed
  data's hash and timings.
- `embedding.png`: the first coordinates of the train embedding coloured by label (or by the
  first generative factor when there are no labels).

Parameters are the `diffmap:` section of params.yaml (`DiffmapConfig`).
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Literal, Union

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from aebench import paths
from aebench.errors import UserError

log = logging.getLogger(__name__)

EMBEDDING_FILE = "embedding.parquet"
INFO_FILE = "diffmap.json"
FIGURE_FILE = "embedding.png"
COLUMN_PREFIX = "dc_"


class DiffmapConfig(BaseModel):
    """The `diffmap:` section of params.yaml (unknown keys refused, like every section).

    A plain pydantic model rather than a `config.Strict` subclass because `aebench.config`
    imports it to build `Params`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    n_components: int = Field(10, gt=0, description="diffusion coordinates kept (the DVAE authors' MNIST latent size)")
    n_neighbors: int = Field(16, gt=0, description="k of the k-NN graph; >= N - 1 means the dense kernel")
    epsilon: Union[float, Literal["auto"]] = Field(
        "auto", description="kernel bandwidth; 'auto' = median squared distance to the 10th neighbour")
    alpha: float = Field(1.0, ge=0, le=1, description="density normalisation (1: Laplace-Beltrami)")
    t: float = Field(1.0, ge=0, description="diffusion time: coordinates are lambda^t psi")
    pca_components: int | None = Field(50, gt=0, description="PCA before the neighbour search (only when the data has more dimensions)")
    seed: int = 0

    def fit_kwargs(self) -> dict:
        return dict(n_components=self.n_components, n_neighbors=self.n_neighbors, epsilon=self.epsilon,
                    alpha=self.alpha, t=self.t, pca_components=self.pca_components, seed=self.seed)


def diffmap_dir(dataset: str, root: Path | None = None) -> Path:
    return (root or paths.repo_root()) / "data" / "diffmap" / dataset


def split_matrix(split) -> np.ndarray:
    """A processed split's inputs as the float rows the map is computed on (images in [0, 1])."""
    x = split.x.reshape(len(split.index), -1)
    return x.astype(np.float32) / 255.0 if split.kind == "image" else x.astype(np.float32)


def run(dataset: str, root: Path | None = None) -> Path:
    """Fit the diffusion map of `dataset`'s train split and write the stage's outputs."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from aebench.config import load_params
    from aebench.data.parquet import data_hash, read_splits
    from aebench.diffmap import fit_diffusion_map, nystrom
    from aebench.io import atomic_path, write_json_atomic

    root = root or paths.repo_root()
    params = load_params(root / "params.yaml")  # the whole file is validated, `diffmap:` included
    config = params.diffmap
    if dataset not in params.datasets:
        raise UserError(f"dataset `{dataset}` is not listed in `datasets` of {root / 'params.yaml'}")
    processed = paths.processed_dir(dataset, root)
    splits = read_splits(processed)
    train = splits["train"]
    if config.n_components > len(train.index) - 2:
        raise UserError(f"`diffmap.n_components` = {config.n_components} needs at least "
                        f"{config.n_components + 2} training rows; `{dataset}` has {len(train.index)}")
    t0 = time.perf_counter()
    fit = fit_diffusion_map(split_matrix(train), **config.fit_kwargs())
    coords = {"train": fit.embedding}
    t1 = time.perf_counter()
    for name in ("val", "test"):
        coords[name] = nystrom(fit, split_matrix(splits[name]), seed=config.seed)
    nystrom_seconds = time.perf_counter() - t1

    out = diffmap_dir(dataset, root)
    names = [f"{COLUMN_PREFIX}{i + 1}" for i in range(config.n_components)]
    columns = {
        "index": pa.array(np.concatenate([splits[s].index for s in coords]).astype(np.int64)),
        "split": pa.array(np.concatenate([[s] * len(splits[s].index) for s in coords]).astype(str)),
    }
    stacked = np.concatenate([coords[s] for s in coords])
    columns.update({name: pa.array(stacked[:, i]) for i, name in enumerate(names)})
    with atomic_path(out / EMBEDDING_FILE) as tmp:
        pq.write_table(pa.table(columns), tmp, compression="zstd")
    info = {
        "dataset": dataset, "params": config.model_dump(), "epsilon": fit.epsilon,
        "eigenvalues": fit.eigenvalues.tolist(), "rows": {s: int(len(c)) for s, c in coords.items()},
        "processed_data_hash": data_hash(processed), "fit": fit.info, "nystrom_seconds": nystrom_seconds,
        "total_seconds": time.perf_counter() - t0,
    }
    write_json_atomic(out / INFO_FILE, info)
    save_figure(fit.embedding, train, out / FIGURE_FILE, f"{dataset}: diffusion map of the train split")
    log.info("%s: diffusion map of %d points (eps %.4g, lambda_1..3 %s) in %.1fs", dataset, len(train.index),
             fit.epsilon, np.round(fit.eigenvalues[:3], 5).tolist(), info["total_seconds"])
    return out


def save_figure(embedding: np.ndarray, split, path: Path, title: str) -> None:
    """Coordinates 1-2 (and 2-3 when there are three) coloured by label or first factor."""
    from aebench import figures

    plt = figures.plt
    if (split.label >= 0).any():
        colour, colour_name = split.label, "label"
    elif split.factors:
        colour_name = sorted(split.factors)[0]
        colour = split.factors[colour_name]
    else:
        colour, colour_name = np.arange(len(embedding)), "row"
    pairs = [(0, 1), (1, 2)] if embedding.shape[1] >= 3 else [(0, min(1, embedding.shape[1] - 1))]
    fig, axes = plt.subplots(1, len(pairs), figsize=(4.6 * len(pairs), 4), squeeze=False)
    discrete = np.issubdtype(np.asarray(colour).dtype, np.integer) and len(np.unique(colour)) <= 20
    for ax, (a, b) in zip(axes[0], pairs):
        sc = ax.scatter(embedding[:, a], embedding[:, b], c=colour, s=3, alpha=0.7,
                        cmap="tab10" if discrete else "viridis")
        ax.set_xlabel(f"{COLUMN_PREFIX}{a + 1}"), ax.set_ylabel(f"{COLUMN_PREFIX}{b + 1}")
    fig.colorbar(sc, ax=axes[0, -1], label=colour_name)
    fig.suptitle(title, fontsize=10)
    figures.save(fig, path)


def load_embedding(dataset: str, root: Path | None = None) -> tuple[np.ndarray, np.ndarray, dict]:
    """(index (N,) int64, coordinates (N, m) float64, info) of a stage output, every split."""
    import json

    import pyarrow.parquet as pq

    folder = diffmap_dir(dataset, root)
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
