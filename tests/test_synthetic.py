"""Tests for the embedded datasets: pixel conventions, geometry, determinism and manifolds."""

from __future__ import annotations

import math
import time

import numpy as np
import pytest

from aebench.data.raw import RawDataset
from aebench.data.datasets.digits import load_digits_raw
from aebench.data.datasets.lines import make_lines
from aebench.data.datasets.manifolds import make_loop, make_sphere, make_torus
from aebench.data.datasets.shapes import make_shapes, SHAPE_POSITIONS, SHAPE_ROTATIONS, SHAPE_SCALES
from aebench.data.registry import EMBEDDED
from aebench.errors import UserError

SIZE = 32
C = SIZE // 2  # the centre (16, 16) is the corner shared by pixels 15 and 16


def _cosine_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Cosine distance between two images seen as brightness above the background."""
    a = (a + 1.0).ravel().astype(np.float64)
    b = (b + 1.0).ravel().astype(np.float64)
    return 1.0 - float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


# ----------------------------------------------------------------------------- make_lines
# (the renderer itself: tests/test_lines_renderer.py)


def test_make_lines_seeded():
    a, b, c = make_lines(50, 7), make_lines(50, 7), make_lines(50, 8)
    np.testing.assert_array_equal(a.x, b.x)
    np.testing.assert_array_equal(a.factors["angle"], b.factors["angle"])
    assert not np.array_equal(a.x, c.x)


def test_make_lines_rejects_bad_n():
    with pytest.raises(UserError):
        make_lines(0, 1)


# ----------------------------------------------------------------------------- digits


def test_digits():
    raw = load_digits_raw()
    assert raw.x.shape == (1797, 1, 8, 8) and raw.x.dtype == np.uint8
    assert raw.x.min() == 0 and raw.x.max() == 255
    assert raw.label.dtype == np.int64 and set(np.unique(raw.label)) == set(range(10))
    assert raw.factors == {}
    assert "source" in raw.meta and "licence" in raw.meta
    # EMBEDDED ignores n and seed for this fixed dataset.
    np.testing.assert_array_equal(EMBEDDED["digits"](5, 123).x, raw.x)


# ----------------------------------------------------------------------------- shapes


@pytest.fixture(scope="module")
def shapes() -> RawDataset:
    return make_shapes(3000, seed=11)


def test_shapes_contract(shapes):
    raw = shapes
    assert raw.x.shape == (3000, 1, SIZE, SIZE) and raw.x.dtype == np.uint8
    assert set(raw.factors) == {"shape", "scale", "rotation", "pos_x", "pos_y"}
    for values in raw.factors.values():
        assert values.dtype == np.float64 and values.shape == (3000,)
    np.testing.assert_array_equal(raw.label, raw.factors["shape"].astype(np.int64))
    assert set(np.unique(raw.factors["shape"])) == {0.0, 1.0, 2.0}
    assert np.allclose(np.unique(raw.factors["scale"]), np.linspace(0.5, 1.0, 6))
    assert np.allclose(np.unique(raw.factors["rotation"]), SHAPE_ROTATIONS)
    assert len(SHAPE_ROTATIONS) == 40 and np.all((SHAPE_ROTATIONS >= 0) & (SHAPE_ROTATIONS < 2 * np.pi))
    assert np.allclose(np.unique(raw.factors["pos_x"]), SHAPE_POSITIONS)
    assert np.allclose(np.unique(raw.factors["pos_y"]), SHAPE_POSITIONS)
    assert len(SHAPE_POSITIONS) == 16 and len(SHAPE_SCALES) == 6
    # Every image holds a sprite, white on black, with anti-aliased edges.
    assert np.all(raw.x.reshape(3000, -1).max(axis=1) == 255)
    assert np.any((raw.x > 0) & (raw.x < 255))


def test_shapes_factors_uniform(shapes):
    """Each factor is uniform over its grid (chi-square-ish check on counts)."""
    n = len(shapes)
    grids = {"shape": 3, "scale": 6, "rotation": 40, "pos_x": 16, "pos_y": 16}
    for name, k in grids.items():
        _, counts = np.unique(shapes.factors[name], return_counts=True)
        assert len(counts) == k
        expected = n / k
        # Five standard deviations of a binomial count.
        assert np.all(np.abs(counts - expected) < 5 * math.sqrt(expected)), name
    # Independence, roughly: shape is not correlated with position.
    corr = np.corrcoef(shapes.factors["shape"], shapes.factors["pos_x"])[0, 1]
    assert abs(corr) < 0.1


def test_sprites_stay_inside(shapes):
    x = shapes.x[:, 0]
    border = np.concatenate([x[:, 0, :], x[:, -1, :], x[:, :, 0], x[:, :, -1]], axis=1)
    assert border.max() == 0


def test_sprite_position_factors_move_the_sprite(shapes):
    x = shapes.x[:, 0].astype(np.float64)
    mass = x.sum(axis=(1, 2))
    cols, rows = np.arange(SIZE) + 0.5, np.arange(SIZE) + 0.5
    centroid_x = (x.sum(axis=1) @ cols) / mass
    centroid_y = (x.sum(axis=2) @ rows) / mass
    # pos 0 is left/top, 1 is right/bottom; centroids follow the factors closely.
    assert np.corrcoef(centroid_x, shapes.factors["pos_x"])[0, 1] > 0.97
    assert np.corrcoef(centroid_y, shapes.factors["pos_y"])[0, 1] > 0.97


def test_sprite_mass_conserved_when_moved_and_grows_with_scale(shapes):
    f = shapes.factors
    x = shapes.x[:, 0].astype(np.float64)
    mass = x.sum(axis=(1, 2))
    checked = 0
    for shape in (0.0, 1.0, 2.0):
        for rotation in SHAPE_ROTATIONS[:3]:
            sel = (f["shape"] == shape) & (f["scale"] == 1.0) & (f["rotation"] == rotation)
            if sel.sum() >= 2:
                m = mass[sel]
                assert m.max() / m.min() < 1.05
                checked += 1
    assert checked >= 3
    # Area grows with the square of the scale: compare mean masses at scale 0.5 and 1.
    for shape in (0.0, 1.0, 2.0):
        small = mass[(f["shape"] == shape) & (f["scale"] == 0.5)].mean()
        large = mass[(f["shape"] == shape) & (f["scale"] == 1.0)].mean()
        assert 3.5 < large / small < 4.5


def test_sprite_size_about_forty_percent_of_width(shapes):
    f = shapes.factors
    x = shapes.x[:, 0]
    # An ellipse at scale 1 and rotation 0: its major axis is horizontal, 40% of the width.
    sel = np.flatnonzero((f["shape"] == 1.0) & (f["scale"] == 1.0) & (f["rotation"] == 0.0))
    assert len(sel) > 0
    for i in sel:
        lit_cols = np.flatnonzero(x[i].max(axis=0) > 127)
        width = lit_cols.max() - lit_cols.min() + 1
        assert abs(width - 0.4 * SIZE) <= 1.5
        lit_rows = np.flatnonzero(x[i].max(axis=1) > 127)
        assert abs((lit_rows.max() - lit_rows.min() + 1) - 0.2 * SIZE) <= 1.5


def test_rotation_is_counter_clockwise(shapes):
    """An ellipse rotated by pi/4 has its major axis from lower-left to upper-right on screen."""
    f = shapes.factors
    quarter = SHAPE_ROTATIONS[np.argmin(np.abs(SHAPE_ROTATIONS - np.pi / 4))]
    sel = np.flatnonzero((f["shape"] == 1.0) & (f["scale"] == 1.0) & (f["rotation"] == quarter))
    assert len(sel) > 0
    for i in sel:
        img = shapes.x[i, 0].astype(np.float64)
        rows, cols = np.mgrid[0:SIZE, 0:SIZE] + 0.5
        mass = img.sum()
        dx = cols - (img * cols).sum() / mass
        dy_up = -(rows - (img * rows).sum() / mass)
        # Positive covariance of (x, y-up): the sprite leans up-right.
        assert (img * dx * dy_up).sum() / mass > 2.0


def test_shapes_differ_by_shape(shapes):
    f = shapes.factors
    x = shapes.x[:, 0].astype(np.float64)
    mass = x.sum(axis=(1, 2)) / 255.0
    means = [mass[(f["shape"] == s) & (f["scale"] == 1.0)].mean() for s in (0.0, 1.0, 2.0)]
    # Areas at scale 1 (radius 6.4 px): square 2 r^2 ~ 82, ellipse pi r^2 / 2 ~ 64, heart ~ 96.
    assert means[1] < means[0] < means[2]


def test_make_shapes_seeded_and_fast():
    start = time.perf_counter()
    a = make_shapes(2000, 5)
    elapsed = time.perf_counter() - start
    b, c = make_shapes(2000, 5), make_shapes(2000, 6)
    np.testing.assert_array_equal(a.x, b.x)
    for k in a.factors:
        np.testing.assert_array_equal(a.factors[k], b.factors[k])
    assert not np.array_equal(a.x, c.x)
    assert elapsed < 3.0  # ~0.3 s idle


# ----------------------------------------------------------------------------- manifolds


def test_loop():
    raw = make_loop(2000, seed=1, noise=0.05)
    assert raw.x.dtype == np.float32 and raw.x.shape == (2000, 2)
    radius = np.linalg.norm(raw.x, axis=1)
    assert abs(radius.mean() - 1.0) < 0.01 and radius.std() < 0.08
    angle = raw.factors["angle"]
    observed = np.arctan2(raw.x[:, 1], raw.x[:, 0])
    gap = np.abs(np.angle(np.exp(1j * (observed - angle))))  # wrapped angular difference
    assert gap.max() < 0.3
    assert set(np.unique(raw.label)) == set(range(8))
    exact = make_loop(100, seed=1, noise=0.0)
    np.testing.assert_allclose(np.linalg.norm(exact.x, axis=1), 1.0, atol=1e-6)


def test_sphere():
    raw = make_sphere(2000, seed=2, noise=0.02)
    assert raw.x.dtype == np.float32 and raw.x.shape == (2000, 3)
    radius = np.linalg.norm(raw.x, axis=1)
    assert abs(radius.mean() - 1.0) < 0.01 and radius.std() < 0.04
    polar, azimuth = raw.factors["polar"], raw.factors["azimuth"]
    assert np.all((polar >= 0) & (polar <= np.pi)) and np.all((azimuth >= 0) & (azimuth < 2 * np.pi))
    np.testing.assert_allclose(raw.x[:, 2], np.cos(polar), atol=0.1)
    # Uniform on the sphere: z is uniform on [-1, 1], mean ~0, variance ~1/3.
    assert abs(raw.x[:, 2].mean()) < 0.05 and abs(raw.x[:, 2].var() - 1 / 3) < 0.03
    assert set(np.unique(raw.label)) == set(range(8))


def test_torus():
    R, r = 2.0, 0.7
    raw = make_torus(3000, seed=3, R=R, r=r, noise=0.02)
    assert raw.x.dtype == np.float32 and raw.x.shape == (3000, 3)
    x = raw.x.astype(np.float64)
    tube = np.sqrt((np.hypot(x[:, 0], x[:, 1]) - R) ** 2 + x[:, 2] ** 2)
    assert abs(tube.mean() - r) < 0.01 and np.abs(tube - r).max() < 0.15
    # Uniform by area: more points on the outer rim (cos v > 0) than the inner one.
    outer = (np.cos(raw.factors["v"]) > 0).mean()
    expected = 0.5 + r / (np.pi * R)  # integral of (R + r cos v) over cos v > 0, normalised
    assert abs(outer - expected) < 0.04
    assert set(np.unique(raw.label)) == set(range(8))
    exact = make_torus(100, seed=3, noise=0.0)
    e = exact.x.astype(np.float64)
    np.testing.assert_allclose((np.hypot(e[:, 0], e[:, 1]) - 2.0) ** 2 + e[:, 2] ** 2, 0.49, atol=1e-5)


def test_manifolds_seeded_and_validated():
    for make in (make_loop, make_sphere, make_torus):
        np.testing.assert_array_equal(make(100, 4).x, make(100, 4).x)
        assert not np.array_equal(make(100, 4).x, make(100, 5).x)
        with pytest.raises(UserError):
            make(100, 4, noise=-1.0)
    with pytest.raises(UserError):
        make_torus(10, 0, R=0.5, r=0.7)


# ----------------------------------------------------------------------------- registry


def test_embedded_registry():
    assert set(EMBEDDED) == {"digits", "lines", "shapes", "rotation", "loop", "sphere", "torus", "letters"}
    for name, make in EMBEDDED.items():
        raw = make(40, 0)
        assert isinstance(raw, RawDataset)
        if name != "digits":
            assert len(raw) == 40
        assert raw.label.dtype == np.int64
