"""`diffmap@<dataset>`: a diffusion map of the train split, extended to val and test.

Reads `data/processed/<dataset>/{train,val,test}.parquet` and writes `data/diffmap/<dataset>/`
(`aebench.data.embedding`): the embedding table, one row per processed row of every split
keyed by its stable `index` (train rows hold the exact diffusion map of the train split; val
and test rows its Nystrom extension, so a model has targets for validation too and the test
codes can be compared with it), `diffmap.json` (eigenvalues, the bandwidth used, the
parameters, the processed data's hash, timings) and `embedding.png` (the first coordinates of
the train embedding coloured by label, or by the first generative factor when there are no
labels). Parameters: the `diffmap:` section of params.yaml (`aebench.config.DiffmapConfig`).
dvc.yaml runs it only for the datasets of runs whose model needs the map (`aebench.plan`).
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import numpy as np

from aebench import paths
from aebench.data.embedding import COLUMN_PREFIX, FIGURE_FILE, INFO_FILE, write_embedding
from aebench.data.parquet import data_hash, read_splits
from aebench.diffmap import fit_diffusion_map, nystrom
from aebench.errors import UserError
from aebench import figures
from aebench.io import write_json_atomic
from aebench.plan import params_for_stage
from aebench.stages import stage_main

log = logging.getLogger(__name__)


def split_matrix(split) -> np.ndarray:
    """A processed split's inputs as the float rows the map is computed on (images in [0, 1])."""
    x = split.x.reshape(len(split.index), -1)
    return x.astype(np.float32) / 255.0 if split.kind == "image" else x.astype(np.float32)


def run(dataset: str, root: Path | None = None) -> Path:
    """Fit the diffusion map of `dataset`'s train split and write the stage's outputs."""
    root = root or paths.repo_root()
    params = params_for_stage(root)  # the whole file is validated, `diffmap:` included
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

    out = paths.diffmap_dir(dataset, root)
    write_embedding(out, index=np.concatenate([splits[s].index for s in coords]),
                    split=np.concatenate([[s] * len(splits[s].index) for s in coords]),
                    coords=np.concatenate([coords[s] for s in coords]))
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
    plt = figures.pyplot()
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


def main(argv: list[str] | None = None) -> None:
    stage_main(run, "dataset", argv=argv)


if __name__ == "__main__":
    main()
