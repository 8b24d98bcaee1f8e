"""Reconstruction metrics: pure functions of a batch of inputs and its reconstructions.

Conventions (shared by every function here):

* `x` and `x_hat` are float arrays of the same shape whose first axis indexes images,
  e.g. (N, C, H, W) or (N, D); pixel values live in [0, data_range] (1.0 for the
  benchmark's [0, 1] images). A single image must be passed as a batch of one.
* Arithmetic is done in float64, in chunks of images, so float32 inputs of any size give
  the same answer to within float64 rounding and memory stays bounded.
* Shape mismatches and empty batches raise `ValueError`: both are pipeline bugs, never a
  property of a model. Non-finite reconstructions (a diverged decoder) propagate as NaN.
"""

from __future__ import annotations

import numpy as np

__all__ = ["recon_mse", "psnr", "PSNR_CAP_DB"]

#: The PSNR given to a perfect (or numerically perfect) reconstruction of one image.
PSNR_CAP_DB = 100.0

# Elements per chunk: bounds the float64 temporaries whatever the batch size.
_CHUNK_ELEMENTS = 4_000_000


def _check_pair(x, x_hat) -> tuple[np.ndarray, np.ndarray]:
    x = np.asarray(x)
    x_hat = np.asarray(x_hat)
    if x.shape != x_hat.shape:
        raise ValueError(f"x and x_hat must have the same shape, got {x.shape} and {x_hat.shape}")
    if x.ndim == 0:
        raise ValueError("x must be a batch of images (first axis indexes images), got a scalar")
    if x.size == 0:
        raise ValueError(f"x is empty (shape {x.shape}); nothing to score")
    return x, x_hat


def _per_image_mse(x: np.ndarray, x_hat: np.ndarray) -> np.ndarray:
    """Mean squared error of each image (mean over all axes but the first), float64."""
    n = x.shape[0]
    per_image = int(np.prod(x.shape[1:], dtype=np.int64))
    flat_x = x.reshape(n, per_image)
    flat_h = x_hat.reshape(n, per_image)
    step = max(1, _CHUNK_ELEMENTS // max(per_image, 1))
    out = np.empty(n, dtype=np.float64)
    for start in range(0, n, step):
        diff = flat_x[start : start + step].astype(np.float64) - flat_h[start : start + step].astype(np.float64)
        out[start : start + step] = np.einsum("ij,ij->i", diff, diff) / per_image
    return out


def recon_mse(x, x_hat) -> float:
    """Mean squared error over every element of the batch.

    Protocol: sum of (x - x_hat)^2 over all N * C * H * W elements divided by their count,
    i.e. the per-pixel MSE on the [0, 1] scale (not summed over pixels, not per batch), so
    numbers are comparable across image sizes and with the PSNR below. Because every image
    has the same number of elements this equals the mean of the per-image MSEs.

    Raises ValueError when the shapes differ or the batch is empty.
    """
    x, x_hat = _check_pair(x, x_hat)
    return float(np.mean(_per_image_mse(x, x_hat)))


def psnr(x, x_hat, data_range: float = 1.0) -> float:
    """Peak signal-to-noise ratio in dB, averaged over images.

    Protocol: for each image i, PSNR_i = 10 * log10(data_range^2 / MSE_i) with MSE_i the
    mean squared error over that image's pixels and channels; the result is the mean of the
    PSNR_i. Averaging per-image PSNRs (rather than taking the PSNR of the batch MSE) is the
    usual image-quality convention and does not let a few badly reconstructed images hide
    behind many good ones on the log scale.

    A perfect reconstruction has MSE_i = 0 and an infinite PSNR; each PSNR_i is therefore
    capped at `PSNR_CAP_DB` = 100 dB (an MSE below 1e-10 of the squared range), so the mean
    stays finite and one perfect image cannot dominate the average.

    Raises ValueError when the shapes differ, the batch is empty or data_range <= 0.
    """
    if not np.isfinite(data_range) or data_range <= 0:
        raise ValueError(f"data_range must be a positive number, got {data_range!r}")
    x, x_hat = _check_pair(x, x_hat)
    mse = _per_image_mse(x, x_hat)
    with np.errstate(divide="ignore"):
        per_image = 10.0 * np.log10(float(data_range) ** 2 / mse)
    per_image = np.where(np.isnan(per_image), np.nan, np.minimum(per_image, PSNR_CAP_DB))
    return float(np.mean(per_image))
