"""Build the benchmark report: the entry point of the `report` stage.

`build_report(root)` reads the pipeline's outputs (`collect.py`), checks the papers' claims
(`claims.py`, `claims.yaml`) and writes, atomically, under `<root>/reports/`:

- `index.html`: self-contained (no script, no external resource; images are data URIs):
  claims, per-dataset metric tables (a small one per suite, `suites.py`), metrics by group
  size drawn as curves, training curves, every figure grouped by kind so models can be
  compared side by side, and provenance (`html_page.py`);
- `summary.md`: the same in GitHub Markdown, figures linked by relative path (`markdown.py`);
- `claims.md`: the claims table alone, to paste into the README;
- `claims.json`: the same rows as data (`claims.claims_json`: status, every seed's value of
  both sides of every check with the interval of their difference, each compared model's
  budget, the paper's figures, the explanation);
- `figures/training_curves_<dataset>.png`, `figures/group_size_<dataset>.png`: the
  training-curve and group-size figures summary.md links to; `figures/claim_<claim>-<dataset>.png`:
  every training seed's value of each side of a claim row's checks;
- `plots/training_curves.csv`, `plots/roc.csv`: every model's curves for `dvc plots show`
  (`dvc_plots.py`).
"""

from __future__ import annotations

import logging
from pathlib import Path

from aebench.io import write_bytes_atomic, write_json_atomic, write_text_atomic
from aebench.paths import reports_dir
from aebench.report import dvc_plots
from aebench.report.claims import HELD, claims_json, row_json, row_key
from aebench.report.collect import collect
from aebench.report.figures import render_claim_seeds, render_group_curves, render_training_curves
from aebench.report.formatting import slug
from aebench.report.html_page import render_html
from aebench.report.markdown import claims_table, render_markdown
from aebench.report.suites import CURVE_AXIS, split_metrics

logger = logging.getLogger(__name__)


def build_report(root: Path, out_dir: Path | None = None, *, claims_path: Path | None = None) -> tuple[Path, Path]:
    """Write the report under `out_dir` (default `<root>/reports`); return (index.html, summary.md).

    `claims_path` replaces the packaged claims.yaml. Missing stage outputs are reported as
    missing, never raised.
    """
    root = Path(root)
    out_dir = Path(out_dir) if out_dir is not None else reports_dir(root)
    report = collect(root, claims_path)
    curves: dict[str, bytes] = {}
    curve_files: dict[str, Path] = {}
    group_curves: dict[str, bytes] = {}
    group_files: dict[str, Path] = {}
    for ds in report.datasets:
        png = render_training_curves([(r.name, r.curve) for r in ds.models], ds.name)
        if png:
            curves[ds.name] = png
            curve_files[ds.name] = out_dir / "figures" / f"training_curves_{slug(ds.name)}.png"
            write_bytes_atomic(curve_files[ds.name], png)
        png = render_group_curves(split_metrics(ds).curves, ds.name, CURVE_AXIS)
        if png:
            group_curves[ds.name] = png
            group_files[ds.name] = out_dir / "figures" / f"group_size_{slug(ds.name)}.png"
            write_bytes_atomic(group_files[ds.name], png)
    claim_figures: dict[str, bytes] = {}
    claim_files: dict[str, Path] = {}
    for row in report.claims:
        png = render_claim_seeds(row_json(row))
        if png:
            claim_figures[row_key(row)] = png
            claim_files[row_key(row)] = out_dir / "figures" / f"claim_{slug(row_key(row))}.png"
            write_bytes_atomic(claim_files[row_key(row)], png)
    dvc_plots.write_tables(report.datasets, out_dir)
    html_path, md_path = out_dir / "index.html", out_dir / "summary.md"
    write_text_atomic(out_dir / "claims.md", claims_table(report.claims, claim_files, out_dir) + "\n")
    write_json_atomic(out_dir / "claims.json", claims_json(report.claims))
    write_text_atomic(html_path, render_html(report, curves, group_curves, claim_figures))
    write_text_atomic(md_path, render_markdown(report, out_dir, curve_files, group_files, claim_files))
    evaluated = sum(r.metrics is not None for ds in report.datasets for r in ds.models)
    total = sum(len(ds.models) for ds in report.datasets)
    held = sum(c.status == HELD for c in report.claims)
    logger.info("report: %d/%d dataset-model pairs evaluated, %d/%d claims held; wrote %s and %s",
                evaluated, total, held, len(report.claims), html_path, md_path)
    return html_path, md_path
