"""Metrics: pure functions of numpy arrays, each with known-answer tests.

`DIRECTIONS` says, for every key that can appear in `eval/<dataset>/<model>/metrics.json`,
whether larger ("max") or smaller ("min") is better. The report marks the best model per
column with it and `aebench promote` decides whether a new version beats the champion.
"""

DIRECTIONS: dict[str, str] = {
    "recon_mse": "min",
    "psnr": "max",
    "neg_elbo": "min",
    "knn_acc": "max",
    "linear_acc": "max",
    "linear_acc_joint": "max",
    "cluster_acc": "max",
    "cluster_acc_paper": "max",
    "nmi": "max",
    "interp_mean_distance": "min",
    "interp_smoothness": "min",
    "dci_disentanglement": "max",
    "dci_completeness": "max",
    "dci_informativeness": "max",
    "mig": "max",
    "ood_auroc": "max",
    "gw_distance": "min",
    "bilipschitz": "min",
    "trustworthiness": "max",
    "offmanifold_rate": "min",
    "coding_cost_nats": "min",
    "coding_cost_recon_nats": "min",
    "coding_cost_total_nats": "min",
    "knn_acc_sampled": "max",
    "content_acc": "max",
    "content_acc_accumulated": "max",
    "style_acc": "min",
    "heldout_content_acc": "max",
    "heldout_content_acc_accumulated": "max",
    "heldout_style_acc": "min",
    "train_seconds": "min",
    "train_samples_per_s": "max",
    "eval_seconds": "min",
}


def direction(metric: str) -> str:
    """'max' or 'min' for a metric key; KeyError names the known keys."""
    try:
        return DIRECTIONS[metric]
    except KeyError:
        raise KeyError(f"unknown metric {metric!r}; known: {', '.join(sorted(DIRECTIONS))}") from None
