"""Data-quality gate for the processed splits, run with great-expectations (GX 1.x).

The preprocess stage calls `validate_or_raise` on the three splits before anything trains on
them. Everything is built in code in an ephemeral GX context (no `gx/` folder on disk).

GX cannot look inside list cells, so each split is turned into a *derived frame* with one
scalar column per check:

* ``index``, ``label``, ``group`` -- copied from the split;
* ``x_len``    -- number of values in the row's ``x`` (must equal prod(shape));
* ``x_min`` / ``x_max`` -- per-row extremes (images: within 0..255);
* ``x_finite`` -- whether every value of the row is finite (no NaN / inf).

Two more small frames are validated: ``all_splits`` (the concatenated ``index`` column, which
must be unique so the splits are disjoint) and, per labelled split, the class shares (column
``class_share``: each present class's share times the number of present classes, within
1 +- balance_tolerance; classes absent from a split are not counted, since some datasets'
official splits hold disjoint classes).

The summary written to ``validation.json`` lists, per split and per expectation, the expectation
type, column, success and the observed / unexpected counts, plus the overall success and the GX
version.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from aebench.errors import UserError
from aebench.io import write_json_atomic

ALL_SPLITS = "all_splits"
_PARTIAL = 5  # how many unexpected values to keep in the report


# --------------------------------------------------------------------------- derived frames


def _column(frame, name: str, n: int) -> np.ndarray:
    """A column of a DataFrame as a numpy array; all None when the column is absent."""
    if name in frame.columns:
        return frame[name].to_numpy()
    return np.full(n, None, dtype=object)


def _x_stats_dense(x2: np.ndarray) -> dict[str, np.ndarray]:
    n, width = x2.shape
    if width == 0:
        nan = np.full(n, np.nan)
        return {"x_len": np.zeros(n, dtype=np.int64), "x_min": nan, "x_max": nan,
                "x_finite": np.ones(n, dtype=bool)}
    if np.issubdtype(x2.dtype, np.integer) or x2.dtype == bool:
        finite = np.ones(n, dtype=bool)
    else:
        finite = np.isfinite(x2).all(axis=1)
    with np.errstate(invalid="ignore"):
        x_min = x2.min(axis=1).astype(np.float64)
        x_max = x2.max(axis=1).astype(np.float64)
    return {"x_len": np.full(n, width, dtype=np.int64), "x_min": x_min, "x_max": x_max, "x_finite": finite}


def _x_stats_cells(cells: np.ndarray) -> dict[str, np.ndarray]:
    """Per-row statistics of an object column whose cells are arrays / lists (maybe ragged or None)."""
    rows = []
    for cell in cells:
        if cell is None or (isinstance(cell, float) and math.isnan(cell)):
            rows.append(None)
            continue
        try:
            rows.append(np.asarray(cell, dtype=np.float64).reshape(-1))
        except (TypeError, ValueError):
            rows.append(None)
    lengths = {len(r) for r in rows if r is not None}
    if rows and all(r is not None for r in rows) and len(lengths) == 1:
        return _x_stats_dense(np.stack(rows))
    n = len(rows)
    out = {"x_len": np.zeros(n, dtype=np.int64), "x_min": np.full(n, np.nan),
           "x_max": np.full(n, np.nan), "x_finite": np.zeros(n, dtype=bool)}
    for i, row in enumerate(rows):
        if row is None or row.size == 0:
            continue
        out["x_len"][i] = row.size
        out["x_finite"][i] = bool(np.isfinite(row).all())
        with np.errstate(invalid="ignore"):
            out["x_min"][i], out["x_max"][i] = np.min(row), np.max(row)
    return out


def _derived_frame(split):
    """The derived per-row frame (index, label, group, x_len, x_min, x_max, x_finite) of a split."""
    import pandas as pd

    if isinstance(split, pd.DataFrame):
        n = len(split)
        base = {name: _column(split, name, n) for name in ("index", "label", "group")}
        if "x" in split.columns:
            stats = _x_stats_cells(split["x"].to_numpy())
        else:
            stats = _x_stats_cells(np.full(n, None, dtype=object))
    else:  # aebench.data.parquet.Split or anything with the same attributes
        n = len(split.index)
        base = {"index": np.asarray(split.index), "label": np.asarray(split.label),
                "group": np.asarray(split.group)}
        stats = _x_stats_dense(np.asarray(split.x).reshape(n, -1))
    return pd.DataFrame({**base, **stats})


def _class_shares(labels: np.ndarray, n_classes: int):
    """DataFrame(class, count, class_share) over the classes present in the split, or None without labels.

    `class_share` is normalised so a perfectly balanced split has 1.0 for every class."""
    import pandas as pd

    values = pd.to_numeric(pd.Series(labels), errors="coerce").to_numpy(dtype=np.float64)
    values = values[np.isfinite(values)]
    valid = values[(values >= 0) & (values < n_classes) & (values == np.round(values))].astype(np.int64)
    if n_classes <= 0 or valid.size == 0:
        return None
    counts = np.bincount(valid, minlength=n_classes)
    present = np.flatnonzero(counts)  # splits may hold disjoint classes (Omniglot's official test alphabets)
    counts = counts[present]
    return pd.DataFrame({"class": present, "count": counts,
                         "class_share": counts / counts.sum() * len(present)})


# --------------------------------------------------------------------------- GX plumbing


def _gx():
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")
    import great_expectations as gx

    return gx


def _context():
    gx = _gx()
    context = gx.get_context(mode="ephemeral")
    try:  # no tqdm bars in the DVC log
        from great_expectations.data_context.types.base import ProgressBarsConfig

        context.variables.progress_bars = ProgressBarsConfig(globally=False, metric_calculations=False)
    except Exception:  # noqa: BLE001 - cosmetic only
        pass
    return context


def _row_suite(gx, name: str, kind: str, width: int, n_classes: int):
    E = gx.expectations
    suite = gx.ExpectationSuite(name=f"aebench_rows_{name}")
    for expectation in (
        E.ExpectColumnValuesToNotBeNull(column="index"),
        E.ExpectColumnValuesToBeUnique(column="index"),
        E.ExpectColumnValuesToNotBeNull(column="label"),
        E.ExpectColumnValuesToBeBetween(column="label", min_value=-1, max_value=max(n_classes - 1, -1)),
        E.ExpectColumnValuesToNotBeNull(column="group"),
        E.ExpectColumnValuesToBeBetween(column="x_len", min_value=width, max_value=width),
        E.ExpectColumnValuesToBeInSet(column="x_finite", value_set=[True]),
    ):
        suite.add_expectation(expectation)
    if kind == "image":
        suite.add_expectation(E.ExpectColumnValuesToBeBetween(column="x_min", min_value=0, max_value=255))
        suite.add_expectation(E.ExpectColumnValuesToBeBetween(column="x_max", min_value=0, max_value=255))
    return suite


def _jsonable(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, np.ndarray)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return str(value)


def _summarise(result) -> list[dict]:
    out = []
    for item in result.results:
        config = item.expectation_config
        kwargs = dict(config.kwargs)
        res = dict(item.result or {})
        entry: dict = {
            "expectation_type": config.type,
            "column": kwargs.pop("column", None),
            "success": bool(item.success),
            "kwargs": _jsonable({k: v for k, v in kwargs.items() if k not in ("batch_id", "result_format")}),
            "element_count": res.get("element_count"),
            "unexpected_count": res.get("unexpected_count"),
            "missing_count": res.get("missing_count"),
            "partial_unexpected_list": res.get("partial_unexpected_list", [])[:_PARTIAL],
        }
        if "observed_value" in res:
            entry["observed_value"] = res["observed_value"]
        info = item.exception_info or {}
        if isinstance(info, Mapping) and "raised_exception" not in info:  # keyed by metric id
            info = next(iter(info.values()), {}) if info else {}
        if info.get("raised_exception"):
            entry["success"] = False
            entry["exception"] = " ".join(str(info.get("exception_message", "")).split())
        out.append(_jsonable({k: v for k, v in entry.items() if v is not None or k == "column"}))
    return out


# --------------------------------------------------------------------------- public API


def validate_splits(
    splits: Mapping[str, Any],
    kind: str,
    shape,
    n_classes: int,
    balance_tolerance: float = 0.5,
) -> dict:
    """Validate each split (a `Split` or a DataFrame with index/x/label/group) with GX.

    Returns a JSON-serialisable summary::

        {"success": bool, "gx_version": str, ...,
         "splits": {name: {"rows": int, "success": bool,
                           "expectations": [{"expectation_type", "column", "success",
                                              "unexpected_count", ...}, ...]},
                    ..., "all_splits": {...}}}
    """
    import pandas as pd

    if kind not in ("image", "vector"):
        raise ValueError(f"kind must be 'image' or 'vector', got {kind!r}")
    shape = tuple(int(s) for s in shape)
    width = int(np.prod(shape)) if shape else 0
    n_classes = int(n_classes)
    balance_tolerance = float(balance_tolerance)

    gx = _gx()
    context = _context()
    source = context.data_sources.add_pandas("aebench")
    rows_batches = source.add_dataframe_asset("rows").add_batch_definition_whole_dataframe("whole")
    shares_batches = source.add_dataframe_asset("class_shares").add_batch_definition_whole_dataframe("whole")
    union_batches = source.add_dataframe_asset("all_splits").add_batch_definition_whole_dataframe("whole")

    report: dict = {}
    indices = []
    for name, split in splits.items():
        frame = _derived_frame(split)
        indices.append(pd.DataFrame({"index": frame["index"], "split": name}))
        batch = rows_batches.get_batch(batch_parameters={"dataframe": frame})
        expectations = _summarise(batch.validate(_row_suite(gx, name, kind, width, n_classes),
                                                 result_format="BASIC"))
        shares = _class_shares(frame["label"].to_numpy(), n_classes)
        if shares is not None:
            low, high = 1.0 - balance_tolerance, 1.0 + balance_tolerance
            suite = gx.ExpectationSuite(name=f"aebench_balance_{name}")
            suite.add_expectation(gx.expectations.ExpectColumnValuesToBeBetween(
                column="class_share", min_value=low, max_value=high))
            batch = shares_batches.get_batch(batch_parameters={"dataframe": shares})
            balance = _summarise(batch.validate(suite, result_format="BASIC"))
            for entry in balance:
                entry["observed_value"] = {str(c): round(float(s), 6) for c, s in
                                           zip(shares["class"], shares["class_share"])}
            expectations += balance
        report[str(name)] = {"rows": int(len(frame)), "success": all(e["success"] for e in expectations),
                             "expectations": expectations}

    if indices:
        union = pd.concat(indices, ignore_index=True)
        suite = gx.ExpectationSuite(name="aebench_disjoint")
        suite.add_expectation(gx.expectations.ExpectColumnValuesToBeUnique(column="index"))
        batch = union_batches.get_batch(batch_parameters={"dataframe": union})
        expectations = _summarise(batch.validate(suite, result_format="BASIC"))
        report[ALL_SPLITS] = {"rows": int(len(union)), "success": all(e["success"] for e in expectations),
                              "expectations": expectations}

    return {
        "success": all(part["success"] for part in report.values()),
        "gx_version": str(gx.__version__),
        "kind": kind,
        "shape": list(shape),
        "n_classes": n_classes,
        "balance_tolerance": balance_tolerance,
        "splits": report,
    }


def first_failure(summary: dict) -> tuple[str, dict] | None:
    """(split name, expectation entry) of the first failed expectation, or None."""
    for name, part in summary.get("splits", {}).items():
        for entry in part.get("expectations", []):
            if not entry.get("success"):
                return name, entry
    return None


def validate_or_raise(
    splits: Mapping[str, Any],
    kind: str,
    shape,
    n_classes: int,
    report_path: Path,
    balance_tolerance: float = 0.5,
) -> dict:
    """Run `validate_splits`, write the summary to `report_path` atomically, raise UserError on failure.

    Where great-expectations is not installed (a GPU lease with torch and the scientific stack
    only) the splits get the row checks every reader applies (`aebench.data.parquet`: finite
    values, labels in range, one row per index, the schema and shape), and the summary says so."""
    import importlib.util

    if importlib.util.find_spec("great_expectations") is None:
        from aebench.data.parquet import check_content

        for name, split in splits.items():
            check_content(split, report_path.parent / f"{name}.parquet")
        summary = {"success": True, "engine": "aebench row checks",
                   "note": "great_expectations is not installed here: the splits passed the row checks of "
                           "aebench.data.parquet (finite values, labels in range, one row per index, schema), "
                           "not the class-balance and pixel-range expectations"}
        write_json_atomic(report_path, summary)
        return summary
    summary = validate_splits(splits, kind, shape, n_classes, balance_tolerance=balance_tolerance)
    write_json_atomic(report_path, summary)
    failed = first_failure(summary)
    if failed is not None:
        name, entry = failed
        if entry.get("exception"):
            detail = f"error: {entry['exception']}"
        else:
            detail = f"{entry.get('unexpected_count')} unexpected"
        raise UserError(
            f"expectation {entry['expectation_type']} failed on column {entry['column']} of split {name} "
            f"({detail}): see {report_path}"
        )
    return summary
