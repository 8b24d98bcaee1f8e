"""Build the benchmark report: one self-contained HTML page and a GitHub Markdown summary.

Inputs, all relative to the repository root and all optional except `params.yaml` (without
it the datasets and models are discovered from `eval/`):

- `params.yaml`: `datasets` and `models` lists; the whole file is shown under Provenance.
- `eval/<dataset>/<model>/metrics.json`: flat `{metric: number}`; NaN means missing.
- `eval/<dataset>/<model>/plots/*.png`: figures, embedded as base64 data URIs.
- `eval/<dataset>/<model>/plots/training_curve.csv`: `epoch,train_loss,val_loss`.
- `models/<dataset>/<model>/run.json`: MLflow run id, registered name and version.
- `data/processed/<dataset>/validation.json`: `success` flag of the data validation.

Anything missing (a model not evaluated yet, no figures, no run record) is shown as "—" or
a note; it never stops the report. Outputs, written atomically:

- `<out_dir>/index.html`: no external resource, no script; every image is a data URI.
- `<out_dir>/summary.md`: the same tables, best values in bold; figures are linked by
  relative path to `../eval/...`; the per-dataset training-curve figures, which exist only
  in memory for the HTML page, are written to `<out_dir>/figures/` for it.
"""

from __future__ import annotations

import base64
import csv
import html
import io
import json
import logging
import math
import os
import platform
import re
import subprocess
from dataclasses import dataclass, field
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any, Iterable, Sequence
from urllib.parse import quote

import yaml

from aebench.errors import UserError
from aebench.io import write_bytes_atomic, write_text_atomic
from aebench.metrics import DIRECTIONS
from aebench.paths import eval_dir, model_dir, processed_dir, reports_dir
from aebench.report import template

logger = logging.getLogger(__name__)

MISSING = "—"
ARROWS = {"max": "↑", "min": "↓"}
DIRECTION_WORDS = {"max": "higher is better", "min": "lower is better"}
TITLE = "aebench report"

# Figures shown first, in this order; any other PNG follows alphabetically.
PREFERRED_FIGURES = ("reconstructions", "samples", "interpolations", "codes_2d")
CAPTION_WORDS = {"2d": "2D", "3d": "3D", "roc": "ROC", "pca": "PCA", "tsne": "t-SNE", "umap": "UMAP"}
VERSION_PACKAGES = ("aebench", "torch", "mlflow", "dvc", "numpy", "matplotlib")


# --------------------------------------------------------------------------- data model


@dataclass
class Curve:
    epoch: list[float] = field(default_factory=list)
    train_loss: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)


@dataclass
class ModelResult:
    name: str
    metrics: dict[str, Any] | None = None  # None: no metrics.json (or unreadable)
    metrics_error: str | None = None
    plots: list[Path] = field(default_factory=list)
    curve: Curve | None = None
    run: dict[str, Any] | None = None

    @property
    def status_note(self) -> str | None:
        if self.metrics_error:
            return "unreadable metrics.json"
        if self.metrics is None:
            return "not evaluated"
        return None


@dataclass
class DatasetResult:
    name: str
    validation: bool | None
    models: list[ModelResult]
    columns: list[str]
    best: dict[str, set[str]]  # metric -> names of the best model(s)
    curve_png: bytes | None = None


@dataclass
class Environment:
    generated: str
    git_commit: str
    versions: dict[str, str]
    machine: dict[str, str]
    params_text: str | None


@dataclass
class Report:
    datasets: list[DatasetResult]
    environment: Environment


# --------------------------------------------------------------------------- formatting


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _is_finite(value: Any) -> bool:
    return _is_number(value) and math.isfinite(value)


def _is_unit_metric(metric: str | None) -> bool:
    """Metrics on [0, 1] (accuracies, AUROC, NMI...), always shown with 3 decimals."""
    if not metric:
        return False
    return (
        metric.endswith("_acc")
        or metric.startswith("dci_")
        or metric in {"nmi", "mig", "ood_auroc", "trustworthiness"}
    )


def format_value(value: Any, metric: str | None = None) -> str:
    """Human-readable number: 3 decimals for accuracies, fewer decimals for large values.

    None and NaN give "—"; infinities give "∞"/"−∞"; non-numbers are shown as text.
    """
    if value is None:
        return MISSING
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return f"{value:,}"
    if not isinstance(value, float):
        return str(value)
    if math.isnan(value):
        return MISSING
    if math.isinf(value):
        return "∞" if value > 0 else "−∞"
    if _is_unit_metric(metric) and abs(value) <= 1.0:
        return f"{value:.3f}"
    magnitude = abs(value)
    if magnitude == 0:
        return "0"
    if magnitude >= 1000:
        return f"{value:,.0f}"
    if magnitude >= 100:
        return f"{value:.1f}"
    if magnitude >= 10:
        return f"{value:.2f}"
    if magnitude >= 1:
        return f"{value:.3f}"
    if magnitude >= 1e-4:
        # Three significant digits, at least three decimals: 0.500, 0.0234, 0.00123.
        decimals = max(3, 2 - math.floor(math.log10(magnitude)))
        return f"{value:.{decimals}f}"
    return f"{value:.2e}"


def format_duration(seconds: Any) -> str:
    if not _is_finite(seconds):
        return MISSING
    seconds = float(seconds)
    if seconds < 60:
        return f"{seconds:.1f} s"
    if seconds < 3600:
        minutes, secs = divmod(int(round(seconds)), 60)
        return f"{minutes} min {secs:02d} s"
    hours, rest = divmod(int(round(seconds)), 3600)
    return f"{hours} h {rest // 60:02d} min"


def caption(stem: str) -> str:
    """'reconstructions' -> 'Reconstructions', 'codes_2d' -> 'Codes 2D'."""
    words = [w for w in re.split(r"[_\-\s]+", stem) if w]
    if not words:
        return stem
    words = [CAPTION_WORDS.get(w.lower(), w) for w in words]
    first = words[0]
    words[0] = first[:1].upper() + first[1:]
    return " ".join(words)


def slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", name).strip("-") or "x"


# --------------------------------------------------------------------------- best values


def best_models(values: dict[str, Any], how: str | None) -> set[str]:
    """Names holding the best finite value of one column ('max' or 'min'); ties all win.

    Nothing is marked for unknown directions or when fewer than two models have a value.
    """
    if how not in ("max", "min"):
        return set()
    finite = {name: float(v) for name, v in values.items() if _is_finite(v)}
    if len(finite) < 2:
        return set()
    target = max(finite.values()) if how == "max" else min(finite.values())
    return {
        name for name, v in finite.items() if v == target or math.isclose(v, target, rel_tol=1e-12)
    }


def order_columns(keys: Iterable[str]) -> list[str]:
    """Known metrics in DIRECTIONS order, then unknown ones alphabetically."""
    keys = set(keys)
    known = [k for k in DIRECTIONS if k in keys]
    return known + sorted(keys - set(known))


# --------------------------------------------------------------------------- reading inputs


def _read_json(path: Path) -> tuple[Any, str | None]:
    """(content, None), (None, None) when absent, or (None, error) when unreadable."""
    if not path.is_file():
        return None, None
    try:
        return json.loads(path.read_text(encoding="utf-8")), None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        logger.warning("cannot read %s: %s", path, exc)
        return None, str(exc)


def _names(value: Any, key: str, path: Path) -> list[str]:
    """A `datasets`/`models` entry as a list of names (strings, {name: ...} or [{name: ..}])."""
    if value is None:
        return []
    if isinstance(value, dict):
        return [str(k) for k in value]
    if isinstance(value, (list, tuple)):
        names = []
        for item in value:
            if isinstance(item, dict) and "name" in item:
                names.append(str(item["name"]))
            elif isinstance(item, (str, int, float)):
                names.append(str(item))
            else:
                raise UserError(f"{path}: `{key}` entries must be names, got {item!r}")
        return names
    raise UserError(f"{path}: `{key}` must be a list of names, got {type(value).__name__}")


def _subdirs(folder: Path) -> list[str]:
    if not folder.is_dir():
        return []
    return sorted(p.name for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))


def read_params(root: Path) -> tuple[list[str], list[str], str | None]:
    """(datasets, models, raw params.yaml text); discovered from eval/ if params.yaml is absent."""
    path = root / "params.yaml"
    if not path.is_file():
        logger.warning("%s not found: reporting whatever is under %s", path, root / "eval")
        datasets = _subdirs(root / "eval")
        models = sorted({m for d in datasets for m in _subdirs(root / "eval" / d)})
        return datasets, models, None
    text = path.read_text(encoding="utf-8")
    try:
        params = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        raise UserError(f"{path} is not valid YAML: {' '.join(str(exc).split())}") from None
    if not isinstance(params, dict):
        raise UserError(f"{path} must be a mapping with `datasets` and `models` lists")
    return _names(params.get("datasets"), "datasets", path), _names(params.get("models"), "models", path), text


def _to_float(text: str | None) -> float:
    try:
        return float(text) if text not in (None, "") else math.nan
    except ValueError:
        return math.nan


def read_curve(path: Path) -> Curve | None:
    """Training curve from `epoch,train_loss,val_loss`; None when absent, empty or unreadable."""
    if not path.is_file():
        return None
    curve = Curve()
    try:
        with open(path, newline="", encoding="utf-8") as fh:
            for i, row in enumerate(csv.DictReader(fh)):
                epoch = _to_float(row.get("epoch"))
                curve.epoch.append(epoch if math.isfinite(epoch) else float(i + 1))
                curve.train_loss.append(_to_float(row.get("train_loss")))
                curve.val_loss.append(_to_float(row.get("val_loss")))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        logger.warning("cannot read %s: %s", path, exc)
        return None
    return curve if curve.epoch else None


def list_plots(plots_dir: Path) -> list[Path]:
    if not plots_dir.is_dir():
        return []
    pngs = [p for p in plots_dir.glob("*.png") if p.is_file()]

    def key(p: Path) -> tuple[int, str]:
        stem = p.stem.lower()
        rank = PREFERRED_FIGURES.index(stem) if stem in PREFERRED_FIGURES else len(PREFERRED_FIGURES)
        return rank, p.name

    return sorted(pngs, key=key)


def read_model(root: Path, dataset: str, model: str) -> ModelResult:
    folder = eval_dir(dataset, model, root)
    result = ModelResult(name=model)
    metrics, error = _read_json(folder / "metrics.json")
    if error is None and metrics is not None and not isinstance(metrics, dict):
        error = "not a JSON object"
        logger.warning("%s: %s", folder / "metrics.json", error)
        metrics = None
    result.metrics, result.metrics_error = metrics, error
    result.plots = list_plots(folder / "plots")
    result.curve = read_curve(folder / "plots" / "training_curve.csv")
    run, _ = _read_json(model_dir(dataset, model, root) / "run.json")
    result.run = run if isinstance(run, dict) else None
    return result


def read_validation(root: Path, dataset: str) -> bool | None:
    content, _ = _read_json(processed_dir(dataset, root) / "validation.json")
    if isinstance(content, dict) and isinstance(content.get("success"), bool):
        return content["success"]
    return None


# --------------------------------------------------------------------------- figures


def render_training_curves(curves: Sequence[tuple[str, int, Curve]], dataset: str) -> bytes | None:
    """All models of a dataset on one figure (val solid, train dashed), as PNG bytes."""
    curves = [c for c in curves if c[2] is not None]
    if not curves:
        return None
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D
    from matplotlib.ticker import MaxNLocator

    fig = Figure(figsize=(7.0, 3.8), dpi=110, layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    values: list[float] = []
    handles = []
    for name, index, curve in curves:
        color = f"C{index % 10}"
        ax.plot(curve.epoch, curve.val_loss, color=color, linestyle="-", linewidth=1.6)
        ax.plot(curve.epoch, curve.train_loss, color=color, linestyle="--", linewidth=1.2, alpha=0.8)
        handles.append(Line2D([], [], color=color, linewidth=1.6, label=name))
        values += [v for v in curve.val_loss + curve.train_loss if math.isfinite(v)]
    handles.append(Line2D([], [], color="0.3", linestyle="-", label="validation"))
    handles.append(Line2D([], [], color="0.3", linestyle="--", label="train"))
    if values and min(values) > 0 and max(values) / min(values) > 50:
        ax.set_yscale("log")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss")
    ax.set_title(f"Training curves: {dataset}")
    ax.grid(True, alpha=0.3)
    ax.legend(handles=handles, fontsize="small", loc="upper left", bbox_to_anchor=(1.01, 1.0))
    buf = io.BytesIO()
    fig.savefig(buf, format="png", metadata={"Software": None})
    return buf.getvalue()


def data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


# --------------------------------------------------------------------------- provenance


def git_commit(root: Path) -> str:
    try:
        proc = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=10
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    commit = proc.stdout.strip()
    return commit if proc.returncode == 0 and commit else "unknown"


def package_versions() -> dict[str, str]:
    """Python and key package versions from metadata; nothing is imported."""
    versions = {"python": platform.python_version()}
    for name in VERSION_PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def machine_info() -> dict[str, str]:
    return {
        "platform": platform.platform(),
        "machine": platform.machine() or "unknown",
        "cpu count": str(os.cpu_count() or "unknown"),
        "python implementation": platform.python_implementation(),
    }


def generation_time() -> str:
    """Now in UTC, or SOURCE_DATE_EPOCH when set (for byte-identical rebuilds)."""
    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    if epoch and epoch.isdigit():
        moment = datetime.fromtimestamp(int(epoch), tz=timezone.utc)
    else:
        moment = datetime.now(timezone.utc)
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC")


# --------------------------------------------------------------------------- collect


def collect(root: Path) -> Report:
    """Read everything the report shows; missing inputs become None/empty, never errors."""
    root = Path(root)
    if not root.is_dir():
        raise UserError(f"report root {root} is not a folder")
    datasets, models, params_text = read_params(root)
    model_index = {m: i for i, m in enumerate(models)}
    results = []
    for dataset in datasets:
        model_results = [read_model(root, dataset, m) for m in models]
        keys = {k for r in model_results if r.metrics for k in r.metrics}
        columns = order_columns(keys)
        best = {
            col: best_models({r.name: (r.metrics or {}).get(col) for r in model_results}, DIRECTIONS.get(col))
            for col in columns
        }
        curve_png = render_training_curves(
            [(r.name, model_index[r.name], r.curve) for r in model_results], dataset
        )
        results.append(DatasetResult(dataset, read_validation(root, dataset), model_results, columns, best, curve_png))
    env = Environment(
        generated=generation_time(),
        git_commit=git_commit(root),
        versions=package_versions(),
        machine=machine_info(),
        params_text=params_text,
    )
    return Report(results, env)


# --------------------------------------------------------------------------- shared rows


def _header_label(metric: str) -> str:
    arrow = ARROWS.get(DIRECTIONS.get(metric, ""), "")
    return f"{metric} {arrow}" if arrow else metric


def _validation_label(ok: bool | None) -> str:
    return {True: "✓ passed", False: "✗ failed", None: f"{MISSING} not validated"}[ok]


def _short(value: Any, n: int) -> str:
    if value is None or value == "":
        return MISSING
    text = str(value)
    return text[:n] if re.fullmatch(r"[0-9a-fA-F]+", text) and len(text) > n else text


def _run_cells(run: dict[str, Any] | None) -> list[str]:
    run = run or {}

    def get(key: str) -> str:
        value = run.get(key)
        return MISSING if value is None or value == "" else str(value)

    epochs = run.get("epochs")
    return [
        get("run_id"),
        get("experiment"),
        get("registered_name"),
        get("version"),
        _short(run.get("git_commit"), 10),
        _short(run.get("data_hash"), 12),
        format_value(epochs) if _is_number(epochs) else get("epochs"),
        format_duration(run.get("train_seconds")),
    ]


RUN_HEADERS = ["Run ID", "Experiment", "Registered model", "Version", "Git commit", "Data hash", "Epochs", "Train time"]

LEGEND_LINES = [
    "↑ after a metric name: higher is better; ↓: lower is better; no arrow: direction unknown, no best marked.",
    "Bold (highlighted): best value of its column for that dataset, ties all marked; "
    "marked only when at least two models have a value.",
    f"{MISSING}: missing (model not evaluated yet, metric not computed, or NaN).",
]


# --------------------------------------------------------------------------- HTML


def _e(text: Any) -> str:
    return html.escape(str(text), quote=True)


def _html_metrics_table(ds: DatasetResult) -> str:
    head = ['<th class="rowhead" scope="col">Model</th>']
    for col in ds.columns:
        how = DIRECTIONS.get(col)
        title = f' title="{DIRECTION_WORDS[how]}"' if how else ""
        head.append(f'<th scope="col" data-metric="{_e(col)}"{title}>{_e(_header_label(col))}</th>')
    rows = []
    for r in ds.models:
        note = f' <span class="note">({_e(r.status_note)})</span>' if r.status_note else ""
        cells = [f'<th class="rowhead" scope="row">{_e(r.name)}{note}</th>']
        for col in ds.columns:
            value = (r.metrics or {}).get(col)
            text = format_value(value, col)
            attrs = f'data-metric="{_e(col)}"'
            if text == MISSING:
                cells.append(f'<td class="missing" {attrs}>{MISSING}</td>')
            elif r.name in ds.best.get(col, ()):
                cells.append(f'<td class="num best" {attrs}><strong>{_e(text)}</strong></td>')
            else:
                cells.append(f'<td class="num" {attrs}>{_e(text)}</td>')
        rows.append(f'<tr data-model="{_e(r.name)}">' + "".join(cells) + "</tr>")
    return (
        f'<div class="table-wrap"><table class="metrics" data-dataset="{_e(ds.name)}">\n'
        f"<thead><tr>{''.join(head)}</tr></thead>\n<tbody>\n" + "\n".join(rows) + "\n</tbody></table></div>"
    )


def _html_figure(png: bytes, alt: str, text: str) -> str:
    return (
        f'<figure><img src="{data_uri(png)}" alt="{_e(alt)}">'
        f"<figcaption>{_e(text)}</figcaption></figure>"
    )


def _html_gallery(ds: DatasetResult) -> str:
    parts = []
    for r in ds.models:
        figures = []
        for png in r.plots:
            try:
                figures.append(_html_figure(png.read_bytes(), f"{caption(png.stem)}: {ds.name} / {r.name}", caption(png.stem)))
            except OSError as exc:
                logger.warning("cannot read %s: %s", png, exc)
        if figures:
            count = f"{len(figures)} figure{'s' if len(figures) != 1 else ''}"
            parts.append(
                f'<details open><summary>{_e(r.name)} <span class="muted">({count})</span></summary>\n'
                f'<div class="gallery">{"".join(figures)}</div></details>'
            )
        else:
            parts.append(
                f'<details><summary>{_e(r.name)} <span class="muted">(no figures)</span></summary>'
                f'<p class="muted">{MISSING} no figures yet.</p></details>'
            )
    return "\n".join(parts)


def _html_kv_table(rows: Iterable[tuple[str, str]]) -> str:
    body = "".join(f'<tr><th class="rowhead" scope="row">{_e(k)}</th><td>{_e(v)}</td></tr>' for k, v in rows)
    return f'<div class="table-wrap"><table class="kv">{body}</table></div>'


def _environment_rows(env: Environment) -> list[tuple[str, str]]:
    rows = [("Generated", env.generated), ("Git commit", env.git_commit)]
    rows += [(name, version) for name, version in env.versions.items()]
    rows += [(key, value) for key, value in env.machine.items()]
    return rows


def render_html(report: Report) -> str:
    env = report.environment
    out = [
        f"<header><h1>{_e(TITLE)}</h1>",
        f'<p class="subtitle">Representation-learning autoencoders benchmark · generated {_e(env.generated)}'
        f" · commit <code>{_e(_short(env.git_commit, 12))}</code></p></header>",
    ]
    toc = "".join(f'<li><a href="#dataset-{_e(slug(ds.name))}">{_e(ds.name)}</a></li>' for ds in report.datasets)
    out.append(f'<nav><strong>Contents</strong><ul>{toc}<li><a href="#provenance">Provenance</a></li></ul></nav>')
    out.append('<div class="legend"><strong>Legend</strong>' + "".join(f"<p>{_e(l)}</p>" for l in LEGEND_LINES) + "</div>")
    if not report.datasets:
        out.append(f'<p class="muted">{MISSING} no datasets configured.</p>')
    for ds in report.datasets:
        valid_cls = {True: "ok", False: "fail", None: "muted"}[ds.validation]
        out.append(f'<section id="dataset-{_e(slug(ds.name))}">')
        out.append(f"<h2>Dataset: {_e(ds.name)}</h2>")
        out.append(f'<p>Data validation: <span class="{valid_cls}">{_e(_validation_label(ds.validation))}</span></p>')
        out.append("<h3>Metrics</h3>")
        if not ds.models:
            out.append(f'<p class="muted">{MISSING} no models configured.</p>')
        else:
            if not ds.columns:
                out.append(f'<p class="muted">{MISSING} no metrics yet.</p>')
            out.append(_html_metrics_table(ds))
        out.append("<h3>Training curves</h3>")
        if ds.curve_png:
            out.append(
                _html_figure(
                    ds.curve_png,
                    f"Training curves for {ds.name}",
                    "Loss per epoch for every model: validation solid, train dashed.",
                )
            )
        else:
            out.append(f'<p class="muted">{MISSING} no training curves yet.</p>')
        out.append("<h3>Figures</h3>")
        out.append(_html_gallery(ds))
        out.append("</section>")

    out.append('<section id="provenance"><h2>Provenance</h2>')
    out.append("<h3>Environment</h3>")
    out.append(_html_kv_table(_environment_rows(env)))
    out.append("<h3>Data validation</h3>")
    out.append(_html_kv_table((ds.name, _validation_label(ds.validation)) for ds in report.datasets))
    out.append("<h3>Training runs</h3>")
    head = "".join(f'<th scope="col">{_e(h)}</th>' for h in ["Dataset", "Model", *RUN_HEADERS])
    rows = []
    for ds in report.datasets:
        for r in ds.models:
            cells = [ds.name, r.name, *_run_cells(r.run)]
            rows.append(
                "<tr>"
                + "".join(f'<td class="missing">{MISSING}</td>' if c == MISSING else f"<td>{_e(c)}</td>" for c in cells)
                + "</tr>"
            )
    out.append(
        f'<div class="table-wrap"><table class="runs"><thead><tr>{head}</tr></thead><tbody>'
        + "".join(rows)
        + "</tbody></table></div>"
    )
    out.append("<h3>params.yaml</h3>")
    if env.params_text is None:
        out.append(f'<p class="muted">{MISSING} params.yaml not found.</p>')
    else:
        out.append(f"<pre><code>{_e(env.params_text)}</code></pre>")
    out.append("</section>")
    return template.page(TITLE, "\n".join(out))


# --------------------------------------------------------------------------- Markdown


def _md_cell(text: Any) -> str:
    return " ".join(str(text).split()).replace("|", "\\|")


def md_table(headers: Sequence[str], rows: Sequence[Sequence[str]], align: Sequence[str] | None = None) -> str:
    align = align or ["l"] * len(headers)
    sep = {"l": "---", "r": "---:", "c": ":---:"}
    lines = [
        "| " + " | ".join(_md_cell(h) for h in headers) + " |",
        "| " + " | ".join(sep[a] for a in align) + " |",
    ]
    lines += ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def _rel_link(target: Path, out_dir: Path) -> str:
    rel = os.path.relpath(Path(target).resolve(), Path(out_dir).resolve())
    return quote(rel.replace(os.sep, "/"))


def render_markdown(report: Report, out_dir: Path, curve_files: dict[str, Path] | None = None) -> str:
    curve_files = curve_files or {}
    env = report.environment
    out = [
        f"# {TITLE}",
        "",
        f"Generated {env.generated} · commit `{_short(env.git_commit, 12)}`",
        "",
        "**Legend**",
        "",
        *[f"- {l}" for l in LEGEND_LINES],
        "",
    ]
    for ds in report.datasets:
        out += [f"## Dataset: {ds.name}", "", f"Data validation: {_validation_label(ds.validation)}", ""]
        out += ["### Metrics", ""]
        if not ds.columns:
            out += [f"{MISSING} no metrics yet.", ""]
        headers = ["Model", *[_header_label(c) for c in ds.columns]]
        rows = []
        for r in ds.models:
            name = f"{r.name} _({r.status_note})_" if r.status_note else r.name
            row = [name]
            for col in ds.columns:
                text = format_value((r.metrics or {}).get(col), col)
                row.append(f"**{text}**" if text != MISSING and r.name in ds.best.get(col, ()) else text)
            rows.append(row)
        if ds.models:
            out += [md_table(headers, rows, ["l"] + ["r"] * len(ds.columns)), ""]
        out += ["### Training curves", ""]
        if ds.name in curve_files:
            link = _rel_link(curve_files[ds.name], out_dir)
            out += [f"![Training curves for {ds.name}]({link})", "", "_Validation solid, train dashed._", ""]
        else:
            out += [f"{MISSING} no training curves yet.", ""]
        out += ["### Figures", ""]
        for r in ds.models:
            out += [f"#### {r.name}", ""]
            if not r.plots:
                out += [f"{MISSING} no figures yet.", ""]
            for png in r.plots:
                out += [f"**{caption(png.stem)}**", "", f"![{caption(png.stem)}]({_rel_link(png, out_dir)})", ""]

    out += ["## Provenance", "", "### Environment", ""]
    out += [md_table(["Item", "Value"], _environment_rows(env)), ""]
    out += ["### Data validation", ""]
    out += [md_table(["Dataset", "Validation"], [(ds.name, _validation_label(ds.validation)) for ds in report.datasets]), ""]
    out += ["### Training runs", ""]
    run_rows = [[ds.name, r.name, *_run_cells(r.run)] for ds in report.datasets for r in ds.models]
    out += [md_table(["Dataset", "Model", *RUN_HEADERS], run_rows), ""]
    out += ["### params.yaml", ""]
    if env.params_text is None:
        out += [f"{MISSING} params.yaml not found.", ""]
    else:
        fence = "````" if "```" in env.params_text else "```"
        out += [f"{fence}yaml", env.params_text.rstrip("\n"), fence, ""]
    return "\n".join(out)


# --------------------------------------------------------------------------- entry point


def build_report(root: Path, out_dir: Path | None = None) -> tuple[Path, Path]:
    """Write `<out_dir>/index.html` and `<out_dir>/summary.md` (default `<root>/reports`).

    Returns (html_path, markdown_path). Missing stage outputs are reported as missing.
    """
    root = Path(root)
    out_dir = Path(out_dir) if out_dir is not None else reports_dir(root)
    report = collect(root)
    curve_files: dict[str, Path] = {}
    for ds in report.datasets:
        if ds.curve_png:
            path = out_dir / "figures" / f"training_curves_{slug(ds.name)}.png"
            write_bytes_atomic(path, ds.curve_png)
            curve_files[ds.name] = path
    html_path = out_dir / "index.html"
    md_path = out_dir / "summary.md"
    write_text_atomic(html_path, render_html(report))
    write_text_atomic(md_path, render_markdown(report, out_dir, curve_files))
    evaluated = sum(1 for ds in report.datasets for r in ds.models if r.metrics is not None)
    total = sum(len(ds.models) for ds in report.datasets)
    logger.info("report: %d/%d dataset-model pairs evaluated; wrote %s and %s", evaluated, total, html_path, md_path)
    return html_path, md_path
