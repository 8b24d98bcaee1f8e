"""The report's tables as plain text cells, shared by the HTML page and the Markdown summary."""

from __future__ import annotations

from typing import Any

from aebench.report.claims import HELD, INCONCLUSIVE, NOT_HELD, NOT_RUN, STATUSES, ClaimResult
from aebench.report.collect import DatasetResult, Report
from aebench.report.formatting import MISSING, format_duration, format_value, is_number, short
from aebench.report.provenance import runs_devices, stage_times
from aebench.report.suites import CURVE_AXIS, Layout, MetricTable

TITLE = "aebench report"
STATUS_MARK = {HELD: "✓", NOT_HELD: "✗", INCONCLUSIVE: "?", NOT_RUN: "–"}

LEGEND_LINES = [
    "↑ after a metric name: higher is better; ↓: lower is better; no arrow: direction unknown, no best marked.",
    "Bold (highlighted): best value of its column for that dataset, ties all marked; "
    "marked only when at least two models have a value.",
    f"{MISSING}: missing (model not evaluated yet, metric not computed, or NaN).",
    "Metrics: a table per suite (reconstruction and likelihood, representation, generative and topology, "
    "out-of-distribution detection), then the metrics only some models report, each set with its models, "
    "then time and throughput; a row only for models with a value in it (or not evaluated yet). "
    "Metrics reported per group size are drawn against it below the tables.",
    "Claims: each side of a check is a metric over the run's training seeds, shown as mean ± sd (n); the check is "
    "decided by the 95% confidence interval of the difference (paired by seed where both sides share their "
    "seeds, Welch otherwise): held when the interval lies on the claimed side, not held when it lies on the "
    "other, inconclusive when it straddles or a side has fewer seeds than the claim needs; not run when a "
    "dataset, model or metric it needs is not part of this run. Each row's figure shows every seed's value.",
    "Metric tables: a run's value is the mean over its evaluated seeds; its figures and curves are its first seed's.",
]

TIMING_NOTE = ("DVC records no stage durations (dvc.lock holds hashes only); these are the seconds the stages "
               "record themselves, summed over the run's datasets and models; each row names its source.")


def validation_label(ok: bool | None) -> str:
    return {True: "✓ passed", False: "✗ failed", None: f"{MISSING} not validated"}[ok]


def claim_counts(claims: list[ClaimResult]) -> str:
    counts = {s: sum(c.status == s for c in claims) for s in STATUSES}
    return " · ".join(f"{n} {s}" for s, n in counts.items())


def environment_rows(report: Report) -> list[tuple[str, str]]:
    env = report.environment
    commit = env.git_commit
    if env.git_dirty:
        commit += " (with uncommitted changes to tracked files)"
    versions = dict(env.versions)
    python = versions.pop("python", MISSING)
    machine = env.machine
    cpu = f"{machine.get('cpu', MISSING)} × {machine.get('cpu count', MISSING)}"
    return [
        ("Generated", env.generated), ("Git commit", commit), ("Python", python),
        ("Libraries", " · ".join(f"{name} {version}" for name, version in versions.items())),
        ("Platform", f"{machine.get('platform', MISSING)} ({machine.get('machine', MISSING)})"),
        ("CPU", cpu), ("Memory", machine.get("memory", MISSING)),
        ("Training devices", runs_devices(report.datasets)),
    ]


def stage_time_table(report: Report) -> tuple[list[str], list[list[str]]]:
    rows = [[t.stage, f"{t.timed}/{t.total}", format_duration(t.seconds) if t.timed else "not recorded", t.source]
            for t in stage_times(report.datasets)]
    return ["Stage", "Instances timed", "Total time", "Source"], rows


def _trained_on(ds: DatasetResult) -> str:
    """Whether the models' recorded data hashes match the processed data on disk."""
    hashes = {r.name: (r.run or {}).get("data_hash") for r in ds.models if r.run}
    hashes = {m: h for m, h in hashes.items() if h}
    if not hashes:
        return MISSING
    stale = sorted(m for m, h in hashes.items() if ds.data_hash and h != ds.data_hash)
    if stale:
        return f"✗ {', '.join(stale)} trained on other data"
    if len(set(hashes.values())) > 1:
        return "✗ models trained on different data"
    return f"✓ all {len(hashes)} trained models"


def factors_label(n: int) -> str:
    return f"{n} generative factor{'s' if n != 1 else ''}"


def dataset_facts(ds, code) -> list[str]:
    """The facts under a dataset's heading after its validation: classes, factors, and the
    data hash rendered by `code` (a page's own markup for code)."""
    facts = []
    if ds.n_classes:
        facts.append(f"{ds.n_classes} classes")
    if ds.n_factors:
        facts.append(factors_label(ds.n_factors))
    if ds.data_hash:
        facts.append(f"data hash {code(short(ds.data_hash, 16))}")
    return facts


def data_table(report: Report) -> tuple[list[str], list[list[str]]]:
    rows = [[ds.name, validation_label(ds.validation), format_value(ds.n_classes) if ds.n_classes else MISSING,
             short(ds.data_hash, 16), _trained_on(ds)] for ds in report.datasets]
    return ["Dataset", "Validation", "Classes", "Data hash (processed)", "Same data"], rows


RUN_HEADERS = ["Dataset", "Model", "Run ID", "Registered model", "Version", "Git commit", "Data hash", "Epochs",
               "Device", "Train time", "Eval time"]


def _cell(value: Any) -> str:
    return MISSING if value is None or value == "" else str(value)


def run_rows(report: Report) -> list[list[str]]:
    rows = []
    for ds in report.datasets:
        for r in ds.models:
            run = r.run or {}
            epochs = run.get("epochs")
            rows.append([
                ds.name, r.name, _cell(run.get("run_id")), _cell(run.get("registered_name")),
                _cell(run.get("version")), short(run.get("git_commit"), 10), short(run.get("data_hash"), 12),
                format_value(epochs) if is_number(epochs) else _cell(epochs), _cell(run.get("device")),
                format_duration(run.get("train_seconds")), format_duration((r.metrics or {}).get("eval_seconds")),
            ])
    return rows


def metric_rows(ds: DatasetResult, table: MetricTable) -> list[tuple[Any, list[tuple[str, str, bool]]]]:
    """Per row of a metric table: the model and its (metric, text, best) cells."""
    rows = []
    for r in table.models:
        cells = []
        for col in table.columns:
            text = format_value((r.metrics or {}).get(col), col)
            cells.append((col, text, text != MISSING and r.name in ds.best.get(col, ())))
        rows.append((r, cells))
    return rows


def left_out_note(layout: Layout) -> str | None:
    """Which metrics the dataset's tables leave out, and why (`suites.degenerate`), and which
    no model has a value of."""
    notes = []
    if layout.left_out:
        notes.append("Left out: " + "; ".join(f"{key} ({why})" for key, why in layout.left_out.items()) + ".")
    if layout.no_value:
        notes.append(f"No model has a value of: {', '.join(layout.no_value)}.")
    return " ".join(notes) or None


def unlisted_note(ds: DatasetResult, layout: Layout) -> str | None:
    """The models without metrics that no table lists (when the dataset has no table at all)."""
    listed = {r.name for t in layout.tables for r in t.models}
    missing = [f"{r.name} ({r.status_note})" for r in ds.models if r.status_note and r.name not in listed]
    return "No metrics: " + ", ".join(missing) + "." if missing else None


CURVE_NOTE = (f"Metrics reported per {CURVE_AXIS} (keys ending in _g<size>), drawn against it: a panel per metric, "
              "a line per model, dotted: the model's chance level.")


def check_lines(row: ClaimResult) -> list[tuple[str, str, str | None]]:
    """(status, what was measured, its interval and why it is not decided) per check of a row."""
    if row.dataset is None:
        return []
    out = []
    for c in row.checks:
        detail = "; ".join(x for x in (c.interval_text(), c.why) if x) or None
        out.append((c.status, c.describe(), detail))
    return out


def few_seeds_rows(claims: list[ClaimResult]) -> list[str]:
    """'acai-interpolation on lines' for every row that rests on too few seeds to decide."""
    return [f"{r.claim.id} on {r.dataset}" for r in claims if any(c.few_seeds for c in r.checks)]


def claim_notes(row: ClaimResult) -> list[str]:
    """What a reader needs beside a row's checks: why it was not run, the budgets compared,
    and the explanation written for it."""
    notes = [row.reason] if row.reason else []
    if row.budget_note:
        notes.append(f"Budget {row.budget_note}.")
    if row.explanation:
        notes.append(row.explanation)
    return notes


def _our_setting(dataset: str, budget: Any) -> str:
    if budget is None or budget.samples_seen is None:
        return f"{dataset}, budget not recorded"
    steps = f"{budget.steps:,} steps × {budget.batch_size}" if budget.steps and budget.batch_size else "?"
    return f"{dataset}, {steps} = {budget.samples_seen:,} samples"


def paper_side_by_side(rows: list[ClaimResult]) -> dict[str, tuple[list[str], list[list[str]]]]:
    """Per paper, the paper's figures beside ours: model, metric, both values (the paper's in
    words where it reports no number), the setting of each, and our training samples as a
    multiple of the paper's (where the paper says)."""
    tables: dict[str, list[list[str]]] = {}
    for row in rows:
        for fig in row.paper_figures:
            ours = (row.metrics.get(fig.model) or {}).get(fig.metric)
            budget = row.budgets.get(fig.model)
            ratio = MISSING
            if fig.samples and budget is not None and budget.samples_seen:
                ratio = f"{budget.samples_seen / fig.samples:.3g}×"
            tables.setdefault(row.claim.paper, []).append([
                fig.model, fig.metric, fig.reported or format_value(fig.value, fig.metric), format_value(ours, fig.metric),
                f"{fig.setting} ({fig.source})", _our_setting(row.dataset or MISSING, budget), ratio])
    headers = ["Model", "Metric", "Paper", "Ours", "Paper's setting", "Our setting", "Our samples / paper's"]
    return {paper: (headers, body) for paper, body in tables.items()}
