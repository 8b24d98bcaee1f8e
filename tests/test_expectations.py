"""The great-expectations gate over the processed splits."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from aebench.data.expectations import validate_or_raise, validate_splits
from aebench.data.parquet import SPLITS, read_splits, write_processed
from aebench.data.raw import RawDataset
from aebench.errors import UserError


def vector_frames(n: int = 300, d: int = 4, n_classes: int = 3, seed: int = 0) -> dict[str, pd.DataFrame]:
    """Three disjoint, balanced DataFrame splits of vector data."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, d)).astype(np.float32)
    label = (np.arange(n) // 3) % n_classes  # balanced within every split
    out = {}
    for k, name in enumerate(SPLITS):
        rows = np.arange(k, n, 3)
        out[name] = pd.DataFrame({"index": rows, "x": list(x[rows]), "label": label[rows], "group": label[rows]})
    return out


def load(report):
    return json.loads(report.read_text())


def find(summary, split, expectation, column):
    for entry in summary["splits"][split]["expectations"]:
        if entry["expectation_type"] == expectation and entry["column"] == column:
            return entry
    raise AssertionError(f"{expectation} on {column} not in split {split}")


def test_clean_image_splits_pass(tmp_path):
    rng = np.random.default_rng(0)
    n = 3000
    raw = RawDataset(x=rng.integers(0, 256, size=(n, 1, 8, 8), dtype=np.uint8), label=np.arange(n) % 10,
                     factors={"f": rng.normal(size=n)})
    write_processed(raw, "toy", tmp_path, seed=0, val_fraction=0.2, test_fraction=0.2)
    splits = read_splits(tmp_path)
    report = tmp_path / "validation.json"
    summary = validate_or_raise(splits, "image", (1, 8, 8), 10, report_path=report)
    assert summary["success"] is True
    assert load(report) == json.loads(json.dumps(summary))
    assert summary["gx_version"].startswith("1.")
    assert set(summary["splits"]) == {"train", "val", "test", "all_splits"}
    assert summary["splits"]["train"]["rows"] == len(splits["train"])
    entry = find(summary, "train", "expect_column_values_to_be_between", "x_max")
    assert entry["success"] and entry["unexpected_count"] == 0
    assert find(summary, "val", "expect_column_values_to_be_between", "class_share")["success"]
    assert find(summary, "all_splits", "expect_column_values_to_be_unique", "index")["success"]


def test_clean_vector_frames_pass_and_unlabelled_skips_balance():
    frames = vector_frames()
    for frame in frames.values():
        frame["label"] = -1
    summary = validate_splits(frames, "vector", (4,), 0)
    assert summary["success"], summary
    columns = {e["column"] for e in summary["splits"]["train"]["expectations"]}
    assert "class_share" not in columns and "x_max" not in columns
    assert {"index", "label", "group", "x_len", "x_finite"} <= columns


def nan_in_vector(frames):
    frames["val"].at[2, "x"][1] = np.nan


def label_out_of_range(frames):
    frames["train"].loc[5, "label"] = 7


def index_across_splits(frames):
    frames["test"].loc[0, "index"] = frames["train"].loc[0, "index"]


def imbalanced(frames):
    frames["train"]["label"] = np.where(np.arange(100) < 90, 0, 1)


def short_row(frames):
    frames["test"].at[3, "x"] = frames["test"].at[3, "x"][:3]


@pytest.mark.parametrize(
    "corrupt, expectation, column, split",
    [
        (nan_in_vector, "expect_column_values_to_be_in_set", "x_finite", "val"),
        (label_out_of_range, "expect_column_values_to_be_between", "label", "train"),
        (index_across_splits, "expect_column_values_to_be_unique", "index", "all_splits"),
        (imbalanced, "expect_column_values_to_be_between", "class_share", "train"),
        (short_row, "expect_column_values_to_be_between", "x_len", "test"),
    ],
    ids=lambda v: v.__name__ if callable(v) else None,
)
def test_corruption_is_caught(tmp_path, corrupt, expectation, column, split):
    frames = vector_frames()
    corrupt(frames)
    report = tmp_path / "validation.json"
    with pytest.raises(UserError) as info:
        validate_or_raise(frames, "vector", (4,), 3, report_path=report)
    message = str(info.value)
    assert f"expectation {expectation} failed on column {column} of split {split}" in message
    assert str(report) in message and "\n" not in message
    summary = load(report)
    assert summary["success"] is False
    entry = find(summary, split, expectation, column)
    assert entry["success"] is False and entry["unexpected_count"] >= 1


def test_pixel_out_of_range_in_image_frame(tmp_path):
    x = np.random.default_rng(0).integers(0, 256, size=(30, 4)).astype(np.int64)
    x[3, 2] = 300
    frames = {name: pd.DataFrame({"index": np.arange(k, 30, 3), "x": list(x[k::3]),
                                  "label": np.arange(10) % 2, "group": 0})
              for k, name in enumerate(SPLITS)}
    report = tmp_path / "validation.json"
    with pytest.raises(UserError, match=r"failed on column x_max of split train \(1 unexpected\): see .*validation\.json"):
        validate_or_raise(frames, "image", (1, 2, 2), 2, report_path=report)
    assert find(load(report), "train", "expect_column_values_to_be_between", "x_max")["partial_unexpected_list"] == [300.0]


def test_balance_tolerance_is_configurable():
    frames = vector_frames()
    frames["train"]["label"] = np.where(np.arange(100) < 50, 0, np.where(np.arange(100) < 75, 1, 2))
    assert not validate_splits(frames, "vector", (4,), 3, balance_tolerance=0.3)["success"]
    assert validate_splits(frames, "vector", (4,), 3, balance_tolerance=0.6)["success"]
