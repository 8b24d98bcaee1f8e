"""CIFAR-10 through `torchvision.datasets.CIFAR10` (its MD5 checks run)."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import numpy as np

from aebench.data.fetch import (NETWORK_TIMEOUT_S, copy_local_mirror, torchvision_failure, is_url, local_folder,
                                quiet_stdout, socket_timeout, torchvision_class, subsample)
from aebench.data.raw import RawDataset
from aebench.errors import UserError

log = logging.getLogger(__name__)


def load_cifar10(cache_dir: Path, mirror: str | None, n: int | None = None, seed: int = 0) -> RawDataset:
    """CIFAR-10, 50,000 train + 10,000 test colour images (3, 32, 32), labels 0-9, through
    torchvision.datasets.CIFAR10.

    The one file is `cifar-10-python.tar.gz` (torchvision checks its MD5, then the MD5 of every
    extracted batch). A local mirror folder holding it is verified here and copied into
    `cache_dir`, where torchvision finds it and downloads nothing; an http mirror replaces the
    class's `url`. The extracted batches are deleted first, so every run checks the archive.
    """
    base = torchvision_class("CIFAR10")
    fname, md5 = str(base.filename), str(base.tgz_md5)
    resources = [(fname, md5)]
    cache_dir = Path(cache_dir)
    if mirror is None:
        cls, where = base, str(base.url)
    elif is_url(mirror):
        url = mirror.rstrip("/") + "/" + fname
        cls, where = type("CIFAR10", (base,), {"url": url}), url
    else:
        folder = local_folder(mirror)
        copy_local_mirror("cifar10", folder, resources, cache_dir)
        cls, where = base, str(folder)  # the verified archive is in place: nothing is fetched
    shutil.rmtree(cache_dir / base.base_folder, ignore_errors=True)
    log.info("cifar10: fetching %s from %s into %s", fname, where, cache_dir)
    try:
        with socket_timeout(NETWORK_TIMEOUT_S), quiet_stdout():
            train = cls(root=str(cache_dir), train=True, download=True)
            test = cls(root=str(cache_dir), train=False, download=False)
    except Exception as exc:  # torchvision raises RuntimeError, URLError, OSError, ...
        raise torchvision_failure("cifar10", "CIFAR10", mirror, cache_dir, resources, exc, official=str(base.url)) from exc
    x, label = cifar_arrays([train.data, test.data], [train.targets, test.targets], cache_dir / base.base_folder)
    split = np.array(["train"] * len(train.data) + ["test"] * len(test.data), dtype="U5")
    log.info("cifar10: %d train + %d test images verified and loaded", len(train.data), len(test.data))
    return subsample(RawDataset(
        x=x,
        label=label,
        official_split=split,
        meta={
            "source": "cifar10",
            "loader": "torchvision.datasets.CIFAR10",
            "mirror": mirror if mirror is not None else str(base.url),
            "files": {fname: {"md5": md5, "bytes": (cache_dir / fname).stat().st_size}},
            "classes": list(train.classes),
            "n_classes": 10,
            "n_train": int(len(train.data)),
            "n_test": int(len(test.data)),
            "notes": ["images stored (3, 32, 32) uint8 (channels first); the pipeline scales them to [0, 1]"],
        },
    ), n, seed)


def cifar_arrays(data: list[np.ndarray], targets: list[list[int]], where: Path) -> tuple[np.ndarray, np.ndarray]:
    """torchvision's CIFAR arrays (N, 32, 32, 3) HWC + label lists -> (N, 3, 32, 32) uint8 and int64 labels 0..9."""
    x = np.ascontiguousarray(np.concatenate(data).transpose(0, 3, 1, 2))
    label = np.concatenate([np.asarray(t, dtype=np.int64) for t in targets])
    if x.dtype != np.uint8 or x.shape[1:] != (3, 32, 32) or len(label) != len(x):
        raise UserError(f"{where} holds images {x.shape[1:]} {x.dtype} and {len(label)} labels for {len(x)} images, "
                        "expected (3, 32, 32) uint8 and one label each: delete it and rerun")
    if label.size and (label.min() < 0 or label.max() > 9):
        raise UserError(f"{where} holds labels outside 0..9: delete it and rerun")
    return x, label
