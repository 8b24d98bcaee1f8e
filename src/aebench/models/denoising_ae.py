"""Denoising autoencoder: a baseline of the ACAI paper's comparison (the authors'
`denoising.py`, after Vincent et al. 2010).

The input is corrupted with additive Gaussian noise of standard deviation `noise` = 1.0 on
the paper's [-1, 1] pixels (half the pixel range, as strong as the authors chose), and the
autoencoder reconstructs the clean image: loss mse(x, dec(enc(x + noise eps))). The
representation is the code of the clean image. Validation uses noisy inputs too (the
trainer fixes their seed, so epochs are comparable).
"""

from __future__ import annotations

import torch
from pydantic import Field

from aebench.models import register
from aebench.models.acai_family import PaperPixelAE, mse
from aebench.models.base import ModelConfig


class DenoisingAEConfig(ModelConfig):
    noise: float = Field(1.0, ge=0, description="std of the Gaussian input noise, on [-1, 1] pixels")


@register("denoising_ae")
class DenoisingAE(PaperPixelAE):
    config_class = DenoisingAEConfig

    def loss(self, batch: dict[str, torch.Tensor], step: int) -> dict[str, torch.Tensor]:
        x = self.to_paper(batch["x"])
        noisy = x + self.config.noise * torch.randn_like(x)
        recon = mse(x, self.decoder(self.encoder(noisy)))
        return {"loss": recon, "mse": recon}
