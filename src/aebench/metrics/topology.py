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
  The authors' protocol compares the whole training set with as many generated points; the
  evaluator's `evaluate.gw_reference` and `evaluate.gw_points` choose the reference split and
  the cap (`gw_points: null` for no cap).
- `bilipschitz(latent, data)`: the DVAE authors' locally bi-Lipschitz constant of the map
  from latent points to the data they decode to (`bilip` in their `vdae_util.py`): for each
  point, the largest distortion max(r, 1/r), r = |x_i - x_j| / |z_i - z_j|, over its k = 100
  nearest neighbours j in latent space; the mean over points. 1 for an isometry, c for a
  scaling by c (or 1/c), and large where the decoder collapses neighbouring codes to one point
  or tears them apart. It is not scale-free: a latent space a different size from the data
  scores its scale factor even when the shapes agree, as in the authors' definition. (Their
  example notebook shuffles the last walk step's points but not its latent samples before
  calling `bilip`, so the pairs it scores do not correspond; here row i decodes row i.)
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

POT and scikit-learn are imported inside the functions that use them (seconds to load).
"""

from __future__ import annotations

import numpy as np
from scipy.spatial.distance import cdist

# Points per set in evaluation. Measured with POT 0.9.7 on one CPU thread, noisy loops of 2000
# points: 300 points take 0.13 s (loop vs loop) to 0.22 s (loop vs a Gaussian blob), 500
# points about 3x as long. The value depends on the set size (loop vs loop 0.0030 at 300,
# 0.0010 at 500; loop vs blob 0.145 and 0.116), so models are compared at the same size only.
GW_POINTS = 300


# Latent neighbours per point of the bi-Lipschitz constant (the authors' k).
BILIP_NEIGHBOURS = 100


def _subsample(points: np.ndarray, n: int | None, rng: np.random.Generator) -> np.ndarray:
    """At most n rows (a seeded choice, in their original order); all of them when n is None."""
    points = np.asarray(points, dtype=np.float64).reshape(len(points), -1)
    if n is None or len(points) <= n:
        return points
    return points[np.sort(rng.choice(len(points), n, replace=False))]


def normalised_distances(points: np.ndarray) -> np.ndarray:
    """Euclidean distance matrix divided by its maximum (all zeros for a single point)."""
    d = cdist(points, points)
    top = d.max()
    return d / top if top > 0 else d


def gw_distance(real: np.ndarray, generated: np.ndarray, max_points: int | None = GW_POINTS, seed: int = 0) -> float:
    """Gromov-Wasserstein discrepancy between two point sets (see module docs), by POT; each
    set is subsampled (seeded) to at most `max_points` points (None: every point). Symmetric
    in its arguments."""
    from ot.gromov import gromov_wasserstein2

    if len(real) < 2 or len(generated) < 2:
        raise ValueError("gw_distance needs at least two points in each set")
    # one generator per set, so swapping the arguments swaps the subsamples
    a = _subsample(real, max_points, np.random.default_rng(seed))
    b = _subsample(generated, max_points, np.random.default_rng(seed))
    C1, C2 = normalised_distances(a), normalised_distances(b)
    p, q = np.full(len(a), 1.0 / len(a)), np.full(len(b), 1.0 / len(b))
    return max(float(gromov_wasserstein2(C1, C2, p, q, loss_fun="square_loss")), 0.0)


def pairwise_distances(points: np.ndarray) -> np.ndarray:
    """Euclidean distance matrix of the rows, by one matrix product (fast for long rows such as
    images; differences below ~1e-8 of the rows' norms are lost to rounding)."""
    sq = np.einsum("ij,ij->i", points, points)
    return np.sqrt(np.maximum(sq[:, None] - 2.0 * points @ points.T + sq[None, :], 0.0))


def local_bilipschitz(latent: np.ndarray, data: np.ndarray, k: int = BILIP_NEIGHBOURS) -> np.ndarray:
    """Each point's local bi-Lipschitz constant (see module docs): (N,) values >= 1.

    Row i of `latent` (N, d) maps to row i of `data` (N, ...). The k nearest neighbours are
    found in latent space (k is capped at N - 1). Distances are floored at 1e-12, so
    coincident points give a very large finite constant instead of a division by zero."""
    z = np.asarray(latent, dtype=np.float64).reshape(len(latent), -1)
    x = np.asarray(data, dtype=np.float64).reshape(len(data), -1)
    if len(z) != len(x):
        raise ValueError(f"local_bilipschitz needs one data row per latent row, got {len(z)} and {len(x)}")
    if len(z) < 2:
        raise ValueError("local_bilipschitz needs at least two points")
    k = min(k, len(z) - 1)
    dz = pairwise_distances(z)
    np.fill_diagonal(dz, np.inf)
    nbrs = np.argpartition(dz, k - 1, axis=1)[:, :k]
    near_z = np.maximum(np.take_along_axis(dz, nbrs, axis=1), 1e-12)
    near_x = np.maximum(np.take_along_axis(pairwise_distances(x), nbrs, axis=1), 1e-12)
    ratio = near_x / near_z
    return np.maximum(ratio, 1.0 / ratio).max(axis=1)


def bilipschitz(latent: np.ndarray, data: np.ndarray, k: int = BILIP_NEIGHBOURS, max_points: int | None = 2000,
                seed: int = 0) -> float:
    """Mean local bi-Lipschitz constant of latent -> data (see module docs), on at most
    `max_points` pairs (seeded; None: all): lower is better, 1 is an isometry."""
    rows = np.arange(len(latent))
    if max_points is not None and len(rows) > max_points:
        rows = np.sort(np.random.default_rng(seed).choice(len(rows), max_points, replace=False))
    return float(local_bilipschitz(np.asarray(latent)[rows], np.asarray(data)[rows], k).mean())


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
                     k: int = 5, max_points: int | None = GW_POINTS, max_reference: int = 5000,
                     seed: int = 0, gw_real: np.ndarray | None = None) -> dict[str, float]:
    """The topology keys of metrics.json for one model: `trustworthiness` of `codes` (the
    codes of `real`), and when the model generates, `gw_distance` between `gw_real` (default:
    `real`) and `generated` (each at most `max_points`, None: all) and `offmanifold_rate` of
    `generated` against `reference` (the training data, at most `max_reference` rows,
    seeded)."""
    out = {"trustworthiness": trustworthiness(real, codes, n_neighbors=k, seed=seed)}
    if generated is not None:
        gw_real = real if gw_real is None else gw_real
        out["gw_distance"] = gw_distance(gw_real, generated, max_points=max_points, seed=seed)
        reference = _subsample(reference, max_reference, np.random.default_rng(seed))
        out["offmanifold_rate"] = offmanifold_rate(reference, generated)
    return out
