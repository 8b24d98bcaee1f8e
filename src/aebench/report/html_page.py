"""The self-contained HTML page: claims, per-dataset tables (a small one per suite, `suites.py`)
and figures, provenance.

No script, no external resource: images are data URIs, the stylesheet is inline
(`template.py`), and collapsible parts are `<details>` elements.
"""

from __future__ import annotations

import html
import logging
from pathlib import Path
from typing import Iterable, Sequence

from aebench.evaluation.directions import DIRECTIONS
from aebench.report import template
from aebench.report.claims import HELD, INCONCLUSIVE, NOT_HELD, NOT_RUN, ClaimResult, row_key
from aebench.report.collect import DatasetResult, Report
from aebench.report.figures import data_uri, group_by_kind
from aebench.report.formatting import DIRECTION_WORDS, MISSING, header_label, short, slug
from aebench.report.suites import CURVE_AXIS, MetricTable, curve_table, split_metrics
from aebench.report.tables import (CURVE_NOTE, LEGEND_LINES, RUN_HEADERS, STATUS_MARK, TIMING_NOTE, TITLE,
                                   check_lines, claim_counts, claim_notes, data_table, dataset_facts,
                                   environment_rows, few_seeds_rows,
                                   left_out_note, metric_rows, paper_side_by_side, run_rows, stage_time_table,
                                   unlisted_note, validation_label)

logger = logging.getLogger(__name__)

MARK_CLASS = {HELD: "ok", NOT_HELD: "fail", INCONCLUSIVE: "unsure", NOT_RUN: "muted"}


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def _status_class(status: str) -> str:
    return slug(status)  # "held", "not-held", "inconclusive", "not-run"


def _table(headers: Sequence[str], rows: Iterable[Sequence[str]], cls: str) -> str:
    head = "".join(f'<th scope="col">{_e(h)}</th>' for h in headers)
    body = "".join(
        "<tr>" + "".join(f'<td class="missing">{MISSING}</td>' if c == MISSING else f"<td>{_e(c)}</td>" for c in row)
        + "</tr>" for row in rows)
    return f'<div class="table-wrap"><table class="{cls}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>'


def _kv_table(rows: Iterable[tuple[str, str]]) -> str:
    body = "".join(f'<tr><th class="rowhead" scope="row">{_e(k)}</th><td>{_e(v)}</td></tr>' for k, v in rows)
    return f'<div class="table-wrap"><table class="kv">{body}</table></div>'


def _figure(png: bytes, alt: str, text: str) -> str:
    return f'<figure><img src="{data_uri(png)}" alt="{_e(alt)}"><figcaption>{_e(text)}</figcaption></figure>'


def _read(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except OSError as exc:
        logger.warning("cannot read %s: %s", path, exc)
        return None


# --------------------------------------------------------------------------- claims


def _claim_row(result: ClaimResult, figure: bytes | None = None) -> str:
    c = result.claim
    status = f'<span class="badge {_status_class(result.status)}">{_e(result.status)}</span>'
    statement = _e(c.statement)
    if c.paper_result:
        statement += f'<span class="paper-result">Paper: {_e(c.paper_result)}</span>'
    checks = "".join(
        f'<li data-status="{_e(status)}"><span class="{MARK_CLASS[status]}">{STATUS_MARK[status]}</span> '
        f"{_e(text)}" + (f'<span class="reasons">{_e(detail)}</span>' if detail else "") + "</li>"
        for status, text, detail in check_lines(result))
    notes = "".join(f'<p class="reasons">{_e(n)}</p>' for n in claim_notes(result))
    if figure:
        notes += f'<img class="seeds" src="{data_uri(figure)}" alt="every seed\'s value of each side of {_e(c.id)}">'
    dataset = result.dataset or MISSING
    return (f'<tr id="claim-{_e(c.id)}-{_e(dataset)}" data-claim="{_e(c.id)}" data-dataset="{_e(dataset)}" '
            f'data-status="{_e(result.status)}">'
            f"<td>{status}</td><td>{_e(c.paper)}</td><td class=\"statement\">{statement}</td>"
            f"<td>{_e(dataset)}</td><td><ul>{checks}</ul>{notes}</td></tr>")


def claims_section(claims: list[ClaimResult], figures: dict[str, bytes] | None = None) -> str:
    if not claims:
        return f'<section id="claims"><h2>Claims</h2><p class="muted">{MISSING} no claims defined.</p></section>'
    head = "".join(f'<th scope="col">{h}</th>' for h in ("Status", "Paper", "Claim", "Dataset", "Measured"))
    rows = "\n".join(_claim_row(r, (figures or {}).get(row_key(r))) for r in claims)
    papers = "".join(f"<h3>{_e(paper)}</h3>{_table(headers, body, 'papers')}"
                     for paper, (headers, body) in paper_side_by_side(claims).items())
    papers = f'<h3 id="papers">The papers\' figures beside ours</h3>{papers}' if papers else ""
    few = few_seeds_rows(claims)
    few = f'<p class="reasons">Too few seeds to decide: {_e(", ".join(few))}.</p>' if few else ""
    return (f'<section id="claims"><h2>Claims</h2><p>{_e(claim_counts(claims))} at this run\'s budget.</p>{few}'
            f'<div class="table-wrap"><table class="claims"><thead><tr>{head}</tr></thead>'
            f"<tbody>\n{rows}\n</tbody></table></div>{papers}</section>")


def _metric_header(metric: str) -> str:
    """The column's label, allowed to break after an underscore (long keys would otherwise
    widen a table past the page), never between the name and its arrow."""
    name, _, arrow = header_label(metric).partition(" ")
    broken = "_<wbr>".join(_e(part) for part in name.split("_"))
    return f"{broken}&nbsp;{_e(arrow)}" if arrow else broken


def metrics_table(ds: DatasetResult, table: MetricTable) -> str:
    head = ['<th class="rowhead" scope="col">Model</th>']
    for col in table.columns:
        how = DIRECTIONS.get(col)
        title = f' title="{DIRECTION_WORDS[how]}"' if how else ""
        head.append(f'<th scope="col" data-metric="{_e(col)}"{title}>{_metric_header(col)}</th>')
    rows = []
    for r, row in metric_rows(ds, table):
        note = f' <span class="note">({_e(r.status_note)})</span>' if r.status_note else ""
        cells = [f'<th class="rowhead" scope="row">{_e(r.name)}{note}</th>']
        for col, text, best in row:
            attrs = f'data-metric="{_e(col)}"'
            if text == MISSING:
                cells.append(f'<td class="missing" {attrs}>{MISSING}</td>')
            elif best:
                cells.append(f'<td class="num best" {attrs}><strong>{_e(text)}</strong></td>')
            else:
                cells.append(f'<td class="num" {attrs}>{_e(text)}</td>')
        rows.append(f'<tr data-model="{_e(r.name)}">' + "".join(cells) + "</tr>")
    attrs = f'data-dataset="{_e(ds.name)}" data-suite="{_e(table.suite)}"'
    return (f'<div class="table-wrap"><table class="metrics" {attrs}>\n'
            f"<thead><tr>{''.join(head)}</tr></thead>\n<tbody>\n" + "\n".join(rows) + "\n</tbody></table></div>")


def metrics_section(ds: DatasetResult, group_png: bytes | None) -> list[str]:
    """A small table per suite, the group-size curves, and the note on left-out metrics."""
    layout = split_metrics(ds)
    out = []
    if layout.tables:
        # Small tables flow side by side, as many as the page's width holds.
        blocks = "".join(f'<div class="suite"><h4 data-suite="{_e(t.suite)}">{_e(t.title)}</h4>'
                         f"{metrics_table(ds, t)}</div>" for t in layout.tables)
        out.append(f'<div class="suites">{blocks}</div>')
    if layout.curves:
        out.append(f'<h4 data-suite="curves">Metrics by {_e(CURVE_AXIS)}</h4>')
        if group_png:
            out.append(_figure(group_png, f"Metrics by {CURVE_AXIS} for {ds.name}", CURVE_NOTE))
        values = "".join(_table(headers, rows, "curve-values") for headers, rows in curve_table(layout))
        out.append(f'<details class="curve-values"><summary>Values</summary>{values}</details>')
    if note := left_out_note(layout):
        out.append(f'<p class="muted left-out">{_e(note)}</p>')
    if ds.columns and not layout.tables and not layout.curves:
        out.append(f'<p class="muted">{MISSING} no metric has a value yet.</p>')
    if note := unlisted_note(ds, layout):
        out.append(f'<p class="muted">{_e(note)}</p>')
    return out


def figures_by_kind(ds: DatasetResult) -> str:
    """One collapsible block per figure kind, every model's figure of that kind side by side."""
    kinds = group_by_kind(ds.models)
    if not kinds:
        return f'<p class="muted">{MISSING} no figures yet.</p>'
    parts = []
    for kind in kinds:
        figures = []
        for model, path in kind.items:
            png = _read(path)
            if png is not None:
                figures.append(_figure(png, f"{kind.title}: {ds.name} / {model}", model))
        count = f"{len(figures)} model{'s' if len(figures) != 1 else ''}"
        parts.append(f'<details open data-kind="{_e(kind.name)}"><summary>{_e(kind.title)} '
                     f'<span class="muted">({count})</span></summary>\n<div class="compare">{"".join(figures)}</div></details>')
    return "\n".join(parts)


def dataset_section(ds: DatasetResult, curve_png: bytes | None, group_png: bytes | None = None) -> str:
    out = [f'<section id="dataset-{_e(slug(ds.name))}">', f"<h2>Dataset: {_e(ds.name)}</h2>"]
    valid_cls = {True: "ok", False: "fail", None: "muted"}[ds.validation]
    facts = [f'validation <span class="{valid_cls}">{_e(validation_label(ds.validation))}</span>',
             *dataset_facts(ds, lambda text: f"<code>{_e(text)}</code>")]
    out.append(f'<p>{" · ".join(facts)}</p>')
    out.append("<h3>Metrics</h3>")
    if not ds.models:
        out.append(f'<p class="muted">{MISSING} no models configured.</p>')
    else:
        if not ds.columns:
            out.append(f'<p class="muted">{MISSING} no metrics yet.</p>')
        out += metrics_section(ds, group_png)
    out.append("<h3>Training curves</h3>")
    if curve_png:
        out.append(_figure(curve_png, f"Training curves for {ds.name}",
                           "Loss per epoch, one panel per model (each its own objective and y-axis): "
                           "validation solid, train dashed."))
    else:
        out.append(f'<p class="muted">{MISSING} no training curves yet.</p>')
    out.append("<h3>Figures</h3>")
    if ds.diffmap_png and (png := _read(ds.diffmap_png)):
        out.append(f'<details data-kind="diffmap"><summary>Diffusion map of the data</summary>'
                   f'{_figure(png, f"Diffusion map of {ds.name}", "The diffmap stage: train-split embedding (DVAE targets).")}'
                   f"</details>")
    out.append(figures_by_kind(ds))
    out.append("</section>")
    return "\n".join(out)


# --------------------------------------------------------------------------- page


def provenance_section(report: Report) -> str:
    env = report.environment
    out = ['<section id="provenance"><h2>Provenance</h2>', "<h3>Environment</h3>", _kv_table(environment_rows(report))]
    out += ["<h3>Time per stage</h3>", f'<p class="muted">{_e(TIMING_NOTE)}</p>',
            _table(*stage_time_table(report), "timing")]
    out += ["<h3>Data</h3>", _table(*data_table(report), "data")]
    out += ["<h3>Training runs</h3>", _table(RUN_HEADERS, run_rows(report), "runs")]
    out.append("<h3>params.yaml</h3>")
    if env.params_text is None:
        out.append(f'<p class="muted">{MISSING} params.yaml not found.</p>')
    else:
        out.append(f"<pre><code>{_e(env.params_text)}</code></pre>")
    out.append("</section>")
    return "\n".join(out)


def render_html(report: Report, curves: dict[str, bytes], group_curves: dict[str, bytes] | None = None,
                claim_figures: dict[str, bytes] | None = None) -> str:
    """The page; `curves` and `group_curves` map a dataset to its training-curve and
    group-size PNG, `claim_figures` a claim row (`row_key`) to its seeds figure."""
    group_curves = group_curves or {}
    env = report.environment
    out = [f"<header><h1>{_e(TITLE)}</h1>",
           f'<p class="subtitle">Structured-representation autoencoders benchmark · generated {_e(env.generated)}'
           f" · commit <code>{_e(short(env.git_commit, 12))}</code></p></header>"]
    toc = "".join(f'<li><a href="#dataset-{_e(slug(ds.name))}">{_e(ds.name)}</a></li>' for ds in report.datasets)
    out.append(f'<nav><ul><li><strong>Contents:</strong></li><li><a href="#claims">Claims</a></li>{toc}'
               f'<li><a href="#provenance">Provenance</a></li></ul></nav>')
    out.append('<div class="legend"><strong>Legend</strong>' + "".join(f"<p>{_e(line)}</p>" for line in LEGEND_LINES)
               + "</div>")
    out.append(claims_section(report.claims, claim_figures))
    if not report.datasets:
        out.append(f'<p class="muted">{MISSING} no datasets configured.</p>')
    for ds in report.datasets:
        out.append(dataset_section(ds, curves.get(ds.name), group_curves.get(ds.name)))
    out.append(provenance_section(report))
    return template.page(TITLE, "\n".join(out))
