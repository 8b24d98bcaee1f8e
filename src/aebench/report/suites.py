"""How a dataset's metrics are laid out: small tables by suite, curves, and what is left out.

`metrics.json` is flat and does not record which evaluation suite wrote which key, so the
report sorts keys by name. Each shared suite claims the keys that fully match one of its
patterns (`SUITES`, first match wins); the patterns describe metrics, never models:

- Reconstruction and likelihood: `recon_*`, `psnr`, `ssim`, `neg_elbo`, `*nll`, `bpd`;
- Representation: `knn_acc`, `linear_acc`, `cluster_acc*`, `nmi`, `ari`, `dci_*`, `mig`, `sap`;
- Generative and topology: `interp_*`, `gw_*`, `bilipschitz`, `trustworthiness`,
  `continuity`, `offmanifold_rate`, `fid`;
- Out-of-distribution detection: `ood_*`;
- Time and throughput: `*_seconds`, `*_per_s`.

A key no shared suite claims is a model's own (a variant probe such as `knn_acc_sampled` or
`linear_acc_joint`, coding costs, group accuracies). Own keys are grouped by the set of
models that report them on the dataset, one table per set, with only those models as rows,
so that a metric one model defines does not add a column of "—" for every other model.

Curves: a family of keys `<base>_g<N>` (a value per group size N) with at least two sizes
on the dataset is drawn as `base` against N (`render_group_curves` in `figures.py`) and
listed as a narrow table of N, not as one column per size. A panel of accuracies gets a
dashed chance line when the model reports one: its key holding `chance` whose text before
`chance` is the longest prefix of `base` (`chance_acc` for `content_acc`, `heldout_chance`
for `heldout_content_acc`).

Degenerate metrics (`degenerate`) are left out of a dataset's tables and named in a note
below them: a metric is degenerate on a dataset when the dataset, not the model, fixes its
value. The rule: `dci_disentanglement` needs two or more generative factors. With a single
factor every code dimension's importance falls on that factor, so D = 1 for any model. The
factors counted are the `factor_*` columns of train.parquet whose values vary (from the
schema and the row-group statistics, no rows read: `collect.read_n_factors`); where the
processed data is absent (a copied `eval/` tree), a dataset on which every reported
`dci_disentanglement` is 1 (within 1e-6) is taken to have one factor. Completeness,
informativeness and MIG stay: with one factor they still measure how concentrated and how
predictable that factor is in the codes.

Widths: no table is wider than `MAX_COLUMNS` columns, the model column included; a suite
with more metrics is cut into parts. A table in which every cell is empty is dropped, and
so is the row of an evaluated model with no value in a table (a model not evaluated keeps
its row in the shared tables, with its note); a metric recorded as null or NaN by every
model is named in a note instead of filling a column with "—".
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any, Sequence

from aebench.report.formatting import format_value, is_finite, is_number, order_columns

MAX_COLUMNS = 14  # model column included
OWN = "own"
TIME = "time"

# (id, title, key patterns): fully matched, first suite wins.
SUITES: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("reconstruction", "Reconstruction and likelihood",
     (r"recon_\w+", r"psnr", r"ssim", r"neg_elbo", r"\w*nll", r"bpd")),
    ("representation", "Representation",
     (r"knn_acc", r"linear_acc", r"cluster_acc\w*", r"nmi", r"ari", r"dci_\w+", r"mig", r"sap")),
    ("generative", "Generative and topology",
     (r"interp_\w+", r"gw_\w+", r"bilipschitz", r"trustworthiness", r"continuity", r"offmanifold_rate", r"fid")),
    ("ood", "Out-of-distribution detection", (r"ood_\w+",)),
    (TIME, "Time and throughput", (r"\w+_seconds", r"\w+_per_s")),
)
OWN_TITLE = "Own metrics"
CURVE_KEY = re.compile(r"(?P<base>\w+?)_g(?P<size>\d+)")
CURVE_AXIS = "group size"

SINGLE_FACTOR_METRICS = ("dci_disentanglement",)
SINGLE_FACTOR_REASON = "1 by definition with fewer than two generative factors"


@dataclass
class MetricTable:
    suite: str  # a SUITES id or OWN
    title: str
    columns: list[str]  # metric keys, at most MAX_COLUMNS - 1
    models: list[Any]  # collect.ModelResult rows, in the run's order


@dataclass
class CurveSeries:
    metric: str  # the family's base key, e.g. "content_acc"
    model: str
    sizes: list[int]
    values: list[float]
    chance: float | None = None


@dataclass
class Layout:
    tables: list[MetricTable] = field(default_factory=list)
    curves: list[CurveSeries] = field(default_factory=list)
    left_out: dict[str, str] = field(default_factory=dict)  # metric -> why
    no_value: list[str] = field(default_factory=list)  # recorded, but null/NaN for every model

    @property
    def curve_sizes(self) -> list[int]:
        return sorted({n for s in self.curves for n in s.sizes})


def suite_of(key: str) -> str:
    """The id of the shared suite that claims `key`, or OWN."""
    for suite, _, patterns in SUITES:
        if any(re.fullmatch(p, key) for p in patterns):
            return suite
    return OWN


def _values(models: Sequence, key: str) -> list[Any]:
    return [(r.metrics or {}).get(key) for r in models if r.metrics]


def single_factor(ds) -> bool:
    """Whether the dataset has fewer than two varying generative factors (see the module doc)."""
    n = getattr(ds, "n_factors", None)
    if n is not None:
        return n < 2
    reported = [v for v in _values(ds.models, "dci_disentanglement") if is_finite(v)]
    return bool(reported) and all(math.isclose(v, 1.0, abs_tol=1e-6) for v in reported)


def degenerate(ds) -> dict[str, str]:
    """Metrics of `ds.columns` whose value the dataset fixes, with the reason (module doc)."""
    if not single_factor(ds):
        return {}
    return {key: SINGLE_FACTOR_REASON for key in SINGLE_FACTOR_METRICS if key in ds.columns}


def _has_value(value: Any) -> bool:
    return value is not None and not (is_number(value) and math.isnan(value))


def _curve_families(columns: Sequence[str]) -> dict[str, dict[int, str]]:
    """base -> {size: key} for the `<base>_g<N>` families with at least two sizes."""
    families: dict[str, dict[int, str]] = {}
    for key in columns:
        if m := CURVE_KEY.fullmatch(key):
            families.setdefault(m["base"], {})[int(m["size"])] = key
    return {base: sizes for base, sizes in families.items() if len(sizes) >= 2}


def _chance(metrics: dict, base: str) -> float | None:
    """The model's chance level for an accuracy curve `base` (module doc), if it reports one."""
    if not base.endswith("_acc"):
        return None
    best, best_len = None, -1
    for key, value in metrics.items():
        prefix = key.split("chance", 1)[0]
        if "chance" in key and base.startswith(prefix) and len(prefix) > best_len and is_finite(value):
            best, best_len = float(value), len(prefix)
    return best


def _curves(models: Sequence, families: dict[str, dict[int, str]]) -> list[CurveSeries]:
    series = []
    for base, keys in families.items():
        for r in models:
            metrics = r.metrics or {}
            points = [(n, float(metrics[k])) for n, k in sorted(keys.items()) if is_finite(metrics.get(k))]
            if points:
                series.append(CurveSeries(base, r.name, [n for n, _ in points], [v for _, v in points],
                                          _chance(metrics, base)))
    return series


def _chunks(columns: list[str], size: int = MAX_COLUMNS - 1) -> list[list[str]]:
    return [columns[i:i + size] for i in range(0, len(columns), size)]


def _table(suite: str, title: str, columns: list[str], models: Sequence, keep_unevaluated: bool) -> list[MetricTable]:
    """The suite's tables (more than one when it is wider than MAX_COLUMNS); none if empty."""
    rows = [r for r in models
            if any(_has_value((r.metrics or {}).get(c)) for c in columns) or (keep_unevaluated and r.status_note)]
    if not any(_has_value((r.metrics or {}).get(c)) for r in rows for c in columns):
        return []
    parts = _chunks(columns)
    return [MetricTable(suite, title if len(parts) == 1 else f"{title} ({i} of {len(parts)})", part, rows)
            for i, part in enumerate(parts, 1)]


def split_metrics(ds) -> Layout:
    """The dataset's metric tables, curves and left-out metrics (rules in the module doc)."""
    layout = Layout(left_out=degenerate(ds))
    columns = [c for c in ds.columns if c not in layout.left_out]
    layout.no_value = [c for c in columns if not any(_has_value(v) for v in _values(ds.models, c))]
    columns = [c for c in columns if c not in layout.no_value]
    families = _curve_families(columns)
    in_curves = {k for keys in families.values() for k in keys.values()}
    layout.curves = _curves(ds.models, families)
    columns = [c for c in columns if c not in in_curves]
    by_suite: dict[str, list[str]] = {}
    for key in columns:
        by_suite.setdefault(suite_of(key), []).append(key)
    shared = [(s, t) for s, t, _ in SUITES]
    for suite, title in shared:
        if suite != TIME and suite in by_suite:
            layout.tables += _table(suite, title, by_suite[suite], ds.models, keep_unevaluated=True)
    # Own keys, grouped by the models that report them, in the order of the run's models.
    owners: dict[tuple[str, ...], list[str]] = {}
    for key in by_suite.get(OWN, []):
        who = tuple(r.name for r in ds.models if r.metrics and key in r.metrics)
        owners.setdefault(who, []).append(key)
    order = {r.name: i for i, r in enumerate(ds.models)}
    for who in sorted(owners, key=lambda w: ([order[m] for m in w], len(w))):
        rows = [r for r in ds.models if r.name in who]
        layout.tables += _table(OWN, f"{OWN_TITLE}: {', '.join(who)}", order_columns(owners[who]), rows,
                                keep_unevaluated=False)
    if TIME in by_suite:
        layout.tables += _table(TIME, dict((s, t) for s, t in shared)[TIME], by_suite[TIME], ds.models,
                                keep_unevaluated=False)
    return layout


def curve_table(layout: Layout) -> list[tuple[list[str], list[list[str]]]]:
    """The curves' values as narrow tables: a row per (model, metric), a column per size,
    cut so that none is wider than MAX_COLUMNS."""
    sizes = layout.curve_sizes
    out = []
    for part in _chunks(sizes, MAX_COLUMNS - 2):
        headers = ["Model", "Metric", *[f"{CURVE_AXIS} {n}" for n in part]]
        rows = []
        for s in layout.curves:
            by_size = dict(zip(s.sizes, s.values))
            rows.append([s.model, s.metric, *[format_value(by_size.get(n), s.metric) for n in part]])
        out.append((headers, rows))
    return out
