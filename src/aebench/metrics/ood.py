"""Out-of-distribution detection: AUROC of a per-datum anomaly score, and its ROC curve.

Convention: higher score = more anomalous; out-of-distribution data are the positives. The
AUROC is the probability that a random OoD datum scores above a random in-distribution one,
ties counting one half (the Mann-Whitney statistic), so 1 is perfect separation, 0.5 chance
and 0 a perfectly inverted score.

Pure functions of the scores; the evaluator's `ood_suite` (aebench.evaluation.suites) scores
the test split against its dataset's OoD companion with them.

MNIST vs Omniglot, the GWAE paper's pair: the paper keeps Omniglot's dark strokes on white
against MNIST's white on black, so its AUROC includes a polarity cue (mean brightness alone
separates the two sets); aebench inverts Omniglot by default, which removes that cue, and
`data.options.omniglot.invert: false` restores the paper's setting. Report which was used.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.stats import rankdata

__all__ = ["auroc", "roc_curve", "gaussian_nll"]


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
