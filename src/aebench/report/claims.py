"""The claims table: each paper's claims, checked on every dataset of a run that qualifies.

The claims are data (`claims.yaml` beside this file); no model or dataset name appears in
code. A claim names a paper, a statement, the data it `needs` and one or more checks. A
dataset qualifies when it has every trait the claim needs (see `TRAITS`); the claim is then
evaluated on each qualifying dataset where all of its models ran, one row per
(claim, dataset), so a run on MNIST, CIFAR-10 or any other dataset gets rows for every
claim whose models it trained. Each check compares one model's metric with

- another model's metric (`other_model`, and/or `other_metric` on the same model), or
- a number: `value`, or `value_from: 1/n_classes` (chance level, read from the schema
  metadata `aebench.n_classes` of `data/processed/<dataset>/train.parquet`),

plus an optional `plus` added to the right-hand side (a margin). A row is "held" when every
check holds, "not held" when one measured check fails, and "not run" when a model or metric
it needs is absent from the run, with the reason and every number that was measured. Rows
also carry each compared model's training budget (`Budget`), the paper's own figures for
that dataset, and the explanation written in claims.yaml for that dataset and status.
`claims_json` turns rows into `reports/claims.json`.
"""

from __future__ import annotations

import json
import logging
import math
import operator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Literal, Optional

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from aebench.errors import UserError
from aebench.report.formatting import format_value

logger = logging.getLogger(__name__)

CLAIMS_FILE = Path(__file__).with_name("claims.yaml")

HELD, NOT_HELD, NOT_RUN = "held", "not held", "not run"
OPS: dict[str, Callable[[float, float], bool]] = {
    "<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge,
}


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

    @model_validator(mode="after")
    def _one_right_side(self) -> "Check":
        kinds = [self.other_model is not None or self.other_metric is not None,
                 self.value is not None, self.value_from is not None]
        if sum(kinds) != 1:
            raise ValueError("give exactly one right-hand side: other_model/other_metric, value, or value_from")
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
    status: Literal["held", "not held", "not run", "*"] = "*"
    text: str


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
    explanations: list[Explanation] = Field(default_factory=list)

    @property
    def models(self) -> list[str]:
        """The models the checks compare, in order of first mention."""
        return list(dict.fromkeys(m for c in self.checks for m in (c.model, c.right_model)))

    def explanation(self, dataset: str, status: str) -> str | None:
        for e in self.explanations:
            if e.dataset in ("*", dataset) and e.status in ("*", status):
                return e.text
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
    """What one compared model was trained with (from models/<dataset>/<model>/run.json)."""

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
    """What the claims are checked against: this run's lists, metrics, data traits and budgets."""

    datasets: list[str]
    models: list[str]
    metrics: dict[tuple[str, str], dict | None]  # the planned (dataset, model) runs -> metrics.json or None
    n_classes: dict[str, int | None]
    traits: dict[str, set[str]] = field(default_factory=dict)  # dataset -> its traits (TRAITS)
    budgets: dict[tuple[str, str], Budget | None] = field(default_factory=dict)


@dataclass
class Side:
    """One side of a check: how it reads ('ae', 'style_acc', '1/n_classes = 1/10'), its value,
    and, when absent, who lacks it ('vae') and why ('no `coding_cost_nats`')."""

    text: str
    value: float | None
    who: str = ""
    missing: str | None = None


@dataclass
class CheckResult:
    check: Check
    left: Side
    right: Side  # before `plus`
    status: str

    @property
    def why(self) -> str | None:
        """Why a check was not run, e.g. 'acai, ae: no `interp_smoothness`'."""
        if self.status != NOT_RUN:
            return None
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
        """One line, e.g. 'interp_smoothness: acai 0.102 < ae 0.443' or
        'style_acc: mlvae 0.150 < 1/n_classes = 1/10 + 0.1 (0.200)'."""
        c = self.check
        left_value, right_value = format_value(self.left.value, c.metric), format_value(self.right.value, c.right_metric)
        if left_value == right_value and self.left.value != self.right.value and self.right.value is not None:
            left_value, right_value = f"{self.left.value:.6g}", f"{self.right.value:.6g}"  # equal when rounded
        left = f"{self.left.text} {left_value}"
        plus = f" + {c.plus:g}" if c.plus else ""
        if c.is_comparison:
            right = f"{self.right.text} {right_value}{plus}"
            if plus and self.right.value is not None:
                right += f" ({format_value(self.threshold, c.right_metric)})"
        elif c.value is not None:
            right = f"{format_value(self.right.value, c.metric)}{plus}"
        else:
            right = f"{self.right.text}{plus}"
            if self.right.value is not None:
                right += f" ({format_value(self.threshold, c.metric)})"
        head = c.metric if c.right_metric == c.metric else c.model if c.right_model == c.model else ""
        return f"{head}: {left} {c.op} {right}" if head else f"{left} {c.op} {right}"


@dataclass
class ClaimResult:
    """One row: a claim on one dataset (None when no dataset of the run qualified)."""

    claim: Claim
    dataset: str | None
    checks: list[CheckResult]
    status: str
    reason: str | None = None  # why the whole row was not run (no qualifying dataset)
    budgets: dict[str, Budget | None] = field(default_factory=dict)
    metrics: dict[str, dict | None] = field(default_factory=dict)  # model -> its metrics on `dataset`

    @property
    def reasons(self) -> list[str]:
        """Why checks were not run, each reason once."""
        if self.reason:
            return [self.reason]
        return list(dict.fromkeys(r.why for r in self.checks if r.why))

    @property
    def explanation(self) -> str | None:
        return self.claim.explanation(self.dataset or "*", self.status)

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


def _metric(run: RunData, dataset: str, model: str, metric: str) -> tuple[float | None, str | None]:
    if model not in run.models:
        return None, "not in this run's `models`"
    if (dataset, model) not in run.metrics:
        return None, f"not planned on `{dataset}` (no `{dataset}-{model}` in `runs`)"
    metrics = run.metrics[(dataset, model)]
    if metrics is None:
        return None, f"not evaluated on `{dataset}`"
    value = metrics.get(metric)
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value):
        return None, f"no `{metric}`"
    return float(value), None


def _side(check: Check, model: str, metric: str, run: RunData, dataset: str) -> Side:
    """A metric side, labelled by what differs between the two sides (model, metric or both)."""
    value, missing = _metric(run, dataset, model, metric)
    if not check.is_comparison or check.right_metric == check.metric:
        text = model
    elif check.right_model == check.model:
        text = metric
    else:
        text = f"{model} {metric}"
    return Side(text, value, model, missing)


def check_one(check: Check, dataset: str, run: RunData) -> CheckResult:
    left = _side(check, check.model, check.metric, run, dataset)
    if check.is_comparison:
        right = _side(check, check.right_model, check.right_metric, run, dataset)
    elif check.value is not None:
        right = Side(f"{check.value:g}", check.value)
    else:
        n = run.n_classes.get(dataset)
        right = Side(f"1/n_classes = 1/{n}", 1.0 / n) if n else \
            Side("1/n_classes", None, "", f"the number of classes of `{dataset}` is unknown")
    result = CheckResult(check, left, right, NOT_RUN)
    if left.value is not None and right.value is not None:
        result.status = HELD if OPS[check.op](left.value, result.threshold) else NOT_HELD
    return result


def qualifying_datasets(claim: Claim, run: RunData) -> list[str]:
    """The run's datasets with every trait the claim needs (and in its `datasets`, if given)."""
    return [d for d in run.datasets if set(claim.needs) <= run.traits.get(d, set())
            and (claim.datasets is None or d in claim.datasets)]


def _ran(run: RunData, dataset: str, model: str) -> bool:
    return model in run.models and (dataset, model) in run.metrics


def evaluate_on(claim: Claim, dataset: str, run: RunData) -> ClaimResult:
    """The claim's row on one dataset."""
    checks = [check_one(c, dataset, run) for c in claim.checks]
    statuses = {c.status for c in checks}
    status = NOT_HELD if NOT_HELD in statuses else NOT_RUN if NOT_RUN in statuses else HELD
    models = list(dict.fromkeys(claim.models + [f.model for f in claim.paper_figures if f.dataset == dataset]))
    budgets = {m: run.budgets.get((dataset, m)) for m in models}
    metrics = {m: run.metrics.get((dataset, m)) for m in models}
    return ClaimResult(claim, dataset, checks, status, budgets=budgets, metrics=metrics)


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


def row_json(row: ClaimResult) -> dict:
    """One row of reports/claims.json (schema: docs in `claims_json`)."""
    checks = []
    for r in row.checks:
        c = r.check
        checks.append({
            "text": r.describe(), "status": r.status, "op": c.op, "why_not_run": r.why,
            "left": {"model": c.model, "metric": c.metric, "value": _finite(r.left.value)},
            "right": ({"model": c.right_model, "metric": c.right_metric, "value": _finite(r.right.value)}
                      if c.is_comparison else {"text": r.right.text, "value": _finite(r.right.value)}),
            "plus": c.plus, "threshold": _finite(r.threshold),
        })
    return {
        "claim": row.claim.id, "paper": row.claim.paper, "statement": row.claim.statement,
        "dataset": row.dataset, "status": row.status, "reason": row.reason, "checks": checks,
        "budgets": {m: (None if b is None else asdict(b)) for m, b in row.budgets.items()},
        "budget_note": row.budget_note,
        "paper_result": row.claim.paper_result,
        "paper_figures": [f.model_dump() for f in row.paper_figures],
        "explanation": row.explanation,
    }


def claims_json(rows: list[ClaimResult]) -> list[dict]:
    """reports/claims.json: a list of rows, each with `claim` (id), `paper`, `statement`,
    `dataset` (null when no dataset qualified), `status` (held / not held / not run),
    `reason`, `checks` (each with `text`, `status`, `op`, `left` and `right` values, `plus`,
    `threshold`, `why_not_run`), `budgets` (model -> steps, batch_size, samples_seen,
    train_seconds), `budget_note`, `paper_result`, `paper_figures` and `explanation`."""
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
