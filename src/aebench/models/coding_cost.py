"""The coding-cost claim of the ACN paper, shared by the models it compares.

The claim (Graves, Menick & van den Oord 2018): ACN's codes are cheap to send and stay
informative under an autoregressive decoder, where a VAE's codes collapse. `claim_suite`
measures it for every model that takes part (each declares `CLAIM_METRICS`, or a set of its
own that contains the suite):
- `coding_cost_nats`: what sending the test codes costs per datum (ACN: the KL along the
  nearest-neighbour chain; VAE: KL(q || N(0, I))), `coding_cost_recon_nats` the
  reconstruction term beside it and `coding_cost_total_nats` their sum;
- `knn_acc_sampled`: k-NN accuracy on codes drawn from the posterior rather than its mean,
  which falls to chance when the posterior collapses even where the means still cluster
  (the evaluator's `knn_acc` on the means stands beside it).
A model taking part provides `claim_costs(ctx) -> (coding, reconstruction, total)` and
`sampled_codes(ctx) -> (train codes, test codes)`; the suite seeds torch for both.

The suite lives in a module of its own, not in either model's, so that each model's runs
depend on this protocol and their own code only (`aebench.plan.model_sources`): editing one
of the compared models reruns that model's runs alone.
"""

from __future__ import annotations

import torch

from aebench.metrics.representation import knn_acc
from aebench.models.base import OwnMetrics

CLAIM_DIRECTIONS: dict[str, str] = {
    "coding_cost_nats": "min",
    "coding_cost_recon_nats": "min",
    "coding_cost_total_nats": "min",
    "knn_acc_sampled": "max",
}
CLAIM_KEY_METRICS = ("coding_cost_nats",)


@torch.no_grad()
def claim_suite(ctx) -> dict[str, float]:
    """The claim metrics of `ctx.model` (module docs); knn_acc_sampled only with labels."""
    model = ctx.model
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(ctx.seed)
        coding, recon, total = model.claim_costs(ctx)
        out = {"coding_cost_nats": coding, "coding_cost_recon_nats": recon, "coding_cost_total_nats": total}
        if ctx.has_labels:
            z_train, z_test = model.sampled_codes(ctx)
            out["knn_acc_sampled"] = knn_acc(z_train, ctx.train.label, z_test, ctx.test.label, k=ctx.k)
    return out


# What a model taking part in the claim declares (`own_metrics`).
CLAIM_METRICS = OwnMetrics(suites=(claim_suite,), directions=CLAIM_DIRECTIONS, key=CLAIM_KEY_METRICS)
