"""The one evaluator: encodes the test split once and runs every suite that applies.

Outputs, for `eval/<dataset>/<model>/seed<seed>/`:
- `metrics.json`: flat JSON of floats (DVC metrics; which way is better for each key:
  `aebench.evaluation.directions`);
- `plots/`: PNG figures (reconstructions, samples, a 2-D map of the codes) and
  `training_curve.csv` (a DVC plot);
and the same metrics and figures are logged into the model's MLflow run.

The suites (`aebench.evaluation.suites.SUITES`, then the model's own through `model_suite`)
are functions of an `EvalContext` returning a dict of metrics; each decides for itself
whether it applies (labels present, factors present...).
"""

from __future__ import annotations

import csv
import io
import json
import logging
import math
import time
from pathlib import Path

import numpy as np
import torch

from aebench.data.parquet import Split
from aebench.evaluation.context import EvalContext, OodSet, encode_all
from aebench.evaluation.suites import SUITES
from aebench.io import atomic_path, write_json_atomic
from aebench.metrics.topology import GW_POINTS
from aebench.models.base import AutoEncoderBase
from aebench.precision import resolve as resolve_precision
from aebench.training import split_tensors

log = logging.getLogger(__name__)


def write_training_curve(history: list[dict], path: Path) -> None:
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(["epoch", "train_loss", "val_loss"])
    for row in history:
        writer.writerow([row["epoch"], row.get("train_loss", ""), row["val_loss"]])
    with atomic_path(path) as tmp:
        tmp.write_text(buf.getvalue())


def evaluate(model: AutoEncoderBase, train: Split, test: Split, out_dir: Path, *, run_info: dict, history: list[dict],
             k: int = 5, seed: int = 0, max_train_codes: int = 20000, figure_examples: int = 8,
             max_recon: int = 2000, ood: OodSet | None = None, joint_probe: dict[str, torch.Tensor] | None = None,
             cluster_paper_restarts: int = 10, precision: str = "fp32", precision_key: str = "evaluate.precision",
             gw_reference: str = "test", gw_points: int | None = GW_POINTS) -> dict[str, float]:
    """Run every suite; write metrics.json and plots/ under `out_dir`; return the metrics.
    `ood`: the dataset's OoD companion, if any; `joint_probe`: the state of the linear head
    trained with the model (`train.joint_probe`), if any. `precision` (from the params key
    `precision_key`) is that of the encoder and decoder passes and of sampling; the metrics
    are computed in fp32/float64 from their outputs. `gw_reference` and `gw_points` are
    gw_distance's protocol (`EvalConfig`)."""
    t0 = time.perf_counter()
    model.eval()
    device = model.device
    dtype = resolve_precision(precision, device, precision_key)
    rng = np.random.default_rng(seed)
    if len(train.index) > max_train_codes:
        keep = np.sort(rng.choice(len(train.index), max_train_codes, replace=False))
        train = train.subset(keep)
    test_x = split_tensors(test, device)["x"]
    ctx = EvalContext(
        model=model, train=train, test=test, test_x=test_x,
        z_train=encode_all(model, split_tensors(train, device)["x"], dtype=dtype),
        z_test=encode_all(model, test_x, dtype=dtype), dtype=dtype,
        k=k, seed=seed, plots=out_dir / "plots", figure_examples=figure_examples,
        max_recon=max_recon, cluster_paper_restarts=cluster_paper_restarts,
        gw_reference=gw_reference, gw_points=gw_points, ood=ood, joint_probe=joint_probe,
    )
    ctx.plots.mkdir(parents=True, exist_ok=True)
    metrics: dict[str, float] = {}
    for suite in SUITES:
        s0 = time.perf_counter()
        metrics.update(suite(ctx))
        log.info("%s done in %.2fs", suite.__name__, time.perf_counter() - s0)
    metrics["train_seconds"] = float(run_info.get("train_seconds", math.nan))
    metrics["train_samples_per_s"] = float(run_info.get("samples_per_s", math.nan))
    metrics["eval_seconds"] = time.perf_counter() - t0
    metrics = {k: float(v) for k, v in sorted(metrics.items())}
    write_training_curve(history, ctx.plots / "training_curve.csv")
    write_json_atomic(out_dir / "metrics.json", {k: (v if math.isfinite(v) else None) for k, v in metrics.items()})
    log.info("evaluated in %.1fs: %s", time.perf_counter() - t0, json.dumps(metrics))
    return metrics
