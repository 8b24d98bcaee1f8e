"""Checks and binning shared by the generated datasets (`aebench.data.datasets`).

Every generator takes (n, seed); some take keyword options that params.yaml sets per dataset
(`data.options.<dataset>`, see `aebench.config.DatasetOptions`), and `aebench.data.registry`
refuses an option a generator does not take. Images are stored as uint8 (N, C, H, W) like
every other raw image dataset, so preprocess treats all of them alike; vector datasets are
float32 (N, D). Unless stated otherwise labels are 8 equal-width bins of the first factor, so
that classification probes have something to predict.

Coordinates: a pixel at row i, column j covers [j, j+1) x [i, i+1) in (x, y) with rows going
down; angles are in radians, counter-clockwise as seen on screen, from the +x axis (so
pi/2 points up, toward smaller row indices).
"""

from __future__ import annotations

import math

import numpy as np

from aebench.errors import UserError

TWO_PI = 2.0 * math.pi


def check_n(n: int, what: str) -> int:
    if int(n) != n or n < 1:
        raise UserError(f"{what}: n must be a positive integer, got {n!r}")
    return int(n)


def check_size(size: int, minimum: int, what: str) -> int:
    if int(size) != size or size < minimum:
        raise UserError(f"{what}: size must be an integer >= {minimum}, got {size!r}")
    return int(size)


def check_noise(noise: float, what: str) -> float:
    if not (noise >= 0.0 and math.isfinite(noise)):
        raise UserError(f"{what}: noise must be a finite number >= 0, got {noise!r}")
    return float(noise)


def bins(values: np.ndarray, low: float, high: float, k: int) -> np.ndarray:
    """Index of the equal-width bin of [low, high) holding each value, clipped into 0..k-1."""
    idx = np.floor((np.asarray(values, dtype=np.float64) - low) / (high - low) * k)
    return np.clip(idx, 0, k - 1).astype(np.int64)
