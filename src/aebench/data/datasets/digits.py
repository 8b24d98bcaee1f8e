"""digits and rotation: scikit-learn's bundled 8x8 handwritten digits, and one of them rotated.

digits
    scikit-learn's bundled 8x8 handwritten digits (1797 images); a fixed, tiny real dataset
    that needs no network. Its n and seed are accepted for a uniform signature and ignored.
rotation
    One fixed handwritten '3' of `digits`, upsampled to 16x16 and rotated through 360 degrees:
    a circle in image space (the DVAE paper's rotating objects, in miniature), with the angle
    as its only factor.
"""

from __future__ import annotations

import math

import numpy as np

from aebench.data.datasets.common import TWO_PI, bins, check_n, check_size
from aebench.data.raw import RawDataset
from aebench.errors import UserError



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



def make_digits(n: int, seed: int) -> RawDataset:
    """Fixed dataset: n and seed are accepted for a uniform signature and ignored."""
    del n, seed
    return load_digits_raw()



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

    size = check_size(size, 8, "rotation_glyph")
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
    n = check_n(n, "make_rotation")
    rng = np.random.default_rng(seed)
    angle = rng.uniform(0.0, TWO_PI, size=n)
    x = np.rint(draw_rotations(angle, size) * 255.0).astype(np.uint8)[:, None, :, :]
    return RawDataset(
        x=x,
        label=bins(angle, 0.0, TWO_PI, 8),
        factors={"angle": angle.astype(np.float64)},
        meta={"traits": ["manifold"], "source": f"generated: digits row {ROTATION_DIGIT_ROW} (a '3') rotated through 360 degrees",
              "size": size, "seed": seed, "notes": "bilinear rotation about the centre; angle counter-clockwise"},
    )
