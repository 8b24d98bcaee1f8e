"""Loaders for the real datasets: MNIST, Fashion-MNIST, CIFAR-10, CelebA (through
torchvision), Omniglot and dSprites (arrays checked by digest).

Each loader has the signature `(cache_dir, mirror, n=None, seed=0) -> RawDataset`:

- `cache_dir` is a folder the loader may write downloaded or copied files into (reused on
  the next call when the checksums still match);
- `mirror` is where the files come from: a local folder, an http(s) URL of a folder, or
  None for the official sources (torchvision's own mirrors, dSprites' GitHub URL; Omniglot
  has none in array form, so it needs a mirror);
- `n` (`data.options.<dataset>.n` when set in params.yaml) keeps only n rows, drawn with
  np.random.default_rng(seed) in proportion to the official split (dSprites: per shape);
  None keeps everything. dSprites and CelebA draw before decoding the images.

MNIST, Fashion-MNIST and CIFAR-10 go through `torchvision.datasets.MNIST` / `FashionMNIST` /
`CIFAR10` so that their MD5 checks run. A local mirror is verified here first (against the
same values torchvision checks) and copied into the cache, where torchvision verifies it
again and extracts it; an http mirror replaces the class's `mirrors` (`url` for CIFAR-10),
so torchvision downloads and checks the files itself. CelebA uses torchvision's file list
and MD5s and its `CelebA` class; its Google Drive download often fails, so a mirror is the
practical route.

Omniglot comes as two .npz arrays (images_background.npz, images_evaluation.npz) checked
by sha256. By default it is converted to MNIST's convention (white strokes on black, 28x28)
so it can serve as MNIST's out-of-distribution companion. dSprites is DeepMind's npz,
MD5-checked, streamed and pooled to 32x32.

MNIST and Omniglot take image options (`data.options.<dataset>.invert / size / channels`,
passed through `load_real`): Omniglot's polarity, the side length both are resized to, and
grey replicated into RGB. The GWAE paper's toolkit (vaetc) feeds both as 64x64x3 in [0, 1]
and keeps Omniglot's dark strokes on white, so its MNIST-vs-Omniglot AUROC can use the
polarity as a cue; the default (inverted, 28x28x1) removes that cue. Give both datasets the
same size and channels so one model scores both.

Every failure a user can fix raises `UserError` with one line naming the file and the fix.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import io
import logging
import os
import re
import shutil
import socket
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Callable, Iterator

import numpy as np

from aebench.data.raw import RawDataset
from aebench.errors import UserError
from aebench.io import atomic_path, sha256_file

log = logging.getLogger(__name__)

# Seconds a single network operation (connect, read) may block before it counts as failed.
NETWORK_TIMEOUT_S = 60.0

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
NATIVE_SIZE = 28  # MNIST's side length, and Omniglot's by default so that it pairs with MNIST
# The image options (DatasetOptions.image_options) each real loader takes; load_real refuses the others.
IMAGE_OPTIONS = {"mnist": ("size", "channels"), "omniglot": ("invert", "size", "channels")}


# ----------------------------------------------------------------------------- helpers


def _md5_file(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(chunk), b""):
            digest.update(block)
    return digest.hexdigest()


def _is_url(mirror: str) -> bool:
    return mirror.startswith(("http://", "https://"))


def _local_folder(mirror: str) -> Path:
    """A mirror that is not an http(s) URL: a folder path (a file:// prefix is accepted)."""
    if mirror.startswith("file://"):
        mirror = mirror[len("file://"):]
    elif "://" in mirror:
        raise UserError(
            f"data mirror `{mirror}` has an unsupported scheme: set `data.mirror` in params.yaml "
            "to a local folder or an http(s) URL"
        )
    return Path(mirror).expanduser()


def _one_line(exc: object, limit: int = 200) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _dataset_hint(name: str, files: list[str]) -> str:
    """The common fix: where to put the files so `data.mirror` finds them."""
    return (
        f"set `data.mirror` in params.yaml to a folder or http URL whose {name}/ sub-folder holds "
        f"{', '.join(files)} (e.g. ../shared/data), or `data.options.{name}.mirror` to that folder itself"
    )


@contextlib.contextmanager
def _socket_timeout(seconds: float) -> Iterator[None]:
    """torchvision opens URLs without a timeout; bound them so an offline machine fails, not hangs."""
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(seconds)
    try:
        yield
    finally:
        socket.setdefaulttimeout(previous)


@contextlib.contextmanager
def _quiet_stdout() -> Iterator[None]:
    """torchvision prints 'Downloading ...' / 'Extracting ...'; pass those lines to the log instead."""
    buffer = io.StringIO()
    try:
        with contextlib.redirect_stdout(buffer):
            yield
    finally:
        for line in buffer.getvalue().splitlines():
            if line.strip():
                log.info("torchvision: %s", line.strip())


# ----------------------------------------------------------------------------- subsampling


def subsample_indices(n_total: int, n: int | None, seed: int, strata: np.ndarray | None = None) -> np.ndarray | None:
    """Sorted indices of `n` of `n_total` rows, drawn without replacement by
    np.random.default_rng(seed); None (keep everything) when `n` is None or not below `n_total`.

    With `strata` (an (n_total,) array: the official split, or the class), every stratum keeps
    its share of the rows (largest remainders), and at least one row when `n` allows, so a
    subsample never loses an official test split or a class.
    """
    if n is None or n >= n_total:
        return None
    if n <= 0:
        raise UserError(f"data.options.<dataset>.n must be positive, got {n}: fix it in params.yaml")
    rng = np.random.default_rng(seed)
    if strata is None:
        return np.sort(rng.choice(n_total, size=n, replace=False)).astype(np.int64)
    _, inverse = np.unique(np.asarray(strata), return_inverse=True)
    sizes = np.bincount(inverse)
    exact = n * sizes / n_total
    alloc = np.floor(exact).astype(np.int64)
    order = np.argsort(-(exact - alloc), kind="stable")
    alloc[order[: n - int(alloc.sum())]] += 1
    if n >= len(sizes):
        for k in np.flatnonzero(alloc == 0):
            alloc[int(np.argmax(alloc))] -= 1
            alloc[k] = 1
    picks = [rng.choice(np.flatnonzero(inverse == k), size=int(alloc[k]), replace=False)
             for k in range(len(sizes)) if alloc[k] > 0]
    return np.sort(np.concatenate(picks)).astype(np.int64)


def _strata_of(raw: RawDataset) -> tuple[np.ndarray | None, str]:
    if raw.official_split is not None:
        return raw.official_split, "official split"
    if (raw.label >= 0).any():
        return raw.label, "label"
    return None, "none"


def subsample(raw: RawDataset, n: int | None, seed: int) -> RawDataset:
    """`raw` cut to `n` rows (`data.options.<dataset>.n`), stratified by the official split if
    there is one, else by label; `raw` itself when n is None or not below len(raw)."""
    strata, how = _strata_of(raw)
    keep = subsample_indices(len(raw), n, seed, strata)
    if keep is None:
        return raw
    log.info("%s: keeping %d of %d rows (data.options.*.n; seed %d, stratified by %s)",
             raw.meta.get("source", "dataset"), len(keep), len(raw), seed, how)
    return RawDataset(
        x=raw.x[keep],
        label=raw.label[keep],
        factors={name: np.asarray(values)[keep] for name, values in raw.factors.items()},
        official_split=None if raw.official_split is None else np.asarray(raw.official_split)[keep],
        meta={**raw.meta, "subsample": {"n": int(len(keep)), "of": int(len(raw)), "seed": int(seed),
                                        "stratified_by": how}},
    )


# ------------------------------------------------------------- MNIST and Fashion-MNIST


def _torchvision_class(class_name: str):
    import torchvision.datasets

    return getattr(torchvision.datasets, class_name)


def _verified_mirror(name: str, folder: Path, expected: dict[str, str], algorithm: str = "md5") -> dict[str, Path]:
    """{file name: path} of the files in a local mirror folder, each checked against its
    official digest (`expected`, by MD5 or sha256); the errors name the file and the fix."""
    files = list(expected)
    if not folder.is_dir():
        raise UserError(f"data mirror folder {folder} for {name} does not exist: {_dataset_hint(name, files)}")
    digest, label = (_md5_file, "MD5") if algorithm == "md5" else (sha256_file, "sha256")
    paths = {}
    for fname, want in expected.items():
        src = folder / fname
        if not src.is_file():
            raise UserError(f"{src} is missing from the {name} mirror: {_dataset_hint(name, files)}")
        got = digest(src)
        if got != want:
            raise UserError(
                f"{src} is corrupt or truncated ({label} {got}, expected the official {want}): delete it "
                f"and put the official {fname} there, or point `data.mirror` in params.yaml at a good copy"
            )
        log.info("%s: %s verified (%s %s)", name, src, label, want)
        paths[fname] = src
    return paths


def _copy_local_mirror(name: str, folder: Path, resources: list[tuple[str, str]], raw: Path) -> None:
    """Verify the official files in `folder` by MD5 and copy them into torchvision's raw folder."""
    sources = _verified_mirror(name, folder, dict(resources))
    raw.mkdir(parents=True, exist_ok=True)
    for fname, md5 in resources:
        src, dest = sources[fname], raw / fname
        if dest.is_file() and _md5_file(dest) == md5:
            log.info("%s: cached copy of %s reused", name, src)
            continue
        with atomic_path(dest) as tmp:
            shutil.copyfile(src, tmp)
        log.info("%s: %s copied to %s", name, src, raw)


def _download_failure(
    name: str, class_name: str, mirror: str | None, raw: Path, resources: list[tuple[str, str]], exc: BaseException,
    official: str | None = None,
) -> UserError:
    """Turn whatever torchvision raised into one line naming the file and the fix."""
    files = [fname for fname, _ in resources]
    # A file that arrived but fails its MD5: the mirror serves a bad copy.
    for fname, md5 in resources:
        path = raw / fname
        if path.is_file():
            got = _md5_file(path)
            if got != md5:
                path.unlink()  # never leave a bad download in the cache
                source = f"{mirror.rstrip('/')}/{fname}" if mirror else fname
                return UserError(
                    f"{source} is corrupt or truncated (MD5 {got}, expected {md5}, torchvision's value): "
                    f"the bad download was deleted from {raw}; fix the file on the mirror or point "
                    f"`data.mirror` in params.yaml at a good copy"
                )
    match = re.search(r"Error downloading (\S+?):", str(exc))
    failed = match.group(1) if match else next(
        (fname for fname, md5 in resources if not (raw / fname).is_file()), files[0]
    )
    # torchvision's aggregate message lists each mirror's error on the line after "got:".
    per_mirror = re.findall(r"got:\s*\n?(.+)", str(exc))
    reason = _one_line("; ".join(per_mirror) if per_mirror else exc)
    if mirror is None:
        official = official or ", ".join(_torchvision_class(class_name).mirrors)
        return UserError(
            f"could not download {name} (no network?) from torchvision's mirrors {official} ({failed}: {reason}): "
            + _dataset_hint(name, files)
        )
    return UserError(
        f"could not download {failed} from the {name} mirror {mirror} ({reason}): check that the server is up "
        "and serves that folder, or " + _dataset_hint(name, files)
    )


def _load_torchvision(name: str, class_name: str, cache_dir: Path, mirror: str | None) -> RawDataset:
    base = _torchvision_class(class_name)
    resources = [(str(fname), str(md5)) for fname, md5 in base.resources]
    cache_dir = Path(cache_dir)
    raw = cache_dir / class_name / "raw"  # torchvision's own layout: <root>/<ClassName>/raw/

    if mirror is None:
        cls = base
        where = "torchvision's default mirrors " + ", ".join(base.mirrors)
    elif _is_url(mirror):
        url = mirror if mirror.endswith("/") else mirror + "/"
        # A subclass with the same name keeps torchvision's folder layout without touching the class.
        cls = type(class_name, (base,), {"mirrors": [url]})
        where = url
    else:
        folder = _local_folder(mirror)
        _copy_local_mirror(name, folder, resources, raw)
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
        with _socket_timeout(NETWORK_TIMEOUT_S), _quiet_stdout():
            train = cls(root=str(cache_dir), train=True, download=True)
            test = cls(root=str(cache_dir), train=False, download=True)
    except Exception as exc:  # torchvision raises RuntimeError, URLError, OSError, ...
        raise _download_failure(name, class_name, mirror, raw, resources, exc) from exc

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
            **raw.meta, "size": size, "notes": [f"resized 28x28 -> {size}x{size} ({_resampling(NATIVE_SIZE, size)})"]})
    return with_channels(raw, channels)


def load_fashion_mnist(cache_dir: Path, mirror: str | None, n: int | None = None, seed: int = 0) -> RawDataset:
    """Fashion-MNIST, 60,000 train + 10,000 test images, through torchvision.datasets.FashionMNIST."""
    return subsample(_load_torchvision("fashion_mnist", "FashionMNIST", cache_dir, mirror), n, seed)


# ----------------------------------------------------------------------------- Omniglot


def _download_verified(url: str, dest: Path, expected: str, algorithm: str = "sha256", name: str = "omniglot",
                       files: list[str] | None = None) -> None:
    """Download `url` to `dest` atomically; a file whose digest (`algorithm`: sha256 or md5)
    differs from `expected` never gets the final name."""
    log.info("%s: downloading %s", name, url)
    digest = hashlib.new(algorithm)
    hint = _dataset_hint(name, files if files is not None else list(OMNIGLOT_SHA256))
    request = urllib.request.Request(url, headers={"User-Agent": "aebench"})
    try:
        with atomic_path(dest) as tmp:
            with urllib.request.urlopen(request, timeout=NETWORK_TIMEOUT_S) as response, open(tmp, "wb") as fh:
                for block in iter(lambda: response.read(1 << 20), b""):
                    digest.update(block)
                    fh.write(block)
            got = digest.hexdigest()
            if got != expected:
                raise UserError(
                    f"{url} is corrupt or not the expected file ({algorithm} {got}, expected {expected}): "
                    "fix the file on the mirror or point `data.mirror` in params.yaml at a good copy"
                )
    except urllib.error.HTTPError as exc:
        raise UserError(f"could not download {url} (HTTP {exc.code} {exc.reason}): " + hint) from None
    except (urllib.error.URLError, OSError) as exc:
        reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
        raise UserError(
            f"could not download {url} ({_one_line(reason)}): check that the server is up (or the network), or " + hint
        ) from None


def _omniglot_files(cache_dir: Path, mirror: str | None) -> dict[str, Path]:
    """Locate (local mirror) or download (http mirror) the two verified npz files."""
    files = list(OMNIGLOT_SHA256)
    if mirror is None:
        raise UserError(
            "no public source of the Omniglot array files is known (torchvision's Omniglot zips are a "
            "different form): " + _dataset_hint("omniglot", files)
        )
    if _is_url(mirror):
        base = mirror if mirror.endswith("/") else mirror + "/"
        paths: dict[str, Path] = {}
        for fname, sha in OMNIGLOT_SHA256.items():
            dest = Path(cache_dir) / fname
            if dest.is_file() and sha256_file(dest) == sha:
                log.info("omniglot: cached %s verified (sha256 %s), reused", dest, sha)
            else:
                _download_verified(base + fname, dest, sha)
                log.info("omniglot: %s verified (sha256 %s)", dest, sha)
            paths[fname] = dest
        return paths
    return _verified_mirror("omniglot", _local_folder(mirror), OMNIGLOT_SHA256, algorithm="sha256")


def _read_omniglot_npz(path: Path) -> tuple[np.ndarray, np.ndarray]:
    try:
        with np.load(path, allow_pickle=False) as npz:
            images, labels = npz["images"], npz["labels"]
    except Exception as exc:
        raise UserError(f"{path} is unreadable ({_one_line(exc)}): delete it and fetch it again") from None
    if images.dtype != np.bool_ or images.ndim != 4 or labels.shape != images.shape[:2]:
        raise UserError(
            f"{path} has images {images.shape} {images.dtype} and labels {labels.shape}; expected bool "
            "(characters, drawers, 105, 105) and (characters, drawers): replace it with the verified file"
        )
    return images, labels


def _resampling(source: int, size: int) -> str:
    if size == source:
        return "not resampled"
    return "area averaging" if size < source else "bilinear, align_corners=False"


def resize_images(x: np.ndarray, size: int, chunk: int = 2048) -> np.ndarray:
    """(N, H, H) grey images, bool (True = white) or uint8 -> (N, 1, size, size) uint8.

    Downscaling averages areas (torch interpolate mode='area'): each output pixel holds the
    white fraction of the input pixels it covers, so thin strokes survive as grey values, as
    in MNIST's anti-aliasing. Upscaling is bilinear without corner alignment, the resampling
    of torchvision's Resize that vaetc (the GWAE paper's toolkit) uses; vaetc also resizes
    Omniglot's 105x105 scans that way, where area averaging here is the antialiased
    equivalent. Done in chunks to keep the float copy small.
    """
    import torch
    import torch.nn.functional as F

    peak = 1.0 if x.dtype == np.bool_ else 255.0
    height = x.shape[1]
    out = np.empty((len(x), 1, size, size), dtype=np.uint8)
    for start in range(0, len(x), chunk):
        block = torch.from_numpy(np.asarray(x[start : start + chunk], dtype=np.float32))[:, None] / peak
        if size < height:
            block = F.interpolate(block, size=(size, size), mode="area")
        elif size > height:
            block = F.interpolate(block, size=(size, size), mode="bilinear", align_corners=False)
        out[start : start + chunk] = (block * 255.0).round_().clamp_(0, 255).to(torch.uint8).numpy()
    return out


def with_channels(raw: RawDataset, channels: int) -> RawDataset:
    """`raw` with its grey images replicated into `channels` identical channels (vaetc feeds
    every dataset as RGB; done after subsampling, as it multiplies the bytes)."""
    if channels == 1:
        return raw
    notes = [*raw.meta.get("notes", []), f"grey replicated into {channels} identical channels"]
    return dataclasses.replace(raw, x=np.repeat(raw.x, channels, axis=1),
                               meta={**raw.meta, "channels": channels, "notes": notes})


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
                f"resized 105x105 -> {size}x{size} ({_resampling(105, size)})",
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


# ----------------------------------------------------------------------------- CIFAR-10


def load_cifar10(cache_dir: Path, mirror: str | None, n: int | None = None, seed: int = 0) -> RawDataset:
    """CIFAR-10, 50,000 train + 10,000 test colour images (3, 32, 32), labels 0-9, through
    torchvision.datasets.CIFAR10.

    The one file is `cifar-10-python.tar.gz` (torchvision checks its MD5, then the MD5 of every
    extracted batch). A local mirror folder holding it is verified here and copied into
    `cache_dir`, where torchvision finds it and downloads nothing; an http mirror replaces the
    class's `url`. The extracted batches are deleted first, so every run checks the archive.
    """
    base = _torchvision_class("CIFAR10")
    fname, md5 = str(base.filename), str(base.tgz_md5)
    resources = [(fname, md5)]
    cache_dir = Path(cache_dir)
    if mirror is None:
        cls, where = base, str(base.url)
    elif _is_url(mirror):
        url = mirror.rstrip("/") + "/" + fname
        cls, where = type("CIFAR10", (base,), {"url": url}), url
    else:
        folder = _local_folder(mirror)
        _copy_local_mirror("cifar10", folder, resources, cache_dir)
        cls, where = base, str(folder)  # the verified archive is in place: nothing is fetched
    shutil.rmtree(cache_dir / base.base_folder, ignore_errors=True)
    log.info("cifar10: fetching %s from %s into %s", fname, where, cache_dir)
    try:
        with _socket_timeout(NETWORK_TIMEOUT_S), _quiet_stdout():
            train = cls(root=str(cache_dir), train=True, download=True)
            test = cls(root=str(cache_dir), train=False, download=False)
    except Exception as exc:  # torchvision raises RuntimeError, URLError, OSError, ...
        raise _download_failure("cifar10", "CIFAR10", mirror, cache_dir, resources, exc, official=str(base.url)) from exc
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


# ----------------------------------------------------------------------------- dSprites

DSPRITES_FILE = "dsprites_ndarray_co1sh3sc6or40x32y32_64x64.npz"
DSPRITES_URL = "https://github.com/deepmind/dsprites-dataset/raw/master/" + DSPRITES_FILE
# The MD5 that published dSprites loaders check for this file (e.g. vaetc's
# vaetc/data/dsprites.py, and several others with the same value); DeepMind's repository
# itself publishes no checksum. The structure is checked as well (see read_dsprites).
DSPRITES_MD5 = "7da33b31b13a06f4b04a70402ce90c2e"
DSPRITES_SIZE = 32  # 64x64 pooled 2x2 (the CPU budget); 64 keeps the original resolution
DSPRITES_SHAPES = ("square", "ellipse", "heart")
# factor name (the embedded `shapes` dataset's names) -> column of latents_values
# (color, shape, scale, orientation, posX, posY); shape is stored as its class index 0..2.
DSPRITES_FACTORS = {"scale": 2, "rotation": 3, "pos_x": 4, "pos_y": 5}
_DSPRITES_KEYS = ("imgs", "latents_classes", "latents_values")


def _dsprites_file(cache_dir: Path, mirror: str | None) -> Path:
    """The verified npz: in a local mirror folder, or downloaded (official URL or http mirror) into cache_dir."""
    files = [DSPRITES_FILE]
    if mirror is None or _is_url(mirror):
        url = DSPRITES_URL if mirror is None else mirror.rstrip("/") + "/" + DSPRITES_FILE
        dest = Path(cache_dir) / DSPRITES_FILE
        if dest.is_file() and _md5_file(dest) == DSPRITES_MD5:
            log.info("dsprites: cached %s verified (MD5 %s), reused", dest, DSPRITES_MD5)
        else:
            _download_verified(url, dest, DSPRITES_MD5, algorithm="md5", name="dsprites", files=files)
            log.info("dsprites: %s verified (MD5 %s)", dest, DSPRITES_MD5)
        return dest
    return _verified_mirror("dsprites", _local_folder(mirror), {DSPRITES_FILE: DSPRITES_MD5})[DSPRITES_FILE]


def _npy_header(fh, path: Path, key: str) -> tuple[tuple[int, ...], np.dtype]:
    version = np.lib.format.read_magic(fh)
    read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
    shape, fortran, dtype = read(fh)
    if fortran:
        raise UserError(f"{path}: `{key}` is stored in Fortran order, not as the official file: replace it")
    return tuple(shape), dtype


def read_dsprites(path: Path, keep: np.ndarray | None = None, size: int = DSPRITES_SIZE,
                  chunk: int = 8192) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(images (m, 1, size, size) uint8 0..255, latents_classes (m, 6), latents_values (m, 6)) of
    the rows `keep` (all if None) of a dSprites npz.

    The 64x64 0/1 images are streamed out of the archive `chunk` rows at a time (the whole
    array is 3 GB), scaled to 0..255 and average-pooled to `size` (64 / size must be an
    integer). The structure is checked: keys imgs, latents_classes, latents_values, imgs
    uint8 (N, 64, 64) with values 0/1, latents (N, 6); the `metadata` key (a pickle) is never
    read.
    """
    import zipfile

    if 64 % size:
        raise ValueError(f"size must divide 64, got {size}")
    pool = 64 // size
    try:
        zf = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise UserError(f"{path} is not a readable npz ({_one_line(exc)}): delete it and fetch it again") from None
    with zf:
        missing = [k for k in _DSPRITES_KEYS if f"{k}.npy" not in zf.namelist()]
        if missing:
            raise UserError(f"{path} lacks {', '.join(missing)}: not the dSprites file; replace it with {DSPRITES_FILE}")
        lat = {}
        for key in ("latents_classes", "latents_values"):
            with zf.open(f"{key}.npy") as fh:
                lat[key] = np.lib.format.read_array(fh, allow_pickle=False)
        with zf.open("imgs.npy") as fh:
            shape, dtype = _npy_header(fh, path, "imgs")
            n_total = shape[0] if shape else 0
            if dtype != np.uint8 or shape[1:] != (64, 64) or any(lat[k].shape != (n_total, 6) for k in lat):
                raise UserError(
                    f"{path} has imgs {shape} {dtype}, latents_classes {lat['latents_classes'].shape}, latents_values "
                    f"{lat['latents_values'].shape}; expected uint8 (N, 64, 64) and (N, 6): replace it with {DSPRITES_FILE}")
            rows = np.arange(n_total) if keep is None else np.asarray(keep, dtype=np.int64)
            out = np.empty((len(rows), 1, size, size), dtype=np.uint8)
            row_bytes = 64 * 64
            done = 0
            for start in range(0, n_total, chunk):
                stop = min(start + chunk, n_total)
                buf = fh.read((stop - start) * row_bytes)
                if len(buf) != (stop - start) * row_bytes:
                    raise UserError(f"{path} is truncated (imgs ends before row {stop}): delete it and fetch it again")
                lo, hi = np.searchsorted(rows, [start, stop])
                if hi == lo:
                    continue
                block = np.frombuffer(buf, dtype=np.uint8).reshape(-1, 64, 64)[rows[lo:hi] - start]
                if block.max(initial=0) > 1:
                    raise UserError(f"{path} has pixel values above 1: not the dSprites file; replace it with {DSPRITES_FILE}")
                summed = block.reshape(-1, size, pool, size, pool).sum(axis=(2, 4), dtype=np.uint16)
                cells = pool * pool
                out[lo:hi, 0] = (summed * 255 + cells // 2) // cells
                done = hi
            if done != len(rows):
                raise UserError(f"{path}: requested rows beyond its {n_total} images")
    return out, lat["latents_classes"][rows].astype(np.int64), lat["latents_values"][rows].astype(np.float64)


def load_dsprites(cache_dir: Path, mirror: str | None, n: int | None = None, seed: int = 0) -> RawDataset:
    """dSprites (Matthey et al. 2017): 737,280 white sprites on black with their 5 factors.

    The file is DeepMind's npz (DSPRITES_URL), MD5-checked (DSPRITES_MD5) and structure-
    checked. Images are kept at 32x32 (DSPRITES_SIZE: the 64x64 originals average-pooled
    2x2, grey levels 0, 64, 128, 191, 255 at the edges) because 64x64 is 4x the cost on CPU.
    Factors carry the embedded `shapes` dataset's names so DCI/MIG and `group_factor` work
    alike: shape (class index 0..2), scale (0.5..1), rotation (dSprites' orientation, 40
    values in [0, 2 pi], radians), pos_x and pos_y (32 values in 0..1). Label = shape.
    There is no official split. With `n` (`data.options.dsprites.n`) only n images are kept,
    drawn with np.random.default_rng(seed) in equal shares per shape, before decoding.
    """
    path = _dsprites_file(Path(cache_dir), mirror)
    import zipfile

    with zipfile.ZipFile(path) as zf:
        if "latents_classes.npy" not in zf.namelist():
            raise UserError(f"{path} lacks latents_classes: not the dSprites file; replace it with {DSPRITES_FILE}")
        with zf.open("latents_classes.npy") as fh:
            classes = np.lib.format.read_array(fh, allow_pickle=False)
    if classes.ndim != 2 or classes.shape[1] != 6:
        raise UserError(f"{path} has latents_classes {classes.shape}, expected (N, 6): replace it with {DSPRITES_FILE}")
    keep = subsample_indices(len(classes), n, seed, strata=classes[:, 1])
    t0 = time.perf_counter()
    x, cls, values = read_dsprites(path, keep)
    shape = cls[:, 1]
    if shape.size and (shape.min() < 0 or shape.max() >= len(DSPRITES_SHAPES)):
        raise UserError(f"{path} has shape classes outside 0..2: replace it with {DSPRITES_FILE}")
    log.info("dsprites: %d of %d images read and pooled to %dx%d in %.1fs", len(x), len(classes),
             DSPRITES_SIZE, DSPRITES_SIZE, time.perf_counter() - t0)
    factors = {"shape": shape.astype(np.float64)}
    factors.update({name: values[:, col] for name, col in DSPRITES_FACTORS.items()})
    return RawDataset(
        x=x,
        label=shape,
        factors=factors,
        meta={
            "source": "dsprites",
            "loader": "aebench npz reader",
            "url": DSPRITES_URL,
            "mirror": mirror if mirror is not None else DSPRITES_URL,
            "files": {DSPRITES_FILE: {"md5": DSPRITES_MD5, "bytes": path.stat().st_size}},
            "shapes": list(DSPRITES_SHAPES),
            "n_classes": len(DSPRITES_SHAPES),
            "size": DSPRITES_SIZE,
            "licence": "Apache 2.0",
            "citation": "Matthey, Higgins, Hassabis, Lerchner (2017), dSprites: Disentanglement testing Sprites dataset",
            **({"subsample": {"n": int(len(keep)), "of": int(len(classes)), "seed": int(seed),
                              "stratified_by": "shape"}} if keep is not None else {}),
            "notes": [
                f"64x64 0/1 images scaled to 0..255 and average-pooled to {DSPRITES_SIZE}x{DSPRITES_SIZE}",
                "factors: shape (0 square, 1 ellipse, 2 heart), scale, rotation (orientation, radians), "
                "pos_x, pos_y (0..1); label = shape",
            ],
        },
    )


# ----------------------------------------------------------------------------- CelebA

CELEBA_ZIP = "img_align_celeba.zip"
CELEBA_CROP = 140  # centre crop of the aligned 178x218 faces, then resize: the WAE/GWAE convention
CELEBA_SIZE = 64
CELEBA_LABEL = "Smiling"  # the label: one binary attribute, near balanced (about 48% smiling)
CELEBA_PARTITION = {0: "train", 1: "train", 2: "test"}  # official train/valid/test; valid joins train


def _celeba_resources() -> list[tuple[str, str, str]]:
    """(Google Drive id, MD5, file name) of torchvision's CelebA files: the values it checks."""
    return [(str(fid), str(md5), str(fname)) for fid, md5, fname in _torchvision_class("CelebA").file_list]


def _celeba_files(folder: Path, mirror: str | None) -> Path:
    """Bring the six verified CelebA files into `folder` (<cache>/celeba/); returns where the zip is.

    Local mirror: every file is MD5-checked in place, the annotation files are copied (the zip
    is read from the mirror). http mirror: downloaded and checked. No mirror: torchvision's
    Google Drive download (gdown), which checks the MD5s too.
    """
    resources = _celeba_resources()
    files = [fname for _, _, fname in resources]
    folder.mkdir(parents=True, exist_ok=True)
    if mirror is not None and not _is_url(mirror):
        source = _local_folder(mirror)
        sources = _verified_mirror("celeba", source, {fname: md5 for _, md5, fname in resources})
        for _, md5, fname in resources:
            src = sources[fname]
            if fname != CELEBA_ZIP:
                dest = folder / fname
                if not (dest.is_file() and _md5_file(dest) == md5):
                    with atomic_path(dest) as tmp:
                        shutil.copyfile(src, tmp)
        return source / CELEBA_ZIP
    for file_id, md5, fname in resources:
        dest = folder / fname
        if dest.is_file() and _md5_file(dest) == md5:
            log.info("celeba: cached %s verified (MD5 %s), reused", dest, md5)
            continue
        if mirror is not None:
            _download_verified(mirror.rstrip("/") + "/" + fname, dest, md5, algorithm="md5", name="celeba", files=files)
            continue
        from torchvision.datasets.utils import download_file_from_google_drive

        try:
            with _socket_timeout(NETWORK_TIMEOUT_S), _quiet_stdout():
                download_file_from_google_drive(file_id, str(folder), fname, md5)
        except Exception as exc:  # gdown missing, quota exceeded, offline, bad MD5
            if dest.is_file() and _md5_file(dest) != md5:
                dest.unlink()  # never leave a bad download in the cache
            raise UserError(f"could not download {fname} of celeba from Google Drive ({_one_line(exc)}; its quota "
                            "often refuses): " + _dataset_hint("celeba", files)) from None
    return folder / CELEBA_ZIP


def _read_partition(path: Path) -> tuple[list[str], np.ndarray]:
    """list_eval_partition.txt: `<file> <0|1|2>` per line -> (file names, partition codes)."""
    names, codes = [], []
    for number, line in enumerate(path.read_text().splitlines(), 1):
        parts = line.split()
        if not parts:
            continue
        if len(parts) != 2 or parts[1] not in ("0", "1", "2"):
            raise UserError(f"{path} line {number} is not `<file> <0|1|2>`: replace it with the official file")
        names.append(parts[0])
        codes.append(int(parts[1]))
    return names, np.asarray(codes, dtype=np.int64)


def celeba_image(image) -> np.ndarray:
    """A PIL image of an aligned CelebA face -> (3, CELEBA_SIZE, CELEBA_SIZE) uint8: centre crop
    CELEBA_CROP (torchvision's CenterCrop rounding), then a bilinear (antialiased) resize."""
    from PIL import Image

    image = image.convert("RGB")
    width, height = image.size
    crop = min(CELEBA_CROP, width, height)
    left, top = int(round((width - crop) / 2.0)), int(round((height - crop) / 2.0))
    image = image.crop((left, top, left + crop, top + crop)).resize((CELEBA_SIZE, CELEBA_SIZE), Image.BILINEAR)
    return np.asarray(image, dtype=np.uint8).transpose(2, 0, 1)


def load_celeba(cache_dir: Path, mirror: str | None, n: int | None = None, seed: int = 0) -> RawDataset:
    """CelebA (Liu et al. 2015), the 202,599 aligned faces, through torchvision.datasets.CelebA.

    The files are torchvision's six (img_align_celeba.zip and five annotation .txt files), with
    its MD5 values; a mirror folder or URL must hold all six (`<data.mirror>/celeba/`). The
    images of the zip (all, or the `n` drawn per official split with default_rng(seed)) are
    extracted into torchvision's layout `<cache>/celeba/img_align_celeba/`, read through the
    torchvision class (which checks the annotation MD5s), centre-cropped to 140 and resized
    to 64x64 (the WAE/GWAE convention), and the extracted copies are deleted again (the zip is
    the cache). Label: the attribute `Smiling` (1 = smiling). No factors: the 40 attributes
    are not generative factors, so DCI/MIG do not run. Official split: train and valid ->
    "train" (val is drawn from it), test -> "test".
    """
    import zipfile

    import torch

    base = _torchvision_class("CelebA")
    root = Path(cache_dir)
    folder = root / base.base_folder
    zip_path = _celeba_files(folder, mirror)
    names, codes = _read_partition(folder / "list_eval_partition.txt")
    split = np.array([CELEBA_PARTITION[int(c)] for c in codes], dtype="U5")
    keep = subsample_indices(len(names), n, seed, strata=split)
    rows = np.arange(len(names)) if keep is None else keep

    images_dir = folder / "img_align_celeba"
    shutil.rmtree(images_dir, ignore_errors=True)
    t0 = time.perf_counter()
    try:
        zf = zipfile.ZipFile(zip_path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise UserError(f"{zip_path} is not a readable zip ({_one_line(exc)}): delete it and fetch it again") from None
    try:
        with zf:
            members = {Path(m).name: m for m in zf.namelist() if not m.endswith("/")}
            images_dir.mkdir(parents=True)
            for i in rows:
                member = members.get(names[i])
                if member is None:
                    raise UserError(f"{zip_path} lacks {names[i]}, listed in list_eval_partition.txt: not the "
                                    "official archive; replace it")
                with zf.open(member) as src, open(images_dir / names[i], "wb") as dst:
                    shutil.copyfileobj(src, dst)
        log.info("celeba: %d images extracted in %.1fs", len(rows), time.perf_counter() - t0)
        try:
            dataset = base(root=str(root), split="all", target_type="attr", transform=celeba_image)
        except Exception as exc:  # torchvision: "Dataset not found or corrupted"
            raise UserError(f"torchvision rejected the celeba files in {folder} ({_one_line(exc)}): delete that folder "
                            "and rerun, or point `data.mirror` in params.yaml at a good copy") from None
        if list(dataset.filename) != names:
            raise UserError(f"{folder}: list_attr_celeba.txt and list_eval_partition.txt list different files: "
                            "replace them with the official files")
        attr_names = [a for a in dataset.attr_names if a]
        if CELEBA_LABEL not in attr_names or dataset.attr.shape[1] != len(attr_names):
            raise UserError(f"{folder / 'list_attr_celeba.txt'} has no `{CELEBA_LABEL}` column among "
                            f"{len(attr_names)}: replace it with the official file")
        column = attr_names.index(CELEBA_LABEL)
        x = np.empty((len(rows), 3, CELEBA_SIZE, CELEBA_SIZE), dtype=np.uint8)
        t0 = time.perf_counter()
        for j, i in enumerate(rows):
            x[j], _ = dataset[int(i)]
            if (j + 1) % 20000 == 0:
                log.info("celeba: %d of %d images cropped and resized", j + 1, len(rows))
        label = dataset.attr[torch.as_tensor(rows), column].numpy().astype(np.int64)
        log.info("celeba: %d images read in %.1fs", len(rows), time.perf_counter() - t0)
    finally:
        shutil.rmtree(images_dir, ignore_errors=True)
    return RawDataset(
        x=x,
        label=label,
        official_split=split[rows],
        meta={
            "source": "celeba",
            "loader": "torchvision.datasets.CelebA",
            "mirror": mirror if mirror is not None else "Google Drive (torchvision's file ids)",
            "files": {fname: {"md5": md5} for _, md5, fname in _celeba_resources()},
            "n_classes": 2,
            "label": f"{CELEBA_LABEL} (1 = yes)",
            "crop": CELEBA_CROP,
            "size": CELEBA_SIZE,
            "citation": "Liu, Luo, Wang, Tang (2015), Deep Learning Face Attributes in the Wild",
            **({"subsample": {"n": int(len(keep)), "of": int(len(names)), "seed": int(seed),
                              "stratified_by": "official split"}} if keep is not None else {}),
            "notes": [
                f"aligned 178x218 faces centre-cropped to {CELEBA_CROP}x{CELEBA_CROP}, resized to "
                f"{CELEBA_SIZE}x{CELEBA_SIZE} (bilinear)",
                "official split: train + valid -> train (val is drawn from it), test -> test",
                f"label = attribute {CELEBA_LABEL}; the 40 attributes are not stored as factors",
            ],
        },
    )


REAL: dict[str, Callable[..., RawDataset]] = {
    "mnist": load_mnist,
    "fashion_mnist": load_fashion_mnist,
    "omniglot": load_omniglot,
    "cifar10": load_cifar10,
    "celeba": load_celeba,
    "dsprites": load_dsprites,
}


def check_image_options(dataset: str, image_options: dict) -> None:
    """Refuse, with one line, an image option (`DatasetOptions.image_options()`) that the
    dataset's loader does not take, rather than ignore it (embedded datasets take none)."""
    for key in image_options:
        if key not in IMAGE_OPTIONS.get(dataset, ()):
            takers = ", ".join(name for name, keys in IMAGE_OPTIONS.items() if key in keys)
            raise UserError(f"`data.options.{dataset}.{key}` in params.yaml applies to {takers} only: "
                            f"remove it from `data.options.{dataset}`")


def load_real(dataset: str, cache_dir: Path, mirror: str | None, n: int | None = None, seed: int = 0,
              **image_options) -> RawDataset:
    """`REAL[dataset]` with the image options params.yaml sets for it (checked first)."""
    check_image_options(dataset, image_options)
    return REAL[dataset](cache_dir, mirror, n=n, seed=seed, **image_options)
