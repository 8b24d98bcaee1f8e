"""Known-answer tests for aebench.metrics.reconstruction and aebench.metrics.representation."""

from __future__ import annotations

import math

import numpy as np
import pytest

from aebench.metrics.reconstruction import PSNR_CAP_DB, psnr, recon_mse
from aebench.metrics.representation import (
    cluster_acc,
    cluster_scores,
    hungarian_accuracy,
    knn_acc,
    linear_acc,
    nmi,
    pca_whiten,
)


def blobs(rng, n_per, centres, scale=0.1, shuffle=True):
    """Gaussian blobs around `centres` (C, d); labels = blob index."""
    centres = np.asarray(centres, dtype=float)
    z = np.concatenate([c + scale * rng.standard_normal((n_per, centres.shape[1])) for c in centres])
    y = np.repeat(np.arange(len(centres)), n_per)
    if shuffle:
        order = rng.permutation(len(y))
        z, y = z[order], y[order]
    return z, y


# ------------------------------------------------------------------------ reconstruction


def test_mse_and_psnr_constant_error():
    x = np.zeros((3, 1, 4, 4))
    x_hat = np.full_like(x, 0.1)
    assert recon_mse(x, x_hat) == pytest.approx(0.01, rel=1e-12)
    assert psnr(x, x_hat) == pytest.approx(20.0, rel=1e-12)


def test_psnr_is_mean_of_per_image_psnrs():
    x = np.zeros((2, 2))
    x_hat = np.array([[0.1, 0.1], [1.0, 0.0]])  # per-image MSE 0.01 and 0.5
    assert recon_mse(x, x_hat) == pytest.approx((0.01 + 0.01 + 1.0) / 4, rel=1e-12)
    expected = (20.0 + 10 * math.log10(2.0)) / 2  # not 10*log10(1/0.255)
    assert psnr(x, x_hat) == pytest.approx(expected, rel=1e-12)


def test_psnr_perfect_reconstruction_is_capped():
    x = np.random.default_rng(0).random((4, 3, 5, 5))
    assert psnr(x, x.copy()) == PSNR_CAP_DB == 100.0
    # one perfect image (capped at 100) and one at 20 dB average to 60
    x2 = np.zeros((2, 8))
    x2_hat = np.stack([np.zeros(8), np.full(8, 0.1)])
    assert psnr(x2, x2_hat) == pytest.approx(60.0)
    assert recon_mse(x, x) == 0.0


def test_psnr_data_range_and_float32():
    x = np.zeros((2, 6), dtype=np.float32)
    assert psnr(x, np.full_like(x, 25.5), data_range=255.0) == pytest.approx(20.0, rel=1e-6)
    assert recon_mse(x, np.full_like(x, 0.1)) == pytest.approx(0.01, rel=1e-6)
    with pytest.raises(ValueError):
        psnr(x, x, data_range=0)


def test_reconstruction_shape_mismatch_and_empty():
    with pytest.raises(ValueError):
        recon_mse(np.zeros((2, 3)), np.zeros((3, 2)))
    with pytest.raises(ValueError):
        psnr(np.zeros((2, 3)), np.zeros((2, 3, 1)))
    with pytest.raises(ValueError):
        recon_mse(np.zeros((0, 3)), np.zeros((0, 3)))


# -------------------------------------------------------------------- hungarian accuracy


def test_hungarian_permuted_labelling_is_perfect():
    y = np.array([0, 0, 1, 1, 2, 2, 3, 3, 3])
    relabel = np.array([7, 42, 3, 0])  # arbitrary, non-contiguous cluster ids
    assert hungarian_accuracy(y, relabel[y]) == 1.0


def test_hungarian_constant_prediction_is_chance():
    y = np.repeat(np.arange(4), 5)
    assert hungarian_accuracy(y, np.zeros_like(y)) == pytest.approx(0.25)


def test_hungarian_more_clusters_than_classes():
    y = np.array([0, 0, 0, 0, 1, 1, 1, 1])
    # each class split evenly into two clusters: one-to-one matching credits half
    assert hungarian_accuracy(y, np.array([0, 0, 1, 1, 2, 2, 3, 3])) == pytest.approx(0.5)
    # clusters 0 -> class 0 (3 rows) and 1 -> class 1 (3 rows); 2 and 3 unmatched
    assert hungarian_accuracy(y, np.array([0, 0, 0, 2, 1, 1, 1, 3])) == pytest.approx(0.75)
    # greedy would pair cluster 0 with class 0 (3) and then cluster 1 with class 1 (0);
    # the optimal matching is 0 -> 1 (2) and 1 -> 0 (2)
    y2 = np.array([0, 0, 0, 1, 1, 0, 0])
    p2 = np.array([0, 0, 0, 0, 0, 1, 1])
    assert hungarian_accuracy(y2, p2) == pytest.approx(4 / 7)


def test_hungarian_ignores_unlabelled_rows():
    y = np.array([0, 0, 1, 1, -1, -1])
    p = np.array([1, 1, 0, 0, 1, 0])
    assert hungarian_accuracy(y, p) == 1.0
    assert math.isnan(hungarian_accuracy(np.array([-1, -1]), np.array([0, 1])))


# ------------------------------------------------------------------------- whitening


def test_pca_whiten_identity_covariance_and_drops_constant_dims():
    rng = np.random.default_rng(1)
    z = rng.standard_normal((500, 3)) @ np.array([[5.0, 1.0, 0.0], [0.0, 0.01, 2.0], [0.0, 0.0, 300.0]])
    z = np.column_stack([z, np.full(500, 4.2)])  # constant dimension
    w = pca_whiten(z)
    assert w.shape == (500, 3)
    np.testing.assert_allclose(w.mean(axis=0), 0.0, atol=1e-10)
    np.testing.assert_allclose(np.cov(w, rowvar=False), np.eye(3), atol=1e-10)
    assert pca_whiten(np.ones((10, 4))).shape == (10, 0)


# -------------------------------------------------------------------------- clustering


def test_cluster_scores_separated_blobs():
    rng = np.random.default_rng(2)
    z, y = blobs(rng, 50, 10 * np.eye(4, 8))
    y = np.array([3, 9, 0, 5])[y]  # label values need not be 0..C-1
    scores = cluster_scores(z, y, seed=0)
    assert scores == {"cluster_acc": 1.0, "nmi": pytest.approx(1.0)}
    assert cluster_acc(z, y) == 1.0
    assert nmi(z, y) == pytest.approx(1.0)


def test_cluster_acc_whitening_beats_raw_kmeans_on_stretched_blobs():
    from sklearn.cluster import KMeans

    rng = np.random.default_rng(3)
    n = 200
    y = np.repeat([0, 1], n)
    # classes separate along axis 0 (+-1, sd 0.05); axis 1 is label-free noise with sd 100
    z = np.column_stack([np.where(y == 0, -1.0, 1.0) + 0.05 * rng.standard_normal(2 * n),
                         100.0 * rng.standard_normal(2 * n)])
    raw = KMeans(n_clusters=2, n_init=10, random_state=0).fit_predict(z)
    assert hungarian_accuracy(y, raw) < 0.75  # raw K-means splits the noise axis
    assert cluster_acc(z, y, seed=0) == 1.0
    assert nmi(z, y, seed=0) == pytest.approx(1.0)
    # invariant to an invertible affine map of the codes
    a = np.array([[3.0, -1.0], [0.5, 0.2]])
    assert cluster_acc(z @ a + 7.0, y, seed=0) == 1.0


def test_cluster_scores_near_chance_on_label_free_codes():
    rng = np.random.default_rng(4)
    z = rng.standard_normal((800, 5))
    y = rng.integers(0, 4, 800)
    scores = cluster_scores(z, y, seed=0)
    assert 0.25 <= scores["cluster_acc"] < 0.35
    assert scores["nmi"] < 0.02


def test_cluster_scores_deterministic_ignores_unlabelled_and_nan():
    rng = np.random.default_rng(5)
    z, y = blobs(rng, 30, 10 * np.eye(3))
    # unlabelled rows far away would form their own cluster if they were used
    z_all = np.concatenate([z, 1000 + rng.standard_normal((40, 3))])
    y_all = np.concatenate([y, np.full(40, -1)])
    assert cluster_scores(z_all, y_all, seed=1) == cluster_scores(z_all, y_all, seed=1)
    assert cluster_acc(z_all, y_all, seed=1) == 1.0
    assert nmi(z_all, y_all, seed=1) == pytest.approx(1.0)
    out = cluster_scores(z, np.full(len(y), -1))
    assert math.isnan(out["cluster_acc"]) and math.isnan(out["nmi"])


def test_cluster_scores_constant_codes_and_explicit_k():
    y = np.array([0, 0, 0, 1, 1, 2])
    scores = cluster_scores(np.zeros((6, 2)), y)
    assert scores["cluster_acc"] == pytest.approx(0.5)  # majority class
    assert scores["nmi"] == pytest.approx(0.0)
    rng = np.random.default_rng(6)
    z, yb = blobs(rng, 40, 10 * np.eye(2))
    assert cluster_acc(z, yb, n_clusters=1) == pytest.approx(0.5)
    # over-clustering is not rewarded: four clusters on two blobs lose the unmatched ones
    assert cluster_acc(z, yb, n_clusters=4) < 1.0


def test_cluster_scores_fewer_distinct_codes_than_classes():
    import warnings

    # a collapsed encoder: 4 classes mapped onto 2 distinct codes -> k is capped at 2
    z = np.array([[0.0, 1.0]] * 4 + [[3.0, -1.0]] * 4)
    y = np.array([0, 0, 1, 1, 2, 2, 3, 3])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        scores = cluster_scores(z, y)
    assert scores["cluster_acc"] == pytest.approx(0.5)
    assert scores["nmi"] == pytest.approx(2 / 3)  # I = ln 2, H(Y) = 2 ln 2, H(C) = ln 2


# ---------------------------------------------------------------------------------- kNN


def test_knn_hand_computed():
    z_train = np.array([[0.0], [1.0], [2.0], [10.0], [11.0]])
    y_train = np.array([0, 0, 1, 1, 1])
    z_test = np.array([[0.4], [1.8], [9.0]])
    y_test = np.array([0, 0, 1])
    # k=1: nearest are 0 (->0), 2 (->1), 10 (->1): two of three right
    assert knn_acc(z_train, y_train, z_test, y_test, k=1) == pytest.approx(2 / 3)
    # k=3: {0,1,2} -> 0, {2,1,0} -> 0, {10,11,2} -> 1: all right
    assert knn_acc(z_train, y_train, z_test, y_test, k=3) == 1.0
    # k=2 at 1.8: one vote each for 1 (at 2, nearer) and 0 (at 1): tie -> nearest's label 1
    assert knn_acc(z_train, y_train, [[1.8]], [1], k=2) == 1.0
    assert knn_acc(z_train, y_train, [[1.8]], [0], k=2) == 0.0
    # k beyond the train size: everyone votes, 3 x label 1 beats 2 x label 0
    assert knn_acc(z_train, y_train, z_test, y_test, k=50) == pytest.approx(1 / 3)


def test_knn_vote_tie_three_ways():
    # k=5 labels by distance: 7, 5, 5, 3, 3 -> 5 and 3 tie with two votes; 5 is nearer
    z_train = np.array([[1.0], [2.0], [3.0], [4.0], [5.0], [100.0]])
    y_train = np.array([7, 5, 5, 3, 3, 3])
    assert knn_acc(z_train, y_train, [[0.0]], [5], k=5) == 1.0


def test_knn_blobs_and_random():
    rng = np.random.default_rng(7)
    z, y = blobs(rng, 100, 5 * np.eye(5, 6))
    assert knn_acc(z[:300], y[:300], z[300:], y[300:], k=5) == 1.0
    zr = rng.standard_normal((3000, 8))
    yr = rng.integers(0, 5, 3000)
    acc = knn_acc(zr[:2000], yr[:2000], zr[2000:], yr[2000:], k=5)
    assert abs(acc - 0.2) < 0.06


def test_knn_ignores_unlabelled_rows():
    z_train = np.array([[0.0], [1.0], [0.5]])
    y_train = np.array([0, 1, -1])
    z_test = np.array([[0.1], [0.9], [0.5]])
    # an unlabelled train row at 0.5 would be the 1-NN of every test point if used;
    # the unlabelled test row (which would be scored wrong) is not counted
    assert knn_acc(z_train, y_train, z_test, np.array([0, 1, -1]), k=1) == 1.0
    assert math.isnan(knn_acc(z_train, y_train, z_test, np.full(3, -1)))
    assert math.isnan(knn_acc(z_train, np.full(3, -1), z_test, np.array([0, 1, 0])))
    with pytest.raises(ValueError):
        knn_acc(z_train, y_train, z_test, np.array([0, 1, 0]), k=0)


# ------------------------------------------------------------------------- linear probe


def test_linear_probe_separable_and_badly_scaled():
    rng = np.random.default_rng(8)
    z, y = blobs(rng, 100, 4 * np.eye(3, 5), scale=0.5)
    z[:, 3] *= 1e4  # a huge, label-free dimension: standardisation keeps the probe working
    assert linear_acc(z[:200], y[:200], z[200:], y[200:], seed=0) == 1.0


def test_linear_probe_chance_on_random_codes():
    rng = np.random.default_rng(9)
    z = rng.standard_normal((2000, 10))
    y = rng.integers(0, 4, 2000)
    assert abs(linear_acc(z[:1000], y[:1000], z[1000:], y[1000:]) - 0.25) < 0.07


def test_linear_probe_scaler_fitted_on_train_only():
    rng = np.random.default_rng(10)
    x_train = rng.uniform(-1, 1, 400)
    y_train = (x_train > 0).astype(int)
    x_test = rng.uniform(3, 5, 200)  # all on the positive side of the train boundary
    # standardising the test set on its own statistics would put half of it below zero
    assert linear_acc(x_train[:, None], y_train, x_test[:, None], np.ones(200, int)) == 1.0


def test_linear_probe_unlabelled_and_single_class():
    rng = np.random.default_rng(11)
    z, y = blobs(rng, 50, 4 * np.eye(2))
    y_noisy = y.copy()
    y_noisy[:40] = -1
    assert linear_acc(z, y_noisy, z, y_noisy) == 1.0
    assert math.isnan(linear_acc(z, np.full(len(y), -1), z, y))
    assert linear_acc(z, np.zeros(len(y), int), z, y) == pytest.approx(np.mean(y == 0))


def test_representation_input_validation():
    z = np.zeros((4, 2))
    with pytest.raises(ValueError):
        knn_acc(z, [0, 1, 0], z, [0, 1, 0, 1])  # length mismatch
    with pytest.raises(ValueError):
        linear_acc(z, [0, 1, 0, 1], np.zeros((4, 3)), [0, 1, 0, 1])  # dim mismatch
    with pytest.raises(ValueError):
        cluster_acc(np.array([[np.nan, 0.0]] * 4), [0, 1, 0, 1])
    with pytest.raises(ValueError):
        hungarian_accuracy([0.5, 1.0], [0, 1])  # non-integer labels


# ------------------------------------------------------------------------ MIG (disentanglement_lib's)


def test_mig_uses_the_raw_discrete_factor_values():
    """A 40-valued factor (like dSprites' rotation) keeps its 40 categories: a code that
    recovers it only up to pairs has I = log 20 against H = log 40, where re-binning the
    factor into 20 bins would report about 1."""
    from aebench.metrics.disentanglement import mig

    v = np.tile(np.arange(40), 5).astype(float)
    codes = np.stack([v // 2, np.zeros_like(v)], axis=1)
    assert mig(codes, v) == pytest.approx(math.log(20) / math.log(40), abs=1e-12)
    grid = np.stack(np.meshgrid(np.arange(40.0), np.arange(40.0)), axis=-1).reshape(-1, 2)  # independent factors
    assert mig(grid[:, ::-1] // 2, grid) == pytest.approx(math.log(20) / math.log(40), abs=1e-12)


def test_mig_bins_every_code_into_20_equal_width_bins():
    """Codes always go through the histogram discretiser, even with few distinct values:
    0 and 0.01 share the first of 20 bins over [0, 1], so the code tells v = 2 from the rest only."""
    from aebench.metrics.disentanglement import mig

    v = np.tile(np.arange(3), 30).astype(float)
    codes = np.stack([np.array([0.0, 0.01, 1.0])[v.astype(int)], np.ones_like(v)], axis=1)
    h_code = -(2 / 3) * math.log(2 / 3) - (1 / 3) * math.log(1 / 3)
    assert mig(codes, v) == pytest.approx(h_code / math.log(3), abs=1e-12)


def test_mig_bins_a_continuous_factor_like_the_codes():
    """A factor whose values do not repeat (the lines' angle) is binned with the codes' 20
    bins, so a code equal to it has the full gap."""
    from aebench.metrics.disentanglement import discretise, mig

    angle = np.random.default_rng(0).uniform(0, 2 * math.pi, 1000)
    assert len(np.unique(discretise(angle))) == 20
    assert mig(np.stack([angle, np.zeros_like(angle)], axis=1), angle) == pytest.approx(1.0, abs=1e-12)
    assert len(np.unique(discretise(np.tile(np.arange(40.0), 25)))) == 40
