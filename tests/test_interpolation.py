"""The ACAI lines benchmark metrics: known answers, agreement with the authors' scipy
protocol, and the evaluation suite end to end with an oracle model."""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pytest
import scipy.spatial
import torch
from torch import nn

from aebench.data.datasets.lines import draw_lines
from aebench.evaluation.context import decode_paper_range
from aebench.evaluation.suites import interpolation_suite
from aebench.metrics.interpolation import N_STEPS, closest_lines, interpolate_codes, lines_metrics, smoothness_scores

T = np.arange(16) / 15.0


def pairs(n: int = 24, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Start angles and end angles 0.4..2.8 rad away (either way round, so never the far way)."""
    rng = np.random.default_rng(seed)
    a = rng.uniform(0, 2 * math.pi, n)
    return a, a + rng.uniform(0.4, 2.8, n) * rng.choice([-1, 1], n)


def test_true_sweep_scores_zero():
    a, b = pairs()
    sweep = np.stack([draw_lines(a[i] + T * (b[i] - a[i])) for i in range(len(a))])
    m = lines_metrics(sweep)
    assert m["mean_distance"] < 1e-5
    assert 0 <= m["smoothness"] < 0.01


def test_pixel_crossfade_is_far_from_lines_and_jumps():
    a, b = pairs()
    left, right = draw_lines(a), draw_lines(b)
    fade = (1 - T)[None, :, None, None] * left[:, None] + T[None, :, None, None] * right[:, None]
    m = lines_metrics(fade)
    assert m["mean_distance"] > 3e-3  # the paper's plain AE scores 6.88e-3
    assert m["smoothness"] > 0.9


def test_abrupt_switch_is_realistic_but_not_smooth():
    a, b = pairs()
    switch = np.where((T < 0.5)[None, :, None, None], draw_lines(a)[:, None], draw_lines(b)[:, None])
    m = lines_metrics(switch[:, :, None])  # a channel axis of 1 is accepted
    assert m["mean_distance"] < 1e-5
    assert m["smoothness"] == pytest.approx(1 - 1 / 15, abs=1e-9)


def test_closest_lines_matches_scipy_cdist():
    rng = np.random.default_rng(3)
    images = np.concatenate([draw_lines(rng.uniform(0, 7, 20)) + rng.normal(0, s, (20, 32, 32)) for s in (0.0, 0.3)])
    dist, angles = closest_lines(images)
    ref_angles = np.linspace(0, 2 * np.pi - 2 * np.pi / 10000, 10000)  # the authors' expression
    refs = draw_lines(ref_angles, dtype=np.float64).reshape(10000, -1)  # the authors' float64 references
    d = scipy.spatial.distance.cdist(images.reshape(40, -1), refs, "cosine")
    best = d.argmin(1)
    np.testing.assert_allclose(dist, d[np.arange(40), best], atol=1e-12)
    np.testing.assert_array_equal(angles, ref_angles[best])
    zero_dist, _ = closest_lines(np.zeros((1, 32, 32)))
    assert zero_dist[0] == 1.0


def test_smoothness_formula_unwrap_and_undefined():
    even = np.linspace(0.3, 1.8, 16)
    assert smoothness_scores(even)[0] == pytest.approx(0, abs=1e-12)
    # across the 0 / 2 pi seam: unwrap keeps it an even sweep
    seam = np.mod(np.linspace(6.0, 6.9, 16), 2 * np.pi)
    assert smoothness_scores(seam)[0] == pytest.approx(0, abs=1e-9)
    one_jump = np.r_[np.zeros(8), np.ones(8)]
    assert smoothness_scores(one_jump)[0] == pytest.approx(1 - 1 / 15)
    assert np.isnan(smoothness_scores(np.full(16, 2.0))[0])


def test_undefined_interpolations_count_as_zero_in_the_mean():
    a, b = pairs(4)
    jump = np.where((T < 0.5)[None, :, None, None], draw_lines(a)[:, None], draw_lines(b)[:, None])
    constant = np.repeat(draw_lines(a)[:, None], 16, axis=1)
    m = lines_metrics(np.concatenate([jump, constant]))
    assert m["smoothness"] == pytest.approx((1 - 1 / 15) / 2)
    assert math.isnan(lines_metrics(constant)["smoothness"])  # none defined: NaN, as the authors' code


def test_interpolate_codes_formula():
    zl, zr = np.array([[0.0, 2.0]]), np.array([[3.0, -1.0]])
    z = interpolate_codes(zl, zr, steps=4)
    np.testing.assert_allclose(z[0], [[0, 2], [1, 1], [2, 0], [3, -1]])


class AngleOracle(nn.Module):
    """Decodes a code (cos, sin) into the line at that angle, as [0, 1] pixels."""

    def __init__(self):
        super().__init__()
        self.dummy = nn.Parameter(torch.zeros(()))

    @property
    def device(self):
        return self.dummy.device

    def decode_raw(self, z):
        return None  # the model contract's default: no raw decoder

    def decode(self, z):
        angle = torch.atan2(z[:, 1], z[:, 0]).numpy()
        return torch.from_numpy((draw_lines(angle) + 1) / 2)[:, None]


def oracle_context(tmp_path, dataset: str, n: int = 80):
    angles = np.random.default_rng(0).uniform(0, 2 * np.pi, n)
    return SimpleNamespace(model=AngleOracle(), test=SimpleNamespace(kind="image", dataset=dataset),
                           z_test=np.stack([np.cos(angles), np.sin(angles)], 1), seed=0, figure_examples=3,
                           plots=tmp_path)


def test_suite_on_lines_with_an_oracle(tmp_path):
    metrics = interpolation_suite(oracle_context(tmp_path, "lines"))  # 40 pairs (256 when n >= 512)
    # decoded [0, 1] images are mapped to [-1, 1] before the distance: true lines score ~0
    assert metrics["interp_mean_distance"] < 1e-5
    # chords of the unit circle sweep the angle monotonically, not evenly: smooth, not 0
    assert 0 < metrics["interp_smoothness"] < 0.5
    assert (tmp_path / "interpolations.png").stat().st_size > 1000


class RawAngleOracle(AngleOracle):
    """Like the ACAI family: `decode_raw` in the paper's range, unclamped (here three times the
    line, whose cosine distance to the line is 0), `decode` its [0, 1] clamp (a line whose
    anti-aliased pixels saturate, no longer a line)."""

    def decode_raw(self, z):
        angle = torch.atan2(z[:, 1], z[:, 0]).numpy()
        return torch.from_numpy(3 * draw_lines(angle))[:, None]

    def decode(self, z):
        return ((self.decode_raw(z) + 1) / 2).clamp(0, 1)


def test_suite_scores_the_raw_decoder_output(tmp_path):
    ctx = oracle_context(tmp_path, "lines")
    ctx.model = RawAngleOracle()
    metrics = interpolation_suite(ctx)
    assert metrics["interp_mean_distance"] < 1e-5
    # what the suite would score on the clamped output: far from every line
    codes = interpolate_codes(ctx.z_test[:8], ctx.z_test[8:16])
    clamped = 2 * ctx.model.decode(torch.as_tensor(codes.reshape(-1, 2))).numpy() - 1
    assert lines_metrics(clamped.reshape(8, N_STEPS, 1, 32, 32))["mean_distance"] > 1e-3


def test_decode_paper_range_maps_plain_decoders():
    z = np.array([[1.0, 0.0], [0.0, 1.0]])
    lines = draw_lines([0.0, np.pi / 2])  # the oracles' float32 atan2 is pi / 2 to 1e-7
    np.testing.assert_allclose(decode_paper_range(AngleOracle(), z)[:, 0], lines, atol=1e-5)
    np.testing.assert_allclose(decode_paper_range(RawAngleOracle(), z)[:, 0], 3 * lines, atol=1e-5)


def test_suite_elsewhere_draws_only(tmp_path):
    assert interpolation_suite(oracle_context(tmp_path, "shapes", n=8)) == {}
    assert (tmp_path / "interpolations.png").exists()
    vectors = SimpleNamespace(test=SimpleNamespace(kind="vector", dataset="loop"))
    assert interpolation_suite(vectors) == {}
    assert N_STEPS == 16
