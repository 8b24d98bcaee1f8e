"""Omniglot as two .npz arrays (images_background.npz, images_evaluation.npz) checked by sha256.

By default it is converted to MNIST's convention (white strokes on black, 28x28) so it can
serve as MNIST's out-of-distribution companion. Its image options (`invert`, `size`,
`channels`) set the polarity, the side length and grey replicated into RGB: the GWAE paper's
toolkit (vaetc) feeds 64x64x3 and keeps Omniglot's dark strokes on white, so its
MNIST-vs-Omniglot AUROC can use the polarity as a cue; the default (inverted, 28x28x1)
removes that cue. There is no public source of the arrays, so Omniglot needs a mirror.
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

import numpy as np

from aebench.data.datasets.image_options import NATIVE_SIZE, resampling, resize_images, with_channels
from aebench.data.fetch import dataset_hint, download_verified, is_url, local_folder, one_line, verified_mirror, subsample
from aebench.data.raw import RawDataset
from aebench.errors import UserError
from aebench.io import sha256_file

log = logging.getLogger(__name__)

# The Omniglot pixel data as arrays (key `images`: bool (characters, 20 drawers, 105, 105),
# True = white background; key `labels`: int64 (characters, 20), the character index within
# the set). These sha256 values are the ones published in the project's offline data
# README (shared/data/README.md) for the verified copies; any other file is refused.
OMNIGLOT_SHA256 = {
    "images_background.npz": "8bf84167413cd00beacdce3fe582f780ab538d8dbef043a6d688f2527bbce199",
    "images_evaluation.npz": "0b84c7ffd94c4841c0040e529c86a82eaaccb986d8eadad5673f7991b7475276",
}
# Which official split each Omniglot file is: the background set is the training alphabet set.
OMNIGLOT_SPLIT = {"images_background.npz": "train", "images_evaluation.npz": "test"}


def _omniglot_files(cache_dir: Path, mirror: str | None) -> dict[str, Path]:
    """Locate (local mirror) or download (http mirror) the two verified npz files."""
    files = list(OMNIGLOT_SHA256)
    if mirror is None:
        raise UserError(
            "no public source of the Omniglot array files is known (torchvision's Omniglot zips are a "
            "different form): " + dataset_hint("omniglot", files)
        )
    if is_url(mirror):
        base = mirror if mirror.endswith("/") else mirror + "/"
        paths: dict[str, Path] = {}
        for fname, sha in OMNIGLOT_SHA256.items():
            dest = Path(cache_dir) / fname
            if dest.is_file() and sha256_file(dest) == sha:
                log.info("omniglot: cached %s verified (sha256 %s), reused", dest, sha)
            else:
                download_verified(base + fname, dest, sha, name="omniglot", files=files)
                log.info("omniglot: %s verified (sha256 %s)", dest, sha)
            paths[fname] = dest
        return paths
    return verified_mirror("omniglot", local_folder(mirror), OMNIGLOT_SHA256, algorithm="sha256")


def _read_omniglot_npz(path: Path) -> tuple[np.ndarray, np.ndarray]:
    try:
        with np.load(path, allow_pickle=False) as npz:
            images, labels = npz["images"], npz["labels"]
    except Exception as exc:
        raise UserError(f"{path} is unreadable ({one_line(exc)}): delete it and fetch it again") from None
    if images.dtype != np.bool_ or images.ndim != 4 or labels.shape != images.shape[:2]:
        raise UserError(
            f"{path} has images {images.shape} {images.dtype} and labels {labels.shape}; expected bool "
            "(characters, drawers, 105, 105) and (characters, drawers): replace it with the verified file"
        )
    return images, labels



def load_omniglot(cache_dir: Path, mirror: str | None, n: int | None = None, seed: int = 0,
                  invert: bool = True, size: int | None = None, channels: int = 1) -> RawDataset:
    """Omniglot's 1,623 characters x 20 drawers as grey images: white strokes on black
    (`invert`, MNIST's convention) or the scans' dark strokes on white, resized from 105x105
    to `size` (None: 28, MNIST's) and replicated into `channels` (see resize_images). A
    subsample (`n`) is drawn from the scans before they are converted."""
    size = NATIVE_SIZE if size is None else size
    paths = _omniglot_files(Path(cache_dir), mirror)
    xs, labels, splits, counts = [], [], [], {}
    offset = 0
    for fname, path in paths.items():
        images, char = _read_omniglot_npz(path)
        n_chars, n_drawers = images.shape[:2]
        if char.min() < 0 or char.max() >= n_chars:
            raise UserError(f"{path} has character labels outside 0..{n_chars - 1}: replace it with the verified file")
        log.info("omniglot: %s: %d characters x %d drawers", fname, n_chars, n_drawers)
        xs.append(images.reshape(-1, 1, *images.shape[2:]).view(np.uint8))  # the scans as 0/1, 1 = white
        labels.append(char.reshape(-1).astype(np.int64) + offset)  # unique ids over both sets
        splits.append(np.full(n_chars * n_drawers, OMNIGLOT_SPLIT[fname], dtype="U5"))
        counts[fname] = {"characters": int(n_chars), "drawers": int(n_drawers), "label_offset": int(offset),
                         "sha256": OMNIGLOT_SHA256[fname], "split": OMNIGLOT_SPLIT[fname]}
        offset += n_chars
    x = np.concatenate(xs)
    log.info("omniglot: %d images of %d characters loaded", len(x), offset)
    polarity = ("inverted: the arrays store True = white background; here stroke = 255 on a black background, "
                "MNIST's convention" if invert else
                "not inverted: dark strokes (0) on a white background (255), as scanned (the GWAE paper's)")
    scans = subsample(RawDataset(
        x=x,
        label=np.concatenate(labels),
        official_split=np.concatenate(splits),
        meta={
            "source": "omniglot",
            "loader": "aebench npz arrays",
            "mirror": mirror,
            "files": counts,
            "licence": "MIT",
            "citation": "Lake, Salakhutdinov, Tenenbaum (2015), Human-level concept learning through "
                        "probabilistic program induction",
            "inverted": bool(invert),
            "size": size,
            "notes": [
                polarity,
                f"resized 105x105 -> {size}x{size} ({resampling(105, size)})",
                "label = character id, unique over both sets: evaluation ids are offset by the number "
                "of background characters",
                "official_split: images_background -> train, images_evaluation -> test",
            ],
        },
    ), n, seed)
    log.info("omniglot: %d images %s, resized to %dx%d", len(scans),
             "inverted to white on black" if invert else "kept dark on white", size, size)
    white = scans.x[:, 0].view(np.bool_)
    return with_channels(dataclasses.replace(scans, x=resize_images(~white if invert else white, size)), channels)
