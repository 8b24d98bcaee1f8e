"""The image options of the real grey datasets (`data.options.<dataset>.size / channels`):
resizing and channel replication shared by MNIST and Omniglot.

The GWAE paper's toolkit (vaetc) feeds MNIST and Omniglot as 64x64x3 in [0, 1]; the default
here keeps MNIST's 28x28x1. Give both datasets the same size and channels so one model
scores both.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from aebench.data.raw import RawDataset

NATIVE_SIZE = 28  # MNIST's side length, and Omniglot's by default so that it pairs with MNIST


def resampling(source: int, size: int) -> str:
    if size == source:
        return "not resampled"
    return "area averaging" if size < source else "bilinear, align_corners=False"


def resize_images(x: np.ndarray, size: int, chunk: int = 2048) -> np.ndarray:
    """(N, H, H) grey images, bool (True = white) or uint8 -> (N, 1, size, size) uint8.

    Downscaling averages areas (torch interpolate mode='area'): each output pixel holds the
    white fraction of the input pixels it covers, so thin strokes survive as grey values, as
    in MNIST's anti-aliasing. Upscaling is bilinear without corner alignment, the resampling
    of torchvision's Resize that vaetc (the GWAE paper's toolkit) uses; vaetc also resizes
    Omniglot's 105x105 scans that way, where area averaging here is the antialiased
    equivalent. Done in chunks to keep the float copy small.
    """
    import torch
    import torch.nn.functional as F

    peak = 1.0 if x.dtype == np.bool_ else 255.0
    height = x.shape[1]
    out = np.empty((len(x), 1, size, size), dtype=np.uint8)
    for start in range(0, len(x), chunk):
        block = torch.from_numpy(np.asarray(x[start : start + chunk], dtype=np.float32))[:, None] / peak
        if size < height:
            block = F.interpolate(block, size=(size, size), mode="area")
        elif size > height:
            block = F.interpolate(block, size=(size, size), mode="bilinear", align_corners=False)
        out[start : start + chunk] = (block * 255.0).round_().clamp_(0, 255).to(torch.uint8).numpy()
    return out


def with_channels(raw: RawDataset, channels: int) -> RawDataset:
    """`raw` with its grey images replicated into `channels` identical channels (vaetc feeds
    every dataset as RGB; done after subsampling, as it multiplies the bytes)."""
    if channels == 1:
        return raw
    notes = [*raw.meta.get("notes", []), f"grey replicated into {channels} identical channels"]
    return dataclasses.replace(raw, x=np.repeat(raw.x, channels, axis=1),
                               meta={**raw.meta, "channels": channels, "notes": notes})
