"""The GitHub-Markdown summary (`summary.md`) and the stand-alone claims table (`claims.md`).

Figures are linked by relative path (`../eval/...`), so the summary renders on GitHub or in
an editor next to the pipeline's outputs; the training-curve figures, which exist only in
memory for the HTML page, are written to `<out_dir>/figures/` for it, and so are the
group-size figures. The metric tables are those of the page (`suites.py`).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Sequence
from urllib.parse import quote

from aebench.report.claims import ClaimResult, row_key
from aebench.report.collect import DatasetResult, Report
from aebench.report.figures import group_by_kind
from aebench.report.formatting import MISSING, header_label, short
from aebench.report.suites import CURVE_AXIS, MetricTable, curve_table, split_metrics
from aebench.report.tables import (CURVE_NOTE, LEGEND_LINES, RUN_HEADERS, STATUS_MARK, TIMING_NOTE, TITLE,
                                   check_lines, claim_counts, claim_notes, data_table, dataset_facts,
                                   environment_rows, few_seeds_rows,
                                   left_out_note, metric_rows, paper_side_by_side, run_rows, stage_time_table,
                                   unlisted_note, validation_label)

FIGURES_PER_ROW = 4


def _md_cell(text: Any) -> str:
    return " ".join(str(text).split()).replace("|", "\\|")


def md_table(headers: Sequence[str], rows: Sequence[Sequence[str]], align: Sequence[str] | None = None) -> str:
    align = align or ["l"] * len(headers)
    sep = {"l": "---", "r": "---:", "c": ":---:"}
    lines = ["| " + " | ".join(_md_cell(h) for h in headers) + " |",
             "| " + " | ".join(sep[a] for a in align) + " |"]
    lines += ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def _rel_link(target: Path, out_dir: Path) -> str:
    rel = os.path.relpath(Path(target).resolve(), Path(out_dir).resolve())
    return quote(rel.replace(os.sep, "/"))


def claims_table(claims: list[ClaimResult], figures: dict[str, Path] | None = None, out_dir: Path | None = None) -> str:
    """The claims as one Markdown table, a row per (claim, dataset) (also written alone to
    claims.md, e.g. for the README); `figures` (row_key -> PNG) adds each row's seeds figure."""
    if not claims:
        return f"{MISSING} no claims defined."
    rows = []
    for r in claims:
        measured = "<br>".join(f"{STATUS_MARK[status]} {text}" + (f" _({detail})_" if detail else "")
                               for status, text, detail in check_lines(r))
        notes = "<br>".join(f"_{n}_" for n in claim_notes(r))
        figure = (figures or {}).get(row_key(r))
        if figure is not None and out_dir is not None:
            measured += f"<br>![every seed of {r.claim.id}]({_rel_link(figure, out_dir)})"
        rows.append([f"**{r.status}**", r.claim.paper, r.claim.statement, r.dataset or MISSING, measured, notes])
    return md_table(["Status", "Paper", "Claim", "Dataset", "Measured", "Notes"], rows)


def paper_tables(claims: list[ClaimResult]) -> list[str]:
    """Per paper, its reported figures beside this run's (`tables.paper_side_by_side`)."""
    out = []
    for paper, (headers, rows) in paper_side_by_side(claims).items():
        out += [f"### {paper}", "", md_table(headers, rows), ""]
    return out


def _metrics_table(ds: DatasetResult, table: MetricTable) -> str:
    rows = []
    for r, cells in metric_rows(ds, table):
        row = [f"{r.name} _({r.status_note})_" if r.status_note else r.name]
        row += [f"**{text}**" if best else text for _, text, best in cells]
        rows.append(row)
    return md_table(["Model", *[header_label(c) for c in table.columns]], rows, ["l"] + ["r"] * len(table.columns))


def _metrics(ds: DatasetResult, out_dir: Path, group_file: Path | None) -> list[str]:
    """A small table per suite, the group-size curves, and the note on left-out metrics."""
    layout = split_metrics(ds)
    out = []
    for table in layout.tables:
        out += [f"#### {table.title}", "", _metrics_table(ds, table), ""]
    if layout.curves:
        out += [f"#### Metrics by {CURVE_AXIS}", ""]
        if group_file:
            out += [f"![Metrics by {CURVE_AXIS} for {ds.name}]({_rel_link(group_file, out_dir)})", "",
                    f"_{CURVE_NOTE}_", ""]
        for headers, rows in curve_table(layout):
            out += [md_table(headers, rows, ["l", "l"] + ["r"] * (len(headers) - 2)), ""]
    if note := left_out_note(layout):
        out += [f"_{note}_", ""]
    if ds.columns and not layout.tables and not layout.curves:
        out += [f"{MISSING} no metric has a value yet.", ""]
    if note := unlisted_note(ds, layout):
        out += [f"_{note}_", ""]
    return out


def _figure_grid(items: list[tuple[str, Path]], out_dir: Path, title: str) -> list[str]:
    """Figures of one kind side by side: a table of up to FIGURES_PER_ROW models per row."""
    out = []
    for start in range(0, len(items), FIGURES_PER_ROW):
        chunk = items[start:start + FIGURES_PER_ROW]
        images = [f"![{title}: {model}]({_rel_link(path, out_dir)})" for model, path in chunk]
        out += [md_table([model for model, _ in chunk], [images], ["c"] * len(chunk)), ""]
    return out


def _dataset(ds: DatasetResult, out_dir: Path, curve_file: Path | None, group_file: Path | None = None) -> list[str]:
    facts = [f"validation {validation_label(ds.validation)}", *dataset_facts(ds, lambda text: f"`{text}`")]
    out = [f"## Dataset: {ds.name}", "", " · ".join(facts), "", "### Metrics", ""]
    if not ds.columns:
        out += [f"{MISSING} no metrics yet.", ""]
    if ds.models:
        out += _metrics(ds, out_dir, group_file)
    out += ["### Training curves", ""]
    if curve_file:
        out += [f"![Training curves for {ds.name}]({_rel_link(curve_file, out_dir)})", "",
                "_One panel per model: validation solid, train dashed._", ""]
    else:
        out += [f"{MISSING} no training curves yet.", ""]
    out += ["### Figures", ""]
    kinds = group_by_kind(ds.models)
    if not kinds:
        out += [f"{MISSING} no figures yet.", ""]
    for kind in kinds:
        out += [f"#### {kind.title}", "", *_figure_grid(kind.items, out_dir, kind.title)]
    return out


def render_markdown(report: Report, out_dir: Path, curve_files: dict[str, Path] | None = None,
                    group_files: dict[str, Path] | None = None, claim_files: dict[str, Path] | None = None) -> str:
    curve_files, group_files = curve_files or {}, group_files or {}
    env = report.environment
    out = [f"# {TITLE}", "", f"Generated {env.generated} · commit `{short(env.git_commit, 12)}`", "",
           "**Legend**", "", *[f"- {line}" for line in LEGEND_LINES], ""]
    out += ["## Claims", "", f"{claim_counts(report.claims)} at this run's budget.", ""]
    few = few_seeds_rows(report.claims)
    out += [f"Too few seeds to decide: {', '.join(few)}.", ""] if few else []
    out += [claims_table(report.claims, claim_files, out_dir), ""]
    side_by_side = paper_tables(report.claims)
    if side_by_side:
        out += ["## The papers' figures beside ours", "", *side_by_side]
    for ds in report.datasets:
        out += _dataset(ds, out_dir, curve_files.get(ds.name), group_files.get(ds.name))
    out += ["## Provenance", "", "### Environment", "", md_table(["Item", "Value"], environment_rows(report)), ""]
    out += ["### Time per stage", "", f"_{TIMING_NOTE}_", "", md_table(*stage_time_table(report)), ""]
    out += ["### Data", "", md_table(*data_table(report)), ""]
    out += ["### Training runs", "", md_table(RUN_HEADERS, run_rows(report)), ""]
    out += ["### params.yaml", ""]
    if env.params_text is None:
        out += [f"{MISSING} params.yaml not found.", ""]
    else:
        fence = "````" if "```" in env.params_text else "```"
        out += [f"{fence}yaml", env.params_text.rstrip("\n"), fence, ""]
    return "\n".join(out)
