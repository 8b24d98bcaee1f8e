"""The digits' OoD companion: letters at 8x8 made the way the digits were."""

import numpy as np
import pytest

from aebench.data.datasets.letters import LETTERS, make_letters, thicken, to_optdigits
from aebench.data.datasets.digits import load_digits_raw


def test_optdigits_blocks_and_thickening():
    full = np.ones((1, 32, 32), dtype=bool)
    assert (to_optdigits(full) == 255).all() and to_optdigits(full).shape == (1, 1, 8, 8)
    one = np.zeros((1, 32, 32), dtype=bool)
    one[0, 5, 9] = True  # block (1, 2), one of 16 pixels -> round(255 / 16) = 16
    img = to_optdigits(one)[0, 0]
    assert img[1, 2] == 16 and img.sum() == 16
    grown = thicken(one)[0]
    assert grown.sum() == 5 and grown[4, 9] and grown[6, 9] and grown[5, 8] and grown[5, 10]


def test_letters_like_digits():
    raw = make_letters(300, seed=3)
    assert raw.x.shape == (300, 1, 8, 8) and raw.x.dtype == np.uint8
    assert raw.label.min() >= 0 and raw.label.max() < len(LETTERS) and len(np.unique(raw.label)) > 25
    levels = {int(round(k * 255 / 16)) for k in range(17)}
    assert set(np.unique(raw.x)) <= levels
    digits = load_digits_raw().x
    # white ink on black, with about the digits' amount of ink
    assert raw.x[:, 0, [0, 0, 7, 7], [0, 7, 0, 7]].mean() < raw.x[:, 0, 2:6, 2:6].mean()
    assert raw.x.mean() == pytest.approx(digits.mean(), rel=0.3)
    # deterministic in the seed, different across seeds, and different letters look different
    assert np.array_equal(raw.x, make_letters(300, seed=3).x)
    assert not np.array_equal(raw.x, make_letters(300, seed=4).x)
    means = [raw.x[raw.label == k].mean(0) for k in np.unique(raw.label)[:2]]
    assert np.abs(means[0].astype(float) - means[1]).max() > 40
    with pytest.raises(ValueError):
        make_letters(0, seed=0)
