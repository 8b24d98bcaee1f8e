"""Figures shared by evaluation and the report: image grids and 2-D code maps, as PNG files."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from aebench.io import atomic_path  # noqa: E402


def save(fig, path: Path) -> None:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)


def image_grid(rows: list[np.ndarray], row_titles: list[str], title: str):
    """Rows of images (each (n, C, H, W) in [0, 1]) side by side, one row per title. Each row
    is one tiled image on one axis: an axis per image made a 16-step strip cost 2 s."""
    n = max(len(r) for r in rows)
    fig, axes = plt.subplots(len(rows), 1, figsize=(n * 1.0 + 0.8, len(rows) * 1.05 + 0.4), squeeze=False)
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
    fig, ax = plt.subplots(figsize=(4.5, 4))
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
    fig, ax = plt.subplots(figsize=(4.8, 4))
    discrete = np.issubdtype(colour.dtype, np.integer) and len(np.unique(colour)) <= 20
    sc = ax.scatter(xy[:, 0], xy[:, 1], c=colour, s=5, alpha=0.7, cmap="tab10" if discrete else "viridis")
    fig.colorbar(sc, ax=ax, label=colour_name)
    ax.set_xlabel("PC 1"), ax.set_ylabel("PC 2")
    ax.set_title(title, fontsize=10)
    return fig
