"""The figures of evaluation, the diffusion-map stage and `aebench sample`, as PNG files:
image grids, 2-D code maps, ROC curves.

A leaf module (matplotlib and `aebench.io` only) below the models, so the evaluation suites
models declare draw with it as the shared suites do. matplotlib is imported on the first figure (`pyplot`), not with this
module, so that importing a model never loads it.
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np

from aebench.io import atomic_path


@functools.cache
def pyplot():
    """matplotlib.pyplot on the file-only Agg backend. Imported here on first use: matplotlib
    takes about half a second to load, which training (models import this module) never needs."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save(fig, path: Path) -> None:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110, bbox_inches="tight")
    pyplot().close(fig)


def image_grid(rows: list[np.ndarray], row_titles: list[str], title: str):
    """Rows of images (each (n, C, H, W) in [0, 1]) side by side, one row per title. Each row
    is one tiled image on one axis: an axis per image made a 16-step strip cost 2 s."""
    n = max(len(r) for r in rows)
    fig, axes = pyplot().subplots(len(rows), 1, figsize=(n * 1.0 + 0.8, len(rows) * 1.05 + 0.4), squeeze=False)
    for ax, images, label in zip(axes[:, 0], rows, row_titles):
        ax.imshow(_tile(np.asarray(images), n), cmap="gray", vmin=0, vmax=1, interpolation="nearest")
        ax.set_xticks([]), ax.set_yticks([])
        for spine in ax.spines.values():
            spine.set_visible(False)
        ax.set_ylabel(label, rotation=0, ha="right", va="center", fontsize=9)
    fig.suptitle(title, fontsize=10)
    return fig


def _tile(images: np.ndarray, n: int, gap: int = 1) -> np.ndarray:
    """(k, C, H, W) -> one (H, n*(W+gap)-gap[, C]) strip on white; missing slots stay white."""
    k, c, h, w = images.shape
    strip = np.ones((h, n * (w + gap) - gap, c), dtype=np.float32)
    for j in range(k):
        strip[:, j * (w + gap):j * (w + gap) + w] = np.clip(images[j], 0, 1).transpose(1, 2, 0)
    return strip[..., 0] if c == 1 else strip


def vector_scatter(rows: list[np.ndarray], row_titles: list[str], title: str):
    """Vector data (n, D): the first two coordinates of each set, overlaid."""
    fig, ax = pyplot().subplots(figsize=(4.5, 4))
    for points, label in zip(rows, row_titles):
        ax.scatter(points[:, 0], points[:, 1], s=4, alpha=0.6, label=label)
    ax.legend(fontsize=8)
    ax.set_title(title, fontsize=10)
    return fig


def code_map(codes: np.ndarray, colour: np.ndarray, title: str, colour_name: str = "label"):
    """Codes projected to 2-D by PCA (exact when d <= 2), coloured by label or factor."""
    centred = codes - codes.mean(0)
    if codes.shape[1] > 2:
        _, _, vt = np.linalg.svd(centred, full_matrices=False)
        xy = centred @ vt[:2].T
    else:
        xy = np.pad(centred, ((0, 0), (0, 2 - codes.shape[1])))
    fig, ax = pyplot().subplots(figsize=(4.8, 4))
    discrete = np.issubdtype(colour.dtype, np.integer) and len(np.unique(colour)) <= 20
    sc = ax.scatter(xy[:, 0], xy[:, 1], c=colour, s=5, alpha=0.7, cmap="tab10" if discrete else "viridis")
    fig.colorbar(sc, ax=ax, label=colour_name)
    ax.set_xlabel("PC 1"), ax.set_ylabel("PC 2")
    ax.set_title(title, fontsize=10)
    return fig


def roc_figure(curves: list[tuple], name: str):
    """ROC curves `(label, fpr, tpr, thresholds, auroc)` of OoD detection against `name`."""
    fig, ax = pyplot().subplots(figsize=(5, 4.5))
    for label, fpr, tpr, _, area in curves:
        ax.plot(fpr, tpr, linestyle=":" if "flipped" in label else "-", label=f"{label} (AUROC {area:.3f})")
    ax.plot([0, 1], [0, 1], "k--", linewidth=0.8)
    ax.set_xlabel("false positive rate (in-distribution flagged)")
    ax.set_ylabel("true positive rate (OoD flagged)")
    ax.set_title(f"OoD detection: test split vs {name}", fontsize=10)
    ax.legend(fontsize=7, loc="lower right")
    return fig
