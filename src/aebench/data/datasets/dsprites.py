"""dSprites: DeepMind's npz, MD5-checked, streamed and pooled to 32x32."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import numpy as np

from aebench.data.fetch import download_verified, is_url, local_folder, md5_file, one_line, verified_mirror, subsample_indices
from aebench.data.raw import RawDataset
from aebench.errors import UserError

log = logging.getLogger(__name__)

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
    if mirror is None or is_url(mirror):
        url = DSPRITES_URL if mirror is None else mirror.rstrip("/") + "/" + DSPRITES_FILE
        dest = Path(cache_dir) / DSPRITES_FILE
        if dest.is_file() and md5_file(dest) == DSPRITES_MD5:
            log.info("dsprites: cached %s verified (MD5 %s), reused", dest, DSPRITES_MD5)
        else:
            download_verified(url, dest, DSPRITES_MD5, algorithm="md5", name="dsprites", files=files)
            log.info("dsprites: %s verified (MD5 %s)", dest, DSPRITES_MD5)
        return dest
    return verified_mirror("dsprites", local_folder(mirror), {DSPRITES_FILE: DSPRITES_MD5})[DSPRITES_FILE]


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
        raise UserError(f"{path} is not a readable npz ({one_line(exc)}): delete it and fetch it again") from None
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
