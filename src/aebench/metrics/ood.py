"""Out-of-distribution detection: AUROC of a per-datum anomaly score, and its ROC curve.

Convention: higher score = more anomalous; out-of-distribution data are the positives. The
AUROC is the probability that a random OoD datum scores above a random in-distribution one,
ties counting one half (the Mann-Whitney statistic), so 1 is perfect separation, 0.5 chance
and 0 a perfectly inverted score.

`ood_suite` scores the test split and its OoD companion (`ctx.extra["ood_x"]`, model-ready
inputs provided by the evaluator, with the companion's name in `ctx.extra["ood_name"]`) by:
- the model's own `score_ood(x)` where it has one (GWAE: its critic on (dec(z), z), as in
  the authors' `clu.py`);
- otherwise -log N(z; 0, I) at the encoded mean z = encode(x) (the authors' score for every
  other model; for models whose prior is not N(0, I), e.g. a plain AE, it is still a
  distance-from-origin score and says how atypical the code is);
and, for models with a likelihood, also by the negative ELBO (`ood_auroc_neg_elbo`). It writes
`roc.png` (both curves) and `roc.csv` (score, fpr, tpr, threshold) under `ctx.plots`.

MNIST vs Omniglot, the GWAE paper's pair: the paper keeps Omniglot's dark strokes on white
against MNIST's white on black, so its AUROC includes a polarity cue (mean brightness alone
separates the two sets); aebench inverts Omniglot by default, which removes that cue, and
`data.options.omniglot.invert: false` restores the paper's setting. Report which was used.
"""

from __future__ import annotations

import csv
import io
import logging
import math

import numpy as np
from scipy.stats import rankdata

__all__ = ["auroc", "roc_curve", "gaussian_nll", "ood_suite"]

log = logging.getLogger(__name__)


def _scores(scores_in, scores_out) -> tuple[np.ndarray, np.ndarray]:
    s_in = np.asarray(scores_in, dtype=np.float64).ravel()
    s_out = np.asarray(scores_out, dtype=np.float64).ravel()
    if len(s_in) == 0 or len(s_out) == 0:
        raise ValueError(f"need scores for both sets, got {len(s_in)} in-distribution and {len(s_out)} OoD")
    if not (np.isfinite(s_in).all() and np.isfinite(s_out).all()):
        raise ValueError("anomaly scores must be finite")
    return s_in, s_out


def auroc(scores_in, scores_out) -> float:
    """Area under the ROC curve with OoD as the positive class (ties count 1/2)."""
    s_in, s_out = _scores(scores_in, scores_out)
    ranks = rankdata(np.concatenate([s_in, s_out]))
    n_in, n_out = len(s_in), len(s_out)
    u = ranks[n_in:].sum() - n_out * (n_out + 1) / 2.0
    return float(u / (n_in * n_out))


def roc_curve(scores_in, scores_out) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(fpr, tpr, thresholds): one point per distinct score, flagging `score >= threshold`,
    from (0, 0) at threshold +inf to (1, 1); the trapezoid area under it equals `auroc`."""
    s_in, s_out = _scores(scores_in, scores_out)
    scores = np.concatenate([s_in, s_out])
    positive = np.concatenate([np.zeros(len(s_in)), np.ones(len(s_out))])
    order = np.argsort(-scores, kind="mergesort")
    scores, positive = scores[order], positive[order]
    last_of_value = np.r_[np.flatnonzero(np.diff(scores)), len(scores) - 1]
    tp = np.cumsum(positive)[last_of_value]
    fp = (last_of_value + 1) - tp
    fpr = np.r_[0.0, fp / len(s_in)]
    tpr = np.r_[0.0, tp / len(s_out)]
    return fpr, tpr, np.r_[np.inf, scores[last_of_value]]


def gaussian_nll(z) -> np.ndarray:
    """-log N(z; 0, I) per row, in nats."""
    z = np.asarray(z, dtype=np.float64)
    return 0.5 * (z ** 2 + math.log(2 * math.pi)).sum(axis=1)


def _model_scores(model, x, batch_size: int = 512, codes=None):
    """(name, scores) from the model's own score_ood, else the Gaussian code score (of
    `codes` when the caller has them already: the evaluator's test codes)."""
    import torch

    from aebench.batching import iterate_batches

    with torch.no_grad():
        if model.score_ood(x[:2]) is not None:
            own = [model.score_ood(b["x"]) for b in iterate_batches({"x": x}, batch_size)]
            return "score_ood", torch.cat(own).double().cpu().numpy()
        if codes is None:
            codes = torch.cat([model.encode(b["x"]) for b in iterate_batches({"x": x}, batch_size)]).cpu().numpy()
    return "-log N(encode(x); 0, I)", gaussian_nll(codes)


def _neg_elbo(model, x, seed: int, batch_size: int = 512):
    import torch

    from aebench.batching import iterate_batches

    with torch.no_grad():
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


def ood_suite(ctx) -> dict[str, float]:
    """ood_auroc (and ood_auroc_neg_elbo) where the evaluator provided an OoD companion."""
    x_out = ctx.extra.get("ood_x")
    if x_out is None:
        return {}
    from aebench import figures

    name = ctx.extra.get("ood_name", "OoD")
    x_in = ctx.test_x
    if tuple(x_out.shape[1:]) != tuple(x_in.shape[1:]):
        raise ValueError(f"the OoD companion {name!r} has items of shape {tuple(x_out.shape[1:])}, the test split "
                         f"{tuple(x_in.shape[1:])}: pair datasets of the same shape (for mnist and omniglot, set "
                         "the same `data.options.<dataset>.size` and `channels` for both in params.yaml)")
    x_out = _balanced(x_in, x_out.to(x_in.device), ctx.seed)
    curves, out = [], {}
    score_name, s_in = _model_scores(ctx.model, x_in, codes=ctx.z_test)
    s_out = _model_scores(ctx.model, x_out)[1]
    out["ood_auroc"] = auroc(s_in, s_out)
    curves.append((score_name, *roc_curve(s_in, s_out), out["ood_auroc"]))
    e_in = ctx.extra.get("neg_elbo_test")  # the likelihood suite's, same seed and batches
    if e_in is None:
        e_in = _neg_elbo(ctx.model, x_in, ctx.seed)
    if e_in is not None:
        e_out = _neg_elbo(ctx.model, x_out, ctx.seed)
        out["ood_auroc_neg_elbo"] = auroc(e_in, e_out)
        curves.append(("negative ELBO", *roc_curve(e_in, e_out), out["ood_auroc_neg_elbo"]))
    log.info("OoD vs %s: %s", name, ", ".join(f"{c[0]} AUROC {c[-1]:.4f}" for c in curves))
    _write_curves(curves, ctx.plots, name, figures)
    return out


def _write_curves(curves, plots, name: str, figures) -> None:
    import matplotlib.pyplot as plt

    from aebench.io import atomic_path

    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(["score", "fpr", "tpr", "threshold"])
    fig, ax = plt.subplots(figsize=(4.5, 4))
    for label, fpr, tpr, thr, area in curves:
        writer.writerows([label, f"{a:.6g}", f"{b:.6g}", f"{c:.6g}"] for a, b, c in zip(fpr, tpr, thr))
        ax.plot(fpr, tpr, label=f"{label} (AUROC {area:.3f})")
    ax.plot([0, 1], [0, 1], "k--", linewidth=0.8)
    ax.set_xlabel("false positive rate (in-distribution flagged)")
    ax.set_ylabel("true positive rate (OoD flagged)")
    ax.set_title(f"OoD detection: test split vs {name}", fontsize=10)
    ax.legend(fontsize=7, loc="lower right")
    plots.mkdir(parents=True, exist_ok=True)
    figures.save(fig, plots / "roc.png")
    with atomic_path(plots / "roc.csv") as tmp:
        tmp.write_text(buf.getvalue())
