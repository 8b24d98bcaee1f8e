"""Image options of the MNIST and Omniglot loaders (`data.options.<dataset>.invert / size /
channels`): Omniglot's polarity, the common size, grey replicated into RGB.

Fabricated Omniglot arrays (their digests patched into the loader) test the exact pixels;
the verified copies in shared/data (skipped when absent) test the real files, subsampled.
"""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
from pydantic import ValidationError

from aebench.config import DatasetOptions
from aebench.data.datasets import omniglot
from aebench.data.datasets.image_options import resize_images
from aebench.data.registry import check_image_options, load_real
from aebench.errors import UserError

from conftest import SHARED_DATA


def _fake_omniglot(folder, monkeypatch):
    """Two tiny npz files in the verified form (True = white background): every image of
    character c has a black square of side 15 (c + 1) in its top-left corner."""
    folder.mkdir()
    digests = {}
    for fname, n_chars in (("images_background.npz", 3), ("images_evaluation.npz", 2)):
        images = np.ones((n_chars, 2, 105, 105), dtype=bool)
        for c in range(n_chars):
            images[c, :, : 15 * (c + 1), : 15 * (c + 1)] = False
        labels = np.repeat(np.arange(n_chars), 2).reshape(n_chars, 2)
        np.savez(folder / fname, images=images, labels=labels)
        digests[fname] = hashlib.sha256((folder / fname).read_bytes()).hexdigest()
    monkeypatch.setattr(omniglot, "OMNIGLOT_SHA256", digests)
    return folder


def test_resize_images_known_answers():
    # bool 4x4, True = white: area averaging to 2x2 gives each quadrant's white fraction
    x = np.zeros((1, 4, 4), dtype=bool)
    x[0, :2, :2] = True
    x[0, 2:, 2:] = [[True, False], [False, False]]
    assert resize_images(x, 2)[0, 0].tolist() == [[255, 0], [0, 64]]  # 1/4 of 255 rounds to 64
    # uint8 upscaling is bilinear without corner alignment (torchvision's Resize): 0, 255 -> 0, 64, 191, 255
    row = np.array([[[0, 255], [0, 255]]], dtype=np.uint8)
    assert resize_images(row, 4)[0, 0, 0].tolist() == [0, 64, 191, 255]
    same = np.arange(16, dtype=np.uint8).reshape(1, 4, 4)
    assert np.array_equal(resize_images(same, 4)[:, 0], same)


def test_omniglot_polarity_size_and_channels(tmp_path, monkeypatch):
    mirror = str(_fake_omniglot(tmp_path / "mirror", monkeypatch))
    default = omniglot.load_omniglot(tmp_path / "cache", mirror)
    assert default.x.shape == (10, 1, 28, 28) and default.meta["inverted"] is True
    # inverted: the stroke square is white on black; 15 px of 105 -> 4 of 28
    assert default.x[0, 0, :4, :4].min() == 255 and default.x[0, 0, 5:, 5:].max() == 0
    kept = omniglot.load_omniglot(tmp_path / "cache", mirror, invert=False)
    assert np.array_equal(kept.x, 255 - default.x)  # exact: the square's edges fall on whole pixels
    assert kept.meta["inverted"] is False and any("not inverted" in note for note in kept.meta["notes"])
    paper = omniglot.load_omniglot(tmp_path / "cache", mirror, invert=False, size=64, channels=3)
    assert paper.x.shape == (10, 3, 64, 64) and paper.x.dtype == np.uint8
    assert all(np.array_equal(paper.x[:, 0], paper.x[:, c]) for c in (1, 2))
    assert paper.x[0, 0, -1, -1] == 255 and paper.x[0, 0, 0, 0] == 0  # white paper, black ink
    assert paper.meta["size"] == 64 and paper.meta["channels"] == 3
    assert any("105x105 -> 64x64" in note for note in paper.meta["notes"])
    assert list(paper.label) == list(default.label) and list(paper.official_split) == list(default.official_split)
    few = omniglot.load_omniglot(tmp_path / "cache", mirror, n=4, seed=1, size=64, channels=3)
    assert few.x.shape == (4, 3, 64, 64) and set(few.official_split) == {"train", "test"}


def test_image_options_refused_where_they_do_not_apply():
    check_image_options("omniglot", {"invert": False, "size": 64, "channels": 3})
    check_image_options("mnist", {"size": 64, "channels": 3})
    check_image_options("lines", {})
    for dataset, key in (("mnist", "invert"), ("lines", "size"), ("cifar10", "channels")):
        with pytest.raises(UserError, match=rf"data\.options\.{dataset}\.{key}.*applies to") as info:
            check_image_options(dataset, {key: 1})
        assert "\n" not in str(info.value)
    with pytest.raises(UserError, match="data.options.dsprites.invert"):
        load_real("dsprites", "/nonexistent", None, invert=False)


def test_dataset_options_fields():
    assert DatasetOptions().image_options() == {}  # defaults: inverted, 28x28, grey
    assert DatasetOptions().invert is True and DatasetOptions().size is None and DatasetOptions().channels == 1
    paper = DatasetOptions(invert=False, size=64, channels=3)
    assert paper.image_options() == {"invert": False, "size": 64, "channels": 3}
    assert DatasetOptions(size=64).image_options() == {"size": 64}
    for bad in ({"channels": 2}, {"size": 4}, {"invert": "sometimes"}):
        with pytest.raises(ValidationError):
            DatasetOptions(**bad)


@pytest.mark.skipif(not (SHARED_DATA / "omniglot").is_dir() or not (SHARED_DATA / "mnist").is_dir(),
                    reason="offline MNIST / Omniglot copies not found (set AEBENCH_SHARED_DATA)")
def test_real_mnist_and_omniglot_at_the_paper_setting(tmp_path):
    """The paper's preset pairs: both 64x64x3; MNIST white on black, Omniglot black on white,
    so the polarity alone separates them; with the default inversion it no longer does."""
    paper = {"size": 64, "channels": 3}
    mnist = load_real("mnist", tmp_path / "m", str(SHARED_DATA / "mnist"), n=200, seed=0, **paper)
    omni = load_real("omniglot", tmp_path / "o", str(SHARED_DATA / "omniglot"), n=200, seed=0, invert=False, **paper)
    assert mnist.x.shape == omni.x.shape == (200, 3, 64, 64)
    assert np.median(mnist.x) == 0 and np.median(omni.x) == 255
    mean_m, mean_o = mnist.x.mean(axis=(1, 2, 3)), omni.x.mean(axis=(1, 2, 3))
    assert mean_m.max() < mean_o.min()  # a mean-brightness threshold alone is a perfect OoD detector
    inverted = load_real("omniglot", tmp_path / "o", str(SHARED_DATA / "omniglot"), n=200, seed=0, **paper)
    assert np.median(inverted.x) == 0 and inverted.x.mean() < mnist.x.mean() + 20
