"""Real-dataset loaders (aebench.data.datasets, fetched through aebench.data.fetch), run offline against the shared data copies.

The tests that need the verified copies locate them at `<repo>/../shared/data` (override
with AEBENCH_SHARED_DATA) and skip when they are absent. HTTP mirrors are exercised with a
local http.server on 127.0.0.1; nothing here touches the internet.
"""

from __future__ import annotations

import contextlib
import functools
import http.server
import logging
import os
import socket
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from aebench.data.datasets import omniglot
from aebench.data.raw import RawDataset
from aebench.data.registry import REAL
from aebench.errors import UserError

MNIST_FILES = [
    "train-images-idx3-ubyte.gz",
    "train-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
]


def _shared_data() -> Path:
    env = os.environ.get("AEBENCH_SHARED_DATA")
    return Path(env) if env else Path(__file__).resolve().parents[2] / "shared" / "data"


@pytest.fixture
def mnist_dir() -> Path:
    folder = _shared_data() / "mnist"
    if not all((folder / f).is_file() for f in MNIST_FILES):
        pytest.skip(f"offline MNIST copy not found at {folder} (set AEBENCH_SHARED_DATA)")
    return folder


@pytest.fixture
def omniglot_dir() -> Path:
    folder = _shared_data() / "omniglot"
    if not all((folder / f).is_file() for f in omniglot.OMNIGLOT_SHA256):
        pytest.skip(f"offline Omniglot copy not found at {folder} (set AEBENCH_SHARED_DATA)")
    return folder


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format, *args):  # noqa: A002 - keep the test output clean
        pass


@contextlib.contextmanager
def serve(folder: Path):
    """Serve `folder` over http on a free 127.0.0.1 port; yield its URL."""
    handler = functools.partial(_QuietHandler, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _check_mnist(raw: RawDataset) -> None:
    assert isinstance(raw, RawDataset)
    assert raw.x.shape == (70_000, 1, 28, 28)
    assert raw.x.dtype == np.uint8
    assert raw.label.dtype == np.int64
    assert sorted(np.unique(raw.label).tolist()) == list(range(10))
    assert (raw.official_split == "train").sum() == 60_000
    assert (raw.official_split[:60_000] == "train").all() and (raw.official_split[60_000:] == "test").all()
    assert set(raw.meta["files"]) == set(MNIST_FILES)
    assert raw.meta["files"]["train-images-idx3-ubyte.gz"]["md5"] == "f68b3c2dcbeaaa9fbdd348bbdeb94873"
    # MNIST's convention, which Omniglot is converted to: white strokes on a black background.
    assert raw.x.mean() < 60


def _copy_with_damage(src: Path, dest: Path, damaged: str, truncate: bool) -> Path:
    dest.mkdir(parents=True, exist_ok=True)
    for f in src.iterdir():
        if f.name != damaged:
            (dest / f.name).symlink_to(f)
    data = (src / damaged).read_bytes()
    if truncate:
        data = data[: len(data) // 2]
    else:
        data = data[:100] + bytes([data[100] ^ 0xFF]) + data[101:]
    (dest / damaged).write_bytes(data)
    return dest


# ----------------------------------------------------------------------------- MNIST


def test_registry_names():
    assert set(REAL) == {"mnist", "fashion_mnist", "omniglot", "cifar10", "celeba", "dsprites"}
    assert all(callable(f) for f in REAL.values())


def test_mnist_from_local_folder(mnist_dir, tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="aebench.data.fetch")
    raw = REAL["mnist"](tmp_path / "cache", str(mnist_dir))
    _check_mnist(raw)
    assert raw.meta["source"] == "mnist" and raw.meta["mirror"] == str(mnist_dir)
    # torchvision's own layout, with the verified archives in it
    assert all((tmp_path / "cache" / "MNIST" / "raw" / f).is_file() for f in MNIST_FILES)
    assert any("verified" in r.getMessage() for r in caplog.records)


def test_mnist_subsample_keeps_the_official_split_shares(mnist_dir, tmp_path):
    raw = REAL["mnist"](tmp_path / "cache", str(mnist_dir), n=700, seed=1)
    assert raw.x.shape == (700, 1, 28, 28) and raw.x.dtype == np.uint8
    assert (raw.official_split == "train").sum() == 600 and (raw.official_split == "test").sum() == 100
    assert raw.meta["subsample"] == {"n": 700, "of": 70_000, "seed": 1, "stratified_by": "official split"}


def test_mnist_from_http_mirror_then_cache(mnist_dir, tmp_path):
    cache = tmp_path / "cache"
    with serve(mnist_dir) as url:
        raw = REAL["mnist"](cache, url.rstrip("/"))  # with or without the trailing slash
    _check_mnist(raw)
    # The server is gone: the verified archives in the cache are reused, nothing is fetched.
    _check_mnist(REAL["mnist"](cache, url))


@pytest.mark.parametrize("truncate", [True, False], ids=["truncated", "changed-byte"])
def test_mnist_corrupt_local_mirror(mnist_dir, tmp_path, truncate):
    bad = _copy_with_damage(mnist_dir, tmp_path / "mirror", "t10k-labels-idx1-ubyte.gz", truncate)
    with pytest.raises(UserError, match="t10k-labels-idx1-ubyte.gz") as info:
        REAL["mnist"](tmp_path / "cache", str(bad))
    message = str(info.value)
    assert "\n" not in message and "MD5" in message and "delete it" in message
    assert not (tmp_path / "cache" / "MNIST" / "raw" / "t10k-labels-idx1-ubyte.gz").exists()


def test_mnist_corrupt_http_mirror(mnist_dir, tmp_path):
    bad = _copy_with_damage(mnist_dir, tmp_path / "mirror", "train-labels-idx1-ubyte.gz", truncate=False)
    cache = tmp_path / "cache"
    with serve(bad) as url, pytest.raises(UserError, match="train-labels-idx1-ubyte.gz") as info:
        REAL["mnist"](cache, url)
    assert "MD5" in str(info.value) and "data.mirror" in str(info.value)
    # the bad download does not stay in the cache
    assert not (cache / "MNIST" / "raw" / "train-labels-idx1-ubyte.gz").exists()


def test_mnist_local_mirror_missing_file_or_folder(mnist_dir, tmp_path):
    partial = tmp_path / "partial"
    partial.mkdir()
    (partial / "train-images-idx3-ubyte.gz").symlink_to(mnist_dir / "train-images-idx3-ubyte.gz")
    with pytest.raises(UserError, match="train-labels-idx1-ubyte.gz is missing"):
        REAL["mnist"](tmp_path / "cache", str(partial))
    with pytest.raises(UserError, match="does not exist.*data.mirror"):
        REAL["mnist"](tmp_path / "cache", str(tmp_path / "nowhere"))


def test_mnist_http_mirror_without_the_files(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    with serve(empty) as url, pytest.raises(UserError, match="train-images-idx3-ubyte.gz") as info:
        REAL["mnist"](tmp_path / "cache", url)
    assert url in str(info.value) and "404" in str(info.value)


@pytest.mark.parametrize("name,class_name", [("mnist", "MNIST"), ("fashion_mnist", "FashionMNIST")])
def test_no_mirror_and_no_network(monkeypatch, tmp_path, name, class_name):
    import torchvision.datasets

    # Stand-in for the official mirrors on an offline machine: a port nobody listens on.
    dead = f"http://127.0.0.1:{_closed_port()}/"
    monkeypatch.setattr(getattr(torchvision.datasets, class_name), "mirrors", [dead])
    start = time.perf_counter()
    with pytest.raises(UserError, match=r"could not download .*no network.*data\.mirror") as info:
        REAL[name](tmp_path / "cache", None)
    assert time.perf_counter() - start < 10
    assert "\n" not in str(info.value) and "train-images-idx3-ubyte.gz" in str(info.value)


def test_unsupported_mirror_scheme(tmp_path):
    with pytest.raises(UserError, match="unsupported scheme"):
        REAL["mnist"](tmp_path, "ftp://example.invalid/mnist")


# ----------------------------------------------------------------------------- Omniglot


def test_omniglot_from_local_folder(omniglot_dir, tmp_path):
    raw = REAL["omniglot"](tmp_path / "cache", str(omniglot_dir))
    n_train, n_test = 964 * 20, 659 * 20
    assert raw.x.shape == (n_train + n_test, 1, 28, 28) and raw.x.dtype == np.uint8
    assert raw.label.dtype == np.int64
    assert raw.label.min() == 0 and raw.label.max() == 964 + 659 - 1
    assert len(np.unique(raw.label)) == 1623
    assert (raw.official_split[:n_train] == "train").all() and (raw.official_split[n_train:] == "test").all()
    # evaluation characters do not reuse background ids
    assert set(raw.label[:n_train]).isdisjoint(raw.label[n_train:])
    assert np.bincount(raw.label).tolist() == [20] * 1623
    # MNIST's convention: strokes are bright on a mostly black background
    assert raw.x.mean() < 60
    assert raw.x.max() == 255
    assert np.median(raw.x) == 0
    border = np.concatenate([raw.x[:, 0, 0, :], raw.x[:, 0, -1, :], raw.x[:, 0, :, 0], raw.x[:, 0, :, -1]], axis=1)
    assert border.mean() < raw.x.mean()
    assert any("invert" in note for note in raw.meta["notes"])
    assert any("28x28" in note for note in raw.meta["notes"])


def test_omniglot_checksum_mismatch_refused(omniglot_dir, tmp_path):
    bad = _copy_with_damage(omniglot_dir, tmp_path / "mirror", "images_evaluation.npz", truncate=False)
    with pytest.raises(UserError, match="images_evaluation.npz.*sha256") as info:
        REAL["omniglot"](tmp_path / "cache", str(bad))
    assert "\n" not in str(info.value)


def test_omniglot_http_download_is_verified_and_cached(omniglot_dir, tmp_path):
    cache = tmp_path / "cache"
    with serve(omniglot_dir) as url:
        paths = omniglot._omniglot_files(cache, url)
    assert set(paths) == set(omniglot.OMNIGLOT_SHA256)
    for fname, path in paths.items():
        assert path.parent == cache and path.read_bytes() == (omniglot_dir / fname).read_bytes()
    assert sorted(p.name for p in cache.iterdir()) == sorted(omniglot.OMNIGLOT_SHA256)  # no temp files left
    # server gone: the verified cached files are reused
    assert omniglot._omniglot_files(cache, url) == paths


def test_omniglot_http_corrupt_file_never_lands(omniglot_dir, tmp_path):
    bad = _copy_with_damage(omniglot_dir, tmp_path / "mirror", "images_background.npz", truncate=True)
    cache = tmp_path / "cache"
    with serve(bad) as url, pytest.raises(UserError, match="images_background.npz.*sha256"):
        REAL["omniglot"](cache, url)
    assert not cache.exists() or list(cache.iterdir()) == []


def test_omniglot_unreachable_http_mirror(tmp_path):
    url = f"http://127.0.0.1:{_closed_port()}/omniglot"
    with pytest.raises(UserError, match="could not download .*images_background.npz"):
        REAL["omniglot"](tmp_path / "cache", url)


def test_omniglot_needs_a_mirror(tmp_path):
    with pytest.raises(UserError, match=r"no public source.*data\.mirror"):
        REAL["omniglot"](tmp_path / "cache", None)
    with pytest.raises(UserError, match="does not exist"):
        REAL["omniglot"](tmp_path / "cache", str(tmp_path / "nowhere"))
