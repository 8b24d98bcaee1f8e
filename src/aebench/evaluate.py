"""The one evaluator: encodes the test split once and runs every metric that applies.

Outputs, for `eval/<dataset>/<model>/`:
- `metrics.json`: flat JSON of floats (keys listed in DESIGN.md; DVC metrics);
- `plots/`: PNG figures (reconstructions, samples, a 2-D map of the codes) and
  `training_curve.csv` (a DVC plot);
and the same metrics and figures are logged into the model's MLflow run.

Metric suites are functions of an `EvalContext` appended to `SUITES`; each returns a dict of
metrics and decides for itself whether it applies (labels present, factors present...).
"""

from __future__ import annotations

import csv
import io
import json
import logging
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from aebench.data.parquet import Split
from aebench.io import atomic_path, write_json_atomic
from aebench.metrics.topology import GW_POINTS
from aebench.models.base import AutoEncoderBase
from aebench.batching import iterate_batches
from aebench.precision import autocast, resolve as resolve_precision
from aebench.training import split_tensors

log = logging.getLogger(__name__)


@dataclass
class EvalContext:
    """Everything a metric suite may use; codes are computed once here."""

    model: AutoEncoderBase
    train: Split
    test: Split
    test_x: torch.Tensor  # model-ready test inputs
    z_train: np.ndarray
    z_test: np.ndarray
    k: int
    seed: int
    plots: Path
    figure_examples: int
    extra: dict = field(default_factory=dict)
    max_recon: int = 2000
    cluster_paper_restarts: int = 10
    dtype: torch.dtype = torch.float32  # of the encoder/decoder passes and sampling (aebench.precision)
    gw_reference: str = "test"  # the split gw_distance compares the samples with: test or train
    gw_points: int | None = GW_POINTS  # cap on the size of each set of gw_distance (None: no cap)

    @property
    def has_labels(self) -> bool:
        return bool((self.test.label >= 0).any()) and bool((self.train.label >= 0).any())


@torch.no_grad()
def encode_all(model: AutoEncoderBase, x: torch.Tensor, batch_size: int = 512,
               dtype: torch.dtype = torch.float32) -> np.ndarray:
    """The codes of `x` as float64, the encoder run in `dtype` (aebench.precision)."""
    with autocast(dtype, model.device):
        out = [model.encode(batch["x"]).float().cpu() for batch in iterate_batches({"x": x}, batch_size)]
    return torch.cat(out).numpy().astype(np.float64)


@torch.no_grad()
def decode_all(model: AutoEncoderBase, z: np.ndarray, batch_size: int = 512,
               dtype: torch.dtype = torch.float32) -> np.ndarray:
    """Decoded `z` as float32, the decoder run in `dtype` (aebench.precision)."""
    zt = torch.as_tensor(z, dtype=torch.float32, device=model.device)
    with autocast(dtype, model.device):
        out = [model.decode(zt[i:i + batch_size]).float().cpu() for i in range(0, len(zt), batch_size)]
    return torch.cat(out).numpy()


def recon_rows(ctx: EvalContext) -> np.ndarray:
    """The test rows that are reconstructed: all, or a seeded `max_recon` of them (an
    autoregressive decoder samples H x W passes per image: 10,000 MNIST digits take an hour)."""
    n = len(ctx.z_test)
    if n <= ctx.max_recon:
        return np.arange(n)
    return np.sort(np.random.default_rng(ctx.seed).choice(n, ctx.max_recon, replace=False))


def reconstruction_suite(ctx: EvalContext) -> dict[str, float]:
    from aebench.metrics.reconstruction import psnr, recon_mse

    rows = recon_rows(ctx)
    x = ctx.test_x[rows].cpu().numpy()
    with torch.random.fork_rng(devices=[]):  # stochastic decoders (PixelCNN) sample
        torch.manual_seed(ctx.seed)
        x_hat = decode_all(ctx.model, ctx.z_test[rows], dtype=ctx.dtype)
    ctx.extra["x_hat"] = x_hat
    out = {"recon_mse": recon_mse(x, x_hat)}
    if ctx.test.kind == "image":
        out["psnr"] = psnr(x, np.clip(x_hat, 0, 1))
    return out


@torch.no_grad()
def likelihood_suite(ctx: EvalContext) -> dict[str, float]:
    """neg_elbo in nats per datum, with a fixed noise seed, for models with a likelihood."""
    first = ctx.model.neg_elbo(ctx.test_x[:2])
    if first is None:
        return {}
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(ctx.seed)
        values = torch.cat([ctx.model.neg_elbo(b["x"]).cpu() for b in iterate_batches({"x": ctx.test_x}, 512)])
    ctx.extra["neg_elbo_test"] = values.double().numpy()  # the OoD suite's in-distribution scores
    return {"neg_elbo": float(values.mean())}


def representation_suite(ctx: EvalContext) -> dict[str, float]:
    from aebench.metrics.representation import cluster_acc_paper, cluster_scores, knn_acc, linear_acc

    if not ctx.has_labels:
        return {}
    out = {
        "knn_acc": knn_acc(ctx.z_train, ctx.train.label, ctx.z_test, ctx.test.label, k=ctx.k),
        "linear_acc": linear_acc(ctx.z_train, ctx.train.label, ctx.z_test, ctx.test.label, seed=ctx.seed),
    }
    out.update(cluster_scores(ctx.z_test, ctx.test.label, seed=ctx.seed))
    if ctx.cluster_paper_restarts:
        out["cluster_acc_paper"] = cluster_acc_paper(ctx.z_train, ctx.train.label, ctx.z_test, ctx.test.label,
                                                     n_init=ctx.cluster_paper_restarts, seed=ctx.seed)
    return out


def joint_probe_suite(ctx: EvalContext) -> dict[str, float]:
    """`linear_acc_joint`: test accuracy of the linear head trained alongside the model
    (`train.joint_probe`, the ACAI paper's protocol), for runs that trained one."""
    from aebench.metrics.representation import linear_head_acc

    head = ctx.extra.get("joint_probe")
    if head is None or not ctx.has_labels:
        return {}
    weight, bias = head["head.weight"].double().numpy(), head["head.bias"].double().numpy()
    return {"linear_acc_joint": linear_head_acc(weight, bias, ctx.z_test, ctx.test.label)}


def figure_samples(ctx: EvalContext) -> int:
    """Samples in the figure: two rows of images, or a cloud of points."""
    return ctx.figure_examples * (2 if ctx.test.kind == "image" else 64)


def model_samples(ctx: EvalContext) -> np.ndarray | None:
    """The model's samples (seeded), drawn once for the figures and the topology metrics: an
    autoregressive decoder pays H x W passes per draw. None for models that do not generate.
    A sampler that starts from data (DVAE's random walks under `walk_seeds: test_data`) is
    first handed the test inputs through its `start_sampling_from` hook."""
    if "samples" not in ctx.extra:
        ctx.model.start_sampling_from(ctx.test_x)
        with torch.random.fork_rng(devices=[]), autocast(ctx.dtype, ctx.model.device):
            torch.manual_seed(ctx.seed)
            gw_draw = gw_sample_count(ctx) if ctx.gw_points is None else ctx.gw_points
            drawn = ctx.model.sample(max(gw_draw, figure_samples(ctx)), torch.Generator().manual_seed(ctx.seed))
        ctx.extra["samples"] = None if drawn is None else drawn.detach().float().cpu().numpy()
    return ctx.extra["samples"]


def figures_suite(ctx: EvalContext) -> dict[str, float]:
    from aebench import figures

    n = ctx.figure_examples
    shown = recon_rows(ctx)[:n]
    x = ctx.test_x[shown].cpu().numpy()
    x_hat = ctx.extra["x_hat"][:n] if "x_hat" in ctx.extra else decode_all(ctx.model, ctx.z_test[shown], dtype=ctx.dtype)
    draw = figures.image_grid if ctx.test.kind == "image" else figures.vector_scatter
    if ctx.test.kind == "image":
        figures.save(draw([x, x_hat], ["data", "recon."], "Test reconstructions"), ctx.plots / "reconstructions.png")
    else:
        xs, xh = ctx.test_x.cpu().numpy(), ctx.extra["x_hat"]
        figures.save(draw([xs, xh], ["data", "recon."], "Test reconstructions"), ctx.plots / "reconstructions.png")
    samples = model_samples(ctx)
    if samples is not None:
        s = samples[:figure_samples(ctx)]
        rows = [s[:n], s[n:2 * n]] if ctx.test.kind == "image" else [ctx.test_x.cpu().numpy(), s]
        titles = ["", ""] if ctx.test.kind == "image" else ["data", "samples"]
        figures.save(draw(rows, titles, "Samples"), ctx.plots / "samples.png")
    colour = ctx.test.label if ctx.has_labels else np.arange(len(ctx.z_test))
    figures.save(figures.code_map(ctx.z_test, colour, "Test codes (PCA)", "label" if ctx.has_labels else "row"),
                 ctx.plots / "codes_2d.png")
    return {}


def train_inputs(ctx: EvalContext) -> np.ndarray:
    """The training split's inputs on the model's scale (pixels in [0, 1])."""
    return ctx.train.x.astype(np.float32) / (255.0 if ctx.train.kind == "image" else 1.0)


def gw_reference_set(ctx: EvalContext) -> np.ndarray:
    """The real set gw_distance compares the samples with (`evaluate.gw_reference`): the test
    inputs, or the training inputs (the DVAE authors' protocol; at most `max_train_codes`)."""
    return train_inputs(ctx) if ctx.gw_reference == "train" else ctx.test_x.cpu().numpy()


def gw_sample_count(ctx: EvalContext) -> int:
    """Samples gw_distance scores: as many as the points of the reference set it keeps (the
    authors compare equal-sized sets; the value depends on the size), at most `gw_points`."""
    n = len(ctx.train.index) if ctx.gw_reference == "train" else len(ctx.test_x)
    return n if ctx.gw_points is None else min(n, ctx.gw_points)


def topology_suite(ctx: EvalContext) -> dict[str, float]:
    """`trustworthiness` of the test codes; `bilipschitz` of the decoder from the test codes to
    their reconstructions; for models that generate, `gw_distance` of `gw_sample_count`
    samples against the reference set (`gw_reference_set`, capped at `gw_points`) and
    `offmanifold_rate` against the training data (aebench.metrics.topology)."""
    from aebench.metrics.topology import bilipschitz, topology_metrics

    samples = model_samples(ctx)
    generated = None if samples is None else samples[:gw_sample_count(ctx)]
    out = topology_metrics(ctx.test_x.cpu().numpy(), generated, ctx.z_test, train_inputs(ctx), k=ctx.k,
                           max_points=ctx.gw_points, seed=ctx.seed, gw_real=gw_reference_set(ctx))
    rows = recon_rows(ctx)
    if len(rows) >= 2:
        x_hat = ctx.extra["x_hat"] if "x_hat" in ctx.extra else decode_all(ctx.model, ctx.z_test[rows], dtype=ctx.dtype)
        out["bilipschitz"] = bilipschitz(ctx.z_test[rows], x_hat, seed=ctx.seed)
    return out


def model_suite(ctx: EvalContext) -> dict[str, float]:
    """Metrics only one model defines (its `extra_metrics` hook)."""
    return ctx.model.extra_metrics(ctx)


def _dataset_suites() -> list[Suite]:
    """Suites that decide from the data whether they apply: lines interpolation (the ACAI
    benchmark), disentanglement (datasets with factors), OoD detection (a companion given)."""
    from aebench.metrics.disentanglement import disentanglement_suite
    from aebench.metrics.interpolation import interpolation_suite
    from aebench.metrics.ood import ood_suite

    return [interpolation_suite, disentanglement_suite, ood_suite]


Suite = Callable[[EvalContext], dict[str, float]]
SUITES: list[Suite] = [reconstruction_suite, likelihood_suite, representation_suite, figures_suite, topology_suite,
                       model_suite, joint_probe_suite]


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
             max_recon: int = 2000, extra: dict | None = None, cluster_paper_restarts: int = 10,
             precision: str = "fp32", precision_key: str = "evaluate.precision", gw_reference: str = "test",
             gw_points: int | None = GW_POINTS) -> dict[str, float]:
    """Run every suite; write metrics.json and plots/ under `out_dir`; return the metrics.
    `precision` (from the params key `precision_key`) is that of the encoder and decoder
    passes and of sampling; the metrics are computed in fp32/float64 from their outputs.
    `gw_reference` and `gw_points` are gw_distance's protocol (`EvalConfig`)."""
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
        k=k, seed=seed, plots=out_dir / "plots", figure_examples=figure_examples, extra=dict(extra or {}),
        max_recon=max_recon, cluster_paper_restarts=cluster_paper_restarts,
        gw_reference=gw_reference, gw_points=gw_points,
    )
    ctx.plots.mkdir(parents=True, exist_ok=True)
    metrics: dict[str, float] = {}
    for suite in SUITES + _dataset_suites():
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
