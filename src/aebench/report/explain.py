"""A claim row's explanation, its numbers rendered from the data it explains.

An explanation in claims.yaml is written once, after investigating a row, but the row's numbers
change with every run. So the text holds no typed number: each is a field in braces, read from
the run the row comes from, and an explanation can never go stale against it.

Fields:

- `{<model>.<metric>}`: the metric's mean over the model's seeds on the row's dataset (any
  model of that dataset, not only the claim's); `.sd`, `.n`, `.min` and `.max` after it give
  its spread (`{vae.ood_auroc.sd}`);
- `{check<N>.mean}`, `{check<N>.low}`, `{check<N>.high}`: the difference of the row's N-th check
  (from 1) and its confidence interval;
- `{budget.<model>.<field>}`: a compared model's budget (`steps`, `batch_size`,
  `samples_seen`, `train_seconds`);
- `{paper.<model>.<metric>}`: the paper's figure for the row's dataset (claims.yaml's
  `paper_figures`);
- `{<source>.<key>.<key>...}`: a value in a JSON file the explanation names in `sources`
  (`{curve: results/paper-budgets/<claim>-<dataset>.json}`, a path from the repository root),
  list positions as numbers (`{curve.points.0.checks.0.left}`).

A field that cannot be read renders as "—" and is logged, so a missing figure shows as missing.
`aebench.report.claims` calls this module with its rows (a `ClaimResult` and the `RunData` it
came from); this module imports nothing of the claims, so the two form no cycle.
"""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path
from typing import Any

from aebench.report import statistics
from aebench.report.formatting import MISSING, format_value

logger = logging.getLogger(__name__)

FIELD = re.compile(r"\{([A-Za-z0-9_.\-]+)\}")
SPREAD = ("mean", "sd", "n", "min", "max")


def _dig(value: Any, keys: list[str]) -> Any:
    for key in keys:
        if isinstance(value, list) and key.isdigit() and int(key) < len(value):
            value = value[int(key)]
        elif isinstance(value, dict) and key in value:
            value = value[key]
        else:
            return None
    return value


def _spread(run: "RunData", dataset: str, model: str, metric: str, what: str) -> float | int | None:
    """The metric's mean (or `sd`, `n`, `min`, `max`) over the model's evaluated seeds."""
    per_seed = run.seed_metrics.get((dataset, model)) or {}
    values = statistics.sample({seed: (m or {}).get(metric) for seed, m in per_seed.items()})
    if not values.n:
        return None
    number = {"mean": values.mean, "sd": values.sd, "n": values.n, "min": min(values.values),
              "max": max(values.values)}[what]
    return None if number != number else number  # the sd of one seed is NaN: no value


class _Fields:
    """Reads the fields of one row's explanation."""

    def __init__(self, row: "ClaimResult", run: "RunData", sources: dict[str, str]):
        self.row, self.run, self.sources, self._loaded = row, run, sources, {}

    def source(self, name: str) -> Any:
        if name not in self._loaded:
            path = Path(self.sources[name])
            path = path if path.is_absolute() or self.run.root is None else self.run.root / path
            try:
                self._loaded[name] = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, ValueError) as exc:
                logger.warning("claim %s: cannot read the explanation's source %s: %s", self.row.claim.id, path, exc)
                self._loaded[name] = None
        return self._loaded[name]

    def value(self, field: str) -> tuple[Any, str | None]:
        """(value, metric name for formatting) of one field; value None when it cannot be read."""
        head, *rest = field.split(".")
        if re.fullmatch(r"check\d+", head) and len(rest) == 1:
            i = int(head[5:]) - 1
            checks = self.row.checks
            if 0 <= i < len(checks) and checks[i].difference is not None:
                return getattr(checks[i].difference, rest[0], None), checks[i].check.metric
            return None, None
        if head == "budget" and len(rest) == 2:
            budget = self.row.budgets.get(rest[0])
            return (getattr(budget, rest[1], None) if budget is not None else None), None
        if head == "paper" and len(rest) == 2:
            figure = next((f for f in self.row.paper_figures if (f.model, f.metric) == tuple(rest)), None)
            return (figure.value if figure is not None else None), rest[1]
        if head in self.sources:
            return _dig(self.source(head), rest), rest[-1] if rest else None
        what = rest[1] if len(rest) == 2 else "mean"
        if len(rest) in (1, 2) and self.row.dataset is not None and what in SPREAD:
            return _spread(self.run, self.row.dataset, head, rest[0], what), rest[0]
        return None, None


def render_explanation(row: "ClaimResult", run: "RunData") -> str | None:
    """The explanation claims.yaml gives for the row's dataset and status, its fields filled in."""
    written = row.claim.explanation(row.dataset or "*", row.status)
    if written is None:
        return None
    fields = _Fields(row, run, written.sources)

    def fill(match: re.Match) -> str:
        value, metric = fields.value(match.group(1))
        if value is None:
            logger.warning("claim %s on %s: the explanation's field {%s} has no value in this run",
                           row.claim.id, row.dataset, match.group(1))
            return MISSING
        return format_value(value, metric)

    return FIELD.sub(fill, written.text)
