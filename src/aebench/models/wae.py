"""Wasserstein autoencoder with the MMD penalty (Tolstikhin, Bousquet, Gelly, Schoelkopf;
ICLR 2018), a baseline of the GWAE paper.

A deterministic encoder Q and decoder G minimise
    c(x, G(Q(x))) + lambda * MMD_k(Q_Z, P_Z),    P_Z = N(0, pz_scale^2 I),
with c the squared L2 cost scaled as in the authors' code (`0.05 * sum_pixels (x - x_hat)^2`,
averaged over the batch) and the inverse multiquadratic kernel k(x, y) = C / (C + ||x - y||^2)
summed over the scales C = 2 d pz_scale^2 * {0.1, 0.2, 0.5, 1, 2, 5, 10}. The MMD is the
unbiased U-statistic for the within-sample terms (diagonals excluded) and the plain mean for
the cross term, as in `wae.py` of tolstikhin/wae. Their MNIST settings are the defaults:
lambda = 10, Adam with beta1 = 0.5, and truncated Gaussian input noise of std 0.01 during
training ("add_noise", a simple random encoder). The representation is Q(x).
"""

from __future__ import annotations

import torch
from pydantic import Field

from aebench.models import register
from aebench.models.base import AutoEncoderBase, DataInfo, ModelConfig, adam

IMQ_SCALES = (0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0)


class WAEConfig(ModelConfig):
    mmd_weight: float = Field(10.0, ge=0, description="lambda, the weight of the MMD penalty")
    recon_scale: float = Field(0.05, gt=0, description="c(x, y) = recon_scale * ||x - y||^2 (authors' l2sq)")
    pz_scale: float = Field(1.0, gt=0, description="std of the Gaussian prior")
    input_noise: float = Field(0.01, ge=0, description="std of truncated Gaussian noise added to inputs in training")
    adam_beta1: float = Field(0.5, ge=0, lt=1, description="Adam's beta1 (authors' value)")


def imq_mmd(qz: torch.Tensor, pz: torch.Tensor, c_base: float, scales=IMQ_SCALES) -> torch.Tensor:
    """Squared MMD between two equal-size samples with the multi-scale IMQ kernel."""
    n = len(qz)
    d_qq = torch.cdist(qz, qz).pow(2)
    d_pp = torch.cdist(pz, pz).pow(2)
    d_qp = torch.cdist(qz, pz).pow(2)
    off = 1.0 - torch.eye(n, device=qz.device)
    stat = qz.new_zeros(())
    for s in scales:
        c = c_base * s
        within = ((c / (c + d_qq) + c / (c + d_pp)) * off).sum() / (n * n - n)
        across = (c / (c + d_qp)).sum() * 2.0 / (n * n)
        stat = stat + within - across
    return stat


@register("wae")
class WAE(AutoEncoderBase):
    config_class = WAEConfig

    def __init__(self, config: WAEConfig, info: DataInfo):
        super().__init__(config, info)
        self.encoder, self.decoder = self.encoder_net(config.latent_dim), self.decoder_net()

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder(x)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        out = self.decoder(z)
        return torch.sigmoid(out) if self.info.kind == "image" else out

    def optimizers(self, lr: float) -> list[torch.optim.Optimizer]:
        return [adam(self.parameters(), lr, betas=(self.config.adam_beta1, 0.999))]

    def prior_codes(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        return self.config.pz_scale * torch.randn(n, self.config.latent_dim, generator=generator).to(self.device)

    def loss(self, batch: dict[str, torch.Tensor], step: int) -> dict[str, torch.Tensor]:
        cfg = self.config
        x = batch["x"]
        x_in = x
        if self.training and cfg.input_noise > 0:
            noise = torch.nn.init.trunc_normal_(torch.empty_like(x), std=cfg.input_noise,
                                                a=-2 * cfg.input_noise, b=2 * cfg.input_noise)
            x_in = x + noise
        z = self.encode(x_in)
        recon = cfg.recon_scale * (x - self.decode(z)).pow(2).flatten(1).sum(1).mean()
        mmd = imq_mmd(z, self.prior_codes(len(x)), 2.0 * cfg.latent_dim * cfg.pz_scale ** 2)
        return {"loss": recon + cfg.mmd_weight * mmd, "recon": recon, "mmd": mmd}

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        return self.decode(self.prior_codes(n, generator))
