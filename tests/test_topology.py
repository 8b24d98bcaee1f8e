"""Topology metrics against known answers."""

from __future__ import annotations

import numpy as np
import pytest

from aebench.metrics.topology import (gw_coupling, gw_distance, normalised_distances, offmanifold_rate,
                                      trustworthiness)


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


def test_gw_coupling_marginals_loss_and_pot_reference():
    rng = np.random.default_rng(1)
    C1, C2 = normalised_distances(rng.random((5, 2))), normalised_distances(rng.random((5, 3)))
    T, loss = gw_coupling(C1, C2)
    assert np.allclose(T.sum(0), 0.2) and np.allclose(T.sum(1), 0.2) and (T >= -1e-15).all()
    direct = ((C1[:, None, :, None] - C2[None, :, None, :]) ** 2 * T[:, :, None, None] * T[None, None]).sum()
    assert loss == pytest.approx(direct, abs=1e-12)
    # POT 0.9.7: ot.gromov.gromov_wasserstein(C1, C2, p, p, "square_loss", log=True)[1]["gw_dist"]
    assert loss == pytest.approx(0.03434235355069633, abs=1e-12)
    product = np.full((5, 5), 1 / 25)  # the starting coupling: the solver only descends from it
    start = ((C1[:, None, :, None] - C2[None, :, None, :]) ** 2 * product[:, :, None, None] * product[None, None]).sum()
    assert loss < start


def test_gw_separates_a_loop_from_a_disc_and_is_symmetric():
    loop_a, loop_b = circle(300, 1, 0.02), circle(300, 2, 0.02)
    rng = np.random.default_rng(3)
    r, t = np.sqrt(rng.uniform(0, 1, 300)), rng.uniform(0, 2 * np.pi, 300)
    disc = np.c_[r * np.cos(t), r * np.sin(t)]
    same, different = gw_distance(loop_a, loop_b), gw_distance(loop_a, disc)
    assert same < 0.002 and different > 5 * same
    assert gw_distance(disc, loop_a) == pytest.approx(different, rel=0.2)


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
