"""The claims table: each paper's claims, checked on every dataset of a run that qualifies,
over every training seed of the compared runs.

The claims are data (`claims.yaml` beside this file); no model or dataset name appears in
code. A claim names a paper, a statement, the data it `needs` and one or more checks. A
dataset qualifies when it has every trait the claim needs (see `TRAITS`); the claim is then
evaluated on each qualifying dataset where all of its models ran, one row per
(claim, dataset), so a run on MNIST, CIFAR-10 or any other dataset gets rows for every
claim whose models it trained. Each check compares one model's metric with

- another model's metric (`other_model`, and/or `other_metric` on the same model), or
- a number: `value`, or `value_from: 1/n_classes` (chance level, read from the schema
  metadata `aebench.n_classes` of `data/processed/<dataset>/train.parquet`),

plus an optional `plus` added to the right-hand side (a margin). Each side is a sample: the
metric's value for every training seed of that run. A check is decided on the 95% confidence
interval of the difference (`aebench.report.statistics`: paired by seed where both sides share
their seeds, Welch otherwise, one-sample against a number): "held" when the interval lies on
the claimed side, "not held" when it lies on the other, "inconclusive" when it straddles or
when a side has fewer seeds than the claim's `min_seeds`. A `>=` or `<=` at a ceiling carries
a `tolerance`: a non-inferiority margin the difference may not exceed. A row is "not held"
when one check is, else "not run" when a model or metric it needs is absent (with the reason),
else "inconclusive" when one check is, else "held". Rows also carry each compared model's
training budget (`Budget`), the paper's own figures for that dataset, and the explanation
written in claims.yaml for that dataset and status, its numbers rendered from the row's data
(`aebench.report.explain`). `claims_json` turns rows into `reports/claims.json`.
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal, Optional

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from aebench.errors import UserError
from aebench.report import statistics
from aebench.report.explain import render_explanation
from aebench.report.formatting import format_mean_sd, format_value
from aebench.report.statistics import INCONCLUSIVE, Interval, Sample

logger = logging.getLogger(__name__)

CLAIMS_FILE = Path(__file__).with_name("claims.yaml")

HELD, NOT_HELD, NOT_RUN = "held", "not held", "not run"
STATUSES = (HELD, NOT_HELD, INCONCLUSIVE, NOT_RUN)
DEFAULT_MIN_SEEDS = 3


class Check(BaseModel):
    """`metric` of `model`, compared by `op` with another model/metric or with a number."""

    model_config = ConfigDict(extra="forbid")

    metric: str
    model: str
    op: Literal["<", "<=", ">", ">="]
    other_model: str | None = None
    other_metric: str | None = None
    value: float | None = None
    value_from: Literal["1/n_classes"] | None = None
    plus: float = 0.0
    tolerance: float = Field(0.0, ge=0)  # `>=`/`<=` only: how far the difference may fall short (non-inferiority)
    tolerance_why: Optional[str] = None  # why that margin: a difference without meaning at this ceiling

    @model_validator(mode="after")
    def _one_right_side(self) -> "Check":
        kinds = [self.other_model is not None or self.other_metric is not None,
                 self.value is not None, self.value_from is not None]
        if sum(kinds) != 1:
            raise ValueError("give exactly one right-hand side: other_model/other_metric, value, or value_from")
        if self.tolerance and self.op not in ("<=", ">="):
            raise ValueError(f"a tolerance needs `<=` or `>=` (an equivalence check at a ceiling), not `{self.op}`")
        if self.tolerance and not self.tolerance_why:
            raise ValueError("a tolerance needs `tolerance_why`: why a difference below it means nothing")
        return self

    @property
    def is_comparison(self) -> bool:
        return self.other_model is not None or self.other_metric is not None

    @property
    def right_model(self) -> str:
        return self.other_model or self.model

    @property
    def right_metric(self) -> str:
        return self.other_metric or self.metric


# The traits a claim can need, as the report reads them from a dataset's processed data
# (schema metadata of train.parquet) and from params.yaml:
TRAITS = {
    "labels": "a class label per item (aebench.n_classes >= 2)",
    "images": "image items (aebench.kind = image)",
    "points": "vector items, a point cloud (aebench.kind = vector)",
    "factors": "two or more known generative factors (factor_* columns)",
    "ood": "an out-of-distribution companion (evaluate.ood_companion)",
    "manifold": "a known low-dimensional data manifold (declared by the dataset's generator)",
    "lines": "the ACAI lines benchmark (declared by its generator)",
}
Trait = Literal["labels", "images", "points", "factors", "ood", "manifold", "lines"]


class PaperFigure(BaseModel):
    """What the paper reports for one model and metric, to stand beside ours for the dataset
    that plays its data: a number (`value`) or, where the paper gives none that could be
    sourced (a figure's curves, a sentence), `reported`, in words."""

    model_config = ConfigDict(extra="forbid")

    dataset: str  # ours: the dataset whose row this figure belongs to
    model: str
    metric: str
    value: Optional[float] = None
    reported: Optional[str] = None  # the paper's result in words, where it gives no number
    setting: str  # the paper's data, resolution and budget, in words
    samples: Optional[float] = None  # training samples the paper's model saw, when known
    source: str  # where in the paper (table / figure / text)

    @model_validator(mode="after")
    def _number_or_words(self) -> "PaperFigure":
        if (self.value is None) == (self.reported is None):
            raise ValueError(f"paper figure {self.model}/{self.metric}: give either `value` or `reported`")
        return self


class Explanation(BaseModel):
    """Why a row reads as it does, written after investigating it (`*` matches any)."""

    model_config = ConfigDict(extra="forbid")

    dataset: str = "*"
    status: Literal["held", "not held", "inconclusive", "not run", "*"] = "*"
    text: str  # numbers as fields rendered from the row's data: see aebench.report.explain
    sources: dict[str, str] = Field(default_factory=dict)  # name -> a JSON file (from the root) its fields read


class Claim(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]*$")
    paper: str
    statement: str
    needs: list[Trait] = Field(min_length=1)
    datasets: Optional[list[str]] = None  # restrict to these datasets (e.g. a paper's own benchmark)
    checks: list[Check] = Field(min_length=1)
    paper_result: Optional[str] = None  # what the paper itself reported, in words
    paper_figures: list[PaperFigure] = Field(default_factory=list)
    unequal_budget: Optional[str] = None  # why the compared models may see different numbers of samples
    min_seeds: int = Field(DEFAULT_MIN_SEEDS, ge=2)  # fewer seeds on a side: inconclusive, whatever the values
    explanations: list[Explanation] = Field(default_factory=list)

    @property
    def models(self) -> list[str]:
        """The models the checks compare, in order of first mention."""
        return list(dict.fromkeys(m for c in self.checks for m in (c.model, c.right_model)))

    def explanation(self, dataset: str, status: str) -> Explanation | None:
        for e in self.explanations:
            if e.dataset in ("*", dataset) and e.status in ("*", status):
                return e
        return None


class ClaimsFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    claims: list[Claim]

    @model_validator(mode="after")
    def _unique_ids(self) -> "ClaimsFile":
        ids = [c.id for c in self.claims]
        duplicates = sorted({i for i in ids if ids.count(i) > 1})
        if duplicates:
            raise ValueError(f"duplicate claim ids: {', '.join(duplicates)}")
        return self


def load_claims(path: Path = CLAIMS_FILE) -> list[Claim]:
    """Read and validate a claims file; a mistake in it is a one-line UserError naming it."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        return ClaimsFile.model_validate(data).claims
    except OSError as exc:
        raise UserError(f"cannot read the claims file {path}: {exc.strerror or exc}") from None
    except yaml.YAMLError as exc:
        raise UserError(f"{path} is not valid YAML: {' '.join(str(exc).split())}") from None
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise UserError(f"{path}: {where}: {first['msg']}") from None


# --------------------------------------------------------------------------- evaluation


@dataclass
class Budget:
    """What one compared model was trained with (from models/<dataset>/<model>/seed<seed>/run.json
    of the run's first seed: its seeds share the budget)."""

    steps: int | None = None
    batch_size: int | None = None
    samples_seen: int | None = None
    train_seconds: float | None = None

    @classmethod
    def from_run(cls, run: dict | None) -> "Budget | None":
        if not isinstance(run, dict):
            return None

        def number(key: str, kind: type) -> Any:
            value = run.get(key)
            ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
            return kind(value) if ok else None

        return cls(number("steps", int), number("batch_size", int), number("samples_seen", int),
                   number("train_seconds", float))


@dataclass
class RunData:
    """What the claims are checked against: this run's lists, every seed's metrics, data traits
    and budgets."""

    datasets: list[str]
    models: list[str]
    # the planned (dataset, model) runs -> {seed: metrics.json or None}
    seed_metrics: dict[tuple[str, str], dict[int, dict | None]]
    n_classes: dict[str, int | None]
    traits: dict[str, set[str]] = field(default_factory=dict)  # dataset -> its traits (TRAITS)
    budgets: dict[tuple[str, str], Budget | None] = field(default_factory=dict)
    root: Path | None = None  # where an explanation's `sources` are read from

    def mean_metrics(self, dataset: str, model: str) -> dict | None:
        """A run's metrics averaged over its evaluated seeds (None when none was evaluated)."""
        return mean_metrics(list((self.seed_metrics.get((dataset, model)) or {}).values()))


def _number(value: Any) -> float | None:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    return float(value) if ok else None


def mean_metrics(per_seed: list[dict | None]) -> dict | None:
    """Each metric's mean over the seeds that have a finite value of it (None: no seed evaluated)."""
    evaluated = [m for m in per_seed if isinstance(m, dict)]
    if not evaluated:
        return None
    keys = dict.fromkeys(k for m in evaluated for k in m)
    means = {}
    for key in keys:
        values = [v for m in evaluated if (v := _number(m.get(key))) is not None]
        means[key] = sum(values) / len(values) if values else None
    return means


@dataclass
class Side:
    """One side of a check: how it reads ('ae', 'style_acc', '1/n_classes = 1/10'), its
    per-seed sample (None for a fixed number), its value (the mean, or the number) and, when
    absent, who lacks it ('vae') and why ('no `coding_cost_nats`')."""

    text: str
    value: float | None
    sample: Sample | None = None
    who: str = ""
    missing: str | None = None

    def describe(self, metric: str, digits: int | None = None) -> str:
        """'acai 0.0194 ± 0.00031 (n=3)', 'acai — (no `x`)' when absent, or the number alone for a
        fixed side."""
        if self.sample is None:
            return self.text if self.value is not None or self.missing is None else f"{self.text} {format_value(None)}"
        sd = self.sample.sd if self.sample.n >= 2 else None
        return f"{self.text} {format_mean_sd(self.value, sd, metric, digits)} (n={self.sample.n})"


@dataclass
class CheckResult:
    check: Check
    left: Side
    right: Side  # before `plus`
    status: str
    difference: Interval | None = None  # left - right - plus over the seeds, with its interval
    few_seeds: str | None = None  # why an interval cannot decide it: 'vae: 1 seed (the claim needs 3)'

    @property
    def why(self) -> str | None:
        """Why a check was not run ('acai, ae: no `interp_smoothness`') or is inconclusive for
        too few seeds."""
        if self.status != NOT_RUN:
            return self.few_seeds if self.status == INCONCLUSIVE else None
        grouped: dict[str, list[str]] = {}
        for side in (self.left, self.right):
            if side.missing and side.who not in grouped.get(side.missing, []):
                grouped.setdefault(side.missing, []).append(side.who)
        return "; ".join(f"{', '.join(w for w in who if w)}: {m}" if any(who) else m for m, who in grouped.items())

    @property
    def threshold(self) -> float | None:
        """The right-hand side the left value was compared with (`plus` included)."""
        return None if self.right.value is None else self.right.value + self.check.plus

    def describe(self) -> str:
        """One line, e.g. 'interp_smoothness: acai 0.102 ± 0.004 (n=3) < ae 0.443 ± 0.010 (n=3)' or
        'style_acc: mlvae 0.150 (n=1) < 1/n_classes = 1/10 + 0.1 (0.200)'."""
        c = self.check
        right_metric = c.right_metric if c.is_comparison else c.metric
        digits = None  # equal when rounded, though they differ: show six significant digits
        if (format_value(self.left.value, c.metric) == format_value(self.right.value, right_metric)
                and self.left.value != self.right.value and self.right.value is not None):
            digits = 6
        plus = f" + {c.plus:g}" if c.plus else ""
        right = f"{self.right.describe(right_metric, digits)}{plus}"
        if plus and self.right.value is not None:
            right += f" ({format_value(self.threshold, c.right_metric)})"
        head = c.metric if c.right_metric == c.metric else c.model if c.right_model == c.model else ""
        line = f"{self.left.describe(c.metric, digits)} {c.op} {right}"
        return f"{head}: {line}" if head else line

    def interval_text(self) -> str | None:
        """'difference −0.0021, 95% CI [−0.0040, −0.0002], paired t over 3 shared seeds'."""
        d = self.difference
        if d is None or d.mean is None:
            return None
        ci = f", {d.level:.0%} CI [{d.low:.3g}, {d.high:.3g}]" if d.low is not None else ""
        tolerance = f"; tolerance {self.check.tolerance:g}" if self.check.tolerance else ""
        return f"difference {d.mean:.3g}{ci}, {d.method}{tolerance}"


@dataclass
class ClaimResult:
    """One row: a claim on one dataset (None when no dataset of the run qualified)."""

    claim: Claim
    dataset: str | None
    checks: list[CheckResult]
    status: str
    reason: str | None = None  # why the whole row was not run (no qualifying dataset)
    budgets: dict[str, Budget | None] = field(default_factory=dict)
    metrics: dict[str, dict | None] = field(default_factory=dict)  # model -> its mean metrics on `dataset`
    explanation: str | None = None  # rendered from the row's data (aebench.report.explain)

    @property
    def reasons(self) -> list[str]:
        """Why checks were not run or not decided, each reason once."""
        if self.reason:
            return [self.reason]
        return list(dict.fromkeys(r.why for r in self.checks if r.why))

    @property
    def paper_figures(self) -> list[PaperFigure]:
        return [f for f in self.claim.paper_figures if f.dataset == self.dataset]

    @property
    def budget_note(self) -> str | None:
        """'equal: 19,200 samples each', or why the compared models saw different numbers."""
        seen = {m: b.samples_seen for m, b in self.budgets.items()
                if m in self.claim.models and b is not None and b.samples_seen is not None}
        if len(seen) < 2:
            return None
        if len(set(seen.values())) == 1:
            return f"equal: {next(iter(seen.values())):,} samples each"
        listed = ", ".join(f"{m} {n:,}" for m, n in seen.items())
        why = f" ({self.claim.unequal_budget})" if self.claim.unequal_budget else ""
        return f"unequal: {listed} samples{why}"


def row_key(row: "ClaimResult") -> str:
    """A row's name in files and anchors: `<claim>-<dataset>`."""
    return f"{row.claim.id}-{row.dataset or 'none'}"


def _sample(run: RunData, dataset: str, model: str, metric: str) -> tuple[Sample | None, str | None]:
    """The metric's values over the run's evaluated seeds, or why there are none."""
    if model not in run.models:
        return None, "not in this run's `models`"
    if (dataset, model) not in run.seed_metrics:
        return None, f"not planned on `{dataset}` (no `{dataset}-{model}` in `runs`)"
    per_seed = run.seed_metrics[(dataset, model)]
    evaluated = {seed: m for seed, m in per_seed.items() if m is not None}
    if not evaluated:
        return None, f"not evaluated on `{dataset}`"
    values = {seed: v for seed, m in evaluated.items() if (v := _number(m.get(metric))) is not None}
    if not values:
        return None, f"no `{metric}`"
    return statistics.sample(values), None


def _side(check: Check, model: str, metric: str, run: RunData, dataset: str) -> Side:
    """A metric side, labelled by what differs between the two sides (model, metric or both)."""
    sample, missing = _sample(run, dataset, model, metric)
    if not check.is_comparison or check.right_metric == check.metric:
        text = model
    elif check.right_model == check.model:
        text = metric
    else:
        text = f"{model} {metric}"
    return Side(text, None if sample is None else sample.mean, sample, model, missing)


def _few_seeds(sides: list[Side], minimum: int) -> str | None:
    short = [f"{s.who or s.text}: {s.sample.n} seed{'s' * (s.sample.n != 1)}" for s in sides
             if s.sample is not None and s.sample.n < minimum]
    return f"{'; '.join(short)} (the claim needs {minimum})" if short else None


def check_one(check: Check, dataset: str, run: RunData, min_seeds: int = DEFAULT_MIN_SEEDS) -> CheckResult:
    left = _side(check, check.model, check.metric, run, dataset)
    if check.is_comparison:
        right = _side(check, check.right_model, check.right_metric, run, dataset)
    elif check.value is not None:
        right = Side(f"{check.value:g}", check.value)
    else:
        n = run.n_classes.get(dataset)
        right = Side(f"1/n_classes = 1/{n}", 1.0 / n) if n else \
            Side("1/n_classes", None, None, "", f"the number of classes of `{dataset}` is unknown")
    result = CheckResult(check, left, right, NOT_RUN)
    if left.sample is None or right.value is None:
        return result
    result.difference = statistics.difference(left.sample, right.sample or right.value, check.plus)
    result.status = statistics.decide(check.op, result.difference, check.tolerance)
    result.few_seeds = _few_seeds([left, right], min_seeds)
    if result.few_seeds:
        result.status = INCONCLUSIVE
    return result


def row_status(statuses: set[str]) -> str:
    """A row is as good as its worst check: not held, then not run, then inconclusive."""
    return next((s for s in (NOT_HELD, NOT_RUN, INCONCLUSIVE) if s in statuses), HELD)


def qualifying_datasets(claim: Claim, run: RunData) -> list[str]:
    """The run's datasets with every trait the claim needs (and in its `datasets`, if given)."""
    return [d for d in run.datasets if set(claim.needs) <= run.traits.get(d, set())
            and (claim.datasets is None or d in claim.datasets)]


def _ran(run: RunData, dataset: str, model: str) -> bool:
    return model in run.models and (dataset, model) in run.seed_metrics


def evaluate_on(claim: Claim, dataset: str, run: RunData) -> ClaimResult:
    """The claim's row on one dataset."""
    checks = [check_one(c, dataset, run, claim.min_seeds) for c in claim.checks]
    models = list(dict.fromkeys(claim.models + [f.model for f in claim.paper_figures if f.dataset == dataset]))
    budgets = {m: run.budgets.get((dataset, m)) for m in models}
    metrics = {m: run.mean_metrics(dataset, m) for m in models}
    row = ClaimResult(claim, dataset, checks, row_status({c.status for c in checks}), budgets=budgets, metrics=metrics)
    row.explanation = render_explanation(row, run)
    return row


def evaluate_claim(claim: Claim, run: RunData) -> list[ClaimResult]:
    """One row per qualifying dataset on which every model of the claim was planned; one
    "not run" row saying what is missing when there is none."""
    qualifying = qualifying_datasets(claim, run)
    rows = [evaluate_on(claim, d, run) for d in qualifying if all(_ran(run, d, m) for m in claim.models)]
    if rows:
        return rows
    checks = [CheckResult(c, Side(c.model, None), Side(c.right_model, None), NOT_RUN) for c in claim.checks]
    needs = ", ".join(claim.needs) + (f" (one of {', '.join(claim.datasets)})" if claim.datasets else "")
    if not qualifying:
        reason = f"no dataset of this run has what the claim needs: {needs}"
    else:
        reason = f"no qualifying dataset ({', '.join(qualifying)}) ran all of {', '.join(claim.models)}"
    return [ClaimResult(claim, None, checks, NOT_RUN, reason)]


def evaluate_claims(claims: list[Claim], run: RunData) -> list[ClaimResult]:
    return [row for c in claims for row in evaluate_claim(c, run)]


# --------------------------------------------------------------------------- claims.json


def _finite(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


def _side_json(side: Side, model: str, metric: str) -> dict:
    sample = side.sample.as_json() if side.sample is not None else {"seeds": [], "values": [], "n": 0,
                                                                     "mean": None, "sd": None}
    return {"model": model, "metric": metric, **sample}


def check_json(r: CheckResult) -> dict:
    c = r.check
    return {
        "text": r.describe(), "status": r.status, "op": c.op, "why": r.why,
        "left": _side_json(r.left, c.model, c.metric),
        "right": (_side_json(r.right, c.right_model, c.right_metric) if c.is_comparison
                  else {"text": r.right.text, "value": _finite(r.right.value)}),
        "plus": c.plus, "threshold": _finite(r.threshold),
        "tolerance": c.tolerance, "tolerance_why": c.tolerance_why,
        "difference": None if r.difference is None else r.difference.as_json(),
    }


def row_json(row: ClaimResult) -> dict:
    """One row of reports/claims.json (schema: docs in `claims_json`)."""
    return {
        "claim": row.claim.id, "paper": row.claim.paper, "statement": row.claim.statement,
        "dataset": row.dataset, "status": row.status, "reason": row.reason, "min_seeds": row.claim.min_seeds,
        "checks": [check_json(r) for r in row.checks],
        "budgets": {m: (None if b is None else asdict(b)) for m, b in row.budgets.items()},
        "budget_note": row.budget_note,
        "paper_result": row.claim.paper_result,
        "paper_figures": [f.model_dump() for f in row.paper_figures],
        "explanation": row.explanation,
    }


def claims_json(rows: list[ClaimResult]) -> list[dict]:
    """reports/claims.json: a list of rows, each with `claim` (id), `paper`, `statement`,
    `dataset` (null when no dataset qualified), `status` (held / not held / inconclusive /
    not run), `reason`, `min_seeds`, `checks`, `budgets` (model -> steps, batch_size,
    samples_seen, train_seconds), `budget_note`, `paper_result`, `paper_figures` and
    `explanation`. Each check has `text`, `status`, `op`, `why` (not run, or too few seeds),
    `left` and `right` (a metric side: `model`, `metric`, `seeds`, `values` (one per seed, in
    `seeds` order), `n`, `mean`, `sd`; a fixed side: `text`, `value`), `plus`, `threshold`,
    `tolerance` with `tolerance_why`, and `difference` (left - right - plus: `mean`, `low`,
    `high`, `level`, `method`, `n`; null when not run)."""
    return [row_json(r) for r in rows]


# --------------------------------------------------------------------------- data traits


def read_traits(processed: Path, has_ood_companion: bool) -> tuple[set[str], int | None]:
    """(traits, n_classes) of a processed dataset, from the schema metadata of train.parquet
    (no rows are read): kind, n_classes, factor columns and the generator's declared traits."""
    traits = {"ood"} if has_ood_companion else set()
    path = Path(processed) / "train.parquet"
    if not path.is_file():
        return traits, None
    try:
        import pyarrow.parquet as pq

        schema = pq.read_schema(path)
        meta = {k.decode(): json.loads(v) for k, v in (schema.metadata or {}).items() if k.startswith(b"aebench.")}
    except (OSError, ValueError, TypeError) as exc:  # pyarrow errors subclass these
        logger.warning("cannot read the schema of %s: %s", path, exc)
        return traits, None
    n = meta.get("aebench.n_classes")
    n_classes = int(n) if isinstance(n, (int, float)) and not isinstance(n, bool) and n > 0 else None
    if n_classes is not None and n_classes >= 2:
        traits.add("labels")
    kind = meta.get("aebench.kind")
    traits |= {"images"} if kind == "image" else {"points"} if kind == "vector" else set()
    if sum(name.startswith("factor_") for name in schema.names) >= 2:
        traits.add("factors")
    declared = meta.get("aebench.traits", [])
    traits |= {t for t in declared if t in TRAITS} if isinstance(declared, list) else set()
    return traits, n_classes
