"""The lines renderer reproduces the ACAI authors' (brain-research/acai, `lib/data.draw_line`):
against a plain scanline rasteriser written from the description, against pixel values the
authors' function produced, and on the value range and ink the authors' lines have."""

from __future__ import annotations

import math
import time

import numpy as np
import pytest

from aebench.data.datasets.lines import draw_lines, make_lines
from aebench.errors import UserError

SIZE = 32
GRID = np.r_[np.linspace(0, 2 * np.pi, 360, endpoint=False), np.arange(8) * np.pi / 4,
             np.random.default_rng(0).uniform(0, 2 * np.pi, 100)]


def scanline_reference(theta: float, size: int = SIZE, width: float = 2.0) -> np.ndarray:
    """One line drawn pixel by pixel in plain Python, from the description of the authors'
    renderer: a segment from (c, c) to (c + (c-1) cos theta, c - (c-1) sin theta) in (column,
    row), c = size / 2; scanlines along its major axis (rows unless it spans more columns than
    rows); on scanline k a run of `width` px starting at the minor coordinate of the segment
    (shifted back by width / 2) at k - 1/2; the run paints full pixels and the covered fraction
    of the two end pixels, scaled by the scanline's weight (the first scanline its covered
    fraction, the others 1); the image is -1 + 2 x paint."""
    c = size / 2
    end_col, end_row = c + (c - 1) * math.cos(theta), c - (c - 1) * math.sin(theta)
    rows_major = abs(end_row - c) >= abs(end_col - c)
    a0, a1 = (c, end_row) if rows_major else (c, end_col)
    b0, b1 = (c, end_col) if rows_major else (c, end_row)
    if a1 < a0:
        a0, a1, b0, b1 = a1, a0, b1, b0
    b0, b1 = b0 - width / 2, b1 - width / 2
    slope = (b1 - b0) / (a1 - a0)
    paint = np.zeros((size, size))  # indexed [major, minor]
    for k in range(math.floor(a0), math.ceil(a1)):
        weight = math.ceil(a0) - a0 if k < math.ceil(a0) else 1.0
        run_start = b0 + (k - a0 - 0.5) * slope
        run_end = run_start + width
        for j in range(math.ceil(run_start), math.floor(run_end)):
            paint[k, j] += weight
        if run_start != math.ceil(run_start):
            paint[k, math.floor(run_start)] += weight * (math.ceil(run_start) - run_start)
        if run_end != math.floor(run_end):
            paint[k, math.floor(run_end)] += weight * (run_end - math.floor(run_end))
    return -1 + 2 * (paint if rows_major else paint.T)


def _cosine_distance(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a, b = a.reshape(len(a), -1), b.reshape(len(b), -1)
    return 1 - (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


@pytest.mark.parametrize("size", [16, 32, 64])
def test_matches_the_scanline_reference_on_a_grid_of_angles(size):
    angles = GRID if size == SIZE else GRID[::7]
    ours = draw_lines(angles, size=size, dtype=np.float64)
    ref = np.stack([scanline_reference(a, size) for a in angles])
    assert np.abs(ours - ref).max() < 1e-12
    assert _cosine_distance(ours, ref).max() < 1e-12


def test_pixels_the_authors_renderer_produced():
    """Values of brain-research/acai `lib/data.draw_line(theta, 32, 32)`, run offline."""
    known = {
        0.3: [((10, 30), -0.6479212605401727), ((11, 27), -0.5039387581979113), ((11, 28), 0.11473374102133249)],
        2.0: [((2, 8), -0.18656092444349937), ((2, 9), 0.2789228047704526), ((2, 10), -0.534516270786048)],
        5.5: [((14, 16), -0.004415947786114316), ((15, 17), 0.004415947786114316)],
    }
    ink = {0.3: 30.0, 2.0: 27.278922804770453, 5.5: 22.0}  # sum of (v + 1) / 2
    images = draw_lines(list(known), dtype=np.float64)
    for image, (theta, pixels) in zip(images, known.items()):
        for (r, c), value in pixels:
            assert image[r, c] == pytest.approx(value, abs=1e-15)
        assert ((image + 1) / 2).sum() == pytest.approx(ink[theta], abs=1e-12)


def test_axis_aligned_lines_are_two_pixel_runs_without_caps():
    right, up, left, down = draw_lines([0, np.pi / 2, np.pi, 3 * np.pi / 2])
    expected = np.full((4, SIZE, SIZE), -1.0, dtype=np.float32)
    expected[0, 15:17, 16:31] = 1  # rows 15-16, columns 16..30
    expected[1, 1:16, 15:17] = 1  # up: toward smaller rows
    expected[2, 15:17, 1:16] = 1
    expected[3, 16:31, 15:17] = 1
    np.testing.assert_array_equal(np.stack([right, up, left, down]), expected)


def test_value_range_and_float_pixels_as_the_authors():
    images = draw_lines(GRID)
    assert images.dtype == np.float32 and images.shape == (len(GRID), SIZE, SIZE)
    assert images.min() == -1.0 and images.max() == 1.0
    assert np.all((images == -1.0).mean(axis=(1, 2)) > 0.9)  # background -1 nearly everywhere
    partial = (images > -1) & (images < 1)
    assert partial.any(axis=(1, 2)).mean() > 0.9  # anti-aliased: fractional pixels on most lines
    np.testing.assert_array_equal(images, draw_lines(GRID, dtype=np.float64).astype(np.float32))


def test_ink_depends_on_the_angle_as_in_the_authors_renderer():
    ink = ((draw_lines([0.0, np.pi / 4, np.pi / 2]) + 1) / 2).sum(axis=(1, 2))
    np.testing.assert_allclose(ink, [30.0, 22.0, 30.0], atol=1e-5)  # 2 px along each scanline, not across the line


def test_periodic_deterministic_and_validated():
    angles = np.random.default_rng(1).uniform(0, 2 * np.pi, 50)
    base = draw_lines(angles)
    np.testing.assert_array_equal(base, draw_lines(angles + 2 * np.pi))
    np.testing.assert_array_equal(base, draw_lines(angles))
    with pytest.raises(UserError):
        draw_lines([0.0, np.inf])
    with pytest.raises(UserError):
        draw_lines([0.0], size=8)
    assert draw_lines([]).shape == (0, SIZE, SIZE)


def test_draw_lines_is_fast():
    start = time.perf_counter()
    draw_lines(np.random.default_rng(2).uniform(0, 2 * np.pi, 10_000))
    assert time.perf_counter() - start < 6.0  # ~0.4 s on an idle core


def test_make_lines_stores_the_renderer_quantised_to_uint8():
    raw = make_lines(3000, seed=3)
    assert raw.x.shape == (3000, 1, SIZE, SIZE) and raw.x.dtype == np.uint8
    exact = draw_lines(raw.factors["angle"], dtype=np.float64)
    np.testing.assert_array_equal(raw.x[:, 0], np.rint((exact + 1) / 2 * 255).astype(np.uint8))
    stored = raw.x[:, 0].astype(np.float64) / 255 * 2 - 1
    assert np.abs(stored - exact).max() <= 1 / 255 + 1e-12
    assert _cosine_distance(stored, exact).max() < 5e-7  # the paper's best Mean Distance is 2.4e-4
    np.testing.assert_array_equal(raw.label, np.floor(raw.factors["angle"] / (2 * np.pi / 10)).astype(np.int64))
    np.testing.assert_array_equal(make_lines(3000, seed=3).x, raw.x)
