"""ACN's own evaluation: the daydream figure, beside the coding-cost claim it shares with the
VAE it is set against (`aebench.models.coding_cost`).
"""

from __future__ import annotations

import torch

from aebench import figures
from aebench.models.base import OwnMetrics
from aebench.models.coding_cost import CLAIM_DIRECTIONS, CLAIM_KEY_METRICS, claim_suite


@torch.no_grad()
def daydream_suite(ctx) -> dict[str, float]:
    """`daydream.png` for image data: chains of encode, z ~ p(z | code), decode from a few test
    images (seeded by `ctx.seed`). No metrics."""
    if ctx.test.kind != "image":
        return {}
    model = ctx.model
    seeds = model.observe(ctx.test_x[:min(6, ctx.figure_examples, len(ctx.test_x))])
    generator = torch.Generator().manual_seed(ctx.seed)
    with torch.random.fork_rng(devices=[]):  # the draws take `generator`; any other leaves no trace
        torch.manual_seed(ctx.seed)
        chain = [seeds] + model.dream(model.encoder(seeds), model.config.daydream_steps, generator)
    frames = torch.stack(chain, 1).cpu().numpy()  # (seeds, steps + 1, C, H, W)
    figures.save(figures.image_grid(list(frames), [f"seed {i + 1}" for i in range(len(frames))],
                                    "Daydreams: encode, z ~ p(z | code), decode, repeat"),
                 ctx.plots / "daydream.png")
    return {}


# The coding-cost claim's suite and ACN's daydream figure (`ACN.own_metrics`).
ACN_METRICS = OwnMetrics(suites=(claim_suite, daydream_suite), directions=CLAIM_DIRECTIONS, key=CLAIM_KEY_METRICS)
