"""loop, sphere, torus: noisy point clouds on low-dimensional manifolds with known topology
(a circle, the 2-sphere and the 2-torus), for experiments on whether a latent space keeps the
data's topology.

Each lies in its native R^2 or R^3, or (option `ambient_dim`) is embedded in a higher
dimension by a random orthonormal map, with the noise isotropic in the ambient space.
Option `variant: paper` gives the DVAE authors' sets instead (lihenryhfl/SpectralVAEGAN,
`vdae_util.py`): noise-free regular grids, the loop being (cos t, sin 2t, sin 3t) in R^3
and the torus of radii 2 and 1. Options: `noise`, `ambient_dim`, `variant`.
"""

from __future__ import annotations

import math

import numpy as np

from aebench.data.datasets.common import TWO_PI, bins, check_n, check_noise
from aebench.data.raw import RawDataset
from aebench.errors import UserError



# The dimension each manifold's points natively live in (before an `ambient_dim` embedding).
NATIVE_DIM = {"loop": 2, "sphere": 3, "torus": 3}
# The same for `variant: paper`, whose loop is a curve in R^3.
PAPER_NATIVE_DIM = {"loop": 3, "sphere": 3, "torus": 3}

# "default": points drawn at random plus noise; "paper": the DVAE authors' noise-free grids.
MANIFOLD_VARIANTS = ("default", "paper")


def native_dim(name: str, variant: str = "default") -> int | None:
    """The native dimension of manifold `name` in `variant` (None for other datasets)."""
    return (PAPER_NATIVE_DIM if variant == "paper" else NATIVE_DIM).get(name)


def _check_variant(variant: str, what: str) -> str:
    if variant not in MANIFOLD_VARIANTS:
        raise UserError(f"{what}: variant must be one of {', '.join(MANIFOLD_VARIANTS)}, got {variant!r}")
    return variant


def _variant_noise(noise: float | None, default: float, variant: str, what: str) -> float:
    """The noise std: as given, else `default` for the default variant and 0 for the paper's
    (the authors' sets are noise-free)."""
    if noise is None:
        noise = default if variant == "default" else 0.0
    return check_noise(noise, what)

# Stream of the embedding map's generator: a generator of its own, so the points and the noise
# drawn from the dataset's generator are the same with or without an embedding.
_EMBEDDING_STREAM = 7


def _check_ambient(ambient_dim: int | None, native: int, what: str) -> int | None:
    if ambient_dim is None:
        return None
    if isinstance(ambient_dim, bool) or int(ambient_dim) != ambient_dim or ambient_dim < native:
        raise UserError(f"{what}: ambient_dim must be an integer >= {native} (the manifold's native dimension), "
                        f"got {ambient_dim!r}: raise it, or leave it unset for R^{native}")
    return int(ambient_dim)


def embedding_basis(native: int, ambient_dim: int, seed: int) -> np.ndarray:
    """The random orthonormal map R^native -> R^ambient_dim of a manifold generated with `seed`:
    (ambient_dim, native) with orthonormal columns, Haar-distributed (QR of a Gaussian matrix,
    signs fixed by R's diagonal), from a generator of its own so the points do not change."""
    rng = np.random.default_rng([seed, _EMBEDDING_STREAM])
    q, r = np.linalg.qr(rng.standard_normal((ambient_dim, native)))
    return q * np.where(np.diag(r) < 0, -1.0, 1.0)[None, :]


def _place(points: np.ndarray, ambient_dim: int | None, noise: float, rng: np.random.Generator,
           seed: int) -> np.ndarray:
    """Clean manifold points (N, native) -> float32 (N, ambient): embedded by `embedding_basis`
    when `ambient_dim` is set (an isometry: distances on the manifold are kept), then isotropic
    Gaussian noise of std `noise` in every ambient dimension."""
    if ambient_dim is not None:
        points = points @ embedding_basis(points.shape[1], ambient_dim, seed).T
    return (points + noise * rng.standard_normal(points.shape)).astype(np.float32)


def _manifold_meta(source: str, seed: int, noise: float, ambient_dim: int | None, native: int) -> dict:
    meta = {"source": source, "seed": seed, "noise": noise, "traits": ["manifold"]}
    if ambient_dim is not None:
        meta.update(ambient_dim=ambient_dim, embedding=f"aebench.data.synthetic.embedding_basis({native}, "
                                                       f"{ambient_dim}, {seed}) maps R^{native} into R^{ambient_dim}")
    return meta


def make_loop(n: int, seed: int, noise: float | None = None, ambient_dim: int | None = None,
              variant: str = "default") -> RawDataset:
    """A closed curve (or embedded in R^ambient_dim, see `_place`) plus isotropic Gaussian
    noise of std `noise`.

    default: the unit circle in R^2 at angles uniform on [0, 2 pi), noise 0.05 unless given.
    paper: the DVAE authors' loop (cos t, sin 2t, sin 3t) in R^3 at the n equally spaced
    t = 2 pi k / n (their `generate_loop`), in a seeded random order, noise-free unless given.

    Factor "angle" (t); label = 8 equal bins of it. The loop's one-dimensional hole is what a
    topology-preserving latent space should keep.
    """
    n = check_n(n, "make_loop")
    variant = _check_variant(variant, "make_loop")
    noise = _variant_noise(noise, 0.05, variant, "make_loop")
    native = native_dim("loop", variant)
    ambient_dim = _check_ambient(ambient_dim, native, "make_loop")
    rng = np.random.default_rng(seed)
    if variant == "paper":
        angle = TWO_PI * rng.permutation(n) / n
        clean = np.stack([np.cos(angle), np.sin(2 * angle), np.sin(3 * angle)], axis=1)
        source = "generated: the DVAE authors' loop (cos t, sin 2t, sin 3t) in R^3, t on a regular grid"
    else:
        angle = rng.uniform(0.0, TWO_PI, size=n)
        clean = np.stack([np.cos(angle), np.sin(angle)], axis=1)
        source = "generated: noisy unit circle in R^2"
    return RawDataset(
        x=_place(clean, ambient_dim, noise, rng, seed),
        label=bins(angle, 0.0, TWO_PI, 8),
        factors={"angle": angle},
        meta={**_manifold_meta(source, seed, noise, ambient_dim, native), "variant": variant},
    )


def regular_sphere_angles(count: int) -> tuple[np.ndarray, np.ndarray]:
    """(polar, azimuth) of about `count` points spread evenly over the unit sphere: Deserno's
    regular placement ("How to generate equidistributed points on the surface of a sphere",
    2004), the authors' `generate_sphere`. Rings of constant polar angle, as many as make the
    spacing between rings equal to the spacing along them, each point owning an area of about
    4 pi / count; the exact number of points differs from `count` by rounding."""
    area = 4.0 * math.pi / count
    rings = max(1, round(math.pi / math.sqrt(area)))
    along = area / (math.pi / rings)  # azimuthal spacing at the equator
    polar, azimuth = [], []
    for i in range(rings):
        nu = math.pi * (i + 0.5) / rings
        m = max(1, round(TWO_PI * math.sin(nu) / along))
        polar.append(np.full(m, nu))
        azimuth.append(TWO_PI * np.arange(m) / m)
    return np.concatenate(polar), np.concatenate(azimuth)


def _paper_sphere(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """n points of a regular placement of at least n (a seeded random choice of them, as the
    authors take a random n of theirs), in random order."""
    target = n
    polar, azimuth = regular_sphere_angles(target)
    while len(polar) < n:
        target += n - len(polar)
        polar, azimuth = regular_sphere_angles(target)
    pick = rng.choice(len(polar), n, replace=False)
    return polar[pick], azimuth[pick]


def make_sphere(n: int, seed: int, noise: float | None = None, ambient_dim: int | None = None,
                variant: str = "default") -> RawDataset:
    """Points on the unit sphere in R^3 (or embedded in R^ambient_dim, see `_place`) plus
    isotropic Gaussian noise of std `noise`.

    default: uniform points (normalised standard Gaussian vectors), noise 0.02 unless given.
    paper: the DVAE authors' sphere, an evenly spread grid (`regular_sphere_angles`),
    noise-free unless given.

    Factors: "polar" in [0, pi] (angle from +z) and "azimuth" in [0, 2 pi); label = 8
    equal-area bands (equal-width bins of cos(polar), which is uniform on the sphere), so the
    classes are balanced.
    """
    n = check_n(n, "make_sphere")
    variant = _check_variant(variant, "make_sphere")
    noise = _variant_noise(noise, 0.02, variant, "make_sphere")
    ambient_dim = _check_ambient(ambient_dim, native_dim("sphere", variant), "make_sphere")
    rng = np.random.default_rng(seed)
    if variant == "paper":
        polar, azimuth = _paper_sphere(n, rng)
        unit = np.stack([np.sin(polar) * np.cos(azimuth), np.sin(polar) * np.sin(azimuth), np.cos(polar)], axis=1)
        source = "generated: the DVAE authors' regular grid on the unit sphere in R^3"
    else:
        g = rng.standard_normal((n, 3))
        norms = np.linalg.norm(g, axis=1, keepdims=True)
        norms[norms == 0.0] = 1.0  # probability zero, but avoid a division by zero anyway
        unit = g / norms
        polar = np.arccos(np.clip(unit[:, 2], -1.0, 1.0))
        azimuth = np.mod(np.arctan2(unit[:, 1], unit[:, 0]), TWO_PI)
        source = "generated: noisy unit sphere in R^3"
    return RawDataset(
        x=_place(unit, ambient_dim, noise, rng, seed),
        label=bins(-np.cos(polar), -1.0, 1.0, 8),
        factors={"polar": polar, "azimuth": azimuth},
        meta={**_manifold_meta(source, seed, noise, ambient_dim, NATIVE_DIM["sphere"]), "variant": variant},
    )


def _area_uniform_torus(n: int, R: float, r: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(u, v) of n points uniform by surface area: the area density is proportional to
    R + r cos v, so v is drawn by rejection sampling (vectorised) rather than uniformly, which
    would crowd the inner rim."""
    u = rng.uniform(0.0, TWO_PI, size=n)
    accepted: list[np.ndarray] = []
    have = 0
    while have < n:
        batch = 2 * (n - have) + 16  # acceptance rate is at least R / (R + r) > 1/2
        cand = rng.uniform(0.0, TWO_PI, size=batch)
        keep = rng.uniform(0.0, R + r, size=batch) < R + r * np.cos(cand)
        accepted.append(cand[keep])
        have += int(keep.sum())
    return u, np.concatenate(accepted)[:n]


def _grid_torus(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(u, v) of n points of the m x m grid of angles 2 pi k / m, m = ceil(sqrt(n)) (a seeded
    random choice of them, in random order). The authors' `generate_torus` grid, except that
    theirs repeats the angle 0 as 2 pi, which puts two copies of every seam point in the set."""
    m = math.ceil(math.sqrt(n))
    cells = rng.choice(m * m, n, replace=False)
    return TWO_PI * (cells // m) / m, TWO_PI * (cells % m) / m


def make_torus(n: int, seed: int, R: float = 2.0, r: float | None = None, noise: float | None = None,
               ambient_dim: int | None = None, variant: str = "default") -> RawDataset:
    """Points on a torus in R^3 (or embedded in R^ambient_dim, see `_place`) plus isotropic
    Gaussian noise of std `noise`.

    The surface is ((R + r cos v) cos u, (R + r cos v) sin u, r sin v), u the angle around the
    z axis and v the angle around the tube, so it satisfies (sqrt(x^2 + y^2) - R)^2 + z^2 = r^2.
    default: points uniform by surface area, r = 0.7 and noise 0.02 unless given.
    paper: the DVAE authors' torus, radii R = 2 and r = 1 unless given, on a grid uniform in
    the two angles (`_grid_torus`), noise-free unless given.
    Factors "u" and "v" in [0, 2 pi); label = 8 equal bins of u.
    """
    n = check_n(n, "make_torus")
    variant = _check_variant(variant, "make_torus")
    noise = _variant_noise(noise, 0.02, variant, "make_torus")
    ambient_dim = _check_ambient(ambient_dim, native_dim("torus", variant), "make_torus")
    if r is None:
        r = 1.0 if variant == "paper" else 0.7
    if not (R > r > 0):
        raise UserError(f"make_torus: need R > r > 0 for a ring torus, got R={R!r}, r={r!r}")
    rng = np.random.default_rng(seed)
    if variant == "paper":
        u, v = _grid_torus(n, rng)
        source = "generated: the DVAE authors' torus grid in R^3"
    else:
        u, v = _area_uniform_torus(n, R, r, rng)
        source = "generated: noisy torus in R^3"
    ring = R + r * np.cos(v)
    points = np.stack([ring * np.cos(u), ring * np.sin(u), r * np.sin(v)], axis=1)
    meta = {**_manifold_meta(source, seed, noise, ambient_dim, NATIVE_DIM["torus"]), "variant": variant}
    return RawDataset(
        x=_place(points, ambient_dim, noise, rng, seed),
        label=bins(u, 0.0, TWO_PI, 8),
        factors={"u": u, "v": v},
        meta={**meta, "R": R, "r": r},
    )
