"""Adversarial autoencoder (Makhzani et al. 2016) as a baseline of the ACAI paper's
comparison (the authors' `aae.py`).

A discriminator D on codes tells encoder outputs from samples of the prior N(0, I); the
encoder is trained to fool it, which shapes the code distribution into the prior. Per batch
(the paper's [-1, 1] pixels), z = enc(x), x_hat = dec(z), z_p ~ N(0, I):

* discriminator: BCE(D(z_p), 1) + BCE(D(z), 0), Adam at `adversary_lr` (the paper: 1e-4, the
  same as its autoencoder's rate; by default here the training rate, which keeps that 1:1
  ratio when a short budget raises `train.lr`: at 1e-3 against 1e-4 the encoder outruns the
  discriminator, which then scores every code "prior" and every prior draw "code");
* autoencoder:   mse(x, x_hat) + `advweight` BCE(D(z), 1) (weight 1 in the paper), Adam at the
  training learning rate;

both taken simultaneously from one forward pass (`acai_family.simultaneous_step`).
D is an MLP with `disc_layer_sizes` = (100, 100) hidden units, LeakyReLU(0.2) (TensorFlow's
default slope) and one logit, Glorot-uniform initialised like `tf.layers.dense`. The
representation is the encoder's output; `sample` decodes prior draws.
"""

from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import nn

from aebench.models import register
from aebench.models.acai_family import PaperPixelAE, mse, simultaneous_step
from aebench.models.base import DataInfo, ModelConfig, adam


class AAEConfig(ModelConfig):
    disc_layer_sizes: list[int] = Field([100, 100], min_length=1, description="hidden units of the code discriminator")
    adversary_lr: Optional[float] = Field(None, gt=0, description="discriminator's Adam rate; None = train.lr")
    advweight: float = Field(1.0, ge=0, description="weight of the fool-the-discriminator term in the autoencoder loss")


def code_discriminator(latent_dim: int, hidden: list[int]) -> nn.Sequential:
    layers: list[nn.Module] = []
    for a, b in zip([latent_dim, *hidden], hidden):
        layers += [nn.Linear(a, b), nn.LeakyReLU(0.2)]
    layers.append(nn.Linear(hidden[-1], 1))
    for m in layers:
        if isinstance(m, nn.Linear):
            nn.init.xavier_uniform_(m.weight)
            nn.init.zeros_(m.bias)
    return nn.Sequential(*layers)


@register("aae")
class AAE(PaperPixelAE):
    config_class = AAEConfig

    def __init__(self, config: AAEConfig, info: DataInfo):
        super().__init__(config, info)
        self.discriminator = code_discriminator(config.latent_dim, list(config.disc_layer_sizes))

    def objectives(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Both players' objectives ("autoencoder", "discriminator") and their terms."""
        x = self.to_paper(batch["x"])
        z = self.encoder(x)
        recon = mse(x, self.decoder(z))
        logit_code = self.discriminator(z)
        logit_prior = self.discriminator(torch.randn_like(z))
        ones, zeros = torch.ones_like(logit_code), torch.zeros_like(logit_code)
        disc_code = F.binary_cross_entropy_with_logits(logit_code, zeros)
        disc_prior = F.binary_cross_entropy_with_logits(logit_prior, ones)
        ae_adv = F.binary_cross_entropy_with_logits(logit_code, ones)
        accuracy = 0.5 * ((logit_code < 0).float().mean() + (logit_prior > 0).float().mean())
        return {"autoencoder": recon + self.config.advweight * ae_adv, "discriminator": disc_code + disc_prior,
                "mse": recon, "ae_adv": ae_adv, "disc_code": disc_code, "disc_prior": disc_prior,
                "disc_accuracy": accuracy}

    @staticmethod
    def _report(terms: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """`loss` is the reconstruction error, comparable across epochs (see ACAI)."""
        return {"loss": terms["mse"], **{k: v.detach() for k, v in terms.items()}}

    def loss(self, batch: dict[str, torch.Tensor], step: int) -> dict[str, torch.Tensor]:
        return self._report(self.objectives(batch))

    def optimizers(self, lr: float) -> list[torch.optim.Optimizer]:
        return [adam(self.autoencoder_parameters(), lr),
                adam(self.discriminator.parameters(), self.config.adversary_lr or lr)]

    def train_step(self, batch, optimizers, step):
        ae_opt, disc_opt = optimizers
        terms = self.objectives(batch)
        simultaneous_step([(terms["autoencoder"], self.autoencoder_parameters(), ae_opt),
                           (terms["discriminator"], list(self.discriminator.parameters()), disc_opt)])
        return self._report({k: v.detach() for k, v in terms.items()})

    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        z = torch.randn(n, self.config.latent_dim, generator=generator).to(self.device)
        return self.decode(z)
