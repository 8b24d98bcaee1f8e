"""The claims table: each paper's claims, checked against this run's metrics.

The claims are data (`claims.yaml` beside this file); no model name appears in code. A claim
names a paper, a statement, a dataset and one or more checks; each check compares one
model's metric with

- another model's metric (`other_model`, and/or `other_metric` on the same model), or
- a number: `value`, or `value_from: 1/n_classes` (chance level, read from the schema
  metadata `aebench.n_classes` of `data/processed/<dataset>/train.parquet`),

plus an optional `plus` added to the right-hand side (a margin: "near chance" is
`style_acc < 1/n_classes + 0.1`). A claim is "held" when every check holds, "not held" when
one measured check fails, and "not run" when a dataset, model or metric it needs is absent
from this run (its datasets/models lists or its budget), with the reason and every number
that was measured.
"""

from __future__ import annotations

import json
import logging
import math
import operator
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Literal

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


class Claim(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]*$")
    paper: str
    statement: str
    dataset: str
    checks: list[Check] = Field(min_length=1)
    paper_result: str | None = None  # what the paper itself reported, for context


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
class RunData:
    """What the claims are checked against: this run's lists, metrics and class counts."""

    datasets: list[str]
    models: list[str]
    metrics: dict[tuple[str, str], dict | None]  # the planned (dataset, model) runs -> metrics.json or None
    n_classes: dict[str, int | None]


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
        left = f"{self.left.text} {format_value(self.left.value, c.metric)}"
        plus = f" + {c.plus:g}" if c.plus else ""
        if c.is_comparison:
            right = f"{self.right.text} {format_value(self.right.value, c.right_metric)}{plus}"
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
    claim: Claim
    checks: list[CheckResult]
    status: str
    reason: str | None = None  # why the whole claim was not run (its dataset is not in the run)

    @property
    def reasons(self) -> list[str]:
        """Why checks were not run, each reason once."""
        if self.reason:
            return [self.reason]
        return list(dict.fromkeys(r.why for r in self.checks if r.why))


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


def evaluate_claim(claim: Claim, run: RunData) -> ClaimResult:
    checks = [check_one(c, claim.dataset, run) for c in claim.checks]
    if claim.dataset not in run.datasets:
        for c in checks:  # one reason, the claim's, says it all
            c.status, c.left.missing, c.right.missing = NOT_RUN, None, None
        return ClaimResult(claim, checks, NOT_RUN, f"dataset `{claim.dataset}` is not in this run's `datasets`")
    statuses = {c.status for c in checks}
    status = NOT_HELD if NOT_HELD in statuses else NOT_RUN if NOT_RUN in statuses else HELD
    return ClaimResult(claim, checks, status)


def evaluate_claims(claims: list[Claim], run: RunData) -> list[ClaimResult]:
    return [evaluate_claim(c, run) for c in claims]


def read_n_classes(processed: Path) -> int | None:
    """`aebench.n_classes` from the schema metadata of train.parquet (no rows are read)."""
    path = Path(processed) / "train.parquet"
    if not path.is_file():
        return None
    try:
        import pyarrow.parquet as pq

        meta = pq.read_schema(path).metadata or {}
        n = json.loads(meta[b"aebench.n_classes"])
        return int(n) if isinstance(n, (int, float)) and n > 0 else None
    except (OSError, KeyError, ValueError, TypeError) as exc:  # pyarrow errors subclass these
        logger.warning("cannot read n_classes from %s: %s", path, exc)
        return None
