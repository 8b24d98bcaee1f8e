"""Metrics: pure functions of numpy arrays, each with known-answer tests. Nothing here knows
the evaluator, a model or a dataset: `aebench.evaluation.suites` feeds them arrays.

`DIRECTIONS` says, for every key the shared evaluation suites write into
`eval/<dataset>/<model>/seed<seed>/metrics.json`, whether larger ("max") or smaller ("min") is better.
Models declare the directions of their own metrics; `aebench.evaluation.directions` joins
them all for the report and `aebench promote`.
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
    "ood_auroc_neg_elbo": "max",
    "ood_auroc_flipped": "max",
    "ood_auroc_neg_elbo_flipped": "max",
    "gw_distance": "min",
    "bilipschitz": "min",
    "trustworthiness": "max",
    "offmanifold_rate": "min",
}
