"""The variational autoencoder (Kingma & Welling 2014) with a `beta` weight on the KL
(Higgins et al. 2017; beta = 1 is the plain VAE, beta > 1 the beta-VAE baseline).

q(z|x) = N(mu(x), diag exp(logvar(x))), p(z) = N(0, I), p(x|z) from the decoder: the
feed-forward one by default, or a conditional PixelCNN (`decoder: pixelcnn`), the setting of
the ACN paper's claim that a VAE's codes collapse under an autoregressive decoder. With
`binarize` (the default) images are thresholded at 0.5 before the encoder and the likelihood
see them (`pixelcnn.DecoderConfig`): the binarised data of the ACN paper, on which the
Bernoulli nats are a true likelihood, the same under both decoders and the same as `acn`'s.
Loss per datum: NLL(x | z) + beta * KL(q || p), averaged over the batch. `neg_elbo`
reports the beta = 1 bound in nats with one posterior sample, as is usual. The VAE is the
baseline of ACN's claim and reports its metrics (`aebench.models.coding_cost.claim_suite`):
`coding_cost_nats`, the mean KL(q || p), is what it costs to transmit the codes.
"""

from __future__ import annotations

import numpy as np
import torch
from pydantic import Field

from aebench.models import register
from aebench.models.base import AutoEncoderBase, DataInfo, binarize
from aebench.models.coding_cost import CLAIM_METRICS
from aebench.models.pixelcnn import DecoderConfig, make_decoder


class VAEConfig(DecoderConfig):
    beta: float = Field(1.0, ge=0, description="weight of the KL term")


def _reparameterise(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """z ~ N(mu, exp(logvar)) as mu + sigma eps (differentiable in mu and logvar)."""
    return mu + torch.randn_like(mu) * (0.5 * logvar).exp()


def gaussian_kl_to_standard(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, diag exp(logvar)) || N(0, I)) per datum, in nats."""
    return 0.5 * (mu.pow(2) + logvar.exp() - 1 - logvar).sum(1)


@register("vae")
class VAE(AutoEncoderBase):
    config_class = VAEConfig
    own_metrics = CLAIM_METRICS

    def __init__(self, config: VAEConfig, info: DataInfo):
        super().__init__(config, info)
        self.encoder = self.encoder_net(2 * config.latent_dim)
        self.decoder = make_decoder(config.decoder, info, config.latent_dim, config.arch, config.width,
                                    config.pixelcnn, config.sigma_init, **self.net_options())
        self.binarized = config.binarizes(info)

    def observe(self, x: torch.Tensor) -> torch.Tensor:
        """The data as the model sees and scores it: binarised images under `binarize`."""
        return binarize(x) if self.binarized else x

    def posterior(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mu, logvar = self.encoder(self.observe(x)).chunk(2, dim=1)
        return mu, logvar.clamp(-30.0, 20.0)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.posterior(x)[0]

    def decode(self, z: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        return self.decoder.decode(z, generator)

    def _terms(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.observe(x)  # the likelihood's target; `posterior` observing it again changes nothing
        mu, logvar = self.posterior(x)
        return self.decoder.nll(_reparameterise(mu, logvar), x), gaussian_kl_to_standard(mu, logvar)

    def loss(self, batch: dict[str, torch.Tensor], step: int) -> dict[str, torch.Tensor]:
        nll, kl = self._terms(batch["x"])
        nll, kl = nll.mean(), kl.mean()
        return {"loss": nll + self.config.beta * kl, "nll": nll, "kl": kl}

    def neg_elbo(self, x: torch.Tensor) -> torch.Tensor:
        nll, kl = self._terms(x)
        return nll + kl

    def kl_per_datum(self, x: torch.Tensor) -> torch.Tensor:
        return gaussian_kl_to_standard(*self.posterior(x))

    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        z = torch.randn(n, self.config.latent_dim, generator=generator).to(self.device)
        return self.decode(z, generator)

    def draw(self, x: torch.Tensor) -> torch.Tensor:
        return _reparameterise(*self.posterior(x))

    @torch.no_grad()
    def claim_costs(self, ctx) -> tuple[float, float, float]:
        """(coding, reconstruction, total) nats per datum for ACN's `claim_suite`: the mean
        KL(q || N(0, I)) on the test split (the cost of sending the codes), the negative ELBO
        less it, and the negative ELBO (the likelihood suite's, so the decoder runs once)."""
        elbo = ctx.neg_elbo_test.double().numpy()
        kl = torch.cat([gaussian_kl_to_standard(*self.posterior(x)) for x in ctx.test_x.split(512)])
        coding, total = float(kl.mean()), float(np.mean(elbo))
        return coding, total - coding, total

    @torch.no_grad()
    def sampled_codes(self, ctx) -> tuple[np.ndarray, np.ndarray]:
        """Train and test codes drawn from q (from the torch seed the suite sets): the train
        split's first, then the test split's."""
        z_train = torch.cat([self.draw(x) for x in ctx.train_x.split(512)]).cpu().double().numpy()
        z_test = torch.cat([self.draw(x) for x in ctx.test_x.split(512)]).cpu().double().numpy()
        return z_train, z_test
