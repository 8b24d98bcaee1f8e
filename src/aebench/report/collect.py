"""Read everything the report shows from the pipeline's outputs; nothing here renders.

Inputs, relative to the repository root, all optional except `params.yaml` (without it the
datasets and models are discovered from `eval/`):

- `params.yaml`: `datasets`, `models`, `seeds` and `runs` (which model runs on which dataset
  with which seeds; every pair when absent); the whole file is shown under Provenance.
- `eval/<dataset>/<model>/seed<seed>/metrics.json`: flat `{metric: number}`; null/NaN mean
  missing. The tables show each metric's mean over a run's evaluated seeds; the claims use
  every seed's value.
- `eval/<dataset>/<model>/seed<seed>/plots/*.png`: figures; `training_curve.csv` (epoch,
  train_loss, val_loss) and `roc.csv` (score, fpr, tpr, threshold) curves. The report shows
  the first seed's.
- `models/<dataset>/<model>/seed<seed>/run.json`: MLflow run, registered version, data hash,
  timings (the first seed's budget stands for the run's: the seeds share it).
- `data/processed/<dataset>/validation.json` (`success`) and `train.parquet` (its schema
  metadata `aebench.n_classes`, and its `factor_*` columns: `read_n_factors`);
  `data/diffmap/<dataset>/embedding.png` and `diffmap.json`.

Anything missing (a model not evaluated yet, no figures, no run record) becomes None or an
empty list here and "—" or a note in the page; it never stops the report.
"""

from __future__ import annotations

import csv
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from aebench.errors import UserError
from aebench.evaluation.directions import DIRECTIONS
from aebench.paths import eval_dir, model_dir, processed_dir
from aebench.report import claims as claims_mod
from aebench.report.formatting import best_models, order_columns
from aebench.report.provenance import Environment, environment

logger = logging.getLogger(__name__)


@dataclass
class Curve:
    epoch: list[float] = field(default_factory=list)
    train_loss: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)


@dataclass
class ModelResult:
    name: str
    metrics: dict[str, Any] | None = None  # the mean over evaluated seeds; None: no metrics.json (or unreadable)
    metrics_error: str | None = None
    seeds: list[int] = field(default_factory=lambda: [0])  # the planned training seeds
    seed_metrics: dict[int, dict | None] = field(default_factory=dict)  # seed -> its metrics.json
    seed_runs: dict[int, dict | None] = field(default_factory=dict)  # seed -> its run.json
    plots: list[Path] = field(default_factory=list)
    curve: Curve | None = None
    roc_csv: Path | None = None
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
    n_classes: int | None = None
    n_factors: int | None = None  # varying factor_* columns of train.parquet; None: unknown
    traits: set[str] = field(default_factory=set)  # what claims can need of it (claims.TRAITS)
    data_hash: str | None = None  # of data/processed/<dataset> now
    diffmap_png: Path | None = None
    diffmap_seconds: float | None = None


@dataclass
class Report:
    datasets: list[DatasetResult]
    environment: Environment
    claims: list[claims_mod.ClaimResult]


# --------------------------------------------------------------------------- small readers


def read_json(path: Path) -> tuple[Any, str | None]:
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


@dataclass
class Plan:
    """What this run trains: the datasets, the models, and which models run on which dataset."""

    datasets: list[str]
    models: list[str]
    runs: dict[str, list[str]]  # dataset -> its models, in `models` order
    seeds: dict[tuple[str, str], list[int]] = field(default_factory=dict)  # (dataset, model) -> seeds; absent: [0]
    params_text: str | None = None
    ood_companion: dict[str, str] = field(default_factory=dict)  # evaluate.ood_companion


def _runs(value: Any, datasets: list[str], models: list[str], path: Path) -> dict[str, list[str]]:
    """`runs: {key: {dataset, model}}` as dataset -> models; every pair when `runs` is absent."""
    if value is None:
        return {d: list(models) for d in datasets}
    if not isinstance(value, dict) or not all(isinstance(r, dict) and {"dataset", "model"} <= set(r)
                                              for r in value.values()):
        raise UserError(f"{path}: `runs` must map keys to {{dataset: ..., model: ...}}")
    pairs = {(str(r["dataset"]), str(r["model"])) for r in value.values()}
    order = models + sorted({m for _, m in pairs} - set(models))
    return {d: [m for m in order if (d, m) in pairs] for d in datasets}


def _seed_list(value: Any, where: str, path: Path) -> list[int] | None:
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(s, int) and not isinstance(s, bool) for s in value):
        raise UserError(f"{path}: `{where}` must be a list of integer seeds, got {value!r}")
    return value


def _seeds(params: dict, path: Path) -> dict[tuple[str, str], list[int]]:
    """Every planned (dataset, model)'s training seeds: its run's own, else the top-level list."""
    default = _seed_list(params.get("seeds"), "seeds", path) or [0]
    runs = params.get("runs") if isinstance(params.get("runs"), dict) else {}
    return {(str(r["dataset"]), str(r["model"])): _seed_list(r.get("seeds"), f"runs.{key}.seeds", path) or default
            for key, r in runs.items() if isinstance(r, dict) and {"dataset", "model"} <= set(r)}


def _seed_dirs(folder: Path) -> list[int]:
    return sorted(int(name[4:]) for name in _subdirs(folder) if name.startswith("seed") and name[4:].isdigit())


def read_plan(root: Path) -> Plan:
    """The run's plan from params.yaml; discovered from eval/ when params.yaml is absent."""
    path = root / "params.yaml"
    if not path.is_file():
        logger.warning("%s not found: reporting whatever is under %s", path, root / "eval")
        datasets = _subdirs(root / "eval")
        runs = {d: _subdirs(root / "eval" / d) for d in datasets}
        seeds = {(d, m): _seed_dirs(root / "eval" / d / m) for d, ms in runs.items() for m in ms}
        return Plan(datasets, sorted({m for ms in runs.values() for m in ms}), runs, seeds)
    text = path.read_text(encoding="utf-8")
    try:
        params = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        raise UserError(f"{path} is not valid YAML: {' '.join(str(exc).split())}") from None
    if not isinstance(params, dict):
        raise UserError(f"{path} must be a mapping with `datasets` and `models` lists")
    datasets = _names(params.get("datasets"), "datasets", path)
    models = _names(params.get("models"), "models", path)
    evaluate = params.get("evaluate") if isinstance(params.get("evaluate"), dict) else {}
    companions = evaluate.get("ood_companion") if isinstance(evaluate.get("ood_companion"), dict) else {}
    return Plan(datasets, models, _runs(params.get("runs"), datasets, models, path), _seeds(params, path), text,
                {str(k): str(v) for k, v in companions.items()})


def _to_float(text: str | None) -> float:
    try:
        return float(text) if text not in (None, "") else float("nan")
    except ValueError:
        return float("nan")


def read_curve(path: Path) -> Curve | None:
    """Training curve from `epoch,train_loss,val_loss`; None when absent, empty or unreadable."""
    if not path.is_file():
        return None
    curve = Curve()
    try:
        with open(path, newline="", encoding="utf-8") as fh:
            for i, row in enumerate(csv.DictReader(fh)):
                epoch = _to_float(row.get("epoch"))
                curve.epoch.append(epoch if epoch == epoch else float(i + 1))
                curve.train_loss.append(_to_float(row.get("train_loss")))
                curve.val_loss.append(_to_float(row.get("val_loss")))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        logger.warning("cannot read %s: %s", path, exc)
        return None
    return curve if curve.epoch else None


def read_metrics(folder: Path) -> tuple[dict | None, str | None]:
    """(metrics.json of one evaluated seed, None), (None, None) when absent, (None, error) when unreadable."""
    metrics, error = read_json(folder / "metrics.json")
    if error is None and metrics is not None and not isinstance(metrics, dict):
        error = "not a JSON object"
        logger.warning("%s: %s", folder / "metrics.json", error)
        metrics = None
    return metrics, error


def read_model(root: Path, dataset: str, model: str, seeds: list[int] | None = None) -> ModelResult:
    """A run's results: every seed's metrics, their mean, and the first seed's figures and run record."""
    seeds = seeds or [0]
    result = ModelResult(name=model, seeds=list(seeds))
    errors = []
    for seed in seeds:
        metrics, error = read_metrics(eval_dir(dataset, model, seed, root))
        result.seed_metrics[seed] = metrics
        errors += [error] if error else []
    result.metrics = claims_mod.mean_metrics(list(result.seed_metrics.values()))
    result.metrics_error = errors[0] if errors and result.metrics is None else None
    folder = eval_dir(dataset, model, seeds[0], root)
    plots = folder / "plots"
    result.plots = sorted(p for p in plots.glob("*.png") if p.is_file()) if plots.is_dir() else []
    result.curve = read_curve(plots / "training_curve.csv")
    result.roc_csv = plots / "roc.csv" if (plots / "roc.csv").is_file() else None
    for seed in seeds:
        run, _ = read_json(model_dir(dataset, model, seed, root) / "run.json")
        result.seed_runs[seed] = run if isinstance(run, dict) else None
    result.run = result.seed_runs[seeds[0]]
    return result


def read_validation(root: Path, dataset: str) -> bool | None:
    content, _ = read_json(processed_dir(dataset, root) / "validation.json")
    if isinstance(content, dict) and isinstance(content.get("success"), bool):
        return content["success"]
    return None


def current_data_hash(root: Path, dataset: str) -> str | None:
    """The hash train.py records as `data_hash`, of the processed data on disk now."""
    folder = processed_dir(dataset, root)
    if not all((folder / f"{s}.parquet").is_file() for s in ("train", "val", "test")):
        return None
    from aebench.data.parquet import data_hash

    try:
        return data_hash(folder)
    except (OSError, UserError) as exc:
        logger.warning("cannot hash %s: %s", folder, exc)
        return None


def read_n_factors(processed: Path) -> int | None:
    """How many `factor_*` columns of train.parquet vary, from its schema and row-group
    statistics (no rows are read); a column without statistics counts as varying. None when
    the file is absent or unreadable."""
    path = Path(processed) / "train.parquet"
    if not path.is_file():
        return None
    try:
        import pyarrow.parquet as pq

        meta = pq.ParquetFile(path).metadata
        schema = meta.schema.to_arrow_schema()
        n = 0
        for name in (c for c in schema.names if c.startswith("factor_")):
            j = schema.get_field_index(name)
            lows, highs = [], []
            for i in range(meta.num_row_groups):
                stats = meta.row_group(i).column(j).statistics
                if stats is None or not stats.has_min_max:
                    lows = highs = []
                    break
                lows.append(stats.min)
                highs.append(stats.max)
            n += not lows or min(lows) != max(highs)
        return n
    except (OSError, ValueError, TypeError) as exc:  # pyarrow errors subclass these
        logger.warning("cannot read the schema of %s: %s", path, exc)
        return None


def read_diffmap(root: Path, dataset: str) -> tuple[Path | None, float | None]:
    folder = root / "data" / "diffmap" / dataset
    png = folder / "embedding.png"
    info, _ = read_json(folder / "diffmap.json")
    seconds = info.get("total_seconds") if isinstance(info, dict) else None
    return (png if png.is_file() else None), (float(seconds) if isinstance(seconds, (int, float)) else None)


# --------------------------------------------------------------------------- collect


def read_dataset(root: Path, dataset: str, models: list[str], has_ood_companion: bool = False,
                 seeds: dict[tuple[str, str], list[int]] | None = None) -> DatasetResult:
    results = [read_model(root, dataset, m, (seeds or {}).get((dataset, m))) for m in models]
    columns = order_columns({k for r in results if r.metrics for k in r.metrics})
    best = {
        col: best_models({r.name: (r.metrics or {}).get(col) for r in results}, DIRECTIONS.get(col))
        for col in columns
    }
    diffmap_png, diffmap_seconds = read_diffmap(root, dataset)
    traits, n_classes = claims_mod.read_traits(processed_dir(dataset, root), has_ood_companion)
    return DatasetResult(
        name=dataset, validation=read_validation(root, dataset), models=results, columns=columns, best=best,
        n_classes=n_classes, n_factors=read_n_factors(processed_dir(dataset, root)), traits=traits,
        data_hash=current_data_hash(root, dataset), diffmap_png=diffmap_png, diffmap_seconds=diffmap_seconds,
    )


def sources_root(claims_file: Path) -> Path | None:
    """The checkout a claims file belongs to (the folder above it holding pyproject.toml), None
    outside one. Its explanations' `sources` (budget curves) are committed beside it, so they are
    read from the same commit as the text that cites them, also when a profile's report is
    re-rendered with newer report code (`aebench profile <name> --report-only`)."""
    return next((folder for folder in Path(claims_file).resolve().parents if (folder / "pyproject.toml").is_file()),
                None)


def collect(root: Path, claims_path: Path | None = None) -> Report:
    """Read everything the report shows and check the claims; missing inputs never raise."""
    root = Path(root)
    if not root.is_dir():
        raise UserError(f"report root {root} is not a folder")
    claims = claims_mod.load_claims(claims_path or claims_mod.CLAIMS_FILE)
    plan = read_plan(root)
    results = [read_dataset(root, d, plan.runs[d], d in plan.ood_companion, plan.seeds) for d in plan.datasets]
    run_data = claims_mod.RunData(
        datasets=plan.datasets, models=plan.models,
        seed_metrics={(ds.name, r.name): r.seed_metrics for ds in results for r in ds.models},
        n_classes={ds.name: ds.n_classes for ds in results},
        traits={ds.name: ds.traits for ds in results},
        budgets={(ds.name, r.name): claims_mod.Budget.from_run(r.run) for ds in results for r in ds.models},
        root=sources_root(claims_path or claims_mod.CLAIMS_FILE) or root,
    )
    return Report(results, environment(root, plan.params_text), claims_mod.evaluate_claims(claims, run_data))
