"""Loaders for the real datasets: MNIST, Fashion-MNIST (through torchvision) and Omniglot.

Each loader has the signature `(cache_dir, mirror) -> RawDataset`:

- `cache_dir` is a folder the loader may write downloaded or copied files into (reused on
  the next call when the checksums still match);
- `mirror` is where the files come from: a local folder, an http(s) URL of a folder, or
  None for the official sources (torchvision's own mirrors; Omniglot has none in array
  form, so it needs a mirror).

MNIST and Fashion-MNIST go through `torchvision.datasets.MNIST` / `FashionMNIST` so that
their MD5 checks run. A local mirror is verified here first (against the same
`resources` list torchvision checks) and copied into `<cache_dir>/<ClassName>/raw/`, where
torchvision verifies it again and extracts it; an http mirror replaces the class's
`mirrors`, so torchvision downloads and checks the files itself.

Omniglot comes as two .npz arrays (images_background.npz, images_evaluation.npz) checked
by sha256. It is converted to MNIST's convention (white strokes on black, 28x28) so it can
serve as MNIST's out-of-distribution companion.

Every failure a user can fix raises `UserError` with one line naming the file and the fix.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import logging
import os
import re
import shutil
import socket
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
OMNIGLOT_SIZE = 28  # target side length, MNIST's


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


# ------------------------------------------------------------- MNIST and Fashion-MNIST


def _torchvision_class(class_name: str):
    import torchvision.datasets

    return getattr(torchvision.datasets, class_name)


def _copy_local_mirror(name: str, folder: Path, resources: list[tuple[str, str]], raw: Path) -> None:
    """Verify the official files in `folder` by MD5 and copy them into torchvision's raw folder."""
    files = [fname for fname, _ in resources]
    if not folder.is_dir():
        raise UserError(f"data mirror folder {folder} for {name} does not exist: {_dataset_hint(name, files)}")
    raw.mkdir(parents=True, exist_ok=True)
    for fname, md5 in resources:
        src = folder / fname
        if not src.is_file():
            raise UserError(f"{src} is missing from the {name} mirror: {_dataset_hint(name, files)}")
        got = _md5_file(src)
        if got != md5:
            raise UserError(
                f"{src} is corrupt or truncated (MD5 {got}, expected {md5}, torchvision's value for {fname}): "
                f"delete it and put the official {fname} there, or point `data.mirror` in params.yaml at a good copy"
            )
        dest = raw / fname
        if dest.is_file() and _md5_file(dest) == md5:
            log.info("%s: %s verified (MD5 %s), cached copy reused", name, src, md5)
            continue
        with atomic_path(dest) as tmp:
            shutil.copyfile(src, tmp)
        log.info("%s: %s verified (MD5 %s) and copied to %s", name, src, md5, raw)


def _download_failure(
    name: str, class_name: str, mirror: str | None, raw: Path, resources: list[tuple[str, str]], exc: BaseException
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
        official = ", ".join(_torchvision_class(class_name).mirrors)
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


def load_mnist(cache_dir: Path, mirror: str | None) -> RawDataset:
    """MNIST, 60,000 train + 10,000 test digits, through torchvision.datasets.MNIST."""
    return _load_torchvision("mnist", "MNIST", cache_dir, mirror)


def load_fashion_mnist(cache_dir: Path, mirror: str | None) -> RawDataset:
    """Fashion-MNIST, 60,000 train + 10,000 test images, through torchvision.datasets.FashionMNIST."""
    return _load_torchvision("fashion_mnist", "FashionMNIST", cache_dir, mirror)


# ----------------------------------------------------------------------------- Omniglot


def _download_verified(url: str, dest: Path, sha256: str) -> None:
    """Download `url` to `dest` atomically; a file whose sha256 differs never gets the final name."""
    log.info("omniglot: downloading %s", url)
    digest = hashlib.sha256()
    request = urllib.request.Request(url, headers={"User-Agent": "aebench"})
    try:
        with atomic_path(dest) as tmp:
            with urllib.request.urlopen(request, timeout=NETWORK_TIMEOUT_S) as response, open(tmp, "wb") as fh:
                for block in iter(lambda: response.read(1 << 20), b""):
                    digest.update(block)
                    fh.write(block)
            got = digest.hexdigest()
            if got != sha256:
                raise UserError(
                    f"{url} is corrupt or not the expected file (sha256 {got}, expected {sha256}): "
                    "fix the file on the mirror or point `data.mirror` in params.yaml at a good copy"
                )
    except urllib.error.HTTPError as exc:
        raise UserError(
            f"could not download {url} (HTTP {exc.code} {exc.reason}): "
            + _dataset_hint("omniglot", list(OMNIGLOT_SHA256))
        ) from None
    except (urllib.error.URLError, OSError) as exc:
        reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
        raise UserError(
            f"could not download {url} ({_one_line(reason)}): check that the server is up, or "
            + _dataset_hint("omniglot", list(OMNIGLOT_SHA256))
        ) from None


def _omniglot_files(cache_dir: Path, mirror: str | None) -> dict[str, Path]:
    """Locate (local mirror) or download (http mirror) the two verified npz files."""
    files = list(OMNIGLOT_SHA256)
    if mirror is None:
        raise UserError(
            "no public source of the Omniglot array files is known (torchvision's Omniglot zips are a "
            "different form): " + _dataset_hint("omniglot", files)
        )
    paths: dict[str, Path] = {}
    if _is_url(mirror):
        base = mirror if mirror.endswith("/") else mirror + "/"
        for fname, sha in OMNIGLOT_SHA256.items():
            dest = Path(cache_dir) / fname
            if dest.is_file() and sha256_file(dest) == sha:
                log.info("omniglot: cached %s verified (sha256 %s), reused", dest, sha)
            else:
                _download_verified(base + fname, dest, sha)
                log.info("omniglot: %s verified (sha256 %s)", dest, sha)
            paths[fname] = dest
        return paths
    folder = _local_folder(mirror)
    if not folder.is_dir():
        raise UserError(f"data mirror folder {folder} for omniglot does not exist: " + _dataset_hint("omniglot", files))
    for fname, sha in OMNIGLOT_SHA256.items():
        src = folder / fname
        if not src.is_file():
            raise UserError(f"{src} is missing from the omniglot mirror: " + _dataset_hint("omniglot", files))
        got = sha256_file(src)
        if got != sha:
            raise UserError(
                f"{src} is corrupt or not the expected file (sha256 {got}, expected {sha}): delete it and put a "
                "verified copy there, or point `data.mirror` in params.yaml at a good copy"
            )
        log.info("omniglot: %s verified (sha256 %s)", src, sha)
        paths[fname] = src
    return paths


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


def _strokes_to_mnist(images: np.ndarray, chunk: int = 2048) -> np.ndarray:
    """(N, 105, 105) bool, True = white background -> (N, 1, 28, 28) uint8 with stroke = 255.

    Area averaging gives each output pixel the stroke fraction of the 3.75 x 3.75 input
    pixels it covers, so thin strokes survive as grey values as in MNIST's anti-aliasing.
    Done in chunks to keep the float copy small.
    """
    import torch
    import torch.nn.functional as F

    out = np.empty((len(images), 1, OMNIGLOT_SIZE, OMNIGLOT_SIZE), dtype=np.uint8)
    for start in range(0, len(images), chunk):
        block = torch.from_numpy(~images[start : start + chunk]).to(torch.float32)[:, None]
        small = F.interpolate(block, size=(OMNIGLOT_SIZE, OMNIGLOT_SIZE), mode="area")
        out[start : start + chunk] = (small * 255.0).round_().clamp_(0, 255).to(torch.uint8).numpy()
    return out


def load_omniglot(cache_dir: Path, mirror: str | None) -> RawDataset:
    """Omniglot's 1,623 characters x 20 drawers as 28x28 white-on-black images."""
    paths = _omniglot_files(Path(cache_dir), mirror)
    xs, labels, splits, counts = [], [], [], {}
    offset = 0
    for fname, path in paths.items():
        images, char = _read_omniglot_npz(path)
        n_chars, n_drawers = images.shape[:2]
        if char.min() < 0 or char.max() >= n_chars:
            raise UserError(f"{path} has character labels outside 0..{n_chars - 1}: replace it with the verified file")
        log.info("omniglot: %s: %d characters x %d drawers, inverting and resizing to %dx%d",
                 fname, n_chars, n_drawers, OMNIGLOT_SIZE, OMNIGLOT_SIZE)
        xs.append(_strokes_to_mnist(images.reshape(-1, *images.shape[2:])))
        labels.append(char.reshape(-1).astype(np.int64) + offset)  # unique ids over both sets
        splits.append(np.full(n_chars * n_drawers, OMNIGLOT_SPLIT[fname], dtype="U5"))
        counts[fname] = {"characters": int(n_chars), "drawers": int(n_drawers), "label_offset": int(offset),
                         "sha256": OMNIGLOT_SHA256[fname], "split": OMNIGLOT_SPLIT[fname]}
        offset += n_chars
    x = np.concatenate(xs)
    log.info("omniglot: %d images of %d characters loaded", len(x), offset)
    return RawDataset(
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
            "notes": [
                "inverted: the arrays store True = white background; here stroke = 255 on a black "
                "background, MNIST's convention",
                "resized 105x105 -> 28x28 by area averaging (torch interpolate mode='area')",
                "label = character id, unique over both sets: evaluation ids are offset by the number "
                "of background characters",
                "official_split: images_background -> train, images_evaluation -> test",
            ],
        },
    )


REAL: dict[str, Callable[[Path, str | None], RawDataset]] = {
    "mnist": load_mnist,
    "fashion_mnist": load_fashion_mnist,
    "omniglot": load_omniglot,
}
