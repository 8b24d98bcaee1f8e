"""The ML-VAE's group posterior and initialisation, shared by the model and its evaluation.

A group's content posterior is the product of its members' Gaussians (no prior in the
product), so evidence accumulates: precisions add (see `group_posterior`).
"""

from __future__ import annotations

import math

import torch
from torch import nn


def gaussian_kl(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, diag exp(logvar)) || N(0, I)) per row, in nats."""
    return 0.5 * (mu.pow(2) + logvar.exp() - 1 - logvar).sum(1)


def group_posterior(mu: torch.Tensor, logvar: torch.Tensor, group_index: torch.Tensor,
                    n_groups: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Product of the Gaussians N(mu_i, exp(logvar_i)) of each group's members, without a prior.

    `group_index` (B,) numbers each row's group 0..G-1. Returns (mu_G, logvar_G), each (G, D).
    The log-precision of a group is a log-sum-exp of its members' -logvar (shifted by the
    group's largest term, detached: the value and gradient do not depend on the shift), and
    each member's weight in the mean, precision_i / precision_G = exp(-logvar_i - logprec_G),
    lies in (0, 1], so nothing overflows however certain a member is.
    """
    n_groups = int(group_index.max()) + 1 if n_groups is None else n_groups
    neg = -logvar
    idx = group_index[:, None].expand_as(neg)
    shift = torch.full((n_groups, neg.shape[1]), -math.inf, dtype=neg.dtype, device=neg.device)
    shift = shift.scatter_reduce(0, idx, neg.detach(), "amax", include_self=True)
    total = torch.zeros_like(shift).index_add(0, group_index, torch.exp(neg - shift[group_index]))
    log_precision = shift + torch.log(total)
    weights = torch.exp(neg - log_precision[group_index])
    mu_g = torch.zeros_like(shift).index_add(0, group_index, weights * mu)
    return mu_g, -log_precision


def lecun_normal_(module: nn.Module) -> None:
    """N(0, 1/fan_in) for weights and, as in the authors' code, N(0, 1/len) for biases."""
    if isinstance(module, nn.Linear):
        with torch.no_grad():
            module.weight.normal_(0.0, module.in_features ** -0.5)
            if module.bias is not None:
                module.bias.normal_(0.0, module.bias.numel() ** -0.5)
