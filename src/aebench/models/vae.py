"""The variational autoencoder (Kingma & Welling 2014) with a `beta` weight on the KL
(Higgins et al. 2017; beta = 1 is the plain VAE, beta > 1 the beta-VAE baseline).

q(z|x) = N(mu(x), diag exp(logvar(x))), p(z) = N(0, I), p(x|z) from the decoder: the
feed-forward one by default, or a conditional PixelCNN (`decoder: pixelcnn`), the setting of
the ACN paper's claim that a VAE's codes collapse under an autoregressive decoder. With
`binarize` (the default) images are thresholded at 0.5 before the encoder and the likelihood
see them (`pixelcnn.DecoderConfig`): the binarised data of the ACN paper, on which the
Bernoulli nats are a true likelihood, the same under both decoders and the same as `acn`'s.
Loss per datum: NLL(x | z) + beta * KL(q || p), averaged over the batch. `neg_elbo`
reports the beta = 1 bound in nats with one posterior sample, as is usual; the evaluator also
gets `coding_cost_nats`, the mean KL(q || p): what it costs to transmit the codes, to set
against ACN's.
"""

from __future__ import annotations

import numpy as np
import torch
from pydantic import Field

from aebench.models import register
from aebench.models.base import AutoEncoderBase, DataInfo, binarize
from aebench.models.pixelcnn import DecoderConfig, make_decoder
from aebench.nets import acai_options, build_encoder


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

    def __init__(self, config: VAEConfig, info: DataInfo):
        super().__init__(config, info)
        nets = acai_options(config)
        self.encoder = build_encoder(info.shape, 2 * config.latent_dim, config.arch, config.width, **nets)
        self.decoder = make_decoder(config.decoder, info, config.latent_dim, config.arch, config.width,
                                    config.pixelcnn, config.sigma_init, **nets)
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
    def extra_metrics(self, ctx) -> dict[str, float]:
        """coding_cost_nats: mean KL(q || N(0, I)) on the test split (the cost of sending the
        codes, beside ACN's); its reconstruction term and their sum (the negative ELBO); and
        knn_acc_sampled, k-NN accuracy on codes drawn from q rather than its mean, which falls
        to chance when the posterior collapses even where the means still cluster."""
        from aebench.metrics.representation import knn_acc
        from aebench.training import split_tensors

        out = {}
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(ctx.seed)
            # the likelihood suite's per-datum negative ELBO (same seed), so the decoder runs once
            elbo = ctx.extra.get("neg_elbo_test")
            if elbo is None:
                elbo = torch.cat([self.neg_elbo(x) for x in ctx.test_x.split(512)]).double().cpu().numpy()
            test_posterior = [self.posterior(x) for x in ctx.test_x.split(512)]  # one encoder pass
            kl = torch.cat([gaussian_kl_to_standard(mu, logvar) for mu, logvar in test_posterior])
            if ctx.has_labels:
                train_x = split_tensors(ctx.train, self.device)["x"]
                z_train = torch.cat([self.draw(x) for x in train_x.split(512)]).cpu().double().numpy()
                z_test = torch.cat([_reparameterise(*q) for q in test_posterior]).cpu().double().numpy()
                out["knn_acc_sampled"] = knn_acc(z_train, ctx.train.label, z_test, ctx.test.label, k=ctx.k)
        coding, total = float(kl.mean()), float(np.mean(elbo))
        return {"coding_cost_nats": coding, "coding_cost_recon_nats": total - coding, "coding_cost_total_nats": total,
                **out}
