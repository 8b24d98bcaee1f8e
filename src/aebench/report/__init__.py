"""The benchmark report: a self-contained HTML page, a Markdown summary and the claims table.

Entry point: `build_report(root)` (see `build.py` for what it writes). The modules, in reading
order: `collect` (read the pipeline's outputs), `claims` (+ `claims.yaml`: the papers' claims
as data), `formatting`, `suites` (which metrics go in which table, which are drawn, which are
left out), `figures`, `tables`, `html_page`, `markdown`, `dvc_plots` (curves for
`dvc plots show`), `provenance`, `template` (the page's stylesheet); beside them `time_use`, a profile's
`time.md` (where its time goes).
"""

from aebench.report.build import build_report
from aebench.report.claims import evaluate_claims, load_claims
from aebench.report.collect import collect
from aebench.report.formatting import format_value

__all__ = ["build_report", "collect", "evaluate_claims", "format_value", "load_claims"]
