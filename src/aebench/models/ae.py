"""The plain deterministic autoencoder: the baseline of every paper here.

Loss: mean squared error between the input and the reconstruction (ACAI's baseline uses
exactly this). The representation is the encoder's output.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from aebench.models import register
from aebench.models.base import AutoEncoderBase, DataInfo, Likelihood, ModelConfig
from aebench.nets import build_decoder, build_encoder


class AEConfig(ModelConfig):
    pass


@register("ae")
class AE(AutoEncoderBase):
    config_class = AEConfig

    def __init__(self, config: AEConfig, info: DataInfo):
        super().__init__(config, info)
        self.encoder = build_encoder(info.shape, config.latent_dim, config.arch, config.width)
        self.decoder = build_decoder(config.latent_dim, info.shape, config.arch, config.width)
        self.output = Likelihood(info.kind)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder(x)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.output.mean(self.decoder(z))

    def loss(self, batch: dict[str, torch.Tensor], step: int) -> dict[str, torch.Tensor]:
        x = batch["x"]
        mse = F.mse_loss(self.decode(self.encode(x)), x)
        return {"loss": mse, "mse": mse}
