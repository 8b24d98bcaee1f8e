"""The evaluation suites: functions of an `EvalContext` that return a dict of metrics (and
may write figures under `ctx.plots`). Each decides for itself whether it applies (labels
present, factors present, an OoD companion given...); the numbers come from the pure
functions of `aebench.metrics`.

`SUITES` is the order the evaluator runs them in. `model_suite` runs the suites the model
declares (`own_metrics`), so the evaluator never names a model's own metrics.
"""

from __future__ import annotations

import csv
import io
import logging
from typing import Callable

import numpy as np
import torch

from aebench.batching import iterate_batches
from aebench import figures
from aebench.evaluation.context import EvalContext, decode_paper_range
from aebench.io import atomic_path
from aebench.metrics.disentanglement import dci, mig
from aebench.metrics.interpolation import N_PAIRS, N_STEPS, interpolate_codes, lines_metrics
from aebench.metrics.ood import auroc, gaussian_nll, roc_curve
from aebench.metrics.reconstruction import psnr, recon_mse
from aebench.metrics.representation import cluster_acc_paper, cluster_scores, knn_acc, linear_acc, linear_head_acc
from aebench.metrics.topology import bilipschitz, topology_metrics

log = logging.getLogger(__name__)

Suite = Callable[[EvalContext], dict[str, float]]


def reconstruction_suite(ctx: EvalContext) -> dict[str, float]:
    """`recon_mse` (and `psnr` for images) of the `recon_rows` test rows."""
    x = ctx.test_x[ctx.recon_rows].cpu().numpy()
    out = {"recon_mse": recon_mse(x, ctx.x_hat)}
    if ctx.test.kind == "image":
        out["psnr"] = psnr(x, np.clip(ctx.x_hat, 0, 1))
    return out


def likelihood_suite(ctx: EvalContext) -> dict[str, float]:
    """neg_elbo in nats per datum, with a fixed noise seed, for models with a likelihood."""
    values = ctx.neg_elbo_test
    return {} if values is None else {"neg_elbo": float(values.mean())}


def representation_suite(ctx: EvalContext) -> dict[str, float]:
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
    head = ctx.joint_probe
    if head is None or not ctx.has_labels:
        return {}
    weight, bias = head["head.weight"].double().numpy(), head["head.bias"].double().numpy()
    return {"linear_acc_joint": linear_head_acc(weight, bias, ctx.z_test, ctx.test.label)}


def figures_suite(ctx: EvalContext) -> dict[str, float]:
    """Reconstructions, samples and the 2-D map of the test codes; no metrics."""
    n = ctx.figure_examples
    shown = ctx.recon_rows[:n]
    x = ctx.test_x[shown].cpu().numpy()
    draw = figures.image_grid if ctx.test.kind == "image" else figures.vector_scatter
    if ctx.test.kind == "image":
        rows = [x, ctx.x_hat[:n]]
    else:
        rows = [ctx.test_x.cpu().numpy(), ctx.x_hat]
    figures.save(draw(rows, ["data", "recon."], "Test reconstructions"), ctx.plots / "reconstructions.png")
    samples = ctx.samples
    if samples is not None:
        s = samples[:ctx.figure_sample_count]
        rows = [s[:n], s[n:2 * n]] if ctx.test.kind == "image" else [ctx.test_x.cpu().numpy(), s]
        titles = ["", ""] if ctx.test.kind == "image" else ["data", "samples"]
        figures.save(draw(rows, titles, "Samples"), ctx.plots / "samples.png")
    colour = ctx.test.label if ctx.has_labels else np.arange(len(ctx.z_test))
    figures.save(figures.code_map(ctx.z_test, colour, "Test codes (PCA)", "label" if ctx.has_labels else "row"),
                 ctx.plots / "codes_2d.png")
    return {}


def topology_suite(ctx: EvalContext) -> dict[str, float]:
    """`trustworthiness` of the test codes; `bilipschitz` of the decoder from the test codes to
    their reconstructions; for models that generate, `gw_distance` of `gw_sample_count`
    samples against the reference set (`gw_reference_set`, capped at `gw_points`) and
    `offmanifold_rate` against the training data (aebench.metrics.topology)."""
    samples = ctx.samples
    generated = None if samples is None else samples[:ctx.gw_sample_count]
    out = topology_metrics(ctx.test_x.cpu().numpy(), generated, ctx.z_test, ctx.train_inputs, k=ctx.k,
                           max_points=ctx.gw_points, seed=ctx.seed, gw_real=ctx.gw_reference_set)
    rows = ctx.recon_rows
    if len(rows) >= 2:
        out["bilipschitz"] = bilipschitz(ctx.z_test[rows], ctx.x_hat, seed=ctx.seed)
    return out


def model_suite(ctx: EvalContext) -> dict[str, float]:
    """Metrics only the model defines: the suites it declares (`own_metrics`), in order."""
    out: dict[str, float] = {}
    for suite in ctx.model.own_metrics.suites:
        out.update(suite(ctx))
    return out


def interpolation_suite(ctx: EvalContext) -> dict[str, float]:
    """On `lines`, the ACAI benchmark's `interp_mean_distance` and `interp_smoothness`
    (aebench.metrics.interpolation) from 256 test pairs x 16 steps; on every image dataset,
    the figure `interpolations.png` (a few of those pairs, decoded).

    Pairs: a seeded random choice of 512 distinct test rows (the same for every model, as the
    seed is the evaluate section's), the first 256 paired with the last 256, like the
    authors' pool of 512 test images. Codes are the evaluator's `ctx.z_test` (the model's
    deterministic `encode`). The metrics score the raw decoder output in the paper's [-1, 1]
    range (`decode_paper_range`); the figure shows it clipped to [0, 1].
    """
    if ctx.test.kind != "image":
        return {}
    n = len(ctx.z_test)
    pairs = min(N_PAIRS, n // 2)
    if pairs == 0:
        return {}
    rows = np.random.default_rng(ctx.seed).choice(n, 2 * pairs, replace=False)
    is_lines = ctx.test.dataset == "lines"
    shown = pairs if is_lines else min(pairs, ctx.figure_examples)
    codes = interpolate_codes(ctx.z_test[rows[:shown]], ctx.z_test[rows[pairs:pairs + shown]])
    decoded = decode_paper_range(ctx.model, codes.reshape(-1, codes.shape[-1]))
    decoded = decoded.reshape(shown, N_STEPS, *decoded.shape[1:])
    strips = min(shown, ctx.figure_examples)
    figures.save(figures.image_grid(list(np.clip((decoded[:strips] + 1.0) / 2.0, 0.0, 1.0)),
                                    [f"pair {i + 1}" for i in range(strips)],
                                    f"Latent interpolations ({N_STEPS} steps, ends are reconstructions)"),
                 ctx.plots / "interpolations.png")
    if not is_lines:
        return {}
    metrics = lines_metrics(decoded, size=decoded.shape[-1])
    return {"interp_mean_distance": metrics["mean_distance"], "interp_smoothness": metrics["smoothness"]}


def disentanglement_suite(ctx: EvalContext, max_codes: int = 10000) -> dict[str, float]:
    """DCI and MIG (aebench.metrics.disentanglement) of the test codes against the test split's
    factor columns, where it has any (shapes, lines, dSprites...); at most `max_codes` codes,
    sampled with the eval seed."""
    names = sorted(ctx.test.factors)
    if not names:
        return {}
    codes = np.asarray(ctx.z_test, dtype=np.float64)
    factors = np.stack([np.asarray(ctx.test.factors[n], dtype=np.float64) for n in names], axis=1)
    if len(codes) > max_codes:
        keep = np.sort(np.random.default_rng(ctx.seed).choice(len(codes), max_codes, replace=False))
        codes, factors = codes[keep], factors[keep]
    if not (factors.max(axis=0) > factors.min(axis=0)).any():
        return {}
    out = dci(codes, factors, seed=ctx.seed)
    if codes.shape[1] >= 2:
        out["mig"] = mig(codes, factors)
    return out


@torch.no_grad()
def _ood_scores(model, x, batch_size: int = 512, codes=None) -> tuple[str, np.ndarray]:
    """(name, scores) from the model's own score_ood, else the Gaussian code score (of
    `codes` when the caller has them already: the evaluator's test codes)."""
    if model.score_ood(x[:2]) is not None:
        own = [model.score_ood(b["x"]) for b in iterate_batches({"x": x}, batch_size)]
        return "score_ood", torch.cat(own).double().cpu().numpy()
    if codes is None:
        codes = torch.cat([model.encode(b["x"]) for b in iterate_batches({"x": x}, batch_size)]).cpu().numpy()
    return "-log N(encode(x); 0, I)", gaussian_nll(codes)


@torch.no_grad()
def _neg_elbo(model, x, seed: int, batch_size: int = 512) -> np.ndarray | None:
    if model.neg_elbo(x[:2]) is None:
        return None
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return torch.cat([model.neg_elbo(b["x"]) for b in iterate_batches({"x": x}, batch_size)]).double().cpu().numpy()


def _balanced(x_in, x_out, seed: int):
    """The OoD set subsampled (without replacement) to at most the in-distribution size."""
    if len(x_out) <= len(x_in):
        return x_out
    keep = np.sort(np.random.default_rng(seed).choice(len(x_out), len(x_in), replace=False))
    return x_out[keep]


def ood_suite(ctx: EvalContext) -> dict[str, float]:
    """`ood_auroc` (and `ood_auroc_neg_elbo`) where the evaluator has an OoD companion
    (aebench.metrics.ood): the test split against the companion's test split, scored by
    - the model's own `score_ood(x)` where it has one (GWAE: its critic on (dec(z), z), as in
      the authors' `clu.py`);
    - otherwise -log N(z; 0, I) at the encoded mean z = encode(x) (the authors' score for
      every other model; for models whose prior is not N(0, I), e.g. a plain AE, it is still a
      distance-from-origin score and says how atypical the code is);
    and, for models with a likelihood, also by the negative ELBO.

    For images the same scores are also taken against the companion with its polarity
    flipped (x -> 1 - x), keys ending in `_flipped`: the same shapes without the brightness
    cue. A companion whose mean brightness differs from the data's (Omniglot's dark strokes
    on white against MNIST's white on black) is separated by brightness alone; the flipped
    AUROC says whether a score sees more than that. Writes `roc.png` (every curve) and
    `roc.csv` (score, fpr, tpr, threshold) under `ctx.plots`."""
    if ctx.ood is None:
        return {}
    name, x_out = ctx.ood.name, ctx.ood.x
    x_in = ctx.test_x
    if tuple(x_out.shape[1:]) != tuple(x_in.shape[1:]):
        raise ValueError(f"the OoD companion {name!r} has items of shape {tuple(x_out.shape[1:])}, the test split "
                         f"{tuple(x_in.shape[1:])}: pair datasets of the same shape (for mnist and omniglot, set "
                         "the same `data.options.<dataset>.size` and `channels` for both in params.yaml)")
    x_out = _balanced(x_in, x_out.to(x_in.device), ctx.seed)
    score_name, s_in = _ood_scores(ctx.model, x_in, codes=ctx.z_test)
    e_in = None if ctx.neg_elbo_test is None else ctx.neg_elbo_test.double().numpy()  # the likelihood suite's
    companions = [("", name, x_out)]
    if ctx.test.kind == "image":
        companions.append(("_flipped", f"{name}, flipped", 1.0 - x_out))
    curves, out = [], {}
    for suffix, label, x in companions:
        s_out = _ood_scores(ctx.model, x)[1]
        out["ood_auroc" + suffix] = auroc(s_in, s_out)
        curves.append((f"{score_name} vs {label}", *roc_curve(s_in, s_out), out["ood_auroc" + suffix]))
        if e_in is not None:
            e_out = _neg_elbo(ctx.model, x, ctx.seed)
            out["ood_auroc_neg_elbo" + suffix] = auroc(e_in, e_out)
            curves.append((f"negative ELBO vs {label}", *roc_curve(e_in, e_out), out["ood_auroc_neg_elbo" + suffix]))
    log.info("OoD: %s", ", ".join(f"{c[0]} AUROC {c[-1]:.4f}" for c in curves))
    _write_roc(curves, ctx, name)
    return out


def _write_roc(curves: list[tuple], ctx: EvalContext, name: str) -> None:
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(["score", "fpr", "tpr", "threshold"])
    for label, fpr, tpr, thr, _ in curves:
        writer.writerows([label, f"{a:.6g}", f"{b:.6g}", f"{c:.6g}"] for a, b, c in zip(fpr, tpr, thr))
    ctx.plots.mkdir(parents=True, exist_ok=True)
    figures.save(figures.roc_figure(curves, name), ctx.plots / "roc.png")
    with atomic_path(ctx.plots / "roc.csv") as tmp:
        tmp.write_text(buf.getvalue())


SUITES: list[Suite] = [reconstruction_suite, likelihood_suite, representation_suite, figures_suite, topology_suite,
                       model_suite, joint_probe_suite, interpolation_suite, disentanglement_suite, ood_suite]
