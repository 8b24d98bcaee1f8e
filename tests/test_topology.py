"""Topology metrics against known answers."""

from __future__ import annotations

import numpy as np
import pytest

from aebench.metrics.topology import gw_distance, normalised_distances, offmanifold_rate, trustworthiness


def circle(n, seed, noise=0.0):
    rng = np.random.default_rng(seed)
    t = rng.uniform(0, 2 * np.pi, n)
    return np.c_[np.cos(t), np.sin(t)] + noise * rng.standard_normal((n, 2))


def test_gw_zero_for_an_isometric_copy_at_any_scale():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((40, 3))
    Q, _ = np.linalg.qr(rng.standard_normal((3, 3)))
    Y = (3.0 * X @ Q + 5.0)[rng.permutation(40)]  # rotated, scaled, moved, shuffled
    assert gw_distance(X, Y) < 1e-12


def test_gw_known_value_triangle_against_segment():
    """Equilateral triangle vs three evenly spaced collinear points: every matching costs
    (1/9) * 4 * (1 - 1/2)^2 = 1/9, and a brute-force search over couplings finds nothing lower."""
    triangle = np.array([[0, 0], [1, 0], [0.5, np.sqrt(3) / 2]])
    segment = np.array([[0.0], [0.5], [1.0]])
    assert gw_distance(triangle, segment) == pytest.approx(1 / 9, abs=1e-9)


def test_gw_is_pots_square_loss_value_on_max_normalised_matrices():
    """The reference: POT's own call on the max-normalised distance matrices, uniform weights."""
    import ot

    rng = np.random.default_rng(1)
    a, b = rng.random((7, 2)), rng.random((5, 3))  # sets of different sizes
    C1, C2 = normalised_distances(a), normalised_distances(b)
    assert C1.max() == pytest.approx(1.0) and C2.max() == pytest.approx(1.0)
    expected = ot.gromov.gromov_wasserstein(C1, C2, ot.unif(7), ot.unif(5), "square_loss", log=True)[1]["gw_dist"]
    assert gw_distance(a, b) == pytest.approx(expected, abs=1e-12)
    assert gw_distance(a, b) > 0


def test_gw_circle_closer_to_a_rotated_scaled_circle_than_to_a_disc_and_symmetric():
    loop = circle(300, 1, 0.02)
    theta = 0.7
    rotation = np.array([[np.cos(theta), -np.sin(theta)], [np.sin(theta), np.cos(theta)]])
    other_loop = 4.0 * circle(250, 2, 0.02) @ rotation.T + np.array([3.0, -1.0])  # another sample, moved
    rng = np.random.default_rng(3)
    r, t = np.sqrt(rng.uniform(0, 1, 300)), rng.uniform(0, 2 * np.pi, 300)
    disc = np.c_[r * np.cos(t), r * np.sin(t)]
    same, different = gw_distance(loop, other_loop), gw_distance(loop, disc)
    assert same < 0.005 and different > 5 * same
    assert gw_distance(disc, loop) == pytest.approx(different, abs=1e-12)
    assert gw_distance(other_loop, loop) == pytest.approx(same, abs=1e-12)


def test_gw_subsamples_large_sets_seeded():
    big_a, big_b = circle(3000, 4, 0.02), circle(2000, 5, 0.02)
    value = gw_distance(big_a, big_b, max_points=100, seed=7)
    assert value == gw_distance(big_a, big_b, max_points=100, seed=7)  # same seed, same subsamples
    assert value != gw_distance(big_a, big_b, max_points=100, seed=8)
    assert value < 0.02  # two loops still
    with pytest.raises(ValueError, match="two points"):
        gw_distance(big_a[:1], big_b)


def test_trustworthiness_known_answers():
    X = np.random.default_rng(4).standard_normal((200, 5))
    assert trustworthiness(X, X) == pytest.approx(1.0)
    assert trustworthiness(X, 2 * X[:, ::-1] + 1) == pytest.approx(1.0)  # a similarity keeps every neighbour
    assert trustworthiness(X, np.random.default_rng(5).standard_normal((200, 2))) < 0.7


def test_offmanifold_rate():
    real = circle(500, 6, 0.01)
    assert offmanifold_rate(real, circle(200, 7, 0.01)) < 0.05
    blob = np.random.default_rng(8).standard_normal((200, 2))  # a standard-normal prior's samples
    assert offmanifold_rate(real, blob) > 0.5
