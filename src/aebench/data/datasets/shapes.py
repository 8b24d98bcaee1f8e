"""shapes: a dSprites-like generator (square, ellipse, heart; scale, rotation, x and y position),
with every factor drawn independently from a finite grid, for disentanglement metrics.

Shapes are white (255) on black (0), anti-aliased by supersampling: each pixel's value is the
fraction of a regular grid of sub-pixel sample points covered by the drawing, which makes the
images vary smoothly with the continuous factors (a requirement for meaningful interpolation).
"""

from __future__ import annotations

import math

import numpy as np

from aebench.data.datasets.common import TWO_PI, check_n, check_size
from aebench.data.raw import RawDataset

# Supersampling factor per axis: 4x4 = 16 samples per pixel gives 17 grey levels of coverage,
# enough for the total brightness to vary by only ~1% with the angle, at a modest cost.
_SUPERSAMPLE = 4

# Sample points evaluated per chunk: ~1 MB per float32 buffer, small enough to stay in cache,
# which measured about 1.5x faster than chunks of tens of megabytes.
_CHUNK_ELEMENTS = 262_144


def _subsample_centres(count: int, sub: int) -> np.ndarray:
    """Coordinates of the sub-pixel sample points along one axis of `count` pixels.

    Ordered pixel by pixel, so that an axis of count*sub samples reshapes to (count, sub).
    """
    return ((np.arange(count * sub, dtype=np.float64) + 0.5) / sub).astype(np.float32)


def _pool_coverage(inside: np.ndarray, w: int, sub: int) -> np.ndarray:
    """Count the covered samples of each pixel: (B, w*sub, w*sub) bool -> (B, w, w) uint8.

    For sub = 4 the four samples of a pixel along a row are four adjacent bytes, so they are
    summed at once by viewing them as one uint32 and multiplying by 0x01010101 (the top byte
    of the product is the sum of the bytes, whatever the byte order); numpy's generic
    reduction over a length-4 axis is several times slower.
    """
    b = inside.shape[0]
    flags = np.ascontiguousarray(inside).view(np.uint8)
    if sub == 4:
        packed = flags.reshape(b, w * sub * w, sub).view(np.uint32)[..., 0]
        per_row = ((packed * np.uint32(0x01010101)) >> np.uint32(24)).astype(np.uint8)
    else:
        per_row = flags.reshape(b, w * sub * w, sub).sum(axis=2, dtype=np.uint8)
    per_row = per_row.reshape(b, w, sub, w)
    counts = per_row[:, :, 0].copy()
    for k in range(1, sub):
        counts += per_row[:, :, k]
    return counts



SHAPE_NAMES = ("square", "ellipse", "heart")
SHAPE_SCALES = np.linspace(0.5, 1.0, 6)
# 40 rotations of [0, 2 pi) without the end point: 2 pi would duplicate 0 exactly.
SHAPE_ROTATIONS = np.linspace(0.0, TWO_PI, 40, endpoint=False)
# Positions as fractions 0..1 of the range of centres that keep the sprite inside the image.
SHAPE_POSITIONS = np.linspace(0.0, 1.0, 16)

# Each shape is defined in normalised sprite coordinates (u right, v up) where it fits in the
# unit disc; the disc's radius in pixels is 0.2 * size * scale, so a sprite at scale 1 spans
# 40% of the image width (in its widest orientation).
_SPRITE_RADIUS_FRACTION = 0.2
# The heart curve (X^2 + Y^2 - 1)^3 - X^2 Y^3 <= 0 fits in a disc of radius 1.25 centred at
# Y = 0.25; these constants map it into the unit disc.
_HEART_SCALE = 1.25
_HEART_SHIFT = 0.25


def _inside(shape: int, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Whether normalised sprite points (u right, v up) fall inside the given shape."""
    if shape == 0:  # square inscribed in the unit disc
        half = np.float32(1.0 / math.sqrt(2.0))
        return np.maximum(np.abs(u), np.abs(v)) <= half
    if shape == 1:  # ellipse, semi-axes 1 (along u) and 0.5 (along v)
        return u * u + 4.0 * v * v <= 1.0
    if shape == 2:  # heart, lobes up
        big_x = u * np.float32(_HEART_SCALE)
        big_y = v * np.float32(_HEART_SCALE) + np.float32(_HEART_SHIFT)
        x2 = big_x * big_x
        r = x2 + big_y * big_y - 1.0
        return r * r * r <= x2 * big_y * big_y * big_y
    raise ValueError(f"unknown shape {shape}")


def _render_sprites(
    shape: int, scale: np.ndarray, rotation: np.ndarray, cx: np.ndarray, cy: np.ndarray, size: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """Render sprites of one shape into small windows; returns (windows uint8, ox, oy, W).

    Working in a window just large enough for the largest sprite, rather than the full image,
    cuts the number of sample points about fivefold at size 32.
    """
    sub = _SUPERSAMPLE
    r_unit = _SPRITE_RADIUS_FRACTION * size
    w = int(math.ceil(2.0 * r_unit)) + 2
    ox = np.clip(np.floor(cx - r_unit).astype(np.int64), 0, size - w)
    oy = np.clip(np.floor(cy - r_unit).astype(np.int64), 0, size - w)

    local = _subsample_centres(w, sub)  # (w*sub,)
    # Offsets of the sample columns (dx) and rows (dy, flipped to point up) from the sprite
    # centre, in units of the sprite radius.
    inv_r = 1.0 / (r_unit * scale)
    dx = ((ox - cx) * inv_r).astype(np.float32)[:, None] + local[None, :] * inv_r.astype(np.float32)[:, None]
    dy = ((cy - oy) * inv_r).astype(np.float32)[:, None] - local[None, :] * inv_r.astype(np.float32)[:, None]
    cos_t = np.cos(rotation).astype(np.float32)[:, None]
    sin_t = np.sin(rotation).astype(np.float32)[:, None]
    # Rotating the sample points by -rotation rotates the sprite by +rotation (CCW). Each
    # rotated coordinate is a row term plus a column term, so it is built by broadcasting.
    u = (sin_t * dy)[:, :, None] + (cos_t * dx)[:, None, :]  # (B, rows, cols)
    v = (cos_t * dy)[:, :, None] - (sin_t * dx)[:, None, :]
    inside = _inside(shape, u, v)  # (B, w*sub, w*sub)
    counts = _pool_coverage(inside, w, sub).astype(np.float32)
    windows = np.rint(counts * np.float32(255.0 / (sub * sub))).astype(np.uint8)
    return windows, ox, oy, w


def make_shapes(n: int, seed: int, size: int = 32) -> RawDataset:
    """A dSprites-like dataset: n white sprites on black, uint8 images (n, 1, size, size).

    Factors, each drawn uniformly and independently from its grid with
    np.random.default_rng(seed) (in the order shape, scale, rotation, pos_x, pos_y):

    - shape: 0 square, 1 ellipse, 2 heart (also the label);
    - scale: 6 values linearly spaced in 0.5..1.0;
    - rotation: 40 values in [0, 2 pi) (end point excluded, it would duplicate 0), counter-
      clockwise on screen; the full range is used for every shape, as in dSprites, even though
      the square and the ellipse are symmetric (several rotations then give the same image);
    - pos_x, pos_y: 16 values in 0..1, the fraction of the range of sprite centres
      [0.2 size + 1, 0.8 size - 1] pixels; pos_x 0 is the left edge, pos_y 0 the top.

    Factor values (not grid indices) are stored. At scale 1 each sprite fits in a disc of
    diameter 40% of the image width, and the position range keeps that disc one pixel away from
    the border, so every sprite lies entirely inside the image and the border rows and columns
    stay black. Sprites are anti-aliased by 4x4 supersampling (value = round(255 * coverage)),
    so a sprite's total brightness barely depends on its position.
    """
    n = check_n(n, "make_shapes")
    size = check_size(size, 8, "make_shapes")
    rng = np.random.default_rng(seed)
    shape = rng.integers(0, len(SHAPE_NAMES), size=n)
    scale = SHAPE_SCALES[rng.integers(0, len(SHAPE_SCALES), size=n)]
    rotation = SHAPE_ROTATIONS[rng.integers(0, len(SHAPE_ROTATIONS), size=n)]
    pos_x = SHAPE_POSITIONS[rng.integers(0, len(SHAPE_POSITIONS), size=n)]
    pos_y = SHAPE_POSITIONS[rng.integers(0, len(SHAPE_POSITIONS), size=n)]

    low = _SPRITE_RADIUS_FRACTION * size + 1.0
    high = size - low
    cx = low + pos_x * (high - low)
    cy = low + pos_y * (high - low)

    images = np.zeros((n, size, size), dtype=np.uint8)
    w = int(math.ceil(2.0 * _SPRITE_RADIUS_FRACTION * size)) + 2
    per_chunk = max(1, 4 * _CHUNK_ELEMENTS // (w * w * _SUPERSAMPLE * _SUPERSAMPLE))
    span = np.arange(w)
    for s in range(len(SHAPE_NAMES)):
        members = np.flatnonzero(shape == s)
        for start in range(0, len(members), per_chunk):
            idx = members[start:start + per_chunk]
            windows, ox, oy, w = _render_sprites(s, scale[idx], rotation[idx], cx[idx], cy[idx], size)
            rows = oy[:, None, None] + span[None, :, None]
            cols = ox[:, None, None] + span[None, None, :]
            images[idx[:, None, None], rows, cols] = windows

    return RawDataset(
        x=images[:, None, :, :],
        label=shape.astype(np.int64),
        factors={
            "shape": shape.astype(np.float64),
            "scale": scale.astype(np.float64),
            "rotation": rotation.astype(np.float64),
            "pos_x": pos_x.astype(np.float64),
            "pos_y": pos_y.astype(np.float64),
        },
        meta={
            "source": "generated: dSprites-like shapes",
            "size": size,
            "seed": seed,
            "shapes": list(SHAPE_NAMES),
            "notes": "white sprites on black, anti-aliased by 4x4 supersampling; "
            "pos_x/pos_y in 0..1 (0 = left/top); rotation counter-clockwise in radians",
        },
    )
