"""ACAI: adversarially constrained autoencoder interpolation (Berthelot, Raffel, Roy and
Goodfellow, ICLR 2019), as in the authors' `acai.py` (brain-research/acai).

A critic d(.) looks at decoded interpolants and tries to recover their mixing coefficient;
the autoencoder is trained to make d answer 0, i.e. to make interpolants indistinguishable
from reconstructions. Per batch x (in the paper's [-1, 1] pixels), z = enc(x), x_hat = dec(z):

* alpha = 0.5 - |u - 0.5|, u ~ U(0, 1) per example (so alpha is uniform on [0, 0.5]);
* z_mix = alpha z + (1 - alpha) z[reversed batch order]; x_mix = dec(z_mix);
* critic:      mean((d(x_mix) - alpha)^2) + mean(d(gamma x + (1 - gamma) x_hat)^2), gamma = 0.2
  (the second term shows the critic realistic-but-not-exact images with answer 0, which
  regularises it: written `ae + reg * (x - ae)` in the code);
* autoencoder: mse(x, x_hat) + lambda mean(d(x_mix)^2), lambda = 0.5.

d has the encoder's architecture (width `advdepth`, default the encoder's) and averages its
code output to one number. Two Adam optimisers at the training learning rate (the paper: 1e-4,
batch 64), one critic step per autoencoder step, taken simultaneously from one forward pass
(`acai_family.simultaneous_step`). The representation is the encoder's output.

The paper also trains a linear classifier on the stop-gradient code alongside; here that is
the trainer's `train.joint_probe` (`aebench.training.JointProbe`, reported as
`linear_acc_joint`), the same for every model, beside the evaluator's `linear_acc` probe on
frozen codes.
"""

from __future__ import annotations

import torch
from pydantic import Field

from aebench.models import register
from aebench.models.acai_family import PaperPixelAE, mse, simultaneous_step
from aebench.models.base import DataInfo, ModelConfig, adam


class ACAIConfig(ModelConfig):
    advweight: float = Field(0.5, ge=0, description="lambda: weight of the critic term in the autoencoder loss")
    reg: float = Field(0.2, ge=0, le=1, description="gamma: the critic also sees gamma x + (1 - gamma) x_hat, target 0")
    advdepth: int = Field(0, ge=0, description="critic width (first conv channels); 0 = the encoder's `width`")


@register("acai")
class ACAI(PaperPixelAE):
    config_class = ACAIConfig

    def __init__(self, config: ACAIConfig, info: DataInfo):
        super().__init__(config, info)
        self.critic_net = self.encoder_net(config.latent_dim, width=config.advdepth or config.width)

    def critic(self, x: torch.Tensor) -> torch.Tensor:
        """d(x): the critic net's code output averaged to one number per example."""
        return self.critic_net(x).flatten(1).mean(1)

    def objectives(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Both players' objectives ("autoencoder", "critic") and their terms, one forward pass."""
        x = self.to_paper(batch["x"])
        z = self.encoder(x)
        n = len(z)
        alpha = torch.rand(n, 1, device=z.device, dtype=z.dtype)
        alpha = 0.5 - (alpha - 0.5).abs()
        z_mix = alpha * z + (1 - alpha) * z.flip(0)
        # One decoder and one critic call on stacked batches (no batch statistics anywhere,
        # so this is the same computation as separate calls, with half the overhead).
        x_hat, x_mix = self.decoder(torch.cat([z, z_mix])).split(n)
        x_real = (x_hat + self.config.reg * (x - x_hat)).detach()  # only the critic learns from it
        d_mix, d_real = self.critic(torch.cat([x_mix, x_real])).split(n)
        recon = mse(x, x_hat)
        critic_mix = (d_mix - alpha[:, 0]).pow(2).mean()
        critic_real = d_real.pow(2).mean()
        ae_adv = d_mix.pow(2).mean()
        return {"autoencoder": recon + self.config.advweight * ae_adv, "critic": critic_mix + critic_real,
                "mse": recon, "ae_adv": ae_adv, "critic_mix": critic_mix, "critic_real": critic_real}

    @staticmethod
    def _report(terms: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """`loss` is the reconstruction error: the one term comparable across epochs (the
        adversarial terms are relative to a moving critic), so validation and early stopping
        select on it; every other term is logged beside it."""
        return {"loss": terms["mse"], **{k: v.detach() for k, v in terms.items()}}

    def loss(self, batch: dict[str, torch.Tensor], step: int) -> dict[str, torch.Tensor]:
        return self._report(self.objectives(batch))

    def critic_parameters(self) -> list[torch.nn.Parameter]:
        return list(self.critic_net.parameters())

    def optimizers(self, lr: float) -> list[torch.optim.Optimizer]:
        return [adam(self.autoencoder_parameters(), lr),
                adam(self.critic_parameters(), lr)]

    def train_step(self, batch, optimizers, step):
        ae_opt, critic_opt = optimizers
        terms = self.objectives(batch)
        simultaneous_step([(terms["autoencoder"], self.autoencoder_parameters(), ae_opt),
                           (terms["critic"], self.critic_parameters(), critic_opt)])
        return self._report({k: v.detach() for k, v in terms.items()})
