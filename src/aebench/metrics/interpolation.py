"""The ACAI lines benchmark (Berthelot et al. 2019, section 3): how realistic and how smooth a
model's latent interpolations between two lines are.

Protocol (the authors' `lib/eval.py`, reproduced exactly):

* Every decoded image is compared with a reference set of 10,000 lines drawn at the angles
  `linspace(0, 2 pi - 2 pi / 10000, 10000)` (the authors' expression) by the same renderer as
  the dataset (`aebench.data.datasets.lines.draw_lines`, bit-identical to the authors' renderer,
  float64 pixels, background -1, line +1), using the cosine distance between flattened pixels
  (scipy's `cdist(..., "cosine")`, computed here in float64). Each image keeps its smallest
  distance and that reference line's angle.
* Mean Distance: the mean of those smallest distances over every image of every
  interpolation (the paper's tables show it x 10^-3). A realistic image is close to some
  line, whatever its angle.
* Smoothness of one interpolation: unwrap its angles (`np.unwrap`), then
  `max_t |theta_{t+1} - theta_t| / |theta_last - theta_first| - 1 / (steps - 1)`: 0 when the
  angle moves in equal steps, up to 1 - 1/(steps - 1) when it jumps all at once. It is
  undefined when `|theta_last - theta_first| < 1e-4` (both ends decode to the same line).
  The mean sums the defined scores and divides by the number of all interpolations (the
  undefined ones count as 0); it is NaN when none is defined, as in the authors' code.

Pixel convention: the metric works in the paper's [-1, 1] pixel range, and the cosine
distance is not invariant to that choice (in [0, 1] the background would weigh nothing). It
scores the raw decoder output, as the authors do (their decoders end in a linear layer and
nothing clips the images before `line_eval`): the evaluator's `interpolation_suite`
(aebench.evaluation.suites) hands it a model's `decode_raw(z)`, its unclamped output in the
paper's range (the ACAI family, `aebench.models.acai_family`), and the others' `decode(z)`
(pixel intensities in [0, 1], for most models a sigmoid's output) mapped with `2 x - 1`.
Clamping would change the scores: pixels outside [-1, 1] move the cosine distance.

Public API: pure functions of arrays, `lines_metrics`, `closest_lines`, `smoothness_scores`
and `interpolate_codes`.
"""

from __future__ import annotations

import functools
import math

import numpy as np

from aebench.data.datasets.lines import draw_lines

__all__ = ["lines_metrics", "closest_lines", "smoothness_scores", "interpolate_codes", "N_REFERENCE", "N_PAIRS",
           "N_STEPS"]

N_REFERENCE = 10_000  # reference lines (authors' eval.closest_line)
N_PAIRS = 256  # interpolations evaluated (authors' eval_custom_lines32)
N_STEPS = 16  # images per interpolation, both ends included
UNDEFINED_BELOW = 1e-4  # |theta_last - theta_first| under which smoothness is undefined

# Query images per block of the (queries x 10,000) similarity matrix: 80 MB of float64.
_BLOCK = 1024


@functools.lru_cache(maxsize=4)
def _reference(size: int) -> tuple[np.ndarray, np.ndarray]:
    """(angles, unit-norm flattened reference lines in float64), computed once per size."""
    angles = np.linspace(0.0, 2.0 * math.pi - 2.0 * math.pi / N_REFERENCE, N_REFERENCE)
    lines = draw_lines(angles, size=size, dtype=np.float64).reshape(N_REFERENCE, -1)
    lines /= np.linalg.norm(lines, axis=1, keepdims=True)
    for a in (angles, lines):
        a.flags.writeable = False
    return angles, lines


def closest_lines(images, size: int = 32) -> tuple[np.ndarray, np.ndarray]:
    """Cosine distance to, and angle of, the nearest reference line for each image.

    `images`: (N, size, size) or (N, 1, size, size) in [-1, 1]. Returns (distances, angles),
    each (N,). An all-zero image has no direction: its distance is 1 (orthogonal to every
    line) and its angle that of the first reference line (scipy would give NaN).
    The search is in float64: in float32 the round-off of a 1024-term dot product (~1e-7)
    exceeds the gaps between neighbouring reference lines. Ties (neighbouring angles can
    render to identical images) go to the smallest angle, as `np.argmin` over scipy's
    distances does.
    """
    x = np.asarray(images, dtype=np.float64)
    if x.ndim == 4 and x.shape[1] == 1:
        x = x[:, 0]
    if x.ndim != 3 or x.shape[1:] != (size, size):
        raise ValueError(f"images must be (N, {size}, {size}) or (N, 1, {size}, {size}), got shape {np.shape(images)}")
    if not np.all(np.isfinite(x)):
        raise ValueError("images contain NaN or inf")
    angles, refs = _reference(size)
    flat = x.reshape(len(x), -1)
    norms = np.linalg.norm(flat, axis=1)
    unit = flat / np.where(norms > 0, norms, 1.0)[:, None]
    dist = np.empty(len(x))
    idx = np.empty(len(x), dtype=np.int64)
    for start in range(0, len(x), _BLOCK):
        sim = unit[start:start + _BLOCK] @ refs.T
        best = np.argmax(sim, axis=1)
        idx[start:start + _BLOCK] = best
        dist[start:start + _BLOCK] = 1.0 - sim[np.arange(len(best)), best]
    dist[norms == 0] = 1.0
    return np.maximum(dist, 0.0), angles[idx]


def smoothness_scores(angles) -> np.ndarray:
    """Per-interpolation smoothness of (n_interpolations, steps) angles; NaN where undefined."""
    a = np.unwrap(np.atleast_2d(np.asarray(angles, dtype=np.float64)), axis=-1)
    if a.shape[1] < 2:
        raise ValueError(f"an interpolation needs at least 2 steps, got {a.shape[1]}")
    total = np.abs(a[:, -1] - a[:, 0])
    defined = total >= UNDEFINED_BELOW
    steps = np.abs(np.diff(a, axis=-1)).max(axis=-1)
    score = np.full(len(a), np.nan)
    score[defined] = steps[defined] / total[defined] - 1.0 / (a.shape[1] - 1)
    return score


def lines_metrics(decoded, size: int = 32) -> dict[str, float]:
    """{"mean_distance", "smoothness"} of decoded interpolations (pairs, steps, H, W) in [-1, 1]
    (a channel axis of 1, (pairs, steps, 1, H, W), is accepted too); see the module docs."""
    d = np.asarray(decoded)
    if d.ndim == 5 and d.shape[2] == 1:
        d = d[:, :, 0]
    if d.ndim != 4:
        raise ValueError(f"decoded must be (pairs, steps, H, W), got shape {np.shape(decoded)}")
    pairs, steps = d.shape[:2]
    if pairs == 0:
        raise ValueError("decoded holds no interpolations")
    dist, angles = closest_lines(d.reshape(pairs * steps, *d.shape[2:]), size=size)
    scores = smoothness_scores(angles.reshape(pairs, steps))
    defined = ~np.isnan(scores)
    smooth = float(scores[defined].sum() / pairs) if defined.any() else float("nan")
    return {"mean_distance": float(dist.mean()), "smoothness": smooth}


def interpolate_codes(z_left: np.ndarray, z_right: np.ndarray, steps: int = N_STEPS) -> np.ndarray:
    """(pairs, steps, d) codes `(z_L (steps-1-t) + z_R t) / (steps-1)`, t = 0..steps-1 (the
    authors' formula, both ends included)."""
    t = np.arange(steps, dtype=np.float64)[None, :, None]
    return (z_left[:, None, :] * (steps - 1 - t) + z_right[:, None, :] * t) / (steps - 1)
