"""The self-contained HTML page: claims, per-dataset tables and figures, provenance.

No script, no external resource: images are data URIs, the stylesheet is inline
(`template.py`), and collapsible parts are `<details>` elements.
"""

from __future__ import annotations

import html
import logging
from pathlib import Path
from typing import Iterable, Sequence

from aebench.metrics import DIRECTIONS
from aebench.report import template
from aebench.report.claims import HELD, NOT_HELD, NOT_RUN, ClaimResult
from aebench.report.collect import DatasetResult, Report
from aebench.report.figures import data_uri, group_by_kind
from aebench.report.formatting import DIRECTION_WORDS, MISSING, format_value, header_label, short, slug
from aebench.report.tables import (LEGEND_LINES, RUN_HEADERS, STATUS_MARK, TIMING_NOTE, TITLE, claim_counts,
                                   claim_notes, paper_side_by_side,
                                   data_table, environment_rows, run_rows, stage_time_table, validation_label)

logger = logging.getLogger(__name__)

MARK_CLASS = {HELD: "ok", NOT_HELD: "fail", NOT_RUN: "muted"}


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def _status_class(status: str) -> str:
    return slug(status)  # "held", "not-held", "not-run"


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


def _claim_row(result: ClaimResult) -> str:
    c = result.claim
    status = f'<span class="badge {_status_class(result.status)}">{_e(result.status)}</span>'
    statement = _e(c.statement)
    if c.paper_result:
        statement += f'<span class="paper-result">Paper: {_e(c.paper_result)}</span>'
    checks = "" if result.dataset is None else "".join(
        f'<li data-status="{_e(r.status)}"><span class="{MARK_CLASS[r.status]}">{STATUS_MARK[r.status]}</span> '
        f"{_e(r.describe())}" + (f' <span class="reasons">({_e(r.why)})</span>' if r.why else "") + "</li>"
        for r in result.checks)
    notes = "".join(f'<p class="reasons">{_e(n)}</p>' for n in claim_notes(result))
    dataset = result.dataset or MISSING
    return (f'<tr id="claim-{_e(c.id)}-{_e(dataset)}" data-claim="{_e(c.id)}" data-dataset="{_e(dataset)}" '
            f'data-status="{_e(result.status)}">'
            f"<td>{status}</td><td>{_e(c.paper)}</td><td class=\"statement\">{statement}</td>"
            f"<td>{_e(dataset)}</td><td><ul>{checks}</ul>{notes}</td></tr>")


def claims_section(claims: list[ClaimResult]) -> str:
    if not claims:
        return f'<section id="claims"><h2>Claims</h2><p class="muted">{MISSING} no claims defined.</p></section>'
    head = "".join(f'<th scope="col">{h}</th>' for h in ("Status", "Paper", "Claim", "Dataset", "Measured"))
    rows = "\n".join(_claim_row(r) for r in claims)
    papers = "".join(f"<h3>{_e(paper)}</h3>{_table(headers, body, 'papers')}"
                     for paper, (headers, body) in paper_side_by_side(claims).items())
    papers = f'<h3 id="papers">The papers\' figures beside ours</h3>{papers}' if papers else ""
    return (f'<section id="claims"><h2>Claims</h2><p>{_e(claim_counts(claims))} at this run\'s budget.</p>'
            f'<div class="table-wrap"><table class="claims"><thead><tr>{head}</tr></thead>'
            f"<tbody>\n{rows}\n</tbody></table></div>{papers}</section>")


def metrics_table(ds: DatasetResult) -> str:
    head = ['<th class="rowhead" scope="col">Model</th>']
    for col in ds.columns:
        how = DIRECTIONS.get(col)
        title = f' title="{DIRECTION_WORDS[how]}"' if how else ""
        head.append(f'<th scope="col" data-metric="{_e(col)}"{title}>{_e(header_label(col))}</th>')
    rows = []
    for r in ds.models:
        note = f' <span class="note">({_e(r.status_note)})</span>' if r.status_note else ""
        cells = [f'<th class="rowhead" scope="row">{_e(r.name)}{note}</th>']
        for col in ds.columns:
            text = format_value((r.metrics or {}).get(col), col)
            attrs = f'data-metric="{_e(col)}"'
            if text == MISSING:
                cells.append(f'<td class="missing" {attrs}>{MISSING}</td>')
            elif r.name in ds.best.get(col, ()):
                cells.append(f'<td class="num best" {attrs}><strong>{_e(text)}</strong></td>')
            else:
                cells.append(f'<td class="num" {attrs}>{_e(text)}</td>')
        rows.append(f'<tr data-model="{_e(r.name)}">' + "".join(cells) + "</tr>")
    return (f'<div class="table-wrap"><table class="metrics" data-dataset="{_e(ds.name)}">\n'
            f"<thead><tr>{''.join(head)}</tr></thead>\n<tbody>\n" + "\n".join(rows) + "\n</tbody></table></div>")


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


def dataset_section(ds: DatasetResult, curve_png: bytes | None) -> str:
    out = [f'<section id="dataset-{_e(slug(ds.name))}">', f"<h2>Dataset: {_e(ds.name)}</h2>"]
    valid_cls = {True: "ok", False: "fail", None: "muted"}[ds.validation]
    facts = [f'validation <span class="{valid_cls}">{_e(validation_label(ds.validation))}</span>']
    if ds.n_classes:
        facts.append(f"{ds.n_classes} classes")
    if ds.data_hash:
        facts.append(f"data hash <code>{_e(short(ds.data_hash, 16))}</code>")
    out.append(f'<p>{" · ".join(facts)}</p>')
    out.append("<h3>Metrics</h3>")
    if not ds.models:
        out.append(f'<p class="muted">{MISSING} no models configured.</p>')
    else:
        if not ds.columns:
            out.append(f'<p class="muted">{MISSING} no metrics yet.</p>')
        out.append(metrics_table(ds))
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


def render_html(report: Report, curves: dict[str, bytes]) -> str:
    """The page; `curves` maps a dataset to its training-curve PNG."""
    env = report.environment
    out = [f"<header><h1>{_e(TITLE)}</h1>",
           f'<p class="subtitle">Structured-representation autoencoders benchmark · generated {_e(env.generated)}'
           f" · commit <code>{_e(short(env.git_commit, 12))}</code></p></header>"]
    toc = "".join(f'<li><a href="#dataset-{_e(slug(ds.name))}">{_e(ds.name)}</a></li>' for ds in report.datasets)
    out.append(f'<nav><ul><li><strong>Contents:</strong></li><li><a href="#claims">Claims</a></li>{toc}'
               f'<li><a href="#provenance">Provenance</a></li></ul></nav>')
    out.append('<div class="legend"><strong>Legend</strong>' + "".join(f"<p>{_e(line)}</p>" for line in LEGEND_LINES)
               + "</div>")
    out.append(claims_section(report.claims))
    if not report.datasets:
        out.append(f'<p class="muted">{MISSING} no datasets configured.</p>')
    for ds in report.datasets:
        out.append(dataset_section(ds, curves.get(ds.name)))
    out.append(provenance_section(report))
    return template.page(TITLE, "\n".join(out))
