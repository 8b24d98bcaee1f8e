"""Splits, the Parquet round trip, error messages and the data hash."""

from __future__ import annotations

import json

import numpy as np
import pytest

from aebench.data.parquet import SPLITS, data_hash, make_splits, read_split, write_processed
from aebench.data.raw import RawDataset
from aebench.errors import UserError


def image_raw(n: int = 120, seed: int = 0) -> RawDataset:
    rng = np.random.default_rng(seed)
    return RawDataset(
        x=rng.integers(0, 256, size=(n, 1, 8, 8), dtype=np.uint8),
        label=np.arange(n) % 3,
        factors={"size": rng.choice([0.5, 1.0, 2.0], size=n), "angle": rng.normal(size=n)},
        meta={"source": "test"},
    )


def vector_raw(n: int = 90, d: int = 5, seed: int = 1) -> RawDataset:
    rng = np.random.default_rng(seed)
    return RawDataset(x=rng.normal(size=(n, d)).astype(np.float32), label=np.full(n, -1))


# --------------------------------------------------------------------------- make_splits


def test_splits_deterministic_disjoint_covering():
    a = make_splits(1000, seed=7, val_fraction=0.1, test_fraction=0.2)
    b = make_splits(1000, seed=7, val_fraction=0.1, test_fraction=0.2)
    c = make_splits(1000, seed=8, val_fraction=0.1, test_fraction=0.2)
    assert list(a) == list(SPLITS)
    for name in SPLITS:
        np.testing.assert_array_equal(a[name], b[name])
        assert a[name].dtype == np.int64
        assert np.all(np.diff(a[name]) > 0)  # sorted, no duplicates
    assert not np.array_equal(a["test"], c["test"])
    assert (len(a["train"]), len(a["val"]), len(a["test"])) == (700, 100, 200)
    everything = np.concatenate([a[name] for name in SPLITS])
    np.testing.assert_array_equal(np.sort(everything), np.arange(1000))


def test_official_test_split_is_honoured():
    official = np.array(["train"] * 80 + ["test"] * 20)
    official = official[np.random.default_rng(3).permutation(100)]
    splits = make_splits(100, seed=0, val_fraction=0.25, test_fraction=0.9, official_split=official)
    np.testing.assert_array_equal(splits["test"], np.flatnonzero(official == "test"))
    assert len(splits["val"]) == 20 and len(splits["train"]) == 60
    assert set(splits["val"]) | set(splits["train"]) == set(np.flatnonzero(official == "train"))
    assert not set(splits["val"]) & set(splits["train"])


@pytest.mark.parametrize("n, val, test", [(5, 0.1, 0.2), (100, 0.5, 0.5), (100, 0.0, 0.2)])
def test_empty_split_raises(n, val, test):
    with pytest.raises(UserError, match="data.val_fraction"):
        make_splits(n, seed=0, val_fraction=val, test_fraction=test)


def test_empty_official_test_raises():
    with pytest.raises(UserError, match="test split would be empty"):
        make_splits(10, seed=0, val_fraction=0.2, test_fraction=0.2, official_split=np.array(["train"] * 10))


# --------------------------------------------------------------------------- round trip


def test_image_round_trip(tmp_path):
    raw = image_raw()
    summary = write_processed(raw, "toy", tmp_path / "toy", seed=0, val_fraction=0.2, test_fraction=0.2)
    assert sum(summary["rows"].values()) == len(raw)
    assert set(summary["sha256"]) == set(SPLITS)
    assert summary["data_hash"] == data_hash(tmp_path / "toy")
    json.dumps(summary)
    assert not list((tmp_path / "toy").glob(".*tmp"))  # no temporary files left behind
    seen = []
    for name in SPLITS:
        split = read_split(tmp_path / "toy" / f"{name}.parquet")
        assert split.kind == "image" and split.shape == (1, 8, 8)
        assert split.dataset == "toy" and split.split == name and split.n_classes == 3
        assert split.x.dtype == np.uint8 and split.x.shape == (len(split), 1, 8, 8)
        np.testing.assert_array_equal(split.x, raw.x[split.index])
        np.testing.assert_array_equal(split.label, raw.label[split.index])
        np.testing.assert_array_equal(split.group, raw.label[split.index])
        assert set(split.factors) == {"size", "angle"}
        for key, values in split.factors.items():
            assert values.dtype == np.float64
            np.testing.assert_array_equal(values, raw.factors[key][split.index])
        seen.append(split.index)
    np.testing.assert_array_equal(np.sort(np.concatenate(seen)), np.arange(len(raw)))


def test_vector_round_trip_with_official_split(tmp_path):
    raw = vector_raw()
    raw.official_split = np.array(["train"] * 60 + ["test"] * 30)
    summary = write_processed(raw, "vec", tmp_path, seed=1, val_fraction=0.5, test_fraction=0.1)
    assert summary["rows"] == {"train": 30, "val": 30, "test": 30}
    test = read_split(tmp_path / "test.parquet")
    np.testing.assert_array_equal(test.index, np.arange(60, 90))
    assert test.kind == "vector" and test.shape == (5,) and test.n_classes == 0
    assert test.x.dtype == np.float32
    np.testing.assert_array_equal(test.x, raw.x[60:])
    assert np.all(test.label == -1) and test.factors == {}


def test_group_from_factor(tmp_path):
    raw = image_raw()
    write_processed(raw, "toy", tmp_path, seed=0, val_fraction=0.2, test_fraction=0.2, group_factor="size")
    split = read_split(tmp_path / "train.parquet")
    codes = {0.5: 0, 1.0: 1, 2.0: 2}
    expected = np.array([codes[v] for v in raw.factors["size"][split.index]])
    np.testing.assert_array_equal(split.group, expected)
    assert split.group.dtype == np.int64


def test_unknown_group_factor(tmp_path):
    with pytest.raises(UserError, match=r"group_factor 'colour'.*angle, size"):
        write_processed(image_raw(), "toy", tmp_path, seed=0, val_fraction=0.2, test_fraction=0.2,
                        group_factor="colour")
    assert not list(tmp_path.iterdir())


# --------------------------------------------------------------------------- errors


def test_missing_file(tmp_path):
    path = tmp_path / "digits" / "train.parquet"
    with pytest.raises(UserError, match=r"train\.parquet is missing: run `dvc repro preprocess@digits`"):
        read_split(path)


def test_truncated_file(tmp_path):
    write_processed(image_raw(), "toy", tmp_path, seed=0, val_fraction=0.2, test_fraction=0.2)
    path = tmp_path / "train.parquet"
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(UserError, match=r"train\.parquet is unreadable.*rerun `dvc repro preprocess@"):
        read_split(path)


def test_missing_x_column(tmp_path):
    import pyarrow.parquet as pq

    write_processed(image_raw(), "toy", tmp_path, seed=0, val_fraction=0.2, test_fraction=0.2)
    path = tmp_path / "val.parquet"
    table = pq.read_table(path)
    pq.write_table(table.drop(["x"]), path)
    with pytest.raises(UserError, match=r"val\.parquet has the wrong schema \(missing columns \['x'\]\).*preprocess"):
        read_split(path)


def test_missing_metadata(tmp_path):
    import pyarrow.parquet as pq

    write_processed(image_raw(), "toy", tmp_path, seed=0, val_fraction=0.2, test_fraction=0.2)
    path = tmp_path / "val.parquet"
    pq.write_table(pq.read_table(path).replace_schema_metadata({}), path)
    with pytest.raises(UserError, match=r"val\.parquet has the wrong schema \(missing metadata aebench\.shape\)"):
        read_split(path)


# --------------------------------------------------------------------------- hash and speed


def test_data_hash_changes_with_data(tmp_path):
    raw = image_raw()
    write_processed(raw, "toy", tmp_path / "a", seed=0, val_fraction=0.2, test_fraction=0.2)
    write_processed(raw, "toy", tmp_path / "b", seed=0, val_fraction=0.2, test_fraction=0.2)
    assert data_hash(tmp_path / "a") == data_hash(tmp_path / "b")  # deterministic
    raw.x[0, 0, 0, 0] ^= 1
    write_processed(raw, "toy", tmp_path / "b", seed=0, val_fraction=0.2, test_fraction=0.2)
    assert data_hash(tmp_path / "a") != data_hash(tmp_path / "b")
    write_processed(image_raw(), "toy", tmp_path / "c", seed=1, val_fraction=0.2, test_fraction=0.2)
    assert data_hash(tmp_path / "a") != data_hash(tmp_path / "c")
    with pytest.raises(UserError, match="is missing"):
        data_hash(tmp_path / "nothing")


def test_read_mnist_sized_split(tmp_path):
    """Speed is measured in benchmarks; here the 60k-row read must give the right values."""
    n = 60_000
    raw = RawDataset(x=np.zeros((n, 1, 28, 28), dtype=np.uint8), label=np.arange(n) % 10)
    raw.x[:, 0, 0, 0] = np.arange(n) % 251
    write_processed(raw, "mnist", tmp_path, seed=0, val_fraction=0.01, test_fraction=0.01)
    split = read_split(tmp_path / "train.parquet")
    assert split.x.shape == (len(split), 1, 28, 28)
    np.testing.assert_array_equal(split.x[:, 0, 0, 0], split.index % 251)


def test_random_splits_are_stratified():
    labels = np.repeat(np.arange(8), [5, 7, 9, 11, 13, 15, 17, 23])
    splits = make_splits(len(labels), 0, 0.1, 0.2, labels=labels)
    assert sum(len(v) for v in splits.values()) == len(labels)
    assert len(np.unique(np.concatenate(list(splits.values())))) == len(labels)
    for c in range(8):
        in_test = np.isin(np.flatnonzero(labels == c), splits["test"]).sum()
        assert abs(in_test - 0.2 * (labels == c).sum()) <= 1
    assert abs(len(splits["test"]) - 0.2 * len(labels)) <= 1


def test_official_split_val_is_drawn_per_class():
    """Omniglot-like: 20 drawings per character; val must take 2 of each, not 0 to 5."""
    labels = np.repeat(np.arange(300), 20)
    official = np.where(labels < 200, "train", "test")
    splits = make_splits(len(labels), seed=0, val_fraction=0.1, test_fraction=0.2, official_split=official, labels=labels)
    assert set(labels[splits["test"]]) == set(range(200, 300))
    counts = np.bincount(labels[splits["val"]], minlength=300)
    assert (counts[:200] == 2).all() and (counts[200:] == 0).all()
    assert len(np.intersect1d(splits["train"], splits["val"])) == 0
    assert len(splits["train"]) + len(splits["val"]) == 200 * 20
