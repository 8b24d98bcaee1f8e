"""CIFAR-10, dSprites and CelebA loaders, run offline on small files built here in each
dataset's official format (no download is possible in the test environment).

The product code checks the official checksums (torchvision's MD5s, the published dSprites
MD5). A fabricated file cannot match them, so the tests that load one first point those
expected values at the fabricated files (monkeypatching torchvision's class attributes or
`dsprites_module.DSPRITES_MD5`); the tests of the checksum failure path keep the official values.
"""

from __future__ import annotations

import hashlib
import io
import pickle
import tarfile
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
import yaml

from aebench.data import fetch
from aebench.data.datasets import celeba as celeba_module, dsprites as dsprites_module
from aebench.data.registry import REAL
from aebench.errors import UserError
from test_sources import _closed_port, serve


def md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def one_line(exc: pytest.ExceptionInfo) -> str:
    message = str(exc.value)
    assert "\n" not in message
    return message


# ----------------------------------------------------------------------------- subsampling


def test_subsample_indices_keeps_every_stratum():
    strata = np.array(["train"] * 95 + ["test"] * 5)
    keep = fetch.subsample_indices(100, 10, 0, strata)
    assert len(keep) == 10 and (np.diff(keep) > 0).all() and keep.dtype == np.int64
    assert (strata[keep] == "test").sum() == 1
    np.testing.assert_array_equal(keep, fetch.subsample_indices(100, 10, 0, strata))  # seeded
    assert not np.array_equal(keep, fetch.subsample_indices(100, 10, 1, strata))
    rare = np.array([0] * 98 + [1, 2])
    assert sorted(rare[fetch.subsample_indices(100, 3, 0, rare)]) == [0, 1, 2]  # no class vanishes
    assert fetch.subsample_indices(100, None, 0) is None and fetch.subsample_indices(100, 100, 0) is None
    assert len(fetch.subsample_indices(100, 7, 0)) == 7


# ----------------------------------------------------------------------------- CIFAR-10

CIFAR_TRAIN, CIFAR_TEST = 4, 6  # images per train batch (5 batches) and in the test batch
CIFAR_CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


def _cifar_batch(n: int, seed: int) -> dict:
    rng = np.random.default_rng(seed)
    data = rng.integers(0, 256, size=(n, 3072), dtype=np.uint8)
    data[0, :1024], data[0, 1024:2048], data[0, 2048:] = 255, 0, 128  # first image: pure R=255, G=0, B=128
    return {"batch_label": f"batch {seed}", "labels": [int(v) for v in rng.integers(0, 10, size=n)],
            "data": data, "filenames": [f"img_{seed}_{i}.png" for i in range(n)]}


@pytest.fixture
def cifar(tmp_path, monkeypatch):
    """A folder with a small cifar-10-python.tar.gz in the official layout; torchvision's MD5
    values point at it. Returns (folder, batches by name)."""
    import torchvision.datasets

    folder = tmp_path / "cifar_mirror"
    folder.mkdir()
    batches = {f"data_batch_{i}": _cifar_batch(CIFAR_TRAIN, i) for i in range(1, 6)}
    batches["test_batch"] = _cifar_batch(CIFAR_TEST, 6)
    members = {name: pickle.dumps(b, protocol=2) for name, b in batches.items()}
    members["batches.meta"] = pickle.dumps({"label_names": CIFAR_CLASSES, "num_cases_per_batch": CIFAR_TRAIN,
                                            "num_vis": 3072}, protocol=2)
    with tarfile.open(folder / "cifar-10-python.tar.gz", "w:gz") as tar:
        for name, payload in members.items():
            info = tarfile.TarInfo(f"cifar-10-batches-py/{name}")
            info.size = len(payload)
            tar.addfile(info, io.BytesIO(payload))
    digest = {name: hashlib.md5(payload).hexdigest() for name, payload in members.items()}
    cls = torchvision.datasets.CIFAR10
    monkeypatch.setattr(cls, "tgz_md5", md5(folder / "cifar-10-python.tar.gz"))
    monkeypatch.setattr(cls, "train_list", [[f"data_batch_{i}", digest[f"data_batch_{i}"]] for i in range(1, 6)])
    monkeypatch.setattr(cls, "test_list", [["test_batch", digest["test_batch"]]])
    monkeypatch.setattr(cls, "meta", {"filename": "batches.meta", "key": "label_names", "md5": digest["batches.meta"]})
    return folder, batches


def _check_cifar(raw, batches) -> None:
    n_train = 5 * CIFAR_TRAIN
    assert raw.x.shape == (n_train + CIFAR_TEST, 3, 32, 32) and raw.x.dtype == np.uint8
    order = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    expected = np.concatenate([batches[b]["data"] for b in order]).reshape(-1, 3, 32, 32)
    np.testing.assert_array_equal(raw.x, expected)  # channels first, exactly the pickled bytes
    assert (raw.x[0, 0] == 255).all() and (raw.x[0, 1] == 0).all() and (raw.x[0, 2] == 128).all()
    assert raw.label.dtype == np.int64 and raw.label.min() >= 0 and raw.label.max() <= 9
    assert raw.label.tolist() == sum((batches[b]["labels"] for b in order), [])
    assert (raw.official_split[:n_train] == "train").all() and (raw.official_split[n_train:] == "test").all()
    assert raw.meta["classes"] == CIFAR_CLASSES and raw.meta["n_classes"] == 10
    # in [0, 1] once scaled, as the pipeline does
    assert 0.0 <= (raw.x / 255.0).min() and (raw.x / 255.0).max() <= 1.0


def test_cifar10_from_local_folder(cifar, tmp_path):
    folder, batches = cifar
    cache = tmp_path / "cache"
    raw = REAL["cifar10"](cache, str(folder))
    _check_cifar(raw, batches)
    assert (cache / "cifar-10-python.tar.gz").read_bytes() == (folder / "cifar-10-python.tar.gz").read_bytes()
    # a second run verifies and extracts the archive again, and gives the same data
    _check_cifar(REAL["cifar10"](cache, str(folder)), batches)


def test_cifar10_from_http_mirror_then_cache(cifar, tmp_path):
    folder, batches = cifar
    cache = tmp_path / "cache"
    with serve(folder) as url:
        _check_cifar(REAL["cifar10"](cache, url.rstrip("/")), batches)
    # the server is gone: the verified archive in the cache is reused
    _check_cifar(REAL["cifar10"](cache, url), batches)


def test_cifar10_subsample_keeps_both_official_splits(cifar, tmp_path):
    folder, _ = cifar
    raw = REAL["cifar10"](tmp_path / "cache", str(folder), n=10, seed=3)
    assert len(raw) == 10
    assert (raw.official_split == "train").sum() == 8 and (raw.official_split == "test").sum() == 2
    assert raw.meta["subsample"] == {"n": 10, "of": 26, "seed": 3, "stratified_by": "official split"}
    again = REAL["cifar10"](tmp_path / "cache", str(folder), n=10, seed=3)
    np.testing.assert_array_equal(raw.x, again.x)


def test_cifar10_wrong_checksum_refused(tmp_path):
    # torchvision's real MD5: a fabricated archive must be refused, naming the file.
    folder = tmp_path / "mirror"
    folder.mkdir()
    (folder / "cifar-10-python.tar.gz").write_bytes(b"not the CIFAR-10 archive")
    with pytest.raises(UserError, match=r"cifar-10-python\.tar\.gz is corrupt .*MD5.*c58f30108f718f92721af3b95e74349a") as info:
        REAL["cifar10"](tmp_path / "cache", str(folder))
    assert "data.mirror" in one_line(info)
    assert not (tmp_path / "cache" / "cifar-10-python.tar.gz").exists()


def test_cifar10_corrupt_http_download_is_deleted(cifar, tmp_path):
    folder, _ = cifar
    data = (folder / "cifar-10-python.tar.gz").read_bytes()
    (folder / "cifar-10-python.tar.gz").write_bytes(data[: len(data) // 2])
    cache = tmp_path / "cache"
    with serve(folder) as url, pytest.raises(UserError, match=r"cifar-10-python\.tar\.gz is corrupt or truncated") as info:
        REAL["cifar10"](cache, url)
    assert "data.mirror" in one_line(info)
    assert not (cache / "cifar-10-python.tar.gz").exists()


def test_cifar10_missing_file_and_no_network(monkeypatch, tmp_path):
    import torchvision.datasets

    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(UserError, match=r"cifar-10-python\.tar\.gz is missing from the cifar10 mirror.*data\.mirror"):
        REAL["cifar10"](tmp_path / "cache", str(empty))
    dead = f"http://127.0.0.1:{_closed_port()}/cifar-10-python.tar.gz"
    monkeypatch.setattr(torchvision.datasets.CIFAR10, "url", dead)
    start = time.perf_counter()
    with pytest.raises(UserError, match=r"could not download cifar10 .*no network.*data\.mirror") as info:
        REAL["cifar10"](tmp_path / "cache", None)
    assert time.perf_counter() - start < 10 and "cifar-10-python.tar.gz" in one_line(info)


# ----------------------------------------------------------------------------- dSprites

DS_SIZES = (3, 2, 2, 2, 2)  # shape, scale, orientation, posX, posY (the real file: 3, 6, 40, 32, 32)


def _dsprites_arrays():
    """Every factor combination once, in dSprites' order (posY varies fastest)."""
    grid = np.stack(np.meshgrid(*[np.arange(s) for s in DS_SIZES], indexing="ij"), -1).reshape(-1, 5)
    n = len(grid)
    classes = np.concatenate([np.zeros((n, 1), dtype=np.int64), grid], axis=1)
    values = np.stack([np.ones(n), classes[:, 1] + 1.0, 0.5 + 0.5 * classes[:, 2], classes[:, 3] * np.pi,
                       classes[:, 4] / 1.0, classes[:, 5] / 1.0], axis=1)
    imgs = np.zeros((n, 64, 64), dtype=np.uint8)
    for i, (_, shape, scale, orient, px, py) in enumerate(classes):
        top, left = 8 + 20 * int(py), 8 + 20 * int(px)
        side = 8 + 4 * int(scale) + 2 * int(shape)
        imgs[i, top:top + side, left:left + side] = 1
        imgs[i, 1, 1 + int(orient)] = 1  # a lone pixel: a 2x2 cell a quarter lit
    return imgs, classes, values


def _pool(imgs: np.ndarray) -> np.ndarray:
    s = imgs.reshape(len(imgs), 32, 2, 32, 2).astype(np.int64).sum(axis=(2, 4))
    return ((s * 255 + 2) // 4).astype(np.uint8)[:, None]


@pytest.fixture
def dsprites(tmp_path, monkeypatch):
    """A folder with a small dSprites npz in the official layout (metadata pickle included);
    the expected MD5 points at it. Returns (folder, imgs, classes, values)."""
    folder = tmp_path / "dsprites_mirror"
    folder.mkdir()
    imgs, classes, values = _dsprites_arrays()
    metadata = np.array({"latents_names": ("color", "shape", "scale", "orientation", "posX", "posY"),
                         "latents_sizes": np.array((1, *DS_SIZES))}, dtype=object)
    path = folder / dsprites_module.DSPRITES_FILE
    np.savez_compressed(path, imgs=imgs, latents_classes=classes, latents_values=values, metadata=metadata)
    monkeypatch.setattr(dsprites_module, "DSPRITES_MD5", md5(path))
    return folder, imgs, classes, values


def test_dsprites_from_local_folder(dsprites, tmp_path):
    folder, imgs, classes, values = dsprites
    raw = REAL["dsprites"](tmp_path / "cache", str(folder))
    assert raw.x.shape == (len(imgs), 1, 32, 32) and raw.x.dtype == np.uint8
    np.testing.assert_array_equal(raw.x, _pool(imgs))
    assert set(np.unique(raw.x).tolist()) <= {0, 64, 128, 191, 255} and raw.x.max() == 255
    assert raw.x[0, 0, 0, 0] == 64  # the lone pixel: a quarter of its 2x2 cell
    assert raw.label.tolist() == classes[:, 1].tolist() and raw.meta["n_classes"] == 3
    assert set(raw.factors) == {"shape", "scale", "rotation", "pos_x", "pos_y"}  # the `shapes` dataset's names
    np.testing.assert_array_equal(raw.factors["shape"], classes[:, 1].astype(float))
    for name, col in (("scale", 2), ("rotation", 3), ("pos_x", 4), ("pos_y", 5)):
        np.testing.assert_array_equal(raw.factors[name], values[:, col])
    assert raw.official_split is None
    assert not (tmp_path / "cache").exists()  # a local mirror is read in place


def test_dsprites_subsample_is_balanced_and_consistent(dsprites, tmp_path):
    folder, imgs, classes, values = dsprites
    raw = REAL["dsprites"](tmp_path / "cache", str(folder), n=12, seed=5)
    keep = fetch.subsample_indices(len(imgs), 12, 5, strata=classes[:, 1])
    assert len(raw) == 12 and np.bincount(raw.label).tolist() == [4, 4, 4]
    np.testing.assert_array_equal(raw.x, _pool(imgs[keep]))  # images and factors stay row-aligned
    np.testing.assert_array_equal(raw.factors["pos_x"], values[keep, 4])
    assert raw.meta["subsample"]["n"] == 12


def test_dsprites_streaming_over_chunk_boundaries(dsprites):
    folder, imgs, classes, _ = dsprites
    path = folder / dsprites_module.DSPRITES_FILE
    keep = np.array([0, 4, 5, 6, 30, 47])
    x, cls, _ = dsprites_module.read_dsprites(path, keep, chunk=5)
    np.testing.assert_array_equal(x, _pool(imgs[keep]))
    np.testing.assert_array_equal(cls, classes[keep])
    full, _, _ = dsprites_module.read_dsprites(path, None, size=64, chunk=7)
    np.testing.assert_array_equal(full[:, 0], imgs * 255)  # size 64 keeps the originals


def test_dsprites_wrong_checksum_refused(tmp_path):
    folder = tmp_path / "mirror"
    folder.mkdir()
    imgs, classes, values = _dsprites_arrays()
    np.savez_compressed(folder / dsprites_module.DSPRITES_FILE, imgs=imgs, latents_classes=classes, latents_values=values)
    # the published MD5: a fabricated file is refused, naming the file and the fix
    with pytest.raises(UserError, match=rf"{dsprites_module.DSPRITES_FILE} is corrupt .*MD5.*{dsprites_module.DSPRITES_MD5}") as info:
        REAL["dsprites"](tmp_path / "cache", str(folder))
    assert "data.mirror" in one_line(info)
    with pytest.raises(UserError, match=r"is missing from the dsprites mirror.*data\.options\.dsprites\.mirror"):
        REAL["dsprites"](tmp_path / "cache", str(tmp_path))


def test_dsprites_structure_checked(tmp_path, monkeypatch):
    folder = tmp_path / "mirror"
    folder.mkdir()
    path = folder / dsprites_module.DSPRITES_FILE
    imgs, classes, values = _dsprites_arrays()
    np.savez_compressed(path, imgs=imgs[:, :32, :32], latents_classes=classes, latents_values=values)
    monkeypatch.setattr(dsprites_module, "DSPRITES_MD5", md5(path))
    with pytest.raises(UserError, match=r"expected uint8 \(N, 64, 64\)") as info:
        REAL["dsprites"](tmp_path / "cache", str(folder))
    one_line(info)
    np.savez_compressed(path, imgs=imgs, latents_classes=classes)
    monkeypatch.setattr(dsprites_module, "DSPRITES_MD5", md5(path))
    with pytest.raises(UserError, match="lacks latents_values"):
        REAL["dsprites"](tmp_path / "cache", str(folder))


def test_dsprites_http_download_is_verified_and_cached(dsprites, tmp_path):
    folder, imgs, _, _ = dsprites
    cache = tmp_path / "cache"
    with serve(folder) as url:
        raw = REAL["dsprites"](cache, url)
    assert len(raw) == len(imgs)
    assert sorted(p.name for p in cache.iterdir()) == [dsprites_module.DSPRITES_FILE]  # no temp files left
    assert len(REAL["dsprites"](cache, url)) == len(imgs)  # server gone: the verified copy is reused


def test_dsprites_unreachable_official_url(monkeypatch, tmp_path):
    monkeypatch.setattr(dsprites_module, "DSPRITES_URL", f"http://127.0.0.1:{_closed_port()}/{dsprites_module.DSPRITES_FILE}")
    with pytest.raises(UserError, match=rf"could not download .*{dsprites_module.DSPRITES_FILE}.*data\.mirror") as info:
        REAL["dsprites"](tmp_path / "cache", None)
    one_line(info)


# ----------------------------------------------------------------------------- CelebA

CELEBA_ATTRS = ("5_o_Clock_Shadow Arched_Eyebrows Attractive Bags_Under_Eyes Bald Bangs Big_Lips Big_Nose Black_Hair "
                "Blond_Hair Blurry Brown_Hair Bushy_Eyebrows Chubby Double_Chin Eyeglasses Goatee Gray_Hair "
                "Heavy_Makeup High_Cheekbones Male Mouth_Slightly_Open Mustache Narrow_Eyes No_Beard Oval_Face "
                "Pale_Skin Pointy_Nose Receding_Hairline Rosy_Cheeks Sideburns Smiling Straight_Hair Wavy_Hair "
                "Wearing_Earrings Wearing_Hat Wearing_Lipstick Wearing_Necklace Wearing_Necktie Young").split()
CELEBA_N = 20
CELEBA_PARTS = [0] * 12 + [1] * 3 + [2] * 5  # train, valid, test


def _face(i: int):
    """A 178x218 image (the aligned faces' size): the centre 140x140 crop is a flat colour
    depending on i, everything outside it black."""
    from PIL import Image

    a = np.zeros((218, 178, 3), dtype=np.uint8)
    a[39:179, 19:159] = (200, 10 * i, 255 - 10 * i)
    return Image.fromarray(a)


@pytest.fixture
def celeba(tmp_path, monkeypatch):
    """A folder with the six CelebA files in the official formats; torchvision's file list
    points at their MD5s. Returns (folder, smiling labels)."""
    import torchvision.datasets

    folder = tmp_path / "celeba_mirror"
    folder.mkdir()
    names = [f"{i + 1:06d}.jpg" for i in range(CELEBA_N)]
    with zipfile.ZipFile(folder / "img_align_celeba.zip", "w") as zf:
        zf.writestr("img_align_celeba/", b"")
        for i, name in enumerate(names):
            buffer = io.BytesIO()
            _face(i).save(buffer, format="JPEG", quality=95)
            zf.writestr(f"img_align_celeba/{name}", buffer.getvalue())
    rng = np.random.default_rng(0)
    attrs = rng.choice([-1, 1], size=(CELEBA_N, 40))
    smiling = np.array([1, -1] * (CELEBA_N // 2))
    attrs[:, CELEBA_ATTRS.index("Smiling")] = smiling
    files = {
        "list_attr_celeba.txt": [str(CELEBA_N), " ".join(CELEBA_ATTRS) + " "]
        + [f"{n} " + " ".join(f"{v:2d}" for v in row) for n, row in zip(names, attrs)],
        "identity_CelebA.txt": [f"{n} {100 + i}" for i, n in enumerate(names)],
        "list_bbox_celeba.txt": [str(CELEBA_N), "image_id x_1 y_1 width height"]
        + [f"{n}    95  71 226 313" for n in names],
        "list_landmarks_align_celeba.txt": [str(CELEBA_N), "lefteye_x lefteye_y righteye_x righteye_y nose_x nose_y "
                                            "leftmouth_x leftmouth_y rightmouth_x rightmouth_y"]
        + [f"{n}    69  109  106  113   77  142   73  152  108  154" for n in names],
        "list_eval_partition.txt": [f"{n} {p}" for n, p in zip(names, CELEBA_PARTS)],
    }
    for fname, lines in files.items():
        (folder / fname).write_text("\r\n".join(lines) + "\r\n")
    cls = torchvision.datasets.CelebA
    monkeypatch.setattr(cls, "file_list", [(fid, md5(folder / fname), fname) for fid, _, fname in cls.file_list])
    return folder, (smiling + 1) // 2


def test_celeba_image_centre_crop_and_resize():
    x = celeba_module.celeba_image(_face(3).convert("RGB"))
    assert x.shape == (3, 64, 64) and x.dtype == np.uint8
    # the crop is exactly the coloured square: nothing of the black border survives
    assert (x[0] == 200).all() and (x[1] == 30).all() and (x[2] == 225).all()


def test_celeba_from_local_folder(celeba, tmp_path):
    folder, smiling = celeba
    cache = tmp_path / "cache"
    raw = REAL["celeba"](cache, str(folder))
    assert raw.x.shape == (CELEBA_N, 3, 64, 64) and raw.x.dtype == np.uint8
    for i in (0, 7, 19):  # JPEG keeps flat colours within a few levels
        assert np.abs(raw.x[i].reshape(3, -1).mean(1) - (200, 10 * i, 255 - 10 * i)).max() < 4
    assert raw.label.tolist() == smiling.tolist() and raw.meta["n_classes"] == 2
    assert raw.official_split.tolist() == ["train"] * 15 + ["test"] * 5  # valid joins train
    assert raw.factors == {}
    # torchvision's layout with the annotation files; the extracted images are gone, the zip stays in the mirror
    assert (cache / "celeba" / "list_attr_celeba.txt").is_file()
    assert not (cache / "celeba" / "img_align_celeba").exists()
    assert not (cache / "celeba" / "img_align_celeba.zip").exists()


def test_celeba_subsample_and_http_mirror(celeba, tmp_path):
    folder, smiling = celeba
    cache = tmp_path / "cache"
    with serve(folder) as url:
        raw = REAL["celeba"](cache, url, n=8, seed=1)
    assert len(raw) == 8 and (raw.official_split == "test").sum() == 2
    assert raw.meta["subsample"] == {"n": 8, "of": CELEBA_N, "seed": 1, "stratified_by": "official split"}
    assert (cache / "celeba" / "img_align_celeba.zip").is_file()  # downloaded, verified, kept as the cache
    again = REAL["celeba"](cache, url, n=8, seed=1)  # server gone: everything comes from the cache
    np.testing.assert_array_equal(raw.x, again.x)
    np.testing.assert_array_equal(raw.label, again.label)


def test_celeba_wrong_checksum_and_missing_file(celeba, tmp_path, monkeypatch):
    import torchvision.datasets

    folder, _ = celeba
    (folder / "list_eval_partition.txt").write_text("000001.jpg 2\r\n")
    with pytest.raises(UserError, match=r"list_eval_partition\.txt is corrupt or truncated \(MD5") as info:
        REAL["celeba"](tmp_path / "cache", str(folder))
    assert "data.mirror" in one_line(info)
    (folder / "identity_CelebA.txt").unlink()
    monkeypatch.undo()  # torchvision's real MD5s again
    assert torchvision.datasets.CelebA.file_list[0][1] == "00d2c5bc6d35e252742224ab0c1e8fcb"
    with pytest.raises(UserError, match=r"img_align_celeba\.zip is corrupt .*00d2c5bc6d35e252742224ab0c1e8fcb"):
        REAL["celeba"](tmp_path / "cache", str(folder))
    (folder / "img_align_celeba.zip").unlink()
    with pytest.raises(UserError, match=r"img_align_celeba\.zip is missing from the celeba mirror.*data\.options\.celeba\.mirror"):
        REAL["celeba"](tmp_path / "cache", str(folder))


def test_celeba_google_drive_failure(monkeypatch, tmp_path):
    import torchvision.datasets.utils

    def no_gdown(*args, **kwargs):
        raise RuntimeError("To download files from GDrive, 'gdown' is required. You can install it with 'pip install gdown'.")

    monkeypatch.setattr(torchvision.datasets.utils, "download_file_from_google_drive", no_gdown)
    with pytest.raises(UserError, match=r"could not download img_align_celeba\.zip of celeba from Google Drive.*data\.mirror") as info:
        REAL["celeba"](tmp_path / "cache", None)
    one_line(info)


# ----------------------------------------------------------------------------- through the pipeline


def _root(tmp_path: Path, dataset: str, options: dict) -> Path:
    root = tmp_path / "proj"
    root.mkdir()
    params = {"datasets": [dataset], "models": ["ae"], "runs": {f"{dataset}-ae": {"dataset": dataset, "model": "ae"}},
              "data": {"seed": 0, "options": {dataset: options}}}
    (root / "params.yaml").write_text(yaml.safe_dump(params))
    return root


def test_known_datasets_include_the_new_sources():
    from aebench.data.registry import known_datasets

    assert {"cifar10", "celeba", "dsprites", "mnist", "fashion_mnist", "omniglot"} <= set(known_datasets())


def test_dsprites_download_and_preprocess_pass_validation(dsprites, tmp_path):
    """n from params.yaml reaches the real source; the class-balance expectation holds (3 shapes)."""
    from aebench.data.raw import load_raw
    from aebench.stages import download, preprocess

    folder = dsprites[0]
    root = _root(tmp_path, "dsprites", {"mirror": str(folder), "n": 36})
    out = download.run("dsprites", root)
    raw = load_raw(out)
    assert len(raw) == 36 and np.bincount(raw.label).tolist() == [12, 12, 12]
    assert sorted(raw.factors) == ["pos_x", "pos_y", "rotation", "scale", "shape"]
    processed = preprocess.run("dsprites", root)
    import json

    report = json.loads((processed / "validation.json").read_text())
    assert report["success"] and report["n_classes"] == 3


def test_celeba_download_and_preprocess_pass_validation(celeba, tmp_path):
    """Without `n` a real source keeps everything; CelebA's binary label passes the balance gate."""
    from aebench.data.parquet import read_split
    from aebench.stages import download, preprocess

    root = _root(tmp_path, "celeba", {"mirror": str(celeba[0])})
    download.run("celeba", root)
    processed = preprocess.run("celeba", root)
    test = read_split(processed / "test.parquet")
    assert len(test.index) == 5 and test.shape == (3, 64, 64) and test.n_classes == 2


def test_celeba_real_label_share_is_within_the_default_balance_tolerance():
    from aebench.data.expectations import _class_shares

    # about 48.2% of CelebA's faces are labelled Smiling
    labels = np.array([1] * 482 + [0] * 518)
    shares = _class_shares(labels, 2)["class_share"].to_numpy()
    assert (np.abs(shares - 1.0) <= 0.5).all()
