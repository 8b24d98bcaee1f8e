"""CelebA through torchvision's file list, MD5s and `CelebA` class; its Google Drive download
often fails, so a mirror is the practical route."""

from __future__ import annotations

import logging
import shutil
import time
from pathlib import Path

import numpy as np

from aebench.data.fetch import (NETWORK_TIMEOUT_S, dataset_hint, download_verified, is_url, local_folder,
                                md5_file, one_line, quiet_stdout, socket_timeout, torchvision_class,
                                verified_mirror, subsample_indices)
from aebench.data.raw import RawDataset
from aebench.errors import UserError
from aebench.io import atomic_path

log = logging.getLogger(__name__)

CELEBA_ZIP = "img_align_celeba.zip"
CELEBA_CROP = 140  # centre crop of the aligned 178x218 faces, then resize: the WAE/GWAE convention
CELEBA_SIZE = 64
CELEBA_LABEL = "Smiling"  # the label: one binary attribute, near balanced (about 48% smiling)
CELEBA_PARTITION = {0: "train", 1: "train", 2: "test"}  # official train/valid/test; valid joins train


def _celeba_resources() -> list[tuple[str, str, str]]:
    """(Google Drive id, MD5, file name) of torchvision's CelebA files: the values it checks."""
    return [(str(fid), str(md5), str(fname)) for fid, md5, fname in torchvision_class("CelebA").file_list]


def _celeba_files(folder: Path, mirror: str | None) -> Path:
    """Bring the six verified CelebA files into `folder` (<cache>/celeba/); returns where the zip is.

    Local mirror: every file is MD5-checked in place, the annotation files are copied (the zip
    is read from the mirror). http mirror: downloaded and checked. No mirror: torchvision's
    Google Drive download (gdown), which checks the MD5s too.
    """
    resources = _celeba_resources()
    files = [fname for _, _, fname in resources]
    folder.mkdir(parents=True, exist_ok=True)
    if mirror is not None and not is_url(mirror):
        source = local_folder(mirror)
        sources = verified_mirror("celeba", source, {fname: md5 for _, md5, fname in resources})
        for _, md5, fname in resources:
            src = sources[fname]
            if fname != CELEBA_ZIP:
                dest = folder / fname
                if not (dest.is_file() and md5_file(dest) == md5):
                    with atomic_path(dest) as tmp:
                        shutil.copyfile(src, tmp)
        return source / CELEBA_ZIP
    for file_id, md5, fname in resources:
        dest = folder / fname
        if dest.is_file() and md5_file(dest) == md5:
            log.info("celeba: cached %s verified (MD5 %s), reused", dest, md5)
            continue
        if mirror is not None:
            download_verified(mirror.rstrip("/") + "/" + fname, dest, md5, algorithm="md5", name="celeba", files=files)
            continue
        from torchvision.datasets.utils import download_file_from_google_drive

        try:
            with socket_timeout(NETWORK_TIMEOUT_S), quiet_stdout():
                download_file_from_google_drive(file_id, str(folder), fname, md5)
        except Exception as exc:  # gdown missing, quota exceeded, offline, bad MD5
            if dest.is_file() and md5_file(dest) != md5:
                dest.unlink()  # never leave a bad download in the cache
            raise UserError(f"could not download {fname} of celeba from Google Drive ({one_line(exc)}; its quota "
                            "often refuses): " + dataset_hint("celeba", files)) from None
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

    base = torchvision_class("CelebA")
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
        raise UserError(f"{zip_path} is not a readable zip ({one_line(exc)}): delete it and fetch it again") from None
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
            raise UserError(f"torchvision rejected the celeba files in {folder} ({one_line(exc)}): delete that folder "
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
