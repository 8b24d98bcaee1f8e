"""Embedded datasets: generated on the spot, or bundled with scikit-learn, so they need no network.

They let the pipeline, the tests and the topology experiments run offline, with ground-truth
generative factors that downloaded datasets rarely have.

Datasets
--------
lines
    The ACAI paper's synthetic benchmark (Berthelot et al., 2019): 32x32 greyscale images of a
    single anti-aliased line from the image centre outward at a random angle, drawn exactly as
    the authors' renderer draws them (see `draw_lines`). The angle is the only factor of
    variation, so a good interpolation between two lines is a line at an intermediate angle,
    which is what the benchmark measures.
digits
    scikit-learn's bundled 8x8 handwritten digits (1797 images); a fixed, tiny real dataset.
shapes
    A dSprites-like generator (square, ellipse, heart; scale, rotation, x and y position), with
    every factor drawn independently from a finite grid, for disentanglement metrics.
rotation
    One fixed handwritten '3' of `digits`, upsampled to 16x16 and rotated through 360 degrees:
    a circle in image space (the DVAE paper's rotating objects, in miniature), with the angle
    as its only factor.
loop, sphere, torus
    Noisy point clouds on low-dimensional manifolds with known topology (a circle, the 2-sphere
    and the 2-torus), for experiments on whether a latent space keeps the data's topology.
    Each lies in its native R^2 or R^3, or (option `ambient_dim`) is embedded in a higher
    dimension by a random orthonormal map, with the noise isotropic in the ambient space.
    Option `variant: paper` gives the DVAE authors' sets instead (lihenryhfl/SpectralVAEGAN,
    `vdae_util.py`): noise-free regular grids, the loop being (cos t, sin 2t, sin 3t) in R^3
    and the torus of radii 2 and 1.

Options
-------
Every generator takes (n, seed); some take keyword options that params.yaml sets per dataset
(`data.options.<dataset>`, see `aebench.config.DatasetOptions`): the manifolds take `noise`,
`ambient_dim` and `variant`. `generate(name, n, seed, options)` runs a generator and refuses an option
it does not take, naming the key.

Pixel conventions
-----------------
Images are stored as uint8 (N, C, H, W) like every other raw image dataset, so preprocess
treats all of them alike. `draw_lines` works in the ACAI paper's [-1, 1] range (background -1,
line +1) with float pixels; `make_lines` maps it to 0..255 with round((v + 1) / 2 * 255) (see
`make_lines` for what that quantisation costs). Shapes are white (255) on black (0),
anti-aliased by supersampling: each pixel's value is the fraction of a regular grid of
sub-pixel sample points covered by the drawing, which makes the images vary smoothly with the
continuous factors (a requirement for meaningful interpolation); lines are anti-aliased by the
authors' exact per-scanline coverage instead.

Coordinates: a pixel at row i, column j covers [j, j+1) x [i, i+1) in (x, y) with rows going
down; angles are in radians, counter-clockwise as seen on screen, from the +x axis (so
pi/2 points up, toward smaller row indices).

Vector datasets are float32 (N, D). Unless stated otherwise labels are 8 equal-width bins of the
first factor, so that classification probes have something to predict.
"""

from __future__ import annotations

import math
import inspect
from typing import Callable

import numpy as np

from aebench.config import GENERATOR_OPTIONS
from aebench.data.raw import RawDataset
from aebench.errors import UserError

TWO_PI = 2.0 * math.pi

# Supersampling factor per axis: 4x4 = 16 samples per pixel gives 17 grey levels of coverage,
# enough for the total brightness to vary by only ~1% with the angle, at a modest cost.
_SUPERSAMPLE = 4

# Sample points evaluated per chunk: ~1 MB per float32 buffer, small enough to stay in cache,
# which measured about 1.5x faster than chunks of tens of megabytes.
_CHUNK_ELEMENTS = 262_144


def _check_n(n: int, what: str) -> int:
    if int(n) != n or n < 1:
        raise UserError(f"{what}: n must be a positive integer, got {n!r}")
    return int(n)


def _check_size(size: int, minimum: int, what: str) -> int:
    if int(size) != size or size < minimum:
        raise UserError(f"{what}: size must be an integer >= {minimum}, got {size!r}")
    return int(size)


def _check_noise(noise: float, what: str) -> float:
    if not (noise >= 0.0 and math.isfinite(noise)):
        raise UserError(f"{what}: noise must be a finite number >= 0, got {noise!r}")
    return float(noise)


def _bins(values: np.ndarray, low: float, high: float, k: int) -> np.ndarray:
    """Index of the equal-width bin of [low, high) holding each value, clipped into 0..k-1."""
    idx = np.floor((np.asarray(values, dtype=np.float64) - low) / (high - low) * k)
    return np.clip(idx, 0, k - 1).astype(np.int64)


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


# --------------------------------------------------------------------------------------------
# Lines (ACAI benchmark)
# --------------------------------------------------------------------------------------------


# Lines per chunk of `draw_lines`: a few (chunk, size, size) float64 buffers of ~8 MB at size 32.
_LINES_PER_CHUNK = 1024

# Stroke width of the authors' renderer, in pixels, measured along each scanline.
LINE_WIDTH = 2.0


def _line_scanlines(theta: np.ndarray, size: int) -> tuple[np.ndarray, ...]:
    """Per angle, the scanline geometry of the authors' renderer (brain-research/acai,
    `lib/data.draw_line`), in float64 with its operations in its order so that the pixel
    values agree to the last bit.

    The segment runs from the centre (c, c), c = size / 2, to (c + (c - 1) cos theta,
    c - (c - 1) sin theta) in (column, row). Scanlines run across the major axis: rows when the
    segment spans at least as many rows as columns (`steep`), columns otherwise. Returns
    (steep, start, stop, left, slope): the segment spans [start, stop] along the major axis,
    and the scanline at major index k holds the interval [s_k, s_k + LINE_WIDTH] of the minor
    axis with s_k = left + (k - start - 1/2) * slope.
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
    return steep, start, stop, left, slope


def _render_lines(theta: np.ndarray, size: int) -> np.ndarray:
    """float64 (N, size, size) images of `draw_lines` for angles already reduced to [0, 2 pi).

    Pixel (k, j) of the major/minor grid is -1 + 2 w_k o_kj: w_k the weight of scanline k as
    the authors count it (the first scanline its covered fraction ceil(start) - start, every
    later one up to ceil(stop) - 1 in full, so the last one counts whole), o_kj the length of
    [s_k, s_k + LINE_WIDTH] inside the pixel [j, j + 1].
    """
    steep, start, stop, left, slope = (a[:, None, None] for a in _line_scanlines(theta, size))
    k = np.arange(size, dtype=np.float64)[None, :, None]
    j = np.arange(size, dtype=np.float64)[None, None, :]
    first = np.ceil(start)
    weight = np.where(k < first, first - start, 1.0) * ((k >= np.floor(start)) & (k < np.ceil(stop)))
    s = left + (k - start - 0.5) * slope
    overlap = np.maximum(np.minimum(s + LINE_WIDTH, j + 1.0) - np.maximum(s, j), 0.0)
    image = 2.0 * (weight * overlap) - 1.0  # (N, major, minor)
    return np.where(steep, image, image.transpose(0, 2, 1))


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
    size = _check_size(size, 16, "draw_lines")
    theta = np.asarray(angles, dtype=np.float64).reshape(-1)
    if not np.all(np.isfinite(theta)):
        raise UserError("draw_lines: angles must be finite numbers")
    theta = np.mod(theta, TWO_PI)
    out = np.empty((len(theta), size, size), dtype=dtype)
    for first in range(0, len(theta), _LINES_PER_CHUNK):
        chunk = slice(first, first + _LINES_PER_CHUNK)
        out[chunk] = _render_lines(theta[chunk], size)
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
    fresh lines for every batch; a large n stands in for that (see the params' paper note):
    at n = 100,000 the nearest stored training line to a fresh one is ~1e-4 rad away, a cosine
    distance of ~5e-9, below the quantisation itself. Rendered in chunks, so memory stays at
    the uint8 output (1 KB per line at size 32).
    """
    n = _check_n(n, "make_lines")
    rng = np.random.default_rng(seed)
    angle = rng.uniform(0.0, TWO_PI, size=n)
    x = np.empty((n, 1, size, size), dtype=np.uint8)
    for first in range(0, n, _LINES_PER_CHUNK):
        chunk = slice(first, first + _LINES_PER_CHUNK)
        exact = draw_lines(angle[chunk], size=size, dtype=np.float64)
        x[chunk, 0] = np.rint((exact + 1.0) / 2.0 * 255.0).clip(0, 255)
    return RawDataset(
        x=x,
        label=_bins(angle, 0.0, TWO_PI, 10),
        factors={"angle": angle.astype(np.float64)},
        meta={"source": "generated: ACAI lines benchmark", "size": size, "seed": seed, "traits": ["lines"]},
    )


# --------------------------------------------------------------------------------------------
# Digits (scikit-learn, bundled)
# --------------------------------------------------------------------------------------------


def load_digits_raw() -> RawDataset:
    """scikit-learn's bundled 8x8 digits: 1797 images (N, 1, 8, 8) uint8, label = the digit.

    The data ship inside scikit-learn, so this works offline. Pixel values 0..16 are scaled to
    0..255 with round(v * 255 / 16) to match the other image datasets.
    """
    from sklearn.datasets import load_digits

    bunch = load_digits()
    images = np.asarray(bunch.images, dtype=np.float64)
    x = np.rint(images * 255.0 / 16.0).clip(0, 255).astype(np.uint8)[:, None, :, :]
    return RawDataset(
        x=x,
        label=np.asarray(bunch.target, dtype=np.int64),
        factors={},
        meta={
            "source": "scikit-learn bundled dataset sklearn.datasets.load_digits "
            "(UCI Optical Recognition of Handwritten Digits, test set)",
            "licence": "CC BY 4.0 (UCI Machine Learning Repository); shipped with scikit-learn (BSD-3-Clause)",
            "notes": "8x8 images, values 0..16 scaled to 0..255 by round(v * 255 / 16)",
        },
    )


# --------------------------------------------------------------------------------------------
# Rotation (one digit rotated through 360 degrees)
# --------------------------------------------------------------------------------------------

ROTATION_DIGIT_ROW = 3  # row of sklearn's digits holding the glyph: a '3', not symmetric under any rotation


def rotation_glyph(size: int = 16) -> np.ndarray:
    """The rotated dataset's upright glyph: float64 (size, size) in [0, 1].

    Row `ROTATION_DIGIT_ROW` of the 8x8 `digits` (a '3'), upsampled by cubic interpolation to
    3/4 of `size` and centred on a black canvas of `size`, so it stays inside the image at
    every rotation (its 8x8 support keeps every bright pixel within the inscribed disc).
    """
    from scipy import ndimage
    from sklearn.datasets import load_digits

    size = _check_size(size, 8, "rotation_glyph")
    glyph = np.asarray(load_digits().images[ROTATION_DIGIT_ROW], dtype=np.float64) / 16.0
    inner = (3 * size) // 4
    up = np.clip(ndimage.zoom(glyph, inner / 8.0, order=3, grid_mode=True, mode="grid-constant"), 0.0, 1.0)
    canvas = np.zeros((size, size))
    top = (size - inner) // 2
    canvas[top:top + inner, top:top + inner] = up
    return canvas


def draw_rotations(angles, size: int = 16) -> np.ndarray:
    """`rotation_glyph(size)` rotated by each angle (radians, counter-clockwise on screen)
    about the image centre: float64 (N, size, size) in [0, 1].

    `scipy.ndimage.rotate` with bilinear interpolation (order 1), the frame kept (no reshape)
    and black outside the glyph; a quarter turn is exactly `np.rot90` of the glyph.
    """
    from scipy import ndimage

    theta = np.asarray(angles, dtype=np.float64).reshape(-1)
    if not np.all(np.isfinite(theta)):
        raise UserError("draw_rotations: angles must be finite numbers")
    glyph = rotation_glyph(size)
    out = np.empty((len(theta), glyph.shape[0], glyph.shape[1]))
    for i, a in enumerate(theta):
        out[i] = ndimage.rotate(glyph, math.degrees(a), reshape=False, order=1, mode="constant", cval=0.0)
    return np.clip(out, 0.0, 1.0)


def make_rotation(n: int, seed: int, size: int = 16) -> RawDataset:
    """One digit rotated through 360 degrees: uint8 images (n, 1, size, size), a circle in
    image space.

    Angles are uniform on [0, 2 pi) from np.random.default_rng(seed) (factor "angle", radians,
    counter-clockwise on screen, as for `lines`); image i is `draw_rotations` of angle i
    scaled to 0..255. Label = the angle's bin among 8 equal bins of [0, 2 pi), so stratified
    splits are balanced. Nothing else varies: the data manifold is one closed curve.
    """
    n = _check_n(n, "make_rotation")
    rng = np.random.default_rng(seed)
    angle = rng.uniform(0.0, TWO_PI, size=n)
    x = np.rint(draw_rotations(angle, size) * 255.0).astype(np.uint8)[:, None, :, :]
    return RawDataset(
        x=x,
        label=_bins(angle, 0.0, TWO_PI, 8),
        factors={"angle": angle.astype(np.float64)},
        meta={"traits": ["manifold"], "source": f"generated: digits row {ROTATION_DIGIT_ROW} (a '3') rotated through 360 degrees",
              "size": size, "seed": seed, "notes": "bilinear rotation about the centre; angle counter-clockwise"},
    )


# --------------------------------------------------------------------------------------------
# Shapes (dSprites-like)
# --------------------------------------------------------------------------------------------

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
    n = _check_n(n, "make_shapes")
    size = _check_size(size, 8, "make_shapes")
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


# --------------------------------------------------------------------------------------------
# Manifolds (topology experiments)
# --------------------------------------------------------------------------------------------


# The dimension each manifold's points natively live in (before an `ambient_dim` embedding).
NATIVE_DIM = {"loop": 2, "sphere": 3, "torus": 3}
# The same for `variant: paper`, whose loop is a curve in R^3.
PAPER_NATIVE_DIM = {"loop": 3, "sphere": 3, "torus": 3}

# "default": points drawn at random plus noise; "paper": the DVAE authors' noise-free grids.
MANIFOLD_VARIANTS = ("default", "paper")


def native_dim(name: str, variant: str = "default") -> int | None:
    """The native dimension of manifold `name` in `variant` (None for other datasets)."""
    return (PAPER_NATIVE_DIM if variant == "paper" else NATIVE_DIM).get(name)


def _check_variant(variant: str, what: str) -> str:
    if variant not in MANIFOLD_VARIANTS:
        raise UserError(f"{what}: variant must be one of {', '.join(MANIFOLD_VARIANTS)}, got {variant!r}")
    return variant


def _variant_noise(noise: float | None, default: float, variant: str, what: str) -> float:
    """The noise std: as given, else `default` for the default variant and 0 for the paper's
    (the authors' sets are noise-free)."""
    if noise is None:
        noise = default if variant == "default" else 0.0
    return _check_noise(noise, what)

# Stream of the embedding map's generator: a generator of its own, so the points and the noise
# drawn from the dataset's generator are the same with or without an embedding.
_EMBEDDING_STREAM = 7


def _check_ambient(ambient_dim: int | None, native: int, what: str) -> int | None:
    if ambient_dim is None:
        return None
    if isinstance(ambient_dim, bool) or int(ambient_dim) != ambient_dim or ambient_dim < native:
        raise UserError(f"{what}: ambient_dim must be an integer >= {native} (the manifold's native dimension), "
                        f"got {ambient_dim!r}: raise it, or leave it unset for R^{native}")
    return int(ambient_dim)


def embedding_basis(native: int, ambient_dim: int, seed: int) -> np.ndarray:
    """The random orthonormal map R^native -> R^ambient_dim of a manifold generated with `seed`:
    (ambient_dim, native) with orthonormal columns, Haar-distributed (QR of a Gaussian matrix,
    signs fixed by R's diagonal), from a generator of its own so the points do not change."""
    rng = np.random.default_rng([seed, _EMBEDDING_STREAM])
    q, r = np.linalg.qr(rng.standard_normal((ambient_dim, native)))
    return q * np.where(np.diag(r) < 0, -1.0, 1.0)[None, :]


def _place(points: np.ndarray, ambient_dim: int | None, noise: float, rng: np.random.Generator,
           seed: int) -> np.ndarray:
    """Clean manifold points (N, native) -> float32 (N, ambient): embedded by `embedding_basis`
    when `ambient_dim` is set (an isometry: distances on the manifold are kept), then isotropic
    Gaussian noise of std `noise` in every ambient dimension."""
    if ambient_dim is not None:
        points = points @ embedding_basis(points.shape[1], ambient_dim, seed).T
    return (points + noise * rng.standard_normal(points.shape)).astype(np.float32)


def _manifold_meta(source: str, seed: int, noise: float, ambient_dim: int | None, native: int) -> dict:
    meta = {"source": source, "seed": seed, "noise": noise, "traits": ["manifold"]}
    if ambient_dim is not None:
        meta.update(ambient_dim=ambient_dim, embedding=f"aebench.data.synthetic.embedding_basis({native}, "
                                                       f"{ambient_dim}, {seed}) maps R^{native} into R^{ambient_dim}")
    return meta


def make_loop(n: int, seed: int, noise: float | None = None, ambient_dim: int | None = None,
              variant: str = "default") -> RawDataset:
    """A closed curve (or embedded in R^ambient_dim, see `_place`) plus isotropic Gaussian
    noise of std `noise`.

    default: the unit circle in R^2 at angles uniform on [0, 2 pi), noise 0.05 unless given.
    paper: the DVAE authors' loop (cos t, sin 2t, sin 3t) in R^3 at the n equally spaced
    t = 2 pi k / n (their `generate_loop`), in a seeded random order, noise-free unless given.

    Factor "angle" (t); label = 8 equal bins of it. The loop's one-dimensional hole is what a
    topology-preserving latent space should keep.
    """
    n = _check_n(n, "make_loop")
    variant = _check_variant(variant, "make_loop")
    noise = _variant_noise(noise, 0.05, variant, "make_loop")
    native = native_dim("loop", variant)
    ambient_dim = _check_ambient(ambient_dim, native, "make_loop")
    rng = np.random.default_rng(seed)
    if variant == "paper":
        angle = TWO_PI * rng.permutation(n) / n
        clean = np.stack([np.cos(angle), np.sin(2 * angle), np.sin(3 * angle)], axis=1)
        source = "generated: the DVAE authors' loop (cos t, sin 2t, sin 3t) in R^3, t on a regular grid"
    else:
        angle = rng.uniform(0.0, TWO_PI, size=n)
        clean = np.stack([np.cos(angle), np.sin(angle)], axis=1)
        source = "generated: noisy unit circle in R^2"
    return RawDataset(
        x=_place(clean, ambient_dim, noise, rng, seed),
        label=_bins(angle, 0.0, TWO_PI, 8),
        factors={"angle": angle},
        meta={**_manifold_meta(source, seed, noise, ambient_dim, native), "variant": variant},
    )


def regular_sphere_angles(count: int) -> tuple[np.ndarray, np.ndarray]:
    """(polar, azimuth) of about `count` points spread evenly over the unit sphere: Deserno's
    regular placement ("How to generate equidistributed points on the surface of a sphere",
    2004), the authors' `generate_sphere`. Rings of constant polar angle, as many as make the
    spacing between rings equal to the spacing along them, each point owning an area of about
    4 pi / count; the exact number of points differs from `count` by rounding."""
    area = 4.0 * math.pi / count
    rings = max(1, round(math.pi / math.sqrt(area)))
    along = area / (math.pi / rings)  # azimuthal spacing at the equator
    polar, azimuth = [], []
    for i in range(rings):
        nu = math.pi * (i + 0.5) / rings
        m = max(1, round(TWO_PI * math.sin(nu) / along))
        polar.append(np.full(m, nu))
        azimuth.append(TWO_PI * np.arange(m) / m)
    return np.concatenate(polar), np.concatenate(azimuth)


def _paper_sphere(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """n points of a regular placement of at least n (a seeded random choice of them, as the
    authors take a random n of theirs), in random order."""
    target = n
    polar, azimuth = regular_sphere_angles(target)
    while len(polar) < n:
        target += n - len(polar)
        polar, azimuth = regular_sphere_angles(target)
    pick = rng.choice(len(polar), n, replace=False)
    return polar[pick], azimuth[pick]


def make_sphere(n: int, seed: int, noise: float | None = None, ambient_dim: int | None = None,
                variant: str = "default") -> RawDataset:
    """Points on the unit sphere in R^3 (or embedded in R^ambient_dim, see `_place`) plus
    isotropic Gaussian noise of std `noise`.

    default: uniform points (normalised standard Gaussian vectors), noise 0.02 unless given.
    paper: the DVAE authors' sphere, an evenly spread grid (`regular_sphere_angles`),
    noise-free unless given.

    Factors: "polar" in [0, pi] (angle from +z) and "azimuth" in [0, 2 pi); label = 8
    equal-area bands (equal-width bins of cos(polar), which is uniform on the sphere), so the
    classes are balanced.
    """
    n = _check_n(n, "make_sphere")
    variant = _check_variant(variant, "make_sphere")
    noise = _variant_noise(noise, 0.02, variant, "make_sphere")
    ambient_dim = _check_ambient(ambient_dim, native_dim("sphere", variant), "make_sphere")
    rng = np.random.default_rng(seed)
    if variant == "paper":
        polar, azimuth = _paper_sphere(n, rng)
        unit = np.stack([np.sin(polar) * np.cos(azimuth), np.sin(polar) * np.sin(azimuth), np.cos(polar)], axis=1)
        source = "generated: the DVAE authors' regular grid on the unit sphere in R^3"
    else:
        g = rng.standard_normal((n, 3))
        norms = np.linalg.norm(g, axis=1, keepdims=True)
        norms[norms == 0.0] = 1.0  # probability zero, but avoid a division by zero anyway
        unit = g / norms
        polar = np.arccos(np.clip(unit[:, 2], -1.0, 1.0))
        azimuth = np.mod(np.arctan2(unit[:, 1], unit[:, 0]), TWO_PI)
        source = "generated: noisy unit sphere in R^3"
    return RawDataset(
        x=_place(unit, ambient_dim, noise, rng, seed),
        label=_bins(-np.cos(polar), -1.0, 1.0, 8),
        factors={"polar": polar, "azimuth": azimuth},
        meta={**_manifold_meta(source, seed, noise, ambient_dim, NATIVE_DIM["sphere"]), "variant": variant},
    )


def _area_uniform_torus(n: int, R: float, r: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(u, v) of n points uniform by surface area: the area density is proportional to
    R + r cos v, so v is drawn by rejection sampling (vectorised) rather than uniformly, which
    would crowd the inner rim."""
    u = rng.uniform(0.0, TWO_PI, size=n)
    accepted: list[np.ndarray] = []
    have = 0
    while have < n:
        batch = 2 * (n - have) + 16  # acceptance rate is at least R / (R + r) > 1/2
        cand = rng.uniform(0.0, TWO_PI, size=batch)
        keep = rng.uniform(0.0, R + r, size=batch) < R + r * np.cos(cand)
        accepted.append(cand[keep])
        have += int(keep.sum())
    return u, np.concatenate(accepted)[:n]


def _grid_torus(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(u, v) of n points of the m x m grid of angles 2 pi k / m, m = ceil(sqrt(n)) (a seeded
    random choice of them, in random order). The authors' `generate_torus` grid, except that
    theirs repeats the angle 0 as 2 pi, which puts two copies of every seam point in the set."""
    m = math.ceil(math.sqrt(n))
    cells = rng.choice(m * m, n, replace=False)
    return TWO_PI * (cells // m) / m, TWO_PI * (cells % m) / m


def make_torus(n: int, seed: int, R: float = 2.0, r: float | None = None, noise: float | None = None,
               ambient_dim: int | None = None, variant: str = "default") -> RawDataset:
    """Points on a torus in R^3 (or embedded in R^ambient_dim, see `_place`) plus isotropic
    Gaussian noise of std `noise`.

    The surface is ((R + r cos v) cos u, (R + r cos v) sin u, r sin v), u the angle around the
    z axis and v the angle around the tube, so it satisfies (sqrt(x^2 + y^2) - R)^2 + z^2 = r^2.
    default: points uniform by surface area, r = 0.7 and noise 0.02 unless given.
    paper: the DVAE authors' torus, radii R = 2 and r = 1 unless given, on a grid uniform in
    the two angles (`_grid_torus`), noise-free unless given.
    Factors "u" and "v" in [0, 2 pi); label = 8 equal bins of u.
    """
    n = _check_n(n, "make_torus")
    variant = _check_variant(variant, "make_torus")
    noise = _variant_noise(noise, 0.02, variant, "make_torus")
    ambient_dim = _check_ambient(ambient_dim, native_dim("torus", variant), "make_torus")
    if r is None:
        r = 1.0 if variant == "paper" else 0.7
    if not (R > r > 0):
        raise UserError(f"make_torus: need R > r > 0 for a ring torus, got R={R!r}, r={r!r}")
    rng = np.random.default_rng(seed)
    if variant == "paper":
        u, v = _grid_torus(n, rng)
        source = "generated: the DVAE authors' torus grid in R^3"
    else:
        u, v = _area_uniform_torus(n, R, r, rng)
        source = "generated: noisy torus in R^3"
    ring = R + r * np.cos(v)
    points = np.stack([ring * np.cos(u), ring * np.sin(u), r * np.sin(v)], axis=1)
    meta = {**_manifold_meta(source, seed, noise, ambient_dim, NATIVE_DIM["torus"]), "variant": variant}
    return RawDataset(
        x=_place(points, ambient_dim, noise, rng, seed),
        label=_bins(u, 0.0, TWO_PI, 8),
        factors={"u": u, "v": v},
        meta={**meta, "R": R, "r": r},
    )


# --------------------------------------------------------------------------------------------
# Registry
# --------------------------------------------------------------------------------------------


def _digits(n: int, seed: int) -> RawDataset:
    """Fixed dataset: n and seed are accepted for a uniform signature and ignored."""
    del n, seed
    return load_digits_raw()


EMBEDDED: dict[str, Callable[..., RawDataset]] = {
    # "digits" is a fixed real dataset (1797 images): its n and seed are ignored.
    "digits": _digits,
    "lines": make_lines,
    "shapes": make_shapes,
    "rotation": make_rotation,
    "loop": make_loop,
    "sphere": make_sphere,
    "torus": make_torus,
    "letters": lambda n, seed: __import__("aebench.data.letters", fromlist=["make_letters"]).make_letters(n, seed),
}
"""Name -> function (n, seed, **options) -> RawDataset for every dataset that needs no download.

All but "digits" are generated deterministically from (n, seed); "digits" is scikit-learn's
fixed bundled set and ignores both arguments. Options are keyword arguments; which of the
params.yaml options (`GENERATOR_OPTIONS`) a generator takes is read from its signature.
"""

def supported_options(name: str) -> list[str]:
    """The `GENERATOR_OPTIONS` dataset `name`'s generator takes (none for downloaded datasets)."""
    make = EMBEDDED.get(name)
    if make is None:
        return []
    parameters = inspect.signature(make).parameters
    return [key for key in GENERATOR_OPTIONS if key in parameters]


def check_options(name: str, options: dict, where: str = "params.yaml") -> None:
    """A UserError naming `data.options.<name>.<key>` for an option dataset `name` does not
    take, or an `ambient_dim` below the manifold's native dimension."""
    supported = supported_options(name)
    for key in options:
        if key not in supported:
            takes = f"its options are {', '.join(supported)}" if supported else "it takes none of " + \
                ", ".join(GENERATOR_OPTIONS)
            kind = "generated" if name in EMBEDDED else "downloaded"
            raise UserError(f"{where}: `data.options.{name}.{key}`: dataset `{name}` ({kind}) has no option `{key}` "
                            f"({takes}): remove it")
    ambient, native = options.get("ambient_dim"), native_dim(name, options.get("variant", "default"))
    if ambient is not None and native is not None and ambient < native:
        raise UserError(f"{where}: `data.options.{name}.ambient_dim` = {ambient} is below the {name}'s native "
                        f"dimension {native}: set it to {native} or more, or remove it")


def generate(name: str, n: int, seed: int, options: dict | None = None, where: str = "params.yaml") -> RawDataset:
    """EMBEDDED[name](n, seed, **options), after `check_options`."""
    options = dict(options or {})
    check_options(name, options, where)
    return EMBEDDED[name](n, seed, **options)
