"""The processed-data contract: one Parquet file per split, read back as numpy arrays.

The preprocess stage turns a `RawDataset` into `data/processed/<dataset>/{train,val,test}.parquet`.
Every row holds

* ``index``  int64 -- the row's position in the raw dataset (a stable id across splits),
* ``x``      fixed_size_list<uint8> (images, flattened C*H*W) or fixed_size_list<float32> (vectors),
* ``label``  int64 -- the class, -1 where there is none,
* ``group``  int64 -- the grouping used by group-aware models (the label, or a factor's codes),
* ``factor_<name>`` float64 -- one column per ground-truth factor of variation.

The schema metadata (JSON values) records ``aebench.shape`` (e.g. ``[1, 8, 8]``), ``aebench.kind``
(``image`` or ``vector``), ``aebench.dataset``, ``aebench.split``, ``aebench.n_classes`` and
``aebench.traits`` (what the generator declares of its data, e.g. ``["manifold"]``, for the
claims) so a reader never needs the raw data or the params to rebuild arrays.

`read_split` returns a `Split` whose ``x`` is a zero-copy view of the Arrow buffer, hence
read-only (copy it before modifying it in place); the small 1-D columns are writable copies.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from aebench.data.raw import RawDataset
from aebench.errors import UserError
from aebench.io import atomic_path, sha256_file

SPLITS: tuple[str, ...] = ("train", "val", "test")
FACTOR_PREFIX = "factor_"
REQUIRED_COLUMNS: tuple[str, ...] = ("index", "x", "label", "group")
META_KEYS: tuple[str, ...] = ("shape", "kind", "dataset", "split", "n_classes")
_META_PREFIX = "aebench."


# --------------------------------------------------------------------------- splits


def make_splits(
    n: int,
    seed: int,
    val_fraction: float,
    test_fraction: float,
    official_split: np.ndarray | None = None,
    labels: np.ndarray | None = None,
) -> dict[str, np.ndarray]:
    """Sorted, disjoint int64 index arrays for "train", "val" and "test" covering range(n).

    With `labels`, the random split is stratified: each class is split in the same
    proportions, so small datasets keep their class balance in every split.

    Deterministic for a given seed. With `official_split` (an (n,) array of "train"/"test"),
    "test" is exactly the official test rows, `test_fraction` is ignored, and "val" takes
    `val_fraction` of the official training rows (per class with `labels`: Omniglot's 20
    drawings per character would otherwise leave val with 0 to 5 of a character).
    """
    for key, value in (("data.val_fraction", val_fraction), ("data.test_fraction", test_fraction)):
        try:
            ok = math.isfinite(float(value)) and 0.0 <= float(value) < 1.0
        except (TypeError, ValueError):
            ok = False
        if not ok:
            raise UserError(f"{key} must be a number in [0, 1), got {value!r}: fix it in params.yaml")
    rng = np.random.default_rng(seed)
    if official_split is None:
        if val_fraction + test_fraction >= 1.0:
            raise UserError(
                f"data.val_fraction ({val_fraction}) + data.test_fraction ({test_fraction}) must be below 1 "
                "so the train split is not empty: lower them in params.yaml"
            )
        splits = _stratified(n, rng, val_fraction, test_fraction, labels)
        how = (f"a dataset of {n} rows with data.val_fraction={val_fraction} "
               f"and data.test_fraction={test_fraction}")
    else:
        official = np.asarray(official_split).astype(str)
        if official.shape != (n,):
            raise UserError(f"official_split has shape {official.shape}, expected ({n},): rerun the download stage")
        unknown = sorted(set(np.unique(official)) - {"train", "test"})
        if unknown:
            raise UserError(f"official_split holds unknown values {unknown} (expected 'train'/'test'): "
                            "rerun the download stage")
        pool = np.flatnonzero(official == "train").astype(np.int64)
        within = _stratified(len(pool), rng, val_fraction, 0.0, None if labels is None else np.asarray(labels)[pool])
        splits = {
            "test": np.flatnonzero(official == "test").astype(np.int64),
            "val": pool[within["val"]],
            "train": pool[within["train"]],
        }
        how = (f"a dataset of {n} rows ({len(pool)} official train, {len(splits['test'])} official test) "
               f"with data.val_fraction={val_fraction} (data.test_fraction is ignored: the official test split is used)")
    for name in SPLITS:
        if len(splits[name]) == 0:
            raise UserError(f"the {name} split would be empty for {how}: raise the fractions "
                            "in params.yaml or use a larger dataset")
    return {name: np.sort(splits[name]) for name in SPLITS}


def _stratified(n: int, rng: np.random.Generator, val_fraction: float, test_fraction: float,
                labels: np.ndarray | None) -> dict[str, np.ndarray]:
    """Random split, per class when labels are given (-1 rows form their own stratum).

    Rounding is carried over between classes so the split sizes match the unstratified ones."""
    strata = [np.arange(n)] if labels is None else [np.flatnonzero(labels == c) for c in np.unique(labels)]
    parts: dict[str, list[np.ndarray]] = {"test": [], "val": [], "train": []}
    done, t_done, v_done = 0, 0, 0
    for rows in strata:
        rows = rows[rng.permutation(len(rows))].astype(np.int64)
        done += len(rows)
        n_test = int(round(done * test_fraction)) - t_done
        n_val = int(round(done * val_fraction)) - v_done
        t_done, v_done = t_done + n_test, v_done + n_val
        parts["test"].append(rows[:n_test])
        parts["val"].append(rows[n_test:n_test + n_val])
        parts["train"].append(rows[n_test + n_val:])
    return {k: np.concatenate(v) for k, v in parts.items()}


# --------------------------------------------------------------------------- writing


def _n_classes(raw: RawDataset) -> int:
    declared = raw.meta.get("n_classes") if isinstance(raw.meta, dict) else None
    if isinstance(declared, (int, np.integer)) and declared >= 0:
        return int(declared)
    labelled = raw.label[raw.label >= 0]
    return int(labelled.max()) + 1 if labelled.size else 0


def _group_values(raw: RawDataset, group_factor: str | None) -> np.ndarray:
    if group_factor is None:
        return raw.label.astype(np.int64)
    if group_factor not in raw.factors:
        available = ", ".join(sorted(raw.factors)) or "none"
        raise UserError(f"group_factor {group_factor!r} is not a factor of this dataset "
                        f"(available factors: {available}): fix it in params.yaml")
    _, codes = np.unique(np.asarray(raw.factors[group_factor]), return_inverse=True)
    return codes.reshape(-1).astype(np.int64)


def _build_table(raw_x_flat: np.ndarray, rows: np.ndarray, label: np.ndarray, group: np.ndarray,
                 factors: dict[str, np.ndarray], metadata: dict[bytes, bytes]):
    import pyarrow as pa

    width = raw_x_flat.shape[1]
    x_rows = np.ascontiguousarray(raw_x_flat[rows])
    x_col = pa.FixedSizeListArray.from_arrays(pa.array(x_rows.reshape(-1)), width)
    columns = {
        "index": pa.array(rows.astype(np.int64)),
        "x": x_col,
        "label": pa.array(label[rows].astype(np.int64)),
        "group": pa.array(group[rows].astype(np.int64)),
    }
    for name in sorted(factors):
        columns[FACTOR_PREFIX + name] = pa.array(np.asarray(factors[name], dtype=np.float64)[rows])
    table = pa.table(columns)
    return table.replace_schema_metadata(metadata)


def write_processed(
    raw: RawDataset,
    dataset: str,
    out_dir: Path,
    seed: int,
    val_fraction: float,
    test_fraction: float,
    group_factor: str | None = None,
) -> dict:
    """Split `raw` and write out_dir/{train,val,test}.parquet atomically; return a summary.

    The summary holds the rows and sha256 of every split file plus the shape, kind, number of
    classes and the combined `data_hash`.
    """
    import pyarrow.parquet as pq

    out_dir = Path(out_dir)
    group = _group_values(raw, group_factor)
    splits = make_splits(len(raw), seed, val_fraction, test_fraction, raw.official_split,
                         labels=raw.label if (raw.label >= 0).any() else None)
    shape = [int(s) for s in raw.x.shape[1:]]
    kind = "image" if raw.is_image else "vector"
    n_classes = _n_classes(raw)
    x_flat = raw.x.reshape(len(raw), -1)
    if not raw.is_image:
        x_flat = x_flat.astype(np.float32, copy=False)
    label = raw.label.astype(np.int64)

    summary: dict = {
        "dataset": dataset, "kind": kind, "shape": shape, "n_classes": n_classes,
        "group": group_factor or "label", "factors": sorted(raw.factors), "seed": seed,
        "val_fraction": val_fraction, "test_fraction": test_fraction,
        "official_split": raw.official_split is not None,
        "rows": {}, "sha256": {},
    }
    for name in SPLITS:
        metadata = {
            (_META_PREFIX + "shape").encode(): json.dumps(shape).encode(),
            (_META_PREFIX + "kind").encode(): json.dumps(kind).encode(),
            (_META_PREFIX + "dataset").encode(): json.dumps(dataset).encode(),
            (_META_PREFIX + "split").encode(): json.dumps(name).encode(),
            (_META_PREFIX + "n_classes").encode(): json.dumps(n_classes).encode(),
            (_META_PREFIX + "group").encode(): json.dumps(group_factor or "label").encode(),
            (_META_PREFIX + "traits").encode(): json.dumps(sorted(raw.meta.get("traits", []))).encode(),
        }
        table = _build_table(x_flat, splits[name], label, group, raw.factors, metadata)
        target = out_dir / f"{name}.parquet"
        with atomic_path(target) as tmp:
            pq.write_table(table, tmp, compression="zstd")
        summary["rows"][name] = int(len(splits[name]))
        summary["sha256"][name] = sha256_file(target)
    summary["data_hash"] = data_hash(out_dir)
    return summary


# --------------------------------------------------------------------------- reading


@dataclass
class Split:
    """One processed split as numpy arrays (``x`` is a read-only view of the Parquet data)."""

    index: np.ndarray  # (N,) int64, position in the raw dataset
    x: np.ndarray  # (N, *shape) uint8 images or float32 vectors
    label: np.ndarray  # (N,) int64, -1 where unlabelled
    group: np.ndarray  # (N,) int64
    factors: dict[str, np.ndarray] = field(default_factory=dict)  # name -> (N,) float64
    shape: tuple[int, ...] = ()
    kind: str = "image"
    dataset: str = ""
    n_classes: int = 0
    split: str = ""

    def __len__(self) -> int:
        return len(self.index)

    @property
    def is_image(self) -> bool:
        return self.kind == "image"

    def subset(self, rows: np.ndarray) -> "Split":
        """The rows at positions `rows` (e.g. a sample of the train split for reference codes)."""
        return replace(self, index=self.index[rows], x=self.x[rows], label=self.label[rows], group=self.group[rows],
                       factors={k: v[rows] for k, v in self.factors.items()})


def _rerun(path: Path) -> str:
    return f"rerun `dvc repro preprocess@{path.parent.name}`"


def _numpy(column, path: Path, name: str) -> np.ndarray:
    column = column.combine_chunks() if hasattr(column, "combine_chunks") else column
    if column.null_count:
        raise UserError(f"{path} has {column.null_count} null values in column {name!r}: {_rerun(path)}")
    try:
        return column.to_numpy(zero_copy_only=True)
    except Exception:  # noqa: BLE001 - e.g. sliced or boolean data: fall back to a copy
        return column.to_numpy(zero_copy_only=False)


def read_split(path: Path, check: bool = True) -> Split:
    """Read one processed split file; UserError if it is missing, unreadable, has the wrong
    schema or (with `check`) rows that break the content rules of `check_content`. The
    preprocess stage reads with `check=False`: great-expectations checks the same rules there
    and writes its report."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = Path(path)
    if not path.exists():
        raise UserError(f"{path} is missing: run `dvc repro preprocess@{path.parent.name}`")
    try:
        table = pq.read_table(path)
    except Exception as exc:  # noqa: BLE001 - truncated, corrupt or not Parquet at all
        reason = " ".join(str(exc).split())[:200]
        raise UserError(f"{path} is unreadable ({reason}): delete it and {_rerun(path)}") from exc

    missing = [c for c in REQUIRED_COLUMNS if c not in table.column_names]
    if missing:
        raise UserError(f"{path} has the wrong schema (missing columns {missing}): {_rerun(path)}")
    raw_meta = table.schema.metadata or {}
    meta: dict = {}
    for key in META_KEYS:
        value = raw_meta.get((_META_PREFIX + key).encode())
        if value is None:
            raise UserError(f"{path} has the wrong schema (missing metadata {_META_PREFIX + key}): {_rerun(path)}")
        try:
            meta[key] = json.loads(value.decode())
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise UserError(f"{path} has unreadable metadata {_META_PREFIX + key}: {_rerun(path)}") from exc

    kind = meta["kind"]
    try:
        shape = tuple(int(s) for s in meta["shape"])
        n_classes = int(meta["n_classes"])
    except (TypeError, ValueError) as exc:
        raise UserError(f"{path} has malformed metadata {meta}: {_rerun(path)}") from exc
    expected_type = {"image": pa.uint8(), "vector": pa.float32()}.get(kind)
    if expected_type is None:
        raise UserError(f"{path} has unknown kind {kind!r} in its metadata: {_rerun(path)}")

    x_col = table.column("x").combine_chunks()
    width = int(np.prod(shape)) if shape else 0
    if (not pa.types.is_fixed_size_list(x_col.type) or x_col.type.value_type != expected_type
            or x_col.type.list_size != width):
        raise UserError(f"{path} has the wrong schema (column 'x' is {x_col.type}, expected "
                        f"fixed_size_list<{expected_type}>[{width}] for shape {list(shape)}): {_rerun(path)}")
    if x_col.null_count:
        raise UserError(f"{path} has {x_col.null_count} null rows in column 'x': {_rerun(path)}")
    n = len(table)
    x = _numpy(x_col.flatten(), path, "x").reshape((n, *shape))

    # The 1-D columns are small: return writable copies (torch.from_numpy warns on read-only arrays).
    factors = {
        name[len(FACTOR_PREFIX):]: _numpy(table.column(name), path, name).astype(np.float64)
        for name in table.column_names if name.startswith(FACTOR_PREFIX)
    }
    split = Split(
        index=_numpy(table.column("index"), path, "index").astype(np.int64),
        x=x,
        label=_numpy(table.column("label"), path, "label").astype(np.int64),
        group=_numpy(table.column("group"), path, "group").astype(np.int64),
        factors=factors,
        shape=shape,
        kind=kind,
        dataset=str(meta["dataset"]),
        n_classes=n_classes,
        split=str(meta["split"]),
    )
    if check:
        check_content(split, path)
    return split


def check_content(split: Split, path: Path) -> None:
    """The rules every reader relies on, checked where the rows are read so a damaged file is
    named before any training instead of surfacing as a diverging model or a silent label:
    finite vectors and factors, labels in 0..n_classes-1 (or -1, unlabelled), one row per index."""
    def fail(rule: str, bad: np.ndarray, show: np.ndarray) -> None:
        first = int(np.flatnonzero(bad)[0])
        raise UserError(f"{path} breaks the rule '{rule}': {int(bad.sum())} of {len(bad)} rows do (the first is "
                        f"row {first}, value {show[first]}): {_rerun(path)}")

    if not split.is_image and len(split):
        finite = np.isfinite(split.x.reshape(len(split), -1)).all(axis=1)
        if not finite.all():
            fail("column 'x' holds finite numbers", ~finite, split.x.reshape(len(split), -1).min(axis=1))
    for name, values in split.factors.items():
        if not np.isfinite(values).all():
            fail(f"factor '{name}' holds finite numbers", ~np.isfinite(values), values)
    if split.n_classes > 0:
        outside = (split.label < -1) | (split.label >= split.n_classes)
        if outside.any():
            fail(f"labels lie in 0..{split.n_classes - 1} or are -1 (unlabelled)", outside, split.label)
    _, first_seen, counts = np.unique(split.index, return_index=True, return_counts=True)
    if (counts > 1).any():
        repeated = np.zeros(len(split), bool)
        repeated[first_seen[counts > 1]] = True
        fail("column 'index' names each raw row once", repeated, split.index)


def read_splits(folder: Path) -> dict[str, Split]:
    """All three splits of a processed dataset folder."""
    return {name: read_split(Path(folder) / f"{name}.parquet") for name in SPLITS}


def data_hash(folder: Path) -> str:
    """sha256 over the three split files of `folder` (stable id of the processed data)."""
    folder = Path(folder)
    digest = hashlib.sha256()
    for name in SPLITS:
        path = folder / f"{name}.parquet"
        if not path.exists():
            raise UserError(f"{path} is missing: run `dvc repro preprocess@{folder.name}`")
        digest.update(f"{name}.parquet:{sha256_file(path)}\n".encode())
    return digest.hexdigest()
