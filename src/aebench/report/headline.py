"""The README's headline table, rendered from a profile's `claims.json`, never typed.

`aebench readme` writes the table between two marker lines of README.md from
`results/paper/claims.json` (the paper profile's committed result); `aebench readme --check`
fails when the README's table is not the one the results give, so the two cannot drift apart
(a test runs the check). Each row: the paper, the claim, the dataset, every check as
mean ± sd (n) of each side with the 95% interval of the difference, and the status.
"""

from __future__ import annotations

import json
from pathlib import Path

from aebench.errors import UserError
from aebench.report.formatting import format_mean_sd, format_value

START = "<!-- headline table: written by `aebench readme` from results/paper/claims.json; do not edit -->"
END = "<!-- end of headline table -->"
SOURCE = Path("results") / "paper" / "claims.json"


def _side(side: dict, label: str, digits: int | None) -> str:
    if "values" not in side:  # a fixed number: a chance level, a threshold
        return side.get("text") or format_value(side.get("value"))
    if not side["n"]:
        return f"{label} —"
    return f"{label} {format_mean_sd(side['mean'], side['sd'], side['metric'], digits)} (n={side['n']})"


def _check(check: dict) -> str:
    """'metric: a 0.90 ± 0.01 (n=3) > b ...', sides named by what differs (model, metric or both)."""
    left, right = check["left"], check["right"]
    same_metric = right.get("metric", left["metric"]) == left["metric"]
    same_model = right.get("model", left["model"]) == left["model"]
    def label(side: dict) -> str:
        return side.get("model") if same_metric else side.get("metric") if same_model else \
            f"{side.get('model')} {side.get('metric')}"
    head = left["metric"] if same_metric else left["model"]
    means = [side.get("mean") for side in (left, right) if "values" in side]
    rounded = {format_value(m, left["metric"]) for m in means}
    digits = 6 if len(means) == 2 and len(rounded) == 1 and means[0] != means[1] else None  # equal only when rounded
    plus = f" + {check['plus']:g}" if check.get("plus") else ""
    text = f"{head}: {_side(left, label(left), digits)} {check['op']} {_side(right, label(right), digits)}{plus}"
    d = check.get("difference") or {}
    if d.get("low") is not None:
        text += f"; difference {d['mean']:.3g} [{d['low']:.3g}, {d['high']:.3g}]"
    if check.get("tolerance"):
        text += f", tolerance {check['tolerance']:g}"
    return text


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render_table(rows: list[dict]) -> str:
    """The Markdown table of a claims.json: a row per (claim, dataset) that was run."""
    try:
        lines = ["| paper | claim | data | ours: mean ± sd (n), difference [95% CI] | status |",
                 "| --- | --- | --- | --- | --- |"]
        for row in rows:
            if row["dataset"] is None:
                continue
            measured = "<br>".join(_check(c) for c in row["checks"])
            lines.append(f"| {_cell(row['paper'].split(' (')[0])} | {_cell(row['statement'])} | {row['dataset']} | "
                         f"{_cell(measured)} | {row['status']} |")
    except (KeyError, TypeError) as exc:
        raise UserError(f"the claims file lacks the per-seed fields of this version ({exc}): re-render it with "
                        f"`aebench profile paper --report-only`") from None
    return "\n".join(lines)


def counts(rows: list[dict]) -> str:
    """'3 held, 1 not held, 8 inconclusive' (the statuses present, in a fixed order)."""
    order = ("held", "not held", "inconclusive", "not run")
    return ", ".join(f"{n} {s}" for s in order if (n := sum(r["status"] == s for r in rows)))


def seeds_note(rows: list[dict]) -> str:
    """'Each side rests on 1 to 5 seeds (the claims need 3).'"""
    ns = [side["n"] for r in rows for c in r["checks"] for side in (c["left"], c["right"]) if side.get("n")]
    needs = sorted({r.get("min_seeds") for r in rows if r.get("min_seeds")})
    if not ns:
        return "No side has a measured value."
    spread = f"{min(ns)} seed{'s' * (max(ns) != 1)}" if min(ns) == max(ns) else f"{min(ns)} to {max(ns)} seeds"
    need = f" (the claims need {' or '.join(map(str, needs))})" if needs else ""
    return f"Each side rests on {spread}{need}."


def render_block(rows: list[dict]) -> str:
    table = render_table(rows)  # first: it names an outdated claims file
    return f"{START}\n**{counts(rows)}.** {seeds_note(rows)}\n\n{table}\n{END}"


def _read(root: Path) -> tuple[Path, str, list[dict]]:
    readme, source = root / "README.md", root / SOURCE
    try:
        rows = json.loads(source.read_text(encoding="utf-8"))
        text = readme.read_text(encoding="utf-8")
    except (OSError, ValueError) as exc:
        raise UserError(f"cannot read {getattr(exc, 'filename', None) or source}: {exc}") from None
    if text.count(START) != 1 or text.count(END) != 1:
        raise UserError(f"{readme} needs the two marker lines of the headline table, once each: {START} and {END}")
    return readme, text, rows


def update(root: Path, check: bool = False) -> str:
    """Rewrite (or with `check`, compare) the README's headline table; returns what was done."""
    readme, text, rows = _read(root)
    head, rest = text.split(START, 1)
    tail = rest.split(END, 1)[1]
    new = head + render_block(rows) + tail
    if new == text:
        return f"{readme}: the headline table matches {SOURCE}"
    if check:
        raise UserError(f"{readme}: the headline table differs from {SOURCE}: run `aebench readme`")
    readme.write_text(new, encoding="utf-8")
    return f"{readme}: headline table written from {SOURCE}"
