"""Disentanglement metrics: DCI (Eastwood & Williams, 2018) and MIG (Chen et al., 2018).

Pure functions of arrays `codes` (N, d) and `factors` (N, K); the evaluator's
`disentanglement_suite` (aebench.evaluation.suites) feeds them the test codes and factors.

DCI follows the toolkit the GWAE paper was measured with (vaetc's `dci/classifier.py`):
- factors are scaled to [0, 1] (min-max per factor) and constant factors dropped;
- the codes are split 67/33 (train/test, seeded);
- per factor a random-forest regressor (10 trees) is fit on the train codes; the tree depth
  is chosen from {2, 4, 8, 12} by the mean validation MSE over factors. vaetc validates each
  depth by 5-fold cross-validation; here the forests' out-of-bag error plays that role, which
  is the same criterion at a fifth of the cost;
- the forests are grown once, to the deepest depth, and read at each shallower depth by
  stopping every tree there: the trees consider every feature at every node, so a tree
  grown to depth 4 is the depth-12 tree cut at depth 4 (up to ties between equally good
  splits; tested against sklearn's own shallower forests). A third of the time of growing
  a forest per depth (2.1 s instead of 6.0 s for 10,000 16-d codes and 3 factors); the
  trees grow in parallel threads, one per core (1.65x on 2 cores; the same trees, as each
  tree's seed is drawn before they are dealt out);
- the importance matrix R (d, K) holds the forests' impurity importances;
- disentanglement D = sum_j rho_j (1 - H_K(P_j.)), P_j. = R_j. / sum_k R_jk,
  rho_j = sum_k R_jk / sum R (codes weighted by their total importance);
- completeness C = mean_k (1 - H_d(P_.k)), P_.k = R_.k / sum_j R_jk;
- informativeness I = mean_k max(0, 1 - 6 MSE_k) on the test codes (vaetc's "explicitness":
  a constant prediction of a uniform factor has MSE 1/12 and scores 0.5).
`method="gbt"` instead follows disentanglement_lib: a gradient-boosted classifier per factor
on the factor's values as categories (`discretise`), importances from it, and
informativeness = test accuracy.
It is slower (one boosted ensemble per class) and kept for comparison with that literature.

MIG follows disentanglement_lib: every code dimension is discretised into 20 equal-width
bins (its histogram discretiser), while the factors are used as they are, one category per
distinct value (dSprites' 40 rotations and 32 positions stay 40 and 32 categories);
MIG = mean_k (I(z_(1); v_k) - I(z_(2); v_k)) / H(v_k), with z_(1), z_(2) the two code
dimensions sharing the most information with factor k. disentanglement_lib's factors are
always discrete; a continuous factor here (the lines' angle: nearly every value distinct,
where H(v_k) would be log N and the score meaningless) is binned like the codes, see
`discretise`.
"""

from __future__ import annotations

import numpy as np
from sklearn.ensemble import GradientBoostingClassifier, RandomForestRegressor
from sklearn.metrics import mutual_info_score
from sklearn.model_selection import train_test_split

__all__ = ["importance_matrix", "dci_from_importance", "dci", "histogram_bins", "discretise", "mig"]

RF_DEPTHS = (2, 4, 8, 12)


def _entropy_rows(p: np.ndarray, base: int) -> np.ndarray:
    """Entropy of each row of a non-negative matrix, normalised to a distribution, in log base."""
    if base <= 1:
        return np.zeros(len(p))
    total = p.sum(axis=1, keepdims=True)
    q = np.divide(p, total, out=np.full_like(p, 1.0 / p.shape[1]), where=total > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(q > 0, q * np.log(q), 0.0)
    return -terms.sum(axis=1) / np.log(base)


def dci_from_importance(r: np.ndarray) -> tuple[float, float]:
    """(D, C) from an importance matrix r of shape (codes, factors)."""
    r = np.abs(np.asarray(r, dtype=np.float64))
    d, k = r.shape
    if r.sum() == 0:
        return 0.0, 0.0
    per_code = 1.0 - _entropy_rows(r, k)
    rho = r.sum(axis=1) / r.sum()
    per_factor = 1.0 - _entropy_rows(r.T, d)
    return float(np.sum(rho * per_code)), float(np.mean(per_factor))


def _check(codes, factors) -> tuple[np.ndarray, np.ndarray]:
    codes = np.asarray(codes, dtype=np.float64)
    factors = np.asarray(factors, dtype=np.float64)
    if factors.ndim == 1:
        factors = factors[:, None]
    if codes.ndim != 2 or len(codes) != len(factors):
        raise ValueError(f"codes (N, d) and factors (N, K) must have the same N, got {codes.shape} and {factors.shape}")
    if len(codes) < 10:
        raise ValueError(f"need at least 10 codes, got {len(codes)}")
    return codes, factors


def _scaled(factors: np.ndarray) -> np.ndarray:
    low, high = factors.min(axis=0), factors.max(axis=0)
    return (factors - low) / np.where(high > low, high - low, 1.0)


def importance_matrix(codes, factors, *, method: str = "rf", seed: int = 0, test_size: float = 0.33,
                      n_estimators: int = 10, depths=RF_DEPTHS) -> tuple[np.ndarray, np.ndarray]:
    """(R of shape (d, K), per-factor informativeness of shape (K,)); see the module doc.

    Factors must not be constant (drop them first; `dci` does).
    """
    codes, factors = _check(codes, factors)
    if method == "rf":
        t = _scaled(factors)
        z_tr, z_te, t_tr, t_te = train_test_split(codes, t, test_size=test_size, random_state=seed)
        forests = [RandomForestRegressor(n_estimators=n_estimators, max_depth=max(depths), random_state=seed,
                                         n_jobs=-1).fit(z_tr, t_tr[:, k])
                   for k in range(t.shape[1])]
        depth = min(depths, key=lambda d: np.mean([_oob_mse(f, d, z_tr, t_tr[:, k]) for k, f in enumerate(forests)]))
        r = np.stack([_forest_importances(f, depth) for f in forests], axis=1)
        mse = np.array([np.mean((_forest_predict(f, depth, z_te) - t_te[:, k]) ** 2) for k, f in enumerate(forests)])
        return r, np.maximum(0.0, 1.0 - 6.0 * mse)
    if method == "gbt":
        y = np.stack([discretise(factors[:, k]) for k in range(factors.shape[1])], axis=1)
        z_tr, z_te, y_tr, y_te = train_test_split(codes, y, test_size=test_size, random_state=seed)
        r = np.zeros((codes.shape[1], y.shape[1]))
        acc = np.zeros(y.shape[1])
        for k in range(y.shape[1]):
            model = GradientBoostingClassifier(random_state=seed).fit(z_tr, y_tr[:, k])
            r[:, k] = np.abs(model.feature_importances_)
            acc[k] = np.mean(model.predict(z_te) == y_te[:, k])
        return r, acc
    raise ValueError(f"unknown DCI method {method!r}; use 'rf' or 'gbt'")


def _node_depths(tree) -> np.ndarray:
    """Depth of every node of a fitted sklearn tree (the root is 0), level by level."""
    depth = np.zeros(tree.node_count, dtype=np.int64)
    level, frontier = 0, np.array([0])
    while len(frontier):
        depth[frontier] = level
        children = np.concatenate([tree.children_left[frontier], tree.children_right[frontier]])
        frontier, level = children[children >= 0], level + 1
    return depth


def _tree_predict(estimator, depth: int, x: np.ndarray) -> np.ndarray:
    """A fitted regression tree's predictions had it been grown only to `depth`: each point
    walks down at most `depth` splits (sklearn's rule: float32 feature <= threshold goes left)
    and takes the mean target of the node it stops at."""
    tree = estimator.tree_
    x = np.asarray(x, dtype=np.float32)
    rows = np.arange(len(x))
    node = np.zeros(len(x), dtype=np.int64)
    for _ in range(depth):
        left, right = tree.children_left[node], tree.children_right[node]
        go_left = x[rows, np.maximum(tree.feature[node], 0)] <= tree.threshold[node]
        node = np.where(left < 0, node, np.where(go_left, left, right))
    return tree.value[node, 0, 0]


def _forest_predict(forest: RandomForestRegressor, depth: int, x: np.ndarray) -> np.ndarray:
    return np.mean([_tree_predict(tree, depth, x) for tree in forest.estimators_], axis=0)


def _forest_importances(forest: RandomForestRegressor, depth: int) -> np.ndarray:
    """sklearn's `feature_importances_` of the forest cut at `depth`: each tree's impurity
    decreases over its splits above that depth, normalised per tree, averaged, normalised."""
    per_tree = []
    for estimator in forest.estimators_:
        tree = estimator.tree_
        split = (tree.children_left >= 0) & (_node_depths(tree) < depth)
        if not split.any():
            continue
        w, imp = tree.weighted_n_node_samples, tree.impurity
        left, right = tree.children_left[split], tree.children_right[split]
        decrease = w[split] * imp[split] - w[left] * imp[left] - w[right] * imp[right]
        importance = np.bincount(tree.feature[split], weights=decrease, minlength=forest.n_features_in_)
        per_tree.append(importance / importance.sum() if importance.sum() > 0 else importance)
    if not per_tree:
        return np.zeros(forest.n_features_in_)
    mean = np.mean(per_tree, axis=0)
    return mean / mean.sum() if mean.sum() > 0 else mean


def _oob_mse(forest: RandomForestRegressor, depth: int, x: np.ndarray, target: np.ndarray) -> float:
    """Out-of-bag MSE of the forest cut at `depth`: each training point predicted by the trees
    that did not see it (points seen by every tree are left out)."""
    total = np.zeros(len(x))
    count = np.zeros(len(x))
    for tree, drawn in zip(forest.estimators_, forest.estimators_samples_):
        unseen = np.ones(len(x), dtype=bool)
        unseen[drawn] = False
        total[unseen] += _tree_predict(tree, depth, x[unseen])
        count[unseen] += 1
    seen = count > 0
    if not seen.any():
        return np.inf
    return float(np.mean((total[seen] / count[seen] - target[seen]) ** 2))


def dci(codes, factors, *, method: str = "rf", seed: int = 0) -> dict[str, float]:
    """dci_disentanglement, dci_completeness, dci_informativeness (constant factors dropped)."""
    codes, factors = _check(codes, factors)
    keep = factors.max(axis=0) > factors.min(axis=0)
    if not keep.any():
        raise ValueError("every factor is constant: nothing to disentangle")
    r, info = importance_matrix(codes, factors[:, keep], method=method, seed=seed)
    d, c = dci_from_importance(r)
    return {"dci_disentanglement": d, "dci_completeness": c, "dci_informativeness": float(np.mean(info))}


def histogram_bins(values, bins: int = 20) -> np.ndarray:
    """disentanglement_lib's histogram discretiser: `bins` equal-width bins over the values'
    range, numbered 1..bins (a constant falls into one bin)."""
    values = np.asarray(values, dtype=np.float64)
    return np.digitize(values, np.histogram(values, bins)[1][:-1])


def discretise(values, bins: int = 20) -> np.ndarray:
    """A factor as integer categories: one per distinct value (disentanglement_lib uses the
    ground-truth factor values as they are) when the values repeat, i.e. there are at most
    max(bins, N / 2) distinct values; a continuous factor, whose values barely repeat, gets
    `bins` equal-width bins instead."""
    values = np.asarray(values, dtype=np.float64)
    distinct = np.unique(values)
    if len(distinct) <= max(bins, len(values) // 2):
        return np.searchsorted(distinct, values)
    return histogram_bins(values, bins)


def mig(codes, factors, bins: int = 20) -> float:
    """Mutual information gap, averaged over the non-constant factors (in [0, 1])."""
    codes, factors = _check(codes, factors)
    if codes.shape[1] < 2:
        raise ValueError("MIG needs at least two code dimensions")
    zc = [histogram_bins(codes[:, j], bins) for j in range(codes.shape[1])]
    gaps = []
    for k in range(factors.shape[1]):
        v = discretise(factors[:, k], bins)
        h = mutual_info_score(v, v)
        if h <= 0:
            continue
        m = np.sort([mutual_info_score(z, v) for z in zc])[::-1]
        gaps.append((m[0] - m[1]) / h)
    if not gaps:
        raise ValueError("every factor is constant: nothing to disentangle")
    return float(np.mean(gaps))
