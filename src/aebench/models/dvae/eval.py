"""DVAE's evaluation suite: the figure of single random walks (`random_walk.png`). Its
metrics are the shared topology suite's (the walks' samples, the codes, the decoder)."""

from __future__ import annotations

import numpy as np
import torch

from aebench import figures


def random_walk_suite(ctx) -> dict[str, float]:
    """Draws single random walks of `ctx.model` (seeded by `ctx.seed + 1`); no metrics."""
    with torch.random.fork_rng(devices=[]):
        _walk_figure(ctx, torch.Generator().manual_seed(ctx.seed + 1))
    return {}


def _walk_figure(ctx, generator: torch.Generator, walks: int = 4, steps: int = 10) -> None:
    model = ctx.model
    path = [p.cpu().numpy() for p in model.random_walk(model.walk_seeds(walks, generator), steps, 1, generator)]
    if ctx.test.kind == "image":
        rows = [np.stack([p[w] for p in path]) for w in range(walks)]
        fig = figures.image_grid(rows, [f"walk {w + 1}" for w in range(walks)], "DVAE random walks (seed first)")
    else:
        fig, ax = figures.pyplot().subplots(figsize=(4.8, 4.4))
        data = ctx.test_x.cpu().numpy()
        ax.scatter(data[:, 0], data[:, 1], s=3, c="0.75", label="test data")
        for w in range(walks):
            track = np.stack([p[w] for p in path])
            ax.plot(track[:, 0], track[:, 1], "-o", ms=3, lw=1, label=f"walk {w + 1}")
        ax.legend(fontsize=7)
        ax.set_title(f"DVAE random walks, {steps} steps (first two coordinates)", fontsize=9)
    figures.save(fig, ctx.plots / "random_walk.png")
