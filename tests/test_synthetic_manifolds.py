"""The rotated digit (a circle in image space), the manifolds' ambient embedding, and the
per-dataset generator options of params.yaml (`data.options.<dataset>`)."""

from __future__ import annotations

import numpy as np
import pytest
import yaml
from scipy.spatial.distance import pdist, squareform

from aebench.data.raw import load_raw
from aebench.data.datasets.digits import draw_rotations, make_rotation, rotation_glyph
from aebench.data.datasets.manifolds import embedding_basis, make_loop, make_sphere, make_torus
from aebench.data.registry import check_options, EMBEDDED, generate, supported_options
from aebench.errors import UserError

TWO_PI = 2 * np.pi


# ----------------------------------------------------------------------------- rotation


def test_rotation_contract_and_determinism():
    raw = make_rotation(400, seed=3)
    assert raw.x.dtype == np.uint8 and raw.x.shape == (400, 1, 16, 16)
    angle = raw.factors["angle"]
    assert set(raw.factors) == {"angle"} and np.all((angle >= 0) & (angle < TWO_PI))
    assert np.array_equal(raw.label, np.floor(angle / TWO_PI * 8).astype(np.int64))
    assert np.bincount(raw.label, minlength=8).min() > 30  # 8 balanced angle bins
    assert np.array_equal(make_rotation(50, 3).x, make_rotation(50, 3).x)
    assert not np.array_equal(make_rotation(50, 3).x, make_rotation(50, 4).x)
    assert np.array_equal(EMBEDDED["rotation"](50, 3).x, make_rotation(50, 3).x)


def test_rotation_turns_the_glyph_counter_clockwise_and_keeps_it_inside():
    glyph = rotation_glyph(16)
    assert glyph.shape == (16, 16) and glyph.min() >= 0 and glyph.max() == pytest.approx(1.0, abs=0.05)
    quarter = draw_rotations([0.0, np.pi / 2, np.pi, 3 * np.pi / 2])
    for k in range(4):  # np.rot90 turns counter-clockwise on screen
        np.testing.assert_allclose(quarter[k], np.rot90(glyph, k), atol=1e-12)
    images = make_rotation(300, 0).x[:, 0].astype(np.float64) / 255
    mass = images.sum(axis=(1, 2))
    assert mass.max() / mass.min() < 1.03  # nothing is cut off at any angle
    border = np.concatenate([images[:, 0], images[:, -1], images[:, :, 0], images[:, :, -1]], axis=1)
    assert border.max() < 0.05


def test_rotation_is_a_circle_in_image_space():
    """Nearby angles give nearby images and distant ones distant images (the map angle -> image
    is continuous and one-to-one), and the first two diffusion coordinates trace a circle
    whose phase is the angle."""
    from aebench.diffmap import fit_diffusion_map

    raw = make_rotation(600, seed=1)
    x = raw.x.reshape(600, -1).astype(np.float64) / 255
    angle = raw.factors["angle"]
    base = draw_rotations([0.0])[0].ravel()
    near, *far = [np.linalg.norm(draw_rotations([a])[0].ravel() - base) for a in (0.05, 1.0, 1.5, np.pi, 5.0)]
    assert near < 0.25 * min(far)
    fit = fit_diffusion_map(x, 2, 12, "auto", seed=0)
    c = fit.embedding
    radius = np.hypot(c[:, 0], c[:, 1])
    assert radius.std() / radius.mean() < 0.1
    phase = np.arctan2(c[:, 1], c[:, 0])
    spread = min(np.abs(np.mean(np.exp(1j * (phase - sign * angle)))) for sign in (1, -1))
    best = max(np.abs(np.mean(np.exp(1j * (phase - sign * angle)))) for sign in (1, -1))
    assert best > 0.98 and spread < 0.2  # phase = +-angle + a constant


# ----------------------------------------------------------------------------- ambient embedding


def test_embedding_basis_is_orthonormal_and_seeded():
    q = embedding_basis(3, 10, seed=4)
    assert q.shape == (10, 3)
    np.testing.assert_allclose(q.T @ q, np.eye(3), atol=1e-12)
    assert np.array_equal(q, embedding_basis(3, 10, seed=4)) and not np.allclose(q, embedding_basis(3, 10, seed=5))


@pytest.mark.parametrize("make, native", [(make_loop, 2), (make_sphere, 3), (make_torus, 3)])
def test_embedding_keeps_distances_and_puts_noise_in_every_dimension(make, native):
    clean = make(300, 2, noise=0.0)
    lifted = make(300, 2, noise=0.0, ambient_dim=10)
    assert lifted.x.shape == (300, 10) and lifted.x.dtype == np.float32
    np.testing.assert_allclose(pdist(lifted.x), pdist(clean.x), atol=1e-5)  # an isometry
    basis = embedding_basis(native, 10, 2)
    np.testing.assert_allclose(lifted.x @ basis, clean.x, atol=1e-5)  # the map is recoverable
    for key in clean.factors:  # same points: the map has a generator of its own
        assert np.array_equal(clean.factors[key], lifted.factors[key])
    assert np.array_equal(clean.label, lifted.label) and lifted.meta["ambient_dim"] == 10

    noisy = make(3000, 2, noise=0.05, ambient_dim=10)
    off = noisy.x - (noisy.x @ basis) @ basis.T  # the part outside the manifold's span
    assert off.std() * np.sqrt(10 / (10 - native)) == pytest.approx(0.05, rel=0.05)  # isotropic, std = noise
    exact = make(3000, 2, noise=0.0, ambient_dim=10)
    deviation = np.linalg.norm(noisy.x - exact.x, axis=1)  # |noise| ~ 0.05 sqrt(10)
    assert deviation.mean() == pytest.approx(0.05 * np.sqrt(10), rel=0.05)


def test_default_is_the_native_space_and_ambient_below_native_is_refused():
    assert make_loop(100, 0).x.shape == (100, 2) and make_torus(100, 0).x.shape == (100, 3)
    assert "ambient_dim" not in make_loop(10, 0).meta
    with pytest.raises(UserError, match="ambient_dim must be an integer >= 3"):
        make_sphere(10, 0, ambient_dim=2)
    with pytest.raises(UserError, match="`data.options.sphere.ambient_dim` = 2 .*native dimension 3"):
        check_options("sphere", {"ambient_dim": 2})
    assert make_sphere(10, 0, ambient_dim=3).x.shape == (10, 3)  # equal: a random rotation


def test_options_a_dataset_does_not_take_are_refused_naming_the_key():
    assert supported_options("loop") == ["ambient_dim", "noise", "variant"]
    assert supported_options("lines") == [] and supported_options("mnist") == []
    with pytest.raises(UserError, match=r"`data\.options\.lines\.noise`.*remove it"):
        generate("lines", 10, 0, {"noise": 0.1})
    with pytest.raises(UserError, match=r"`data\.options\.rotation\.ambient_dim`"):
        check_options("rotation", {"ambient_dim": 5})
    with pytest.raises(UserError, match=r"`data\.options\.mnist\.noise`.*downloaded"):
        check_options("mnist", {"noise": 0.1})
    assert generate("torus", 20, 0, {"noise": 0.0, "ambient_dim": 4}).x.shape == (20, 4)


# ----------------------------------------------------------------------------- the DVAE authors' sets


def test_paper_loop_is_the_authors_curve_on_a_regular_grid():
    raw = make_loop(600, 5, variant="paper")
    t = raw.factors["angle"]
    np.testing.assert_allclose(np.sort(t), TWO_PI * np.arange(600) / 600, atol=1e-12)  # every grid point once
    expected = np.stack([np.cos(t), np.sin(2 * t), np.sin(3 * t)], axis=1)
    np.testing.assert_allclose(raw.x, expected, atol=1e-6)  # in R^3 and noise-free
    assert raw.meta["noise"] == 0.0 and raw.meta["variant"] == "paper"
    other = make_loop(600, 6, variant="paper")  # the seed orders the same set
    assert not np.array_equal(raw.x, other.x) and np.array_equal(np.sort(raw.x, 0), np.sort(other.x, 0))
    noisy = make_loop(600, 5, variant="paper", noise=0.1)
    assert (noisy.x - raw.x).std() == pytest.approx(0.1, rel=0.1)  # noise only when asked


def test_paper_sphere_is_an_even_noise_free_grid():
    raw = make_sphere(800, 0, variant="paper")
    assert raw.x.shape == (800, 3) and raw.meta["noise"] == 0.0
    np.testing.assert_allclose(np.linalg.norm(raw.x, axis=1), 1.0, atol=1e-6)
    polar, azimuth = raw.factors["polar"], raw.factors["azimuth"]
    along = np.stack([np.sin(polar) * np.cos(azimuth), np.sin(polar) * np.sin(azimuth), np.cos(polar)], axis=1)
    np.testing.assert_allclose(raw.x, along, atol=1e-6)

    def nearest(x):
        d = squareform(pdist(x))
        np.fill_diagonal(d, np.inf)
        return d.min(1)

    grid, uniform = nearest(raw.x), nearest(make_sphere(800, 0, noise=0.0).x)
    assert grid.max() / grid.min() < 2 < uniform.max() / uniform.min()  # evenly spread, unlike random points
    assert np.bincount(raw.label, minlength=8).min() > 800 / 8 / 2  # balanced bands


def test_paper_torus_has_radii_2_and_1_and_no_repeated_points():
    raw = make_torus(500, 0, variant="paper")
    x, u, v = raw.x.astype(np.float64), raw.factors["u"], raw.factors["v"]
    np.testing.assert_allclose((np.hypot(x[:, 0], x[:, 1]) - 2.0) ** 2 + x[:, 2] ** 2, 1.0, atol=1e-5)
    m = 23  # ceil(sqrt(500)): the angles lie on an m x m grid
    np.testing.assert_allclose(np.r_[u, v] * m / TWO_PI, np.round(np.r_[u, v] * m / TWO_PI), atol=1e-9)
    assert pdist(x).min() > 0.1  # the seam (angle 0 = 2 pi) is not doubled
    assert (raw.meta["R"], raw.meta["r"], raw.meta["noise"]) == (2.0, 1.0, 0.0)
    assert make_torus(100, 0).meta["r"] == 0.7  # the default variant is unchanged


def test_variant_reaches_the_generator_and_the_default_is_unchanged():
    assert np.array_equal(generate("sphere", 50, 1, {"variant": "paper"}).x, make_sphere(50, 1, variant="paper").x)
    assert np.array_equal(generate("loop", 50, 1, {"variant": "default"}).x, make_loop(50, 1).x)
    assert make_loop(50, 1).meta["noise"] == 0.05 and make_sphere(50, 1).meta["noise"] == 0.02
    assert generate("loop", 20, 0, {"variant": "paper", "ambient_dim": 5}).x.shape == (20, 5)
    with pytest.raises(UserError, match="variant must be one of default, paper"):
        make_torus(10, 0, variant="authors")


# ----------------------------------------------------------------------------- through params.yaml


def _project(root, options):
    params = {"datasets": ["loop", "lines"], "models": ["vae"],
              "runs": {"loop-vae": {"dataset": "loop", "model": "vae"}},
              "data": {"options": options}}
    (root / "params.yaml").write_text(yaml.safe_dump(params))


def test_download_passes_the_options_to_the_generator(tmp_path):
    from aebench.stages import download

    _project(tmp_path, {"loop": {"n": 200, "ambient_dim": 6, "noise": 0.0}})
    raw = load_raw(download.run("loop", tmp_path))
    assert raw.x.shape == (200, 6)
    np.testing.assert_allclose(pdist(raw.x), pdist(make_loop(200, 0, noise=0.0).x), atol=1e-5)


@pytest.mark.parametrize("options, dataset, needle", [
    ({"lines": {"n": 10, "noise": 0.1}}, "lines", "`data.options.lines.noise`"),
    ({"loop": {"n": 10, "ambient_dim": 1}}, "loop", "`data.options.loop.ambient_dim`"),
    ({"loop": {"n": 10, "noise": -0.1}}, "loop", "`data.options.loop.noise`"),
    ({"loop": {"n": 10, "ambient_dim": 2.5}}, "loop", "`data.options.loop.ambient_dim`"),
    ({"loop": {"n": 10, "variant": "authors"}}, "loop", "`data.options.loop.variant`"),
    ({"loop": {"n": 10, "variant": "paper", "ambient_dim": 2}}, "loop", "native dimension 3"),
])
def test_bad_options_stop_the_download_with_one_line(tmp_path, options, dataset, needle):
    from aebench.stages import download

    _project(tmp_path, options)
    with pytest.raises(UserError) as err:
        download.run(dataset, tmp_path)
    assert needle in str(err.value) and "params.yaml" in str(err.value) and "\n" not in str(err.value)
    assert not (tmp_path / "data" / "raw" / dataset).exists()
