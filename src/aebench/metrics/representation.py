"""Representation metrics: how much label structure the frozen codes carry.

Conventions (shared by every function here):

* Codes `z` are (N, d) float arrays (cast to float64); labels `y` are (N,) integer arrays
  (integer-valued floats are accepted). Codes must be finite: NaN or inf raises ValueError.
* A label of -1 means "no label". Every function drops rows whose label is -1 before doing
  anything else: unlabelled train rows are not neighbours and do not fit the probe,
  unlabelled test rows are not scored, and clustering (whitening included) uses only the
  labelled rows. When no labelled rows remain (on either side, for train/test metrics) the
  result is float("nan") rather than an error, so a dataset without labels still evaluates.
* Everything is deterministic: k-NN has no randomness, the probe and K-means take an
  explicit `seed`.

Public API: `knn_acc`, `linear_acc`, `linear_head_acc`, `cluster_scores` (with the thin wrappers `cluster_acc`
and `nmi`), `cluster_acc_paper` (the ACAI paper's train-fitted protocol), `hungarian_accuracy`
and `pca_whiten`.

scikit-learn and scipy are imported inside the functions that use them: they take about a
second to load, which a model importing `knn_acc` for its own suite should not pay.
"""

from __future__ import annotations

import warnings

import numpy as np

__all__ = [
    "knn_acc",
    "linear_acc",
    "linear_head_acc",
    "cluster_scores",
    "cluster_acc",
    "nmi",
    "cluster_acc_paper",
    "hungarian_accuracy",
    "pca_whiten",
]

UNLABELLED = -1

# Principal directions whose standard deviation is below this fraction of the largest one
# are dropped by the whitening (constant or numerically-zero directions of the codes).
_WHITEN_REL_TOL = 1e-6


def _one_thread():
    """A context in which BLAS and OpenMP run one thread. K-means on at most a test split of
    codes and the probe's L-BFGS are many small steps, where a second thread costs more than it
    brings: on 2 cores one thread made them 2.1x and 1.7x faster (10,000 x 16 codes: 1.22 to
    0.58 s, 0.27 to 0.16 s). It also makes their float sums, and so the scores, independent of
    the machine's core count."""
    from threadpoolctl import threadpool_limits

    return threadpool_limits(1)


# --------------------------------------------------------------------------- validation


def _as_labels(y, name: str) -> np.ndarray:
    y = np.asarray(y)
    if y.ndim != 1:
        raise ValueError(f"{name} must be a 1-D label array, got shape {y.shape}")
    if y.dtype.kind in "iu":
        return y.astype(np.int64, copy=False)
    if y.dtype.kind == "b":
        return y.astype(np.int64)
    if y.dtype.kind == "f" and np.all(np.isfinite(y)) and np.all(y == np.round(y)):
        return y.astype(np.int64)
    raise ValueError(f"{name} must hold integer labels (-1 = unlabelled), got dtype {y.dtype}")


def _as_codes(z, name: str) -> np.ndarray:
    z = np.asarray(z, dtype=np.float64)
    if z.ndim != 2:
        raise ValueError(f"{name} must be a 2-D (N, d) code array, got shape {z.shape}")
    if not np.all(np.isfinite(z)):
        raise ValueError(f"{name} contains NaN or inf; codes must be finite")
    return z


def _labelled(z, y, zname: str, yname: str) -> tuple[np.ndarray, np.ndarray]:
    """Validated (codes, labels) restricted to the rows whose label is not -1."""
    z = _as_codes(z, zname)
    y = _as_labels(y, yname)
    if z.shape[0] != y.shape[0]:
        raise ValueError(f"{zname} has {z.shape[0]} rows but {yname} has {y.shape[0]} labels")
    keep = y != UNLABELLED
    if keep.all():
        return z, y
    return z[keep], y[keep]


# --------------------------------------------------------------------------------- k-NN


def _check_positive_int(name: str, value) -> None:
    if int(value) != value or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")


def _train_test(z_train, y_train, z_test, y_test):
    """The labelled rows of both sides, checked to have equal dimensions; None when either
    side has no labelled rows."""
    ztr, ytr = _labelled(z_train, y_train, "z_train", "y_train")
    zte, yte = _labelled(z_test, y_test, "z_test", "y_test")
    if ztr.shape[1] != zte.shape[1]:
        raise ValueError(f"z_train has {ztr.shape[1]} dimensions but z_test has {zte.shape[1]}")
    if ztr.shape[0] == 0 or zte.shape[0] == 0:
        return None
    return ztr, ytr, zte, yte


def knn_acc(z_train, y_train, z_test, y_test, k: int = 5) -> float:
    """k-nearest-neighbour classification accuracy of test codes against train codes.

    Protocol: plain Euclidean distance on the raw codes (no scaling, so the metric sees the
    geometry the model produced), the k nearest labelled train codes vote with equal
    weight, and the majority label is the prediction. A tie between classes is broken in
    favour of the tied class whose member is nearest (so with k=1 it is 1-NN, and a
    2-2-1 split goes to the pair containing the closer neighbour). Distance ties at the
    k-th neighbour are left to the exact neighbour search (deterministic for given
    inputs; they do not occur for continuous codes). If fewer than k
    labelled train rows exist, all of them vote.

    Implementation: scikit-learn's exact brute-force NearestNeighbors (its chunked,
    multithreaded arg-k-min over ||a||^2 - 2 a.b + ||b||^2, memory bounded by the chunk
    size, not by N_train x N_test), which returns each test code's neighbours nearest
    first; the vote with the tie rule above is done here in numpy. 60k x 10k codes at
    d=64 take a few seconds on two cores.

    Returns the fraction of labelled test rows predicted correctly, or NaN when either side
    has no labelled rows.
    """
    from sklearn.neighbors import NearestNeighbors

    _check_positive_int("k", k)
    pairs = _train_test(z_train, y_train, z_test, y_test)
    if pairs is None:
        return float("nan")
    ztr, ytr, zte, yte = pairs

    classes, ytr_idx = np.unique(ytr, return_inverse=True)
    k = min(int(k), ztr.shape[0])
    # Centre on the train mean: identical distances, less cancellation in the a.b trick.
    mean = ztr.mean(axis=0)
    index = NearestNeighbors(n_neighbors=k, algorithm="brute", metric="euclidean").fit(ztr - mean)
    nn = index.kneighbors(zte - mean, return_distance=False)  # (n_test, k), nearest first
    neigh = ytr_idx[nn]
    step = max(1, 4_000_000 // classes.size)  # bounds the (rows x classes) vote tables
    correct = 0
    for start in range(0, neigh.shape[0], step):
        pred = classes[_vote(neigh[start : start + step], classes.size)]
        correct += int(np.sum(pred == yte[start : start + step]))
    return correct / yte.size


def _vote(neigh: np.ndarray, n_classes: int) -> np.ndarray:
    """Majority class per row of `neigh` (class indices, nearest first); ties -> nearest."""
    m, k = neigh.shape
    rows = np.arange(m)
    counts = np.zeros((m, n_classes), dtype=np.int64)
    first = np.full((m, n_classes), k, dtype=np.int64)  # rank of each class's nearest member
    for j in range(k - 1, -1, -1):
        counts[rows, neigh[:, j]] += 1
        first[rows, neigh[:, j]] = j
    # More votes wins; among equal votes the smaller first rank wins (k+1 > any rank gap).
    return np.argmax(counts * (k + 1) - first, axis=1)


# ------------------------------------------------------------------------- linear probe


def linear_acc(z_train, y_train, z_test, y_test, seed: int = 0) -> float:
    """Test accuracy of a linear softmax probe trained on frozen, standardised codes.

    Protocol (after the ACAI paper's single linear layer on the latent): standardise every
    code dimension with the mean and standard deviation of the labelled train codes (the
    test codes reuse those statistics, nothing is fitted on test), then fit scikit-learn's
    LogisticRegression (multinomial softmax for more than two classes, lbfgs, default L2
    strength C=1, max_iter=1000, which converges on ~10k x 64 codes in about a second) and
    report accuracy on the labelled test codes. Standardising makes the fixed L2 penalty
    and the optimiser's convergence independent of the code scale each model happens to
    use. A training set with a single class predicts that class.

    Returns NaN when either side has no labelled rows.
    """
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    pairs = _train_test(z_train, y_train, z_test, y_test)
    if pairs is None:
        return float("nan")
    ztr, ytr, zte, yte = pairs
    classes = np.unique(ytr)
    if classes.size == 1:
        return float(np.mean(yte == classes[0]))

    scaler = StandardScaler().fit(ztr)
    probe = LogisticRegression(C=1.0, solver="lbfgs", max_iter=1000, random_state=seed)
    with warnings.catch_warnings(), _one_thread():
        # Reaching max_iter leaves a probe that is still a valid (slightly under-fitted)
        # linear classifier; the metric is reported either way, so the warning is noise.
        warnings.simplefilter("ignore", ConvergenceWarning)
        probe.fit(scaler.transform(ztr), ytr)
    return float(np.mean(probe.predict(scaler.transform(zte)) == yte))


def linear_head_acc(weight, bias, z, y) -> float:
    """Accuracy of a given linear softmax classifier on codes: the predicted class of a row is
    argmax(W z + b) (the softmax does not change the argmax; ties go to the lowest class).

    For the probe trained alongside the model (`train.joint_probe`): weight (n_classes, d),
    bias (n_classes,). Rows labelled -1 are ignored; NaN when none remain.
    """
    z, y = _labelled(z, y, "z", "y")
    weight, bias = np.asarray(weight, dtype=np.float64), np.asarray(bias, dtype=np.float64)
    if weight.ndim != 2 or weight.shape[1] != z.shape[1] or bias.shape != (weight.shape[0],):
        raise ValueError(f"weight must be (n_classes, {z.shape[1]}) and bias (n_classes,), "
                         f"got {weight.shape} and {bias.shape}")
    if y.size == 0:
        return float("nan")
    return float(np.mean(np.argmax(z @ weight.T + bias, axis=1) == y))


# --------------------------------------------------------------------------- clustering


def pca_whiten(z) -> np.ndarray:
    """PCA-whitened copy of codes `z` (N, d): zero mean, identity covariance.

    The centred codes Zc are decomposed as U S V^T and projected on the principal axes,
    Zc V S^-1 sqrt(N - 1) (= U sqrt(N - 1): unit sample variance with ddof=1, uncorrelated).
    Principal directions whose standard deviation is below 1e-6 of the largest are dropped
    instead of being blown up to unit variance (they are constant or float round-off), so
    the result has shape (N, r) with r <= d the numerical rank; constant codes give an
    (N, 0) array.
    """
    z = _as_codes(z, "z")
    n = z.shape[0]
    if n < 2:
        return np.zeros((n, 0))
    centred = z - z.mean(axis=0)
    _, s, vt = np.linalg.svd(centred, full_matrices=False)
    if s.size == 0 or s[0] <= 0:
        return np.zeros((n, 0))
    keep = s > s[0] * _WHITEN_REL_TOL
    # Projecting (rather than returning U) maps identical codes to identical rows.
    return centred @ (vt[keep].T * (np.sqrt(n - 1) / s[keep]))


def hungarian_accuracy(y_true, y_pred) -> float:
    """Accuracy under the best one-to-one matching of predicted clusters to true labels.

    Builds the contingency table (clusters x classes), finds the matching that maximises the
    number of agreeing rows with the Hungarian algorithm
    (scipy.optimize.linear_sum_assignment), and divides that count by the number of rows.
    The table may be rectangular: with more clusters than classes the extra clusters match
    nothing and their rows count as errors (over-clustering is not rewarded, unlike a
    many-to-one "purity"); with fewer clusters some classes go unmatched. Cluster ids may
    be any integers (e.g. -1 for noise). Rows whose true label is -1 are ignored; NaN if
    none remain.
    """
    from scipy.optimize import linear_sum_assignment

    y_true = _as_labels(y_true, "y_true")
    y_pred = _as_labels(y_pred, "y_pred")
    if y_true.shape != y_pred.shape:
        raise ValueError(f"y_true has {y_true.size} labels but y_pred has {y_pred.size}")
    keep = y_true != UNLABELLED
    y_true, y_pred = y_true[keep], y_pred[keep]
    if y_true.size == 0:
        return float("nan")
    _, t = np.unique(y_true, return_inverse=True)
    _, p = np.unique(y_pred, return_inverse=True)
    table = np.zeros((p.max() + 1, t.max() + 1), dtype=np.int64)
    np.add.at(table, (p, t), 1)
    rows, cols = linear_sum_assignment(table, maximize=True)
    return float(table[rows, cols].sum() / y_true.size)


def _n_distinct_rows(w: np.ndarray) -> int:
    """Number of distinct rows of a 2-D float array (1 when it has no columns)."""
    if w.shape[1] == 0:
        return 1 if w.shape[0] else 0
    # "+ 0.0" turns -0.0 into 0.0 so equal values have equal bytes.
    rows = np.ascontiguousarray(w + 0.0).view(np.dtype((np.void, w.dtype.itemsize * w.shape[1])))
    return int(np.unique(rows.ravel()).size)


def _kmeans_labels(z: np.ndarray, n_clusters: int, seed: int, n_init: int) -> np.ndarray:
    """K-means (k-means++, Lloyd, scikit-learn) assignments of PCA-whitened codes."""
    from sklearn.cluster import KMeans

    # Distinct codes are counted before whitening: identical codes must count once, and
    # round-off in the whitening could make their whitened copies differ in the last bit.
    k = min(n_clusters, _n_distinct_rows(z))
    if k <= 1:
        return np.zeros(z.shape[0], dtype=np.int64)
    km = KMeans(n_clusters=k, n_init=n_init, random_state=seed)
    with _one_thread():
        return km.fit_predict(pca_whiten(z)).astype(np.int64)


def cluster_scores(z, y, n_clusters: int | None = None, seed: int = 0, n_init: int = 10) -> dict[str, float]:
    """Cluster the codes once and score the clustering against the labels.

    Protocol: drop unlabelled rows, PCA-whiten the remaining codes (see `pca_whiten`), run
    K-means with k = the number of distinct labels (or `n_clusters`), k-means++ init,
    `n_init` restarts and `random_state=seed`, then report

    * ``cluster_acc``: `hungarian_accuracy` of the assignments (best one-to-one matching);
    * ``nmi``: scikit-learn's normalized_mutual_info_score, i.e. I(C; Y) normalised by
      the arithmetic mean of H(C) and H(Y).

    Whitening first puts every direction of the code space on the same footing: K-means
    minimises Euclidean within-cluster variance, so on raw codes it splits whichever
    direction has the most variance, even when that variance is label-independent noise
    and the classes separate along a low-variance direction. Whitening makes the score
    invariant (up to round-off) to any invertible affine map of the codes, so models that
    differ only in the scale or rotation of their latent score the same.

    k is capped at the number of distinct codes; a single cluster (e.g. constant
    codes) gives the majority-class accuracy and an NMI of 0 (1 if there is also one
    class). Returns both values as NaN when no labelled rows remain.
    """
    from sklearn.metrics import normalized_mutual_info_score

    if int(n_init) != n_init or n_init < 1:
        raise ValueError(f"n_init must be a positive integer, got {n_init!r}")
    z, y = _labelled(z, y, "z", "y")
    if y.size == 0:
        return {"cluster_acc": float("nan"), "nmi": float("nan")}
    if n_clusters is None:
        n_clusters = int(np.unique(y).size)
    elif int(n_clusters) != n_clusters or n_clusters < 1:
        raise ValueError(f"n_clusters must be a positive integer or None, got {n_clusters!r}")
    assign = _kmeans_labels(z, int(n_clusters), int(seed), int(n_init))
    return {
        "cluster_acc": hungarian_accuracy(y, assign),
        "nmi": float(normalized_mutual_info_score(y, assign)),
    }


def cluster_acc(z, y, n_clusters: int | None = None, seed: int = 0, n_init: int = 10) -> float:
    """Hungarian-matched accuracy of K-means on whitened codes; see `cluster_scores`."""
    return cluster_scores(z, y, n_clusters=n_clusters, seed=seed, n_init=n_init)["cluster_acc"]


def nmi(z, y, n_clusters: int | None = None, seed: int = 0, n_init: int = 10) -> float:
    """Normalised mutual information of K-means on whitened codes; see `cluster_scores`."""
    return cluster_scores(z, y, n_clusters=n_clusters, seed=seed, n_init=n_init)["nmi"]


def _train_whitening(z_train: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(mean, projection) that whiten `z_train`: (z - mean) @ projection has zero mean and unit
    variance along every principal direction of the train codes (directions below 1e-6 of the
    largest standard deviation dropped, as in `pca_whiten`)."""
    mean = z_train.mean(axis=0)
    _, s, vt = np.linalg.svd(z_train - mean, full_matrices=False)
    if s.size == 0 or s[0] <= 0:
        return mean, np.zeros((z_train.shape[1], 0))
    keep = s > s[0] * _WHITEN_REL_TOL
    return mean, vt[keep].T * (np.sqrt(max(z_train.shape[0] - 1, 1)) / s[keep])


def cluster_acc_paper(z_train, y_train, z_test, y_test, n_init: int = 1000, max_iter: int = 1000,
                      seed: int = 0) -> float:
    """Test accuracy of K-means fitted on the train codes: the ACAI paper's clustering protocol
    (Berthelot et al. 2019, Tables 2-3; the authors' `cluster.py`).

    Protocol: whiten with an SVD of the centred train codes (the test codes reuse the train
    mean and axes; nothing is fitted on test), fit K-means with k = the number of distinct
    train labels on the whitened train codes (random initial centres drawn from the data,
    `n_init` restarts, at most `max_iter` Lloyd iterations each, the lowest-inertia run kept;
    the paper: 1000 and 1000), assign each test code to its nearest centre, and score that
    with `hungarian_accuracy`. Unlike `cluster_scores`, which clusters the test codes
    themselves, the clusters here must generalise from train to test.

    The authors divide by the singular values themselves; here by the per-direction standard
    deviation, a global rescaling that leaves K-means unchanged (scikit-learn's stopping
    tolerance is relative to the data's variance). Numerically null directions are dropped
    rather than divided by ~0. Cost: about 0.4 s per restart for 60,000 x 32 codes on one
    core, so the paper's 1000 restarts take 5-10 minutes.

    Returns NaN when either side has no labelled rows.
    """
    from sklearn.cluster import KMeans

    _check_positive_int("n_init", n_init)
    _check_positive_int("max_iter", max_iter)
    pairs = _train_test(z_train, y_train, z_test, y_test)
    if pairs is None:
        return float("nan")
    ztr, ytr, zte, yte = pairs
    k = min(int(np.unique(ytr).size), _n_distinct_rows(ztr))
    if k <= 1:
        return hungarian_accuracy(yte, np.zeros_like(yte))
    mean, projection = _train_whitening(ztr)
    km = KMeans(n_clusters=k, init="random", n_init=int(n_init), max_iter=int(max_iter), random_state=seed)
    with _one_thread():
        km.fit((ztr - mean) @ projection)
        assign = km.predict((zte - mean) @ projection)
    return hungarian_accuracy(yte, assign)
