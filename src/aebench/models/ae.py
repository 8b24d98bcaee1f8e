"""The plain deterministic autoencoder: the baseline of every paper here.

Loss: the negative log-likelihood of the input under the decoder's output (Bernoulli on pixel
intensities for images, a Gaussian with a learned scale for vectors: `base.Likelihood`), with
the mean squared error reported beside it. Not the squared error through a sigmoid: on sparse
images (ACAI's lines, ~5% lit pixels) its gradient vanishes once the logits are negative, and
the net settled on an all-black output from the first epoch. ACAI's own baseline, MSE on
[-1, 1] pixels with a linear output, is `paper_ae`. The representation is the encoder's output.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from aebench.models import register
from aebench.models.base import AutoEncoderBase, DataInfo, Likelihood, ModelConfig


class AEConfig(ModelConfig):
    pass


@register("ae")
class AE(AutoEncoderBase):
    config_class = AEConfig

    def __init__(self, config: AEConfig, info: DataInfo):
        super().__init__(config, info)
        self.encoder, self.decoder = self.encoder_net(config.latent_dim), self.decoder_net()
        self.output = Likelihood(info.kind)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder(x)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.output.mean(self.decoder(z))

    def loss(self, batch: dict[str, torch.Tensor], step: int) -> dict[str, torch.Tensor]:
        x = batch["x"]
        out = self.decoder(self.encode(x))
        nll = self.output.nll(out, x).mean()
        return {"loss": nll, "nll": nll, "mse": F.mse_loss(self.output.mean(out).detach(), x)}
