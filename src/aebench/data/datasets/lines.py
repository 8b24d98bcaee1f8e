"""lines: the ACAI paper's synthetic benchmark (Berthelot et al., 2019).

32x32 greyscale images of a single anti-aliased line from the image centre outward at a
random angle, drawn exactly as the authors' renderer draws them (see `draw_lines`). The angle
is the only factor of variation, so a good interpolation between two lines is a line at an
intermediate angle, which is what the benchmark measures.

`draw_lines` works in the ACAI paper's [-1, 1] range (background -1, line +1) with float
pixels; `make_lines` maps it to 0..255 with round((v + 1) / 2 * 255) (see `make_lines` for
what that quantisation costs). Lines are anti-aliased by the authors' exact per-scanline
coverage.
"""

from __future__ import annotations

import numpy as np
import torch

from aebench.data.datasets.common import TWO_PI, bins, check_n, check_size
from aebench.data.raw import RawDataset
from aebench.errors import UserError


# Lines per chunk of `draw_lines`: a few (chunk, size, size) float64 buffers of ~8 MB at size 32.
_LINES_PER_CHUNK = 1024

# Stroke width of the authors' renderer, in pixels, measured along each scanline.
LINE_WIDTH = 2.0


def _line_scanlines(theta: np.ndarray, size: int) -> np.ndarray:
    """Per angle, the scanline geometry of the authors' renderer (brain-research/acai,
    `lib/data.draw_line`), in float64 with its operations in its order so that the pixel
    values agree to the last bit.

    The segment runs from the centre (c, c), c = size / 2, to (c + (c - 1) cos theta,
    c - (c - 1) sin theta) in (column, row). Scanlines run across the major axis: rows when the
    segment spans at least as many rows as columns (`steep`), columns otherwise. Returns the
    rows (steep, start, stop, left, slope), one column per angle: the segment spans
    [start, stop] along the major axis, and the scanline at major index k holds the interval
    [s_k, s_k + LINE_WIDTH] of the minor axis with s_k = left + (k - start - 1/2) * slope.
    """
    centre = size * 0.5
    col_end = centre + (centre - 1.0) * np.cos(-theta)
    row_end = centre + (centre - 1.0) * np.sin(-theta)
    steep = ~(np.abs(centre - row_end) < np.abs(centre - col_end))
    major_end = np.where(steep, row_end, col_end)
    minor_end = np.where(steep, col_end, row_end)
    backwards = major_end < centre  # walk the major axis upwards, from the smaller end
    start = np.where(backwards, major_end, centre)
    stop = np.where(backwards, centre, major_end)
    left = np.where(backwards, minor_end, centre) - LINE_WIDTH / 2
    right = np.where(backwards, centre, minor_end) - LINE_WIDTH / 2
    slope = (right - left) / (stop - start)  # stop - start >= (c - 1) / sqrt(2) > 0
    return np.stack([steep.astype(np.float64), start, stop, left, slope])


def _rasterise(geometry: torch.Tensor, size: int) -> torch.Tensor:
    """float64 (N, size, size) images from `_line_scanlines`' rows, on the geometry's device.

    Pixel (k, j) of the major/minor grid is -1 + 2 w_k o_kj: w_k the weight of scanline k as
    the authors count it (the first scanline its covered fraction ceil(start) - start, every
    later one up to ceil(stop) - 1 in full, so the last one counts whole), o_kj the length of
    [s_k, s_k + LINE_WIDTH] inside the pixel [j, j + 1]. The per-angle geometry is numpy's (its
    cos and sin are the ones the bit-identity with the authors' images was checked with); the
    per-pixel arithmetic is exact IEEE operations in the authors' order, so it gives the same
    bits on any device, and a GPU draws a batch without a copy of its pixels.
    """
    device = geometry.device
    steep, start, stop, left, slope = geometry[:, :, None, None]
    k = torch.arange(size, dtype=torch.float64, device=device)[None, :, None]
    j = torch.arange(size, dtype=torch.float64, device=device)[None, None, :]
    first = torch.ceil(start)
    weight = torch.where(k < first, first - start, 1.0) * ((k >= torch.floor(start)) & (k < torch.ceil(stop)))
    s = left + (k - start - 0.5) * slope
    overlap = (torch.minimum(s + LINE_WIDTH, j + 1.0) - torch.maximum(s, j)).clamp(min=0.0)
    image = 2.0 * (weight * overlap) - 1.0  # (N, major, minor)
    return torch.where(steep.bool(), image, image.transpose(1, 2))


def draw_lines(angles, size: int = 32, dtype=np.float32) -> np.ndarray:
    """Render one line per angle exactly as the ACAI authors do: images (N, size, size) of
    float pixels in [-1, 1] (background -1, line +1).

    The authors' renderer (brain-research/acai, `lib/data.draw_line`, which draws both their
    training lines and the 10,000 reference lines of their metric) is a scanline rasteriser:
    a segment from the centre (size/2, size/2) of length size/2 - 1 (15 px at size 32) at
    angle theta (radians, counter-clockwise on screen from +x; the end is at
    x = c + L cos(theta), y = c - L sin(theta) since rows go down), stroked by a run of 2 px
    along each scanline of its major axis, anti-aliased by the exact fraction of each pixel
    the run covers. The ink is not the same for every angle (30 px at 0, 22 px at pi/4: the
    run is 2 px along the scanline, not across the line) and the end has no cap; reproducing
    that is the point, since the metric's absolute values depend on it. Computed in float64
    with the authors' operations (bit-identical to their float64 images, see
    tests/test_lines_renderer.py) and returned as `dtype`: float32 like the authors'
    TensorFlow input pipeline, float64 for the metric's reference set as in their metric.

    Angles are reduced modulo 2 pi first, so theta and theta + 2 pi give the same image (the
    authors draw angles in [0, 2 pi) only, which the reduction leaves unchanged).
    """
    size = check_size(size, 16, "draw_lines")
    theta = np.asarray(angles, dtype=np.float64).reshape(-1)
    if not np.all(np.isfinite(theta)):
        raise UserError("draw_lines: angles must be finite numbers")
    theta = np.mod(theta, TWO_PI)
    out = np.empty((len(theta), size, size), dtype=dtype)
    for first in range(0, len(theta), _LINES_PER_CHUNK):
        chunk = slice(first, first + _LINES_PER_CHUNK)
        out[chunk] = _rasterise(torch.from_numpy(_line_scanlines(theta[chunk], size)), size).numpy()
    return out


def make_lines(n: int, seed: int, size: int = 32) -> RawDataset:
    """The ACAI lines dataset: n random-angle lines as uint8 images (n, 1, size, size).

    Angles are drawn uniformly from [0, 2 pi) with np.random.default_rng(seed), so equal seeds
    give identical datasets. The label is the angle's bin among 10 equal bins of [0, 2 pi), a
    coarse class for the classification probes (the authors' int(10 angle / (2 pi - 1e-6))
    differs only within 1e-6 rad of a bin edge); the exact angle is the factor "angle".

    Pixels are `draw_lines` quantised to uint8 by round((v + 1) / 2 * 255), as every image
    dataset is stored: at most 1/255 off per pixel in [-1, 1], a cosine distance of 7e-8 on
    average (2.3e-7 at most) between a stored line and its float rendering, three orders of
    magnitude below the paper's best Mean Distance (ACAI, 2.4e-4). The authors instead draw
    a fresh line for every sample: `fresh_lines` does that (`train.fresh_data`); without it
    a large n stands in (at n = 100,000 the nearest stored training line to a fresh one is
    ~1e-4 rad away, a cosine distance of ~5e-9, below the quantisation itself). Rendered in
    chunks, so memory stays at the uint8 output (1 KB per line at size 32).
    """
    n = check_n(n, "make_lines")
    rng = np.random.default_rng(seed)
    angle = rng.uniform(0.0, TWO_PI, size=n)
    x = np.empty((n, 1, size, size), dtype=np.uint8)
    for first in range(0, n, _LINES_PER_CHUNK):
        chunk = slice(first, first + _LINES_PER_CHUNK)
        exact = draw_lines(angle[chunk], size=size, dtype=np.float64)
        x[chunk, 0] = np.rint((exact + 1.0) / 2.0 * 255.0).clip(0, 255)
    return RawDataset(
        x=x,
        label=bins(angle, 0.0, TWO_PI, 10),
        factors={"angle": angle.astype(np.float64)},
        meta={"source": "generated: ACAI lines benchmark", "size": size, "seed": seed, "traits": ["lines"]},
    )


def fresh_lines(n: int, generator: torch.Generator, shape: tuple[int, ...],
                device: torch.device | str = "cpu") -> dict[str, torch.Tensor]:
    """n new lines at angles drawn uniformly from [0, 2 pi) with `generator`, as a training
    batch (`train.fresh_data`): the authors train on a fresh line for every sample
    (brain-research/acai, `lib/data.input_lines`, an endless generator), never on a fixed set.

    The pixels are `make_lines`' stored values (the renderer quantised to 0..255, then / 255 as
    `aebench.training.split_tensors` reads a stored split), so fresh and stored lines are the
    same distribution; labels are the same 10 angle bins and `group` is the label, as stored.
    A fresh line has no stored row: `index` and `pos` are -1. Angles come from the CPU
    `generator` (the trainer's checkpointed one, so a resumed run draws the same lines); the
    pixels are rasterised on `device`.
    """
    size = shape[-1]
    angle = torch.rand(n, generator=generator, dtype=torch.float64).numpy() * TWO_PI
    label = bins(angle, 0.0, TWO_PI, 10).astype(np.float64)
    host = torch.from_numpy(np.concatenate([_line_scanlines(np.mod(angle, TWO_PI), size), label[None]]))
    on_device = _to_device(host, torch.device(device))
    x = torch.round((_rasterise(on_device[:5], size) + 1.0) / 2.0 * 255.0).clamp(0, 255).to(torch.float32).div_(255.0)
    label = on_device[5].long()
    missing = torch.full((n,), -1, dtype=torch.long, device=device)
    return {"x": x.reshape(n, *shape), "label": label, "group": label.clone(), "index": missing,
            "pos": missing.clone()}


def _to_device(host: torch.Tensor, device: torch.device) -> torch.Tensor:
    """`host` on `device`. To a GPU through pinned memory and without blocking: a plain copy
    from pageable memory makes the host wait for every kernel queued before it, once a step."""
    if device.type != "cuda":
        return host.to(device)
    return host.pin_memory().to(device, non_blocking=True)
