"""Associative compression networks (Graves, Menick & van den Oord 2018).

A VAE whose prior for each datum is conditioned on the code of a *similar* datum. In
compression terms the dataset is sent in an order that walks through code space, so the
prior only has to cover local variation and the coding cost (the KL) is small; codes stay
informative even under an autoregressive decoder that makes a VAE's codes collapse.

What the package implements (`coding.py`: the search and the chain; `eval.py`: the claim
metrics and the daydream figure), and why each choice:
- Posterior q(z | x) = N(c(x), I): the encoder gives only the code c(x); the unit variance is
  the paper's, and makes the code the whole message.
- Code table: one code per training datum, a registered buffer (so it is checkpointed and
  restored with the best epoch's weights), initialised from N(0, 1) and overwritten with each
  batch's codes *after* its optimiser step, at the rows given by `batch["pos"]` (the datum's
  position in the train split). Codes of data not yet visited stay stale, as in the paper.
  Under torchrun each rank sends its rows to all, so every rank keeps the same whole table.
- Neighbour: c_hat is drawn uniformly from the K nearest table codes of c(x) (Euclidean),
  the datum's own row excluded. Otherwise the prior would simply copy the datum's previous
  code and the KL would measure nothing: the bug of a public reimplementation. Exclusion
  applies in training mode to batches that carry `pos`; in eval mode (validation, test) a
  batch is data outside the table and every row is a candidate. The search is chunked
  matrix products over the table with a running top-k: no Python loop over data.
- Prior network p(z | c_hat): MLP with 3 hidden layers of 512 tanh units, skip connections
  from the input to every hidden layer and from every hidden layer to the output (Graves'
  usual deep-MLP wiring), giving an independent mixture of Gaussians per latent dimension.
- Loss per datum: KL(q || p(z | c_hat)) - log r(x | z), with the KL estimated by one sample
  z ~ q (the mixture prior has no closed form), z also feeding the decoder.
- Data: with `binarize` (the default) images are thresholded at 0.5 before the encoder and
  the likelihood see them (`pixelcnn.DecoderConfig`), so both decoders model the paper's
  binarised data and every nat is a true negative log-likelihood, the same data as `vae`'s.
- Coding cost (`claim_costs`, protocol in `coding.chain_coding_cost`): every test code sent once,
  along a greedy nearest-neighbour chain that starts at the code nearest the origin; the
  first coded under N(0, I), every other under p(z | the code sent before it). That KL has
  no closed form either; here it is computed by Gauss-Hermite quadrature per dimension (the
  prior factorises over dimensions), a deterministic and accurate estimate of the same
  expectation the training loss samples.
- Sampling by daydreaming: encode a seed, draw z ~ p(z | its code), decode, re-encode, repeat.

Every constant is a config field. K = 5 follows both public reimplementations (not confirmed
in the paper text available to us); the number of mixture components (10) is likewise ours.
Codes are 16-dimensional by default (`latent_dim`, shared with the other models).
`knn_acc_sampled` (`coding_cost.claim_suite`) is how the benchmark checks the paper's claim that
codes stay informative: k-NN on posterior means cannot see a collapse. That k-NN on the
posterior means (the codes c) is the evaluator's `knn_acc`, on the same train rows and k, so
the two stand side by side in every ACN and VAE run.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from pydantic import Field
from torch import nn

from aebench import distributed
from aebench.models import register
from aebench.models.acn.coding import chain_coding_cost, gather_from_ranks, nearest_codes
from aebench.models.acn.eval import ACN_METRICS
from aebench.models.base import AutoEncoderBase, DataInfo, binarize
from aebench.models.pixelcnn import DecoderConfig, make_decoder

LOG_2PI = math.log(2 * math.pi)
MIN_LOG_SCALE = -7.0  # keeps a mixture component from collapsing onto a point (density -> inf)


class ACNConfig(DecoderConfig):
    neighbours: int = Field(5, ge=1, description="K: c_hat is drawn uniformly from the K nearest table codes")
    prior_hidden: int = Field(512, gt=0, description="tanh units per hidden layer of the prior network")
    prior_layers: int = Field(3, ge=1, description="hidden layers of the prior network")
    mixture_components: int = Field(10, ge=1, description="Gaussians in the prior's mixture, per latent dimension")
    search_chunk: int = Field(16384, gt=0, description="table rows per matrix product in the neighbour search")
    daydream_steps: int = Field(8, ge=1, description="encode-sample-decode rounds in `sample` and the figure")
    kl_quadrature_nodes: int = Field(32, ge=4, description="Gauss-Hermite nodes per dimension for the coding cost")


# -- the prior ---------------------------------------------------------------------------
def mixture_log_prob(z: torch.Tensor, logits: torch.Tensor, means: torch.Tensor,
                     log_scales: torch.Tensor) -> torch.Tensor:
    """log p(z) per element of z (..., d) under independent per-dimension mixtures whose
    parameters are (..., d, M)."""
    x = (z.unsqueeze(-1) - means) * torch.exp(-log_scales)
    component = -0.5 * x.pow(2) - log_scales - 0.5 * LOG_2PI
    return torch.logsumexp(F.log_softmax(logits, -1) + component, dim=-1)


class PriorNetwork(nn.Module):
    """c_hat -> per-dimension Gaussian mixture (weights, means, log-scales)."""

    def __init__(self, latent_dim: int, hidden: int, layers: int, components: int):
        super().__init__()
        self.latent_dim, self.components = latent_dim, components
        self.hidden = nn.ModuleList(nn.Linear(latent_dim if i == 0 else hidden, hidden) for i in range(layers))
        self.input_skips = nn.ModuleList(nn.Linear(latent_dim, hidden, bias=False) for _ in range(layers - 1))
        out = 3 * latent_dim * components  # (logit, mean, log-scale) per component and dimension
        self.output_skips = nn.ModuleList(nn.Linear(hidden, out, bias=i == 0) for i in range(layers))

    def forward(self, c: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        h = torch.tanh(self.hidden[0](c))
        out = self.output_skips[0](h)
        for layer, skip, to_out in zip(self.hidden[1:], self.input_skips, self.output_skips[1:]):
            h = torch.tanh(layer(h) + skip(c))
            out = out + to_out(h)
        logits, means, log_scales = out.view(len(c), self.latent_dim, self.components, 3).unbind(-1)
        return logits, means, log_scales.clamp(min=MIN_LOG_SCALE)

    def log_prob(self, z: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        """log p(z | c) per datum, summed over dimensions."""
        return mixture_log_prob(z, *self(c)).sum(-1)

    def kl_from_unit_gaussian(self, code: torch.Tensor, c: torch.Tensor, nodes: int = 32) -> torch.Tensor:
        """KL(N(code, I) || p(. | c)) per datum by Gauss-Hermite quadrature in each dimension:
        E_{N(m,1)} f = sum_n w_n f(m + sqrt(2) t_n) / sqrt(pi)."""
        t, w = np.polynomial.hermite.hermgauss(nodes)
        t = torch.as_tensor(t, dtype=code.dtype, device=code.device)
        w = torch.as_tensor(w / math.sqrt(math.pi), dtype=code.dtype, device=code.device)
        logits, means, log_scales = (p.unsqueeze(2) for p in self(c))  # (B, d, 1, M)
        z = code.unsqueeze(-1) + math.sqrt(2) * t  # (B, d, Q)
        expected_log_p = (mixture_log_prob(z, logits, means, log_scales) * w).sum(-1)
        neg_entropy = -0.5 * (1 + LOG_2PI)
        return (neg_entropy - expected_log_p).sum(-1)

    @torch.no_grad()
    def sample(self, c: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        logits, means, log_scales = self(c)
        weights = torch.softmax(logits, -1).reshape(-1, self.components).cpu()
        pick = torch.multinomial(weights, 1, generator=generator).to(c.device).view(*means.shape[:-1], 1)
        noise = torch.randn(means.shape[:-1], generator=generator).to(c.device)
        return means.gather(-1, pick).squeeze(-1) + log_scales.gather(-1, pick).squeeze(-1).exp() * noise


# -- the model ---------------------------------------------------------------------------
@register("acn")
class ACN(AutoEncoderBase):
    config_class = ACNConfig
    own_metrics = ACN_METRICS
    needs_stored_rows = True  # its prior's neighbour table is indexed by the batch's rows (`pos`)

    def __init__(self, config: ACNConfig, info: DataInfo):
        super().__init__(config, info)
        d = config.latent_dim
        self.encoder = self.encoder_net(d)
        self.decoder = make_decoder(config.decoder, info, d, config.arch, config.width, config.pixelcnn,
                                    config.sigma_init, **self.net_options())
        self.prior = PriorNetwork(d, config.prior_hidden, config.prior_layers, config.mixture_components)
        self.register_buffer("codes", torch.randn(info.n_train, d))
        self.binarized = config.binarizes(info)

    def observe(self, x: torch.Tensor) -> torch.Tensor:
        """The data as the model sees and scores it: binarised images under `binarize`."""
        return binarize(x) if self.binarized else x

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder(self.observe(x))

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.decoder.decode(z)

    def neighbour_codes(self, c: torch.Tensor, exclude: torch.Tensor | None = None) -> torch.Tensor:
        """c_hat for each code: uniform over its K nearest table codes, `exclude` rows left out."""
        idx = nearest_codes(c.detach(), self.codes, self.config.neighbours, exclude, self.config.search_chunk)
        choice = torch.randint(0, idx.shape[1], (len(c), 1), device=idx.device)
        return self.codes[idx.gather(1, choice).squeeze(1)]

    def per_datum(self, x: torch.Tensor, exclude: torch.Tensor | None = None
                  ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(-log r(x | z), sampled KL(q || p(z | c_hat)), code c) per datum, for z ~ q."""
        x = self.observe(x)
        c = self.encoder(x)
        c_hat = self.neighbour_codes(c, exclude)
        noise = torch.randn_like(c)
        z = c + noise
        log_q = (-0.5 * noise.pow(2) - 0.5 * LOG_2PI).sum(1)
        kl = log_q - self.prior.log_prob(z, c_hat)
        return self.decoder.nll(z, x), kl, c

    def _terms(self, batch: dict[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        nll, kl, c = self.per_datum(batch["x"], batch.get("pos") if self.training else None)
        return {"loss": (nll + kl).mean(), "nll": nll.mean(), "kl": kl.mean()}, c.detach()

    def loss(self, batch: dict[str, torch.Tensor], step: int) -> dict[str, torch.Tensor]:
        return self._terms(batch)[0]

    def train_step(self, batch: dict[str, torch.Tensor], optimizers: list[torch.optim.Optimizer],
                   step: int) -> dict[str, torch.Tensor]:
        """One Adam step, then the batch's codes (from this step's forward pass) replace its rows."""
        (optimizer,) = optimizers
        terms, codes = self._terms(batch)
        optimizer.zero_grad(set_to_none=True)
        terms["loss"].backward()
        optimizer.step()
        if "pos" in batch:
            pos = batch["pos"]
            if distributed.active():  # every rank writes every rank's rows: the tables stay identical
                pos, codes = gather_from_ranks(pos, codes)
            self.codes.index_copy_(0, pos, codes)
        return {k: v.detach() for k, v in terms.items()}

    @torch.no_grad()
    def neg_elbo(self, x: torch.Tensor) -> torch.Tensor:
        """-log r(x|z) + KL(q || p(z | c_hat)) with c_hat one of the K nearest train codes: the
        cost of sending x after one of its neighbours in the training set."""
        nll, kl, _ = self.per_datum(x)
        return nll + kl

    # -- daydreaming ---------------------------------------------------------------------
    @torch.no_grad()
    def dream(self, c: torch.Tensor, steps: int, generator: torch.Generator | None = None) -> list[torch.Tensor]:
        """From codes c: z ~ p(z | c), x = decode(z), c = encode(x), `steps` times; the images."""
        images = []
        for _ in range(steps):
            x = self.decoder.decode(self.prior.sample(c, generator), generator)
            images.append(x)
            c = self.encode(x)
        return images

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """Daydreams seeded by random training codes from the table (the encoded seeds)."""
        seeds = torch.randint(0, len(self.codes), (n,), generator=generator).to(self.codes.device)
        return self.dream(self.codes[seeds], self.config.daydream_steps, generator)[-1]

    # -- evaluation ----------------------------------------------------------------------
    @torch.no_grad()
    def coding_cost(self, codes: torch.Tensor) -> torch.Tensor:
        """Per-datum KL (row order) of the codes sent along their chain (`chain_coding_cost`),
        each under this model's prior conditioned on the code before it."""
        nodes = self.config.kl_quadrature_nodes
        return chain_coding_cost(codes, lambda c, previous: self.prior.kl_from_unit_gaussian(c, previous, nodes))

    @torch.no_grad()
    def claim_costs(self, ctx) -> tuple[float, float, float]:
        """(coding, reconstruction, total) nats per datum for `coding_cost.claim_suite`: the chain KL
        over the whole test split (`coding_cost`), -log r(x | z) for one z ~ q per datum (drawn
        from the torch seed the suite sets), and their sum."""
        codes = torch.as_tensor(ctx.z_test, dtype=torch.float32, device=self.device)
        kl = self.coding_cost(codes)
        recon = torch.cat([self.decoder.nll(c + torch.randn_like(c), self.observe(x)).cpu()
                           for c, x in zip(codes.split(256), ctx.test_x.split(256))])
        coding, recon = float(kl.mean()), float(recon.mean())
        return coding, recon, coding + recon

    def sampled_codes(self, ctx) -> tuple[np.ndarray, np.ndarray]:
        """Train and test codes drawn from q = N(c, I) (seeded by `ctx.seed`) for `knn_acc_sampled`:
        what the decoder can actually read."""
        rng = np.random.default_rng(ctx.seed)
        return ctx.z_train + rng.standard_normal(ctx.z_train.shape), ctx.z_test + rng.standard_normal(ctx.z_test.shape)
