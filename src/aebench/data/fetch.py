"""Fetching real datasets: mirrors, checksums and downloads shared by every loader in
`aebench.data.datasets`, and the seeded subsample of a fetched dataset.

A mirror (`data.mirror`, or `data.options.<dataset>.mirror`) is a local folder (a file:// prefix
is accepted), an http(s) URL of a folder, or None for the official sources. Every file is
checked against its published digest (MD5 or sha256) before use; a download that fails its
check never gets its final name. Datasets that torchvision ships (MNIST, Fashion-MNIST,
CIFAR-10, CelebA) go through their torchvision class so that its MD5 checks run too: a local
mirror is verified here and copied into torchvision's raw folder (`copy_local_mirror`), and
whatever torchvision raises becomes one line naming the file and the fix (`torchvision_failure`).

Every failure a user can fix raises `UserError` with one line naming the file and the fix.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import logging
import re
import shutil
import socket
import urllib.error
import urllib.request
from pathlib import Path
from typing import Iterator

import numpy as np

from aebench.data.raw import RawDataset
from aebench.errors import UserError
from aebench.io import atomic_path, sha256_file

log = logging.getLogger(__name__)

# Seconds a single network operation (connect, read) may block before it counts as failed.
NETWORK_TIMEOUT_S = 60.0

# ----------------------------------------------------------------------------- helpers


def md5_file(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(chunk), b""):
            digest.update(block)
    return digest.hexdigest()


def is_url(mirror: str) -> bool:
    return mirror.startswith(("http://", "https://"))


def local_folder(mirror: str) -> Path:
    """A mirror that is not an http(s) URL: a folder path (a file:// prefix is accepted)."""
    if mirror.startswith("file://"):
        mirror = mirror[len("file://"):]
    elif "://" in mirror:
        raise UserError(
            f"data mirror `{mirror}` has an unsupported scheme: set `data.mirror` in params.yaml "
            "to a local folder or an http(s) URL"
        )
    return Path(mirror).expanduser()


def one_line(exc: object, limit: int = 200) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."


def dataset_hint(name: str, files: list[str]) -> str:
    """The common fix: where to put the files so `data.mirror` finds them."""
    return (
        f"set `data.mirror` in params.yaml to a folder or http URL whose {name}/ sub-folder holds "
        f"{', '.join(files)} (e.g. ../shared/data), or `data.options.{name}.mirror` to that folder itself"
    )


@contextlib.contextmanager
def socket_timeout(seconds: float) -> Iterator[None]:
    """torchvision opens URLs without a timeout; bound them so an offline machine fails, not hangs."""
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(seconds)
    try:
        yield
    finally:
        socket.setdefaulttimeout(previous)


@contextlib.contextmanager
def quiet_stdout() -> Iterator[None]:
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



# ----------------------------------------------------------------------------- mirrors


def torchvision_class(class_name: str):
    import torchvision.datasets

    return getattr(torchvision.datasets, class_name)


def verified_mirror(name: str, folder: Path, expected: dict[str, str], algorithm: str = "md5") -> dict[str, Path]:
    """{file name: path} of the files in a local mirror folder, each checked against its
    official digest (`expected`, by MD5 or sha256); the errors name the file and the fix."""
    files = list(expected)
    if not folder.is_dir():
        raise UserError(f"data mirror folder {folder} for {name} does not exist: {dataset_hint(name, files)}")
    digest, label = (md5_file, "MD5") if algorithm == "md5" else (sha256_file, "sha256")
    paths = {}
    for fname, want in expected.items():
        src = folder / fname
        if not src.is_file():
            raise UserError(f"{src} is missing from the {name} mirror: {dataset_hint(name, files)}")
        got = digest(src)
        if got != want:
            raise UserError(
                f"{src} is corrupt or truncated ({label} {got}, expected the official {want}): delete it "
                f"and put the official {fname} there, or point `data.mirror` in params.yaml at a good copy"
            )
        log.info("%s: %s verified (%s %s)", name, src, label, want)
        paths[fname] = src
    return paths


def copy_local_mirror(name: str, folder: Path, resources: list[tuple[str, str]], raw: Path) -> None:
    """Verify the official files in `folder` by MD5 and copy them into torchvision's raw folder."""
    sources = verified_mirror(name, folder, dict(resources))
    raw.mkdir(parents=True, exist_ok=True)
    for fname, md5 in resources:
        src, dest = sources[fname], raw / fname
        if dest.is_file() and md5_file(dest) == md5:
            log.info("%s: cached copy of %s reused", name, src)
            continue
        with atomic_path(dest) as tmp:
            shutil.copyfile(src, tmp)
        log.info("%s: %s copied to %s", name, src, raw)


def torchvision_failure(
    name: str, class_name: str, mirror: str | None, raw: Path, resources: list[tuple[str, str]], exc: BaseException,
    official: str | None = None,
) -> UserError:
    """Turn whatever torchvision raised into one line naming the file and the fix."""
    files = [fname for fname, _ in resources]
    # A file that arrived but fails its MD5: the mirror serves a bad copy.
    for fname, md5 in resources:
        path = raw / fname
        if path.is_file():
            got = md5_file(path)
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
    reason = one_line("; ".join(per_mirror) if per_mirror else exc)
    if mirror is None:
        official = official or ", ".join(torchvision_class(class_name).mirrors)
        return UserError(
            f"could not download {name} (no network?) from torchvision's mirrors {official} ({failed}: {reason}): "
            + dataset_hint(name, files)
        )
    return UserError(
        f"could not download {failed} from the {name} mirror {mirror} ({reason}): check that the server is up "
        "and serves that folder, or " + dataset_hint(name, files)
    )



def download_verified(url: str, dest: Path, expected: str, *, name: str, files: list[str],
                       algorithm: str = "sha256") -> None:
    """Download `url` to `dest` atomically; a file whose digest (`algorithm`: sha256 or md5)
    differs from `expected` never gets the final name."""
    log.info("%s: downloading %s", name, url)
    digest = hashlib.new(algorithm)
    hint = dataset_hint(name, files)
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
            f"could not download {url} ({one_line(reason)}): check that the server is up (or the network), or " + hint
        ) from None
