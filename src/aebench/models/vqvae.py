"""VQ-VAE with an exponential-moving-average codebook (van den Oord et al. 2017), as the ACAI
paper's baseline: the authors' `vqvae.py` with `lib/discretization.py` (a tensor2tensor
discrete bottleneck, `ema=True`, one block, one residual).

The continuous code z = enc(x) (the representation, and what interpolations mix) reaches the
decoder through a discrete bottleneck:

1. a linear map to `num_latents` = 10 vectors of the code's size d;
2. each replaced by its nearest entry (Euclidean) of a codebook of 2^`z_log_size` = 2^14
   vectors, with the straight-through gradient h = v + stop_grad(e - v);
3. ReLU, a linear map to `filter_size` = 512, ReLU, a linear map back to d, then the decoder.

Loss (the paper's [-1, 1] pixels): mse(x, x_hat) + `beta` mean((v - stop_grad(e))^2),
beta = 10 (the commitment term). The codebook is not learned by gradient: after each training
forward pass, with decay 0.999 and Laplace smoothing epsilon = 1e-5,
`count <- decay count + (1 - decay) n_k`, `sum <- decay sum + (1 - decay) sum of v assigned
to k`, `e_k = sum_k / ((count_k + eps) / (N + K eps) N)` with N = sum of counts, exactly as
the authors' code (entries never chosen drift away and stay unused, as there). The codebook
starts uniform in +- sqrt(3 / K) (`tf.uniform_unit_scaling_initializer`); the dense layers are
Glorot-uniform like `tf.layers.dense`. Under data-parallel training the codebook statistics
are summed over the ranks, so every rank keeps the same codebook.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import nn

from aebench import distributed
from aebench.models import register
from aebench.models.acai_family import PaperPixelAE, mse
from aebench.models.base import DataInfo, ModelConfig


class VQVAEConfig(ModelConfig):
    z_log_size: int = Field(14, ge=1, le=20, description="log2 of the number of codebook entries")
    beta: float = Field(10.0, ge=0, description="weight of the commitment term")
    num_latents: int = Field(10, ge=1, description="discrete latents per datum")
    decay: float = Field(0.999, gt=0, lt=1, description="EMA decay of the codebook statistics")
    epsilon: float = Field(1e-5, gt=0, description="Laplace smoothing of the codebook counts")
    filter_size: int = Field(512, gt=0, description="hidden units after the bottleneck")


def _dense(a: int, b: int) -> nn.Linear:
    layer = nn.Linear(a, b)
    nn.init.xavier_uniform_(layer.weight)
    nn.init.zeros_(layer.bias)
    return layer


@register("vqvae")
class VQVAE(PaperPixelAE):
    config_class = VQVAEConfig

    def __init__(self, config: VQVAEConfig, info: DataInfo):
        super().__init__(config, info)
        d, k = config.latent_dim, 2 ** config.z_log_size
        self.expand = _dense(d, d * config.num_latents)
        self.hidden = _dense(d * config.num_latents, config.filter_size)
        self.project = _dense(config.filter_size, d)
        bound = math.sqrt(3.0 / k)
        codebook = torch.empty(k, d).uniform_(-bound, bound)
        self.register_buffer("codebook", codebook)
        self.register_buffer("ema_count", torch.zeros(k))
        self.register_buffer("ema_sum", codebook.clone())

    def autoencoder_parameters(self) -> list[nn.Parameter]:
        return list(self.parameters())

    def quantize(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(pre-quantisation vectors v (B, num_latents, d), their nearest codebook entries e
        (no gradient), the entries' indices) for codes z (B, d)."""
        v = self.expand(z).view(len(z), self.config.num_latents, -1)
        with torch.no_grad():
            flat = v.reshape(-1, v.shape[-1])
            dist = (flat.pow(2).sum(1, keepdim=True) - 2 * flat @ self.codebook.T
                    + self.codebook.pow(2).sum(1)[None, :])
            idx = dist.argmin(1)
            e = self.codebook[idx].view_as(v)
        return v, e, idx

    def _bottleneck(self, v: torch.Tensor, e: torch.Tensor) -> torch.Tensor:
        """Straight-through (value e, gradient to v), then the two dense layers."""
        h = v + (e - v).detach()
        return self.project(F.relu(self.hidden(F.relu(h.flatten(1)))))

    def decode_raw(self, z: torch.Tensor) -> torch.Tensor:
        v, e, _ = self.quantize(z)
        return self.decoder(self._bottleneck(v, e))

    @torch.no_grad()
    def _ema_update(self, v: torch.Tensor, idx: torch.Tensor) -> None:
        c = self.config
        k = self.codebook.shape[0]
        flat = v.reshape(-1, v.shape[-1])
        counts = torch.bincount(idx, minlength=k).to(flat.dtype)
        sums = torch.zeros_like(self.ema_sum).index_add_(0, idx, flat)
        if distributed.active():  # under torchrun: the statistics of the whole global batch
            torch.distributed.all_reduce(counts)
            torch.distributed.all_reduce(sums)
        self.ema_count.mul_(c.decay).add_(counts, alpha=1 - c.decay)
        self.ema_sum.mul_(c.decay).add_(sums, alpha=1 - c.decay)
        n = self.ema_count.sum()
        smoothed = (self.ema_count + c.epsilon) / (n + k * c.epsilon) * n
        self.codebook.copy_(self.ema_sum / smoothed[:, None])

    def loss(self, batch: dict[str, torch.Tensor], step: int) -> dict[str, torch.Tensor]:
        """In training mode the codebook moves after the forward pass (the authors' graph ties
        the EMA update to the loss); validation leaves it alone."""
        x = self.to_paper(batch["x"])
        v, e, idx = self.quantize(self.encoder(x))
        recon = mse(x, self.decoder(self._bottleneck(v, e)))
        commit = (v - e).pow(2).mean()
        if self.training and torch.is_grad_enabled():
            self._ema_update(v.detach(), idx)
        used = torch.unique(idx).numel() / self.codebook.shape[0]
        return {"loss": recon + self.config.beta * commit, "mse": recon, "commitment": commit,
                "codebook_used": torch.tensor(used)}
