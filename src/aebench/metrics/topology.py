"""Topology metrics: does a generated point set have the data's shape?

- `gw_distance(real, generated)`: the Gromov-Wasserstein discrepancy between the two sets'
  intra-set distance matrices (Memoli 2011), computed as the DVAE authors do with POT (the
  Python Optimal Transport library): `ot.gromov.gromov_wasserstein2(C1, C2, p, q,
  "square_loss")` with C1, C2 the Euclidean distance matrices each divided by its maximum
  (so the scale of a set does not matter, only its shape) and p, q uniform weights. The
  value is sum_ijkl (C1_ik - C2_jl)^2 T_ij T_kl at the coupling T that POT's conditional
  gradient (Frank-Wolfe) solver finds. It is 0 for isometric sets and grows as the shapes
  differ (a loop against a filled disc, a sphere against a blob). Each set is first
  subsampled (seeded) to at most `GW_POINTS` points: the solver's cost grows with the cube
  of the set size, and the sets may differ in size.
- `trustworthiness(data, codes)`: scikit-learn's trustworthiness (Venna & Kaski 2001): 1
  when every point's nearest neighbours among the codes were also near it in the data.
- `offmanifold_rate(real, generated)`: the fraction of generated points farther from every
  real point than twice the 99th percentile of the real points' distances to their own
  nearest neighbours: samples "off the manifold", where a Gaussian prior can put them. (The
  margin of 2 keeps an independent sample of the data itself near 0: at the bare percentile
  a second sample of a noisy circle already scored 7.5%.)

Non-convexity: POT's solver finds a stationary coupling from the independent coupling p q^T,
not necessarily the global optimum, so the value is an upper bound on the true GW
discrepancy; it is deterministic for given inputs.
"""

from __future__ import annotations

import numpy as np
from scipy.spatial.distance import cdist

# Points per set in evaluation. Measured with POT 0.9.7 on one CPU thread, noisy loops of 2000
# points: 300 points take 0.13 s (loop vs loop) to 0.22 s (loop vs a Gaussian blob), 500
# points about 3x as long. The value depends on the set size (loop vs loop 0.0030 at 300,
# 0.0010 at 500; loop vs blob 0.145 and 0.116), so models are compared at the same size only.
GW_POINTS = 300


def _subsample(points: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    points = np.asarray(points, dtype=np.float64).reshape(len(points), -1)
    if len(points) <= n:
        return points
    return points[np.sort(rng.choice(len(points), n, replace=False))]


def normalised_distances(points: np.ndarray) -> np.ndarray:
    """Euclidean distance matrix divided by its maximum (all zeros for a single point)."""
    d = cdist(points, points)
    top = d.max()
    return d / top if top > 0 else d


def gw_distance(real: np.ndarray, generated: np.ndarray, max_points: int = GW_POINTS, seed: int = 0) -> float:
    """Gromov-Wasserstein discrepancy between two point sets (see module docs), by POT; each
    set is subsampled (seeded) to at most `max_points` points. Symmetric in its arguments."""
    from ot.gromov import gromov_wasserstein2

    if len(real) < 2 or len(generated) < 2:
        raise ValueError("gw_distance needs at least two points in each set")
    # one generator per set, so swapping the arguments swaps the subsamples
    a = _subsample(real, max_points, np.random.default_rng(seed))
    b = _subsample(generated, max_points, np.random.default_rng(seed))
    C1, C2 = normalised_distances(a), normalised_distances(b)
    p, q = np.full(len(a), 1.0 / len(a)), np.full(len(b), 1.0 / len(b))
    return max(float(gromov_wasserstein2(C1, C2, p, q, loss_fun="square_loss")), 0.0)


def trustworthiness(data: np.ndarray, codes: np.ndarray, n_neighbors: int = 5, max_points: int = 2000,
                    seed: int = 0) -> float:
    """scikit-learn's trustworthiness of `codes` as an embedding of `data` (on at most
    `max_points` rows, seeded: the exact computation is quadratic in the number of rows)."""
    from sklearn.manifold import trustworthiness as sk_trustworthiness

    data = np.asarray(data, dtype=np.float64).reshape(len(data), -1)
    codes = np.asarray(codes, dtype=np.float64).reshape(len(codes), -1)
    if len(data) > max_points:
        rows = np.sort(np.random.default_rng(seed).choice(len(data), max_points, replace=False))
        data, codes = data[rows], codes[rows]
    k = min(n_neighbors, (len(data) - 1) // 2)  # scikit-learn requires k < n / 2
    return float(sk_trustworthiness(data, codes, n_neighbors=k))


def nearest_distances(queries: np.ndarray, points: np.ndarray, exclude_self: bool = False) -> np.ndarray:
    """Each query's Euclidean distance to its nearest row of `points` (not itself, if asked)."""
    from sklearn.neighbors import NearestNeighbors

    queries = np.asarray(queries, dtype=np.float64).reshape(len(queries), -1)
    points = np.asarray(points, dtype=np.float64).reshape(len(points), -1)
    nn = NearestNeighbors(n_neighbors=2 if exclude_self else 1).fit(points)
    dist, _ = nn.kneighbors(queries)
    return dist[:, -1]


def offmanifold_rate(real: np.ndarray, generated: np.ndarray, quantile: float = 0.99, margin: float = 2.0) -> float:
    """Fraction of generated points farther from the real set than `margin` times the
    `quantile` of the real points' distances to their own nearest neighbour (see module docs)."""
    threshold = margin * np.quantile(nearest_distances(real, real, exclude_self=True), quantile)
    return float(np.mean(nearest_distances(generated, real) > threshold))


def topology_metrics(real: np.ndarray, generated: np.ndarray | None, codes: np.ndarray, reference: np.ndarray,
                     k: int = 5, max_points: int = GW_POINTS, max_reference: int = 5000,
                     seed: int = 0) -> dict[str, float]:
    """The topology keys of metrics.json for one model: `trustworthiness` of `codes` (the
    codes of `real`), and when the model generates, `gw_distance` between `real` and
    `generated` and `offmanifold_rate` of `generated` against `reference` (the training
    data, at most `max_reference` rows, seeded)."""
    out = {"trustworthiness": trustworthiness(real, codes, n_neighbors=k, seed=seed)}
    if generated is not None:
        out["gw_distance"] = gw_distance(real, generated, max_points=max_points, seed=seed)
        reference = _subsample(reference, max_reference, np.random.default_rng(seed))
        out["offmanifold_rate"] = offmanifold_rate(reference, generated)
    return out
