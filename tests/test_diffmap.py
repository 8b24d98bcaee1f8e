"""Diffusion maps against a dense reference computed independently here (the non-symmetric
Markov matrix's eigenpairs from numpy), on known geometry, the Nystrom extension, PCA and the
approximate neighbour search. (The diffmap stage's outputs are tested in test_dvae.py, with
the model that reads them.)"""

from __future__ import annotations


import numpy as np
import pytest

from aebench.diffmap import AUTO_RANK, diffusion_map, fit_diffusion_map, knn_search, nystrom


def reference(X, eps, k=None, alpha=1.0, m=4, t=1):
    """Textbook diffusion map: full (or brute-force k-NN, symmetrised) kernel, P's eigenvectors."""
    d2 = ((X[:, None] - X[None]) ** 2).sum(-1)
    K = np.exp(-d2 / eps)
    if k is not None:
        mask = np.zeros_like(K, dtype=bool)
        for i in range(len(X)):
            others = [j for j in np.argsort(d2[i], kind="stable") if j != i][:k]
            mask[i, others] = True
        mask |= mask.T
        np.fill_diagonal(mask, True)
        K = K * mask
    q = K.sum(1)
    Ka = K / np.outer(q ** alpha, q ** alpha)
    d = Ka.sum(1)
    w, v = np.linalg.eig(Ka / d[:, None])
    order = np.argsort(-w.real)
    w, v = w.real[order], v.real[:, order]
    v = v / np.sqrt(((d / d.sum())[:, None] * v ** 2).sum(0))  # unit norm in L2(pi)
    return v[:, 1:m + 1] * w[1:m + 1] ** t, w[1:m + 1]


def blob(n=160, seed=0):
    """Anisotropic Gaussian: well-separated eigenvalues, so eigenvectors are defined up to sign."""
    return np.random.default_rng(seed).standard_normal((n, 3)) * np.array([1.0, 0.5, 0.25])


def agree_up_to_sign(a, b):
    signs = np.sign((a * b).sum(0))
    return np.abs(a - b * signs).max()


@pytest.mark.parametrize("k, alpha, t", [(None, 1.0, 1), (None, 0.5, 2), (12, 1.0, 1), (12, 0.0, 3)])
def test_matches_dense_reference(k, alpha, t):
    X = blob()
    n_neighbors = len(X) - 1 if k is None else k
    fit = fit_diffusion_map(X, 4, n_neighbors, epsilon=0.4, alpha=alpha, t=t)
    emb_ref, lam_ref = reference(X, 0.4, k, alpha, t=t)
    assert np.abs(fit.eigenvalues - lam_ref).max() < 1e-6
    assert agree_up_to_sign(fit.embedding, emb_ref) < 1e-6
    emb, lam = diffusion_map(X, 4, n_neighbors, 0.4, alpha, t)  # the functional form, same numbers
    assert np.array_equal(emb, fit.embedding) and np.array_equal(lam, fit.eigenvalues)


def test_auto_epsilon_is_the_median_squared_distance_to_the_tenth_neighbour():
    X = blob()
    d2 = np.sort(((X[:, None] - X[None]) ** 2).sum(-1), axis=1)[:, 1:]
    expected = np.median(d2[:, AUTO_RANK - 1])
    assert fit_diffusion_map(X, 3, 30).epsilon == pytest.approx(expected, rel=1e-6)
    assert fit_diffusion_map(X, 3, len(X) - 1).epsilon == pytest.approx(expected, rel=1e-6)


def test_eigenvalues_descending_below_one_and_signs_fixed():
    fit = fit_diffusion_map(blob(), 5, 15)
    assert np.all(np.diff(fit.eigenvalues) <= 0) and fit.eigenvalues[0] < 1
    assert fit.info["trivial_eigenvalue"] == pytest.approx(1.0, abs=1e-10)
    pivots = np.abs(fit.psi).argmax(0)
    assert np.all(fit.psi[pivots, np.arange(5)] > 0)


def test_noisy_circle_first_two_coordinates_trace_a_circle():
    rng = np.random.default_rng(1)
    theta = rng.uniform(0, 2 * np.pi, 600)
    X = np.c_[np.cos(theta), np.sin(theta)] + 0.03 * rng.standard_normal((600, 2))
    emb, lam = diffusion_map(X, 2, 15, "auto")
    radius = np.linalg.norm(emb - emb.mean(0), axis=1)
    assert radius.std() / radius.mean() < 0.1  # a circle, not a line or a blob
    assert lam[0] == pytest.approx(lam[1], rel=5e-3)  # the cos/sin pair
    angle = np.unwrap(np.arctan2(emb[:, 1], emb[:, 0])[np.argsort(theta)])
    assert abs(abs(angle[-1] - angle[0]) - 2 * np.pi) < 0.5  # one full turn, in order


def test_line_segment_first_coordinate_monotone():
    s = np.random.default_rng(2).uniform(0, 1, 300)
    X = np.c_[s, 0.3 * s, -0.5 * s]  # a segment in R^3, randomly sampled
    emb, _ = diffusion_map(X, 2, 25, "auto")  # 10 neighbours leave this sample's graph disconnected
    steps = np.diff(emb[np.argsort(s), 0])
    assert np.all(steps > 0) or np.all(steps < 0)


def test_nystrom_reproduces_dense_fit_and_extends_smoothly():
    X = blob()
    fit = fit_diffusion_map(X, 3, len(X) - 1, 0.4)
    assert np.abs(nystrom(fit, X) - fit.embedding).max() < 1e-10
    sparse = fit_diffusion_map(X, 3, 20, 0.4)
    new = X[:20] + 1e-4  # a tiny move barely changes the coordinates
    assert np.abs(nystrom(sparse, new) - nystrom(sparse, X[:20])).max() < 1e-2
    assert np.abs(nystrom(sparse, X) - sparse.embedding).max() < 0.1 * np.abs(sparse.embedding).max()


def test_pca_then_map_matches_map_of_projected_data():
    rng = np.random.default_rng(3)
    low = rng.standard_normal((150, 3)) * np.array([1.0, 0.6, 0.3])
    X = low @ rng.standard_normal((3, 20))  # rank 3 in 20 dimensions: 3 PCA axes lose nothing
    a = fit_diffusion_map(X, 3, 12, "auto", pca_components=3)
    b = fit_diffusion_map(X - X.mean(0), 3, 12, "auto")
    assert np.abs(a.eigenvalues - b.eigenvalues).max() < 1e-6
    assert a.reference.shape == (150, 3)


def test_inverted_file_search_finds_nearly_all_true_neighbours():
    rng = np.random.default_rng(4)  # 30 clusters in 8-D: structure, as in real data
    X = (rng.standard_normal((30, 8))[rng.integers(0, 30, 3000)] + 0.3 * rng.standard_normal((3000, 8))).astype(np.float32)
    exact_d, exact_i = knn_search(X, X, 10, "exact")
    approx_d, approx_i = knn_search(X, X, 10, "ivf")
    recall = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(exact_i, approx_i)])
    assert recall > 0.9
    assert np.all(approx_d >= exact_d - 1e-4)  # never closer than the truth
    assert np.all(exact_i[:, 0] == np.arange(3000))
