"""Curves for `dvc plots show` / `dvc plots diff`: every model's curves in two long tables.

The report stage gathers the per-model curves of the evaluate stage into

- `reports/plots/training_curves.csv`: dataset, model, epoch, train_loss, val_loss;
- `reports/plots/roc.csv`: dataset, model, score, step, fpr, tpr (OoD detection; `score` is
  the anomaly score, e.g. the model's own and the negative ELBO; `step` keeps each curve's
  point order);

and the two Vega-Lite templates in `report/vega/` draw them as one panel per dataset/model,
each revision in its own colour or dash. Why long tables and not one DVC plot per
`eval/<dataset>/<model>/seed<seed>/plots/*.csv`: DVC's top-level `plots:` cannot iterate over the
params' dataset x model x seed matrix, so per-file definitions would have to list every pair by hand
and go stale whenever a model is added; these two files cover whatever ran. The
`plots:` section of dvc.yaml that points at them is `DVC_PLOTS_YAML`.
"""

from __future__ import annotations

import csv
import io
import logging
import math
from pathlib import Path
from typing import Sequence

from aebench.io import write_text_atomic

logger = logging.getLogger(__name__)

TEMPLATES = Path(__file__).with_name("vega")
TRAINING_FILE = "training_curves.csv"
ROC_FILE = "roc.csv"

DVC_PLOTS_YAML = """\
plots:
  - reports/plots/training_curves.csv:
      template: src/aebench/report/vega/training_curves.json
      title: Training curves (validation solid, train dashed)
  - reports/plots/roc.csv:
      template: src/aebench/report/vega/roc.json
      title: Out-of-distribution detection (ROC)
"""


def _num(value: float) -> str:
    return "" if value is None or not math.isfinite(value) else f"{value:.6g}"


def training_table(datasets: Sequence) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["dataset", "model", "epoch", "train_loss", "val_loss"])
    for ds in datasets:
        for r in ds.models:
            if r.curve is None:
                continue
            for epoch, train, val in zip(r.curve.epoch, r.curve.train_loss, r.curve.val_loss):
                writer.writerow([ds.name, r.name, _num(epoch), _num(train), _num(val)])
    return buf.getvalue()


def _roc_rows(path: Path) -> list[tuple[str, str, str]]:
    """(score, fpr, tpr) rows of an evaluate-stage roc.csv; a file without `score` is one curve."""
    try:
        with open(path, newline="", encoding="utf-8") as fh:
            return [(row.get("score") or "score", row["fpr"], row["tpr"]) for row in csv.DictReader(fh)]
    except (OSError, UnicodeDecodeError, csv.Error, KeyError) as exc:
        logger.warning("cannot read %s: %s", path, exc)
        return []


def roc_table(datasets: Sequence) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["dataset", "model", "score", "step", "fpr", "tpr"])
    for ds in datasets:
        for r in ds.models:
            if r.roc_csv is None:
                continue
            steps: dict[str, int] = {}
            for score, fpr, tpr in _roc_rows(r.roc_csv):
                steps[score] = steps.get(score, -1) + 1
                writer.writerow([ds.name, r.name, score, steps[score], fpr, tpr])
    return buf.getvalue()


def write_tables(datasets: Sequence, out_dir: Path) -> list[Path]:
    """Write both tables under `<out_dir>/plots/` (headers only when nothing ran)."""
    written = []
    for name, text in ((TRAINING_FILE, training_table(datasets)), (ROC_FILE, roc_table(datasets))):
        path = Path(out_dir) / "plots" / name
        write_text_atomic(path, text)
        written.append(path)
    return written
