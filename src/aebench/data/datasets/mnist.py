"""MNIST and Fashion-MNIST through `torchvision.datasets.MNIST` / `FashionMNIST`, so that
their MD5 checks run.

Each loader has the signature `(cache_dir, mirror, n=None, seed=0) -> RawDataset`:
`cache_dir` is a folder the loader may write downloaded or copied files into (reused on the
next call when the checksums still match); `mirror` is a local folder, an http(s) URL of a
folder, or None for torchvision's own mirrors (`aebench.data.fetch`); `n` keeps n rows drawn
with np.random.default_rng(seed) in proportion to the official split (`fetch.subsample`).

A local mirror is verified here first (against the same values torchvision checks) and
copied into the cache, where torchvision verifies it again and extracts it; an http mirror
replaces the class's `mirrors`, so torchvision downloads and checks the files itself. MNIST
takes the image options `size` and `channels` (`aebench.data.datasets.image_options`).
"""

from __future__ import annotations

import dataclasses
import logging
import os
from pathlib import Path

import numpy as np

from aebench.data.datasets.image_options import NATIVE_SIZE, resampling, resize_images, with_channels
from aebench.data.fetch import (NETWORK_TIMEOUT_S, copy_local_mirror, torchvision_failure, is_url, local_folder,
                                quiet_stdout, socket_timeout, torchvision_class, subsample)
from aebench.data.raw import RawDataset
from aebench.errors import UserError

log = logging.getLogger(__name__)


def _load_torchvision(name: str, class_name: str, cache_dir: Path, mirror: str | None) -> RawDataset:
    base = torchvision_class(class_name)
    resources = [(str(fname), str(md5)) for fname, md5 in base.resources]
    cache_dir = Path(cache_dir)
    raw = cache_dir / class_name / "raw"  # torchvision's own layout: <root>/<ClassName>/raw/

    if mirror is None:
        cls = base
        where = "torchvision's default mirrors " + ", ".join(base.mirrors)
    elif is_url(mirror):
        url = mirror if mirror.endswith("/") else mirror + "/"
        # A subclass with the same name keeps torchvision's folder layout without touching the class.
        cls = type(class_name, (base,), {"mirrors": [url]})
        where = url
    else:
        folder = local_folder(mirror)
        copy_local_mirror(name, folder, resources, raw)
        # The files are in place and verified; torchvision checks them again and finds nothing to fetch.
        cls = type(class_name, (base,), {"mirrors": [folder.resolve().as_uri() + "/"]})
        where = str(folder)

    # torchvision skips its download (and MD5) step when extracted files exist; remove them so
    # every run verifies the .gz archives and extracts exactly what was verified.
    for fname, _ in resources:
        extracted = raw / os.path.splitext(fname)[0]
        if extracted.exists():
            extracted.unlink()

    log.info("%s: fetching %s from %s into %s", name, ", ".join(f for f, _ in resources), where, raw)
    try:
        with socket_timeout(NETWORK_TIMEOUT_S), quiet_stdout():
            train = cls(root=str(cache_dir), train=True, download=True)
            test = cls(root=str(cache_dir), train=False, download=True)
    except Exception as exc:  # torchvision raises RuntimeError, URLError, OSError, ...
        raise torchvision_failure(name, class_name, mirror, raw, resources, exc) from exc

    x = np.concatenate([train.data.numpy(), test.data.numpy()])[:, None].astype(np.uint8, copy=False)
    label = np.concatenate([train.targets.numpy(), test.targets.numpy()]).astype(np.int64)
    split = np.array(["train"] * len(train.data) + ["test"] * len(test.data), dtype="U5")
    if x.shape[1:] != (1, 28, 28):
        raise UserError(f"{raw} holds images of shape {x.shape[1:]}, expected (1, 28, 28): delete {raw} and rerun")
    files = {fname: {"md5": md5, "bytes": (raw / fname).stat().st_size} for fname, md5 in resources}
    log.info("%s: %d train + %d test images verified and loaded", name, len(train.data), len(test.data))
    return RawDataset(
        x=x,
        label=label,
        official_split=split,
        meta={
            "source": name,
            "loader": f"torchvision.datasets.{class_name}",
            "mirror": mirror if mirror is not None else "torchvision default mirrors",
            "files": files,
            "classes": list(base.classes),
            "n_train": int(len(train.data)),
            "n_test": int(len(test.data)),
        },
    )


def load_mnist(cache_dir: Path, mirror: str | None, n: int | None = None, seed: int = 0,
               size: int | None = None, channels: int = 1) -> RawDataset:
    """MNIST, 60,000 train + 10,000 test digits, through torchvision.datasets.MNIST; resized
    to `size` (None: 28, as published; see resize_images) and replicated into `channels`."""
    raw = subsample(_load_torchvision("mnist", "MNIST", cache_dir, mirror), n, seed)
    size = NATIVE_SIZE if size is None else size
    if size != NATIVE_SIZE:
        log.info("mnist: resizing %d images to %dx%d", len(raw), size, size)
        raw = dataclasses.replace(raw, x=resize_images(raw.x[:, 0], size), meta={
            **raw.meta, "size": size, "notes": [f"resized 28x28 -> {size}x{size} ({resampling(NATIVE_SIZE, size)})"]})
    return with_channels(raw, channels)


def load_fashion_mnist(cache_dir: Path, mirror: str | None, n: int | None = None, seed: int = 0) -> RawDataset:
    """Fashion-MNIST, 60,000 train + 10,000 test images, through torchvision.datasets.FashionMNIST."""
    return subsample(_load_torchvision("fashion_mnist", "FashionMNIST", cache_dir, mirror), n, seed)
