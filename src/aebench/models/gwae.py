"""Gromov-Wasserstein autoencoders (Nakagawa, Togo, Ogawa, Haseyama; ICLR 2023).

GWAE learns a representation by matching the *metric structure* of the latent prior to that
of the data: for samples zs of a (learned) prior and their decodings x2s = dec(zs), the
pairwise distances ||zs_i - zs_j|| (times a learned scale) should equal ||x2s_i - x2s_j||.
That relaxed Gromov-Wasserstein objective alone would let the decoder ignore the data, so it
is combined with a WAE-style reconstruction term, an entropy bonus on the Gaussian encoder,
and a critic that pushes the joint distribution of encoder pairs (x, z) towards that of
generator pairs (x2s, zs) (the paper's "merged sufficient condition").

Per training batch x (as in the authors' `models/gwae.py` in ganmodokix/gwae):

main step (one RMSprop step on encoder, decoder, prior sampler and the log distance scale)
    mean, logvar = enc(x);  z = mean + exp(logvar / 2) eps;  zs = prior(B);  x2s = dec(zs)
    loss_gw = mean_ij | ||zs_i - zs_j|| exp(log_c) / s  -  ||x2s_i - x2s_j|| |,
              s = max(mean_d std(zs[:, d]), 1e-8), log_c learned
    loss_w  = mean_b sum_pixels 0.5 (x - dec(z))^2              (reconstruction)
    loss_h  = -mean_b sum_d logvar                               (minus the entropy)
    loss_d  = mean f(x2s, zs) - mean f(x, z)                     (critic term)
    loss    = loss_gw + coef_w loss_w + coef_entropy loss_h + coef_critic loss_d
critic phase (`critic_steps` RMSprop steps on the critic f only, inputs detached and resampled)
    -(mean f(x2s, zs) - mean f(x, z)) + gp_weight (gp + drift_weight (mean f(x, z)^2 + mean f(x2s, zs)^2))
    where gp = mean (||grad f(xp, zp)||_2 - 1)^2 at random interpolates (xp, zp) between
    (x, z) and (x2s, zs). Note that, as in the authors' code, the drift terms sit inside the
    bracket multiplied by the gradient-penalty weight.

The critic is spectrally normalised and scores (image, code) pairs with an image branch, a
code branch and a joint head. It is high on generator pairs and low on encoder pairs, and the
authors' OoD detector (`clu.py`) uses f(dec(z), z) at the encoded mean z directly as the
anomaly score ("the higher, the more likely OoD"); `score_ood` follows that sign.

Priors, all ending in an affine-free BatchNorm1d so that every prior is standardised
(zero mean, unit variance per dimension) and only its shape is learned:
    np   neural prior: MLP noise -> 4d -> 4d -> 4d -> d with LeakySiLU(0.2) activations;
    fnp  factorised neural prior: the same MLP per dimension (1 -> 4 -> 4 -> 4 -> 1, grouped
         1x1 convolutions), so z_d depends on noise eps_d only: the prior is a product of
         learned 1-D marginals, which is what drives disentanglement;
    gmp  Gaussian mixture prior: K learned means, square-root matrices A_k (initialised at
         I + 0.01 noise) and logits; a component is drawn by Gumbel-max, z = mu_k + A_k^T eps.
         As in the authors' code the logits get no gradient (argmax is not differentiable),
         so only the means and shapes of the clusters are learned.

Deviations, on purpose:
- encoder and decoder are the benchmark's shared nets (`aebench.nets`, the same as the VAE
  baseline's), not vaetc's SiLU conv stack with its logit input layer, so that comparisons
  isolate the objective;
- log_c starts by default ("auto") where the mean scaled code distance equals the mean data
  distance of the first training batch, instead of at log 2.5: that constant suits the
  paper's 64x64 RGB images with 64-d codes, while on 8x8 digits it demands decoded samples
  ~4x further apart than any two digits, which the paper's learning rate takes thousands of
  steps to undo (a number restores the paper's fixed start);
- the critic's spectral normalisation (one power iteration per critic step, on the current
  weights) is shared by the step's three critic calls instead of rerun for each;
- the main optimiser's learning rate is the trainer's `train.lr`, the critic's is `critic_lr`;
  the paper's 1e-4 for the main optimiser lives in the paper profile (GWAE's `train: {lr: 1e-4}`
  there), while the quick default profile keeps the shared `train.lr`.
"""

from __future__ import annotations

import math
from typing import Literal, Union

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import nn
from torch.nn.utils import parametrize
from torch.nn.utils.parametrizations import spectral_norm

from aebench.models import register
from aebench.models.base import AutoEncoderBase, DataInfo, ModelConfig


class GWAEConfig(ModelConfig):
    prior: Literal["np", "fnp", "gmp"] = Field("np", description="neural, factorised neural or Gaussian-mixture prior")
    gmp_components: int = Field(10, ge=2, description="mixture components of the gmp prior")
    prior_hidden_ratio: int = Field(4, gt=0, description="np/fnp hidden width per latent dimension (4 -> 4d)")
    prior_bn_momentum: float = Field(0.5, gt=0, le=1, description="momentum of the prior's final batch-norm")
    leaky_silu_slope: float = Field(0.2, ge=0, lt=1, description="LeakySiLU(x) = (1 - a) SiLU(x) + a x")
    distance_coef_init: Union[float, Literal["auto"]] = Field(
        "auto", description="initial exp(log_c), the latent distance scale: a number (the paper: 2.5), or 'auto' "
                            "to match mean data and code distances on the first training batch")
    coef_w: float = Field(1.0, ge=0, description="weight of the reconstruction term")
    coef_entropy: float = Field(0.03, ge=0, description="weight of the entropy term -sum logvar")
    coef_critic: float = Field(1.0, ge=0, description="weight of the merged-condition critic term")
    critic_steps: int = Field(5, ge=1, description="critic updates per main update")
    critic_lr: float = Field(1e-4, gt=0, description="RMSprop learning rate of the critic")
    gp_weight: float = Field(10.0, ge=0, description="weight of the gradient penalty")
    drift_weight: float = Field(1e-4, ge=0, description="weight of mean f^2 inside the penalty bracket")
    critic_width: int = Field(8, gt=0, description="channels of the critic's first conv layer (doubling)")
    critic_hidden: int = Field(256, gt=0, description="hidden units of the critic's code branch and head")
    critic_features: int = Field(64, gt=0, description="features each critic branch hands to the head")


# ------------------------------------------------------------------------------ objective


def gw_loss(x2s: torch.Tensor, zs: torch.Tensor, log_c: torch.Tensor) -> torch.Tensor:
    """The relaxed GW estimate: mean over all pairs of |scaled code distance - data distance|.

    Code distances are divided by the prior's mean per-dimension batch std so the learned
    scale exp(log_c) is in units of standardised codes.
    """
    scale = zs.std(dim=0).mean().clamp(min=1e-8)
    dz = _pairwise(zs) * (log_c.exp() / scale)
    return (dz - _pairwise(x2s.flatten(1))).abs().mean()


def _pairwise(v: torch.Tensor) -> torch.Tensor:
    """Euclidean distances from explicit differences: exact zeros on the diagonal (the
    matrix-product shortcut leaves rounding noise there)."""
    return torch.cdist(v, v, compute_mode="donot_use_mm_for_euclid_dist")


def gradient_penalty(critic: nn.Module, x: torch.Tensor, z: torch.Tensor, x2s: torch.Tensor, zs: torch.Tensor,
                     t: torch.Tensor | None = None) -> torch.Tensor:
    """mean (||grad_(x,z) f||_2 - 1)^2 at xp = t x + (1 - t) x2s, zp = t z + (1 - t) zs.

    `t` (one weight per pair, uniform on [0, 1) by default) lets tests place the interpolates.
    """
    if t is None:
        t = torch.rand(len(x), device=x.device)
    tx = t.view(-1, *([1] * (x.dim() - 1)))
    xp = (tx * x + (1 - tx) * x2s).detach().requires_grad_(True)
    zp = (t[:, None] * z + (1 - t[:, None]) * zs).detach().requires_grad_(True)
    out = critic(xp, zp)
    gx, gz = torch.autograd.grad(out.sum(), [xp, zp], create_graph=True)
    norm = torch.cat([gx.flatten(1), gz.flatten(1)], dim=1).norm(dim=1)
    return ((norm - 1) ** 2).mean()


# ------------------------------------------------------------------------------ priors


class LeakySiLU(nn.Module):
    """(1 - a) SiLU(x) + a x: SiLU with a linear leak (the authors' prior activation)."""

    def __init__(self, slope: float):
        super().__init__()
        self.slope = float(slope)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (1 - self.slope) * F.silu(x) + self.slope * x


class Prior(nn.Module):
    """A sampler z = g(eps), eps ~ N(0, I), standardised by a final affine-free batch-norm."""

    def __init__(self, dim: int, momentum: float):
        super().__init__()
        self.dim = dim
        self.norm = nn.BatchNorm1d(dim, momentum=momentum, affine=False)

    def noise(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        device = self.norm.running_mean.device
        return torch.randn(n, self.dim, generator=generator).to(device)

    def transform(self, eps: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """Noise -> prior sample before the batch-norm; each prior defines it."""
        raise TypeError(f"{type(self).__name__} must define transform()")

    def forward(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        return self.norm(self.transform(self.noise(n, generator), generator))


class NeuralPrior(Prior):
    def __init__(self, dim: int, momentum: float, ratio: int, slope: float):
        super().__init__(dim, momentum)
        h = dim * ratio
        self.net = nn.Sequential(nn.Linear(dim, h), LeakySiLU(slope), nn.Linear(h, h), LeakySiLU(slope),
                                 nn.Linear(h, h), LeakySiLU(slope), nn.Linear(h, dim))

    def transform(self, eps: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        return self.net(eps)


class FactorisedNeuralPrior(Prior):
    """One small MLP per dimension, run in parallel as grouped 1x1 convolutions."""

    def __init__(self, dim: int, momentum: float, ratio: int, slope: float):
        super().__init__(dim, momentum)
        h = dim * ratio
        self.net = nn.Sequential(
            nn.Conv1d(dim, h, 1, groups=dim), LeakySiLU(slope), nn.Conv1d(h, h, 1, groups=dim), LeakySiLU(slope),
            nn.Conv1d(h, h, 1, groups=dim), LeakySiLU(slope), nn.Conv1d(h, dim, 1, groups=dim))

    def transform(self, eps: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        return self.net(eps[:, :, None])[:, :, 0]


class GaussianMixturePrior(Prior):
    def __init__(self, dim: int, momentum: float, components: int):
        super().__init__(dim, momentum)
        self.means = nn.Parameter(torch.randn(components, dim))
        self.roots = nn.Parameter(torch.eye(dim).expand(components, dim, dim) + 0.01 * torch.randn(components, dim, dim))
        self.logits = nn.Parameter(torch.randn(components))

    def component(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """Gumbel-max draws from softmax(logits): argmax(logits + Gumbel noise)."""
        u = torch.rand(n, len(self.logits), generator=generator).to(self.logits.device)
        gumbel = -torch.log(-torch.log(u.clamp(1e-20, 1.0)))
        return (F.log_softmax(self.logits, 0) + gumbel).argmax(1)

    def transform(self, eps: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        k = self.component(len(eps), generator)
        return self.means[k] + torch.einsum("bi,bij->bj", eps, self.roots[k])


def build_prior(config: GWAEConfig) -> Prior:
    d, m = config.latent_dim, config.prior_bn_momentum
    if config.prior == "np":
        return NeuralPrior(d, m, config.prior_hidden_ratio, config.leaky_silu_slope)
    if config.prior == "fnp":
        return FactorisedNeuralPrior(d, m, config.prior_hidden_ratio, config.leaky_silu_slope)
    return GaussianMixturePrior(d, m, config.gmp_components)


# ------------------------------------------------------------------------------ critic


def _sn(layer: nn.Module) -> nn.Module:
    return spectral_norm(layer)


class Critic(nn.Module):
    """f(x, z): spectrally normalised image branch and code branch, each to `features`
    values, averaged-in by concatenation / 2, then a joint MLP head to one scalar.

    The image branch halves the resolution with 4x4 stride-2 convolutions (channels
    width, 2 width, ...) while the side is even, then a linear layer; vector data get an MLP.
    """

    def __init__(self, shape: tuple[int, ...], latent_dim: int, width: int, hidden: int, features: int):
        super().__init__()
        act = lambda: nn.LeakyReLU(0.2)  # noqa: E731
        if len(shape) == 3:
            c, h, w = shape
            layers: list[nn.Module] = []
            ch = width
            while h % 2 == 0 and w % 2 == 0 and h >= 2 and w >= 2:
                layers += [_sn(nn.Conv2d(c, ch, 4, stride=2, padding=1)), act()]
                c, h, w, ch = ch, h // 2, w // 2, ch * 2
            self.x_net = nn.Sequential(*layers, nn.Flatten(), _sn(nn.Linear(c * h * w, features)))
        else:
            self.x_net = nn.Sequential(_sn(nn.Linear(math.prod(shape), hidden)), act(),
                                       _sn(nn.Linear(hidden, hidden)), act(), _sn(nn.Linear(hidden, features)))
        self.z_net = nn.Sequential(_sn(nn.Linear(latent_dim, hidden)), act(), _sn(nn.Linear(hidden, hidden)), act(),
                                   _sn(nn.Linear(hidden, features)), act())
        self.head = nn.Sequential(_sn(nn.Linear(2 * features, hidden)), act(), _sn(nn.Linear(hidden, hidden)), act(),
                                  _sn(nn.Linear(hidden, 1)))

    def forward(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        h = torch.cat([self.x_net(x), self.z_net(z)], dim=1) / 2
        return self.head(h)[:, 0]


# ------------------------------------------------------------------------------ model


@register("gwae")
class GWAE(AutoEncoderBase):
    config_class = GWAEConfig

    def __init__(self, config: GWAEConfig, info: DataInfo):
        super().__init__(config, info)
        self.encoder, self.decoder = self.encoder_net(2 * config.latent_dim), self.decoder_net()
        self.prior = build_prior(config)
        self.critic = Critic(info.shape, config.latent_dim, config.critic_width, config.critic_hidden,
                             config.critic_features)
        auto = config.distance_coef_init == "auto"
        self.log_c = nn.Parameter(torch.tensor(0.0 if auto else math.log(config.distance_coef_init)))
        # whether log_c still awaits its data-scaled start (a buffer, so checkpoints keep it)
        self.register_buffer("log_c_pending", torch.tensor(auto))

    # -- contract -------------------------------------------------------------------
    def posterior(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mean, logvar = self.encoder(x).chunk(2, dim=1)
        return mean, logvar.clamp(-30.0, 20.0)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.posterior(x)[0]

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        out = self.decoder(z)
        return torch.sigmoid(out) if self.info.kind == "image" else out

    def main_parameters(self) -> list[nn.Parameter]:
        return [*self.encoder.parameters(), *self.decoder.parameters(), *self.prior.parameters(), self.log_c]

    def optimizers(self, lr: float) -> list[torch.optim.Optimizer]:
        return [torch.optim.RMSprop(self.main_parameters(), lr=lr),
                torch.optim.RMSprop(self.critic.parameters(), lr=self.config.critic_lr)]

    def loss(self, batch: dict[str, torch.Tensor], step: int) -> dict[str, torch.Tensor]:
        """The main objective (what the encoder, decoder and prior minimise)."""
        cfg = self.config
        x = batch["x"]
        mean, logvar = self.posterior(x)
        z = mean + torch.randn_like(mean) * (0.5 * logvar).exp()
        zs = self.prior(len(x))
        x2s = self.decode(zs)
        loss_gw = gw_loss(x2s, zs, self.log_c)
        loss_w = (0.5 * (x - self.decode(z)) ** 2).flatten(1).sum(1).mean()
        loss_h = -logvar.sum(1).mean()
        f_enc, f_gen = self.critic(x, z), self.critic(x2s, zs)
        loss_d = f_gen.mean() - f_enc.mean()
        loss = loss_gw + cfg.coef_w * loss_w + cfg.coef_entropy * loss_h + cfg.coef_critic * loss_d
        return {"loss": loss, "gw": loss_gw, "recon": loss_w, "neg_entropy": loss_h, "critic_gap": loss_d,
                "distance_coef": self.log_c.exp().detach()}

    @torch.no_grad()
    def start_distance_scale(self, x: torch.Tensor) -> None:
        """log_c such that the mean scaled code distance equals the mean data distance.

        The paper's 2.5 fits its 64x64 RGB images and 64-d codes; the same constant on 8x8
        digits asks decoded samples to be ~4x further apart than any two digits are, and at
        the paper's learning rate log_c needs thousands of steps to recover from it.
        """
        zs = self.prior(len(x))
        scale = zs.std(dim=0).mean().clamp(min=1e-8)
        ratio = _pairwise(x.flatten(1)).mean() / (_pairwise(zs).mean() / scale).clamp(min=1e-8)
        self.log_c.copy_(ratio.clamp(min=1e-8).log())
        self.log_c_pending.fill_(False)

    def main_step(self, batch: dict[str, torch.Tensor], optimizer: torch.optim.Optimizer) -> dict[str, torch.Tensor]:
        """One update of encoder, decoder, prior and log_c; the critic is held fixed (its
        weights get no gradient, which also saves computing one)."""
        if self.log_c_pending:
            self.start_distance_scale(batch["x"])
        self.critic.requires_grad_(False)
        try:
            terms = self.loss(batch, 0)
            self.zero_grad(set_to_none=True)
            terms["loss"].backward()
            optimizer.step()
        finally:
            self.critic.requires_grad_(True)
        return {k: v.detach() for k, v in terms.items()}

    def critic_step(self, x: torch.Tensor, mean: torch.Tensor, logvar: torch.Tensor,
                    optimizer: torch.optim.Optimizer) -> dict[str, torch.Tensor]:
        """One critic update on freshly resampled, detached (x, z) and (x2s, zs) pairs."""
        cfg = self.config
        with torch.no_grad():
            z = mean + torch.randn_like(mean) * (0.5 * logvar).exp()
            zs = self.prior(len(x))
            x2s = self.decode(zs)
        with parametrize.cached():  # one spectral normalisation for the step's three critic calls
            f_enc, f_gen = self.critic(x, z), self.critic(x2s, zs)
            gp = gradient_penalty(self.critic, x, z, x2s, zs)
        gap = f_gen.mean() - f_enc.mean()
        penalty = gp + cfg.drift_weight * (f_enc.pow(2).mean() + f_gen.pow(2).mean())
        loss = -gap + cfg.gp_weight * penalty
        self.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        return {"critic_loss": loss.detach(), "gp": gp.detach()}

    def critic_phase(self, x: torch.Tensor, optimizer: torch.optim.Optimizer) -> dict[str, torch.Tensor]:
        with torch.no_grad():
            mean, logvar = self.posterior(x)
        logs: dict[str, torch.Tensor] = {}
        for _ in range(self.config.critic_steps):
            logs = self.critic_step(x, mean, logvar, optimizer)
        return logs

    def train_step(self, batch: dict[str, torch.Tensor], optimizers: list[torch.optim.Optimizer],
                   step: int) -> dict[str, torch.Tensor]:
        main, critic = optimizers
        logs = self.main_step(batch, main)
        logs.update(self.critic_phase(batch["x"], critic))
        return logs

    # -- optional hooks -----------------------------------------------------------------
    @torch.no_grad()
    def sample_codes(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        return self.prior(n, generator)

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        return self.decode(self.sample_codes(n, generator))

    @torch.no_grad()
    def score_ood(self, x: torch.Tensor) -> torch.Tensor:
        """f(dec(z), z) at the encoded mean: high where the critic sees a generator-like pair
        the data never produced; the authors' `clu.py` uses it with this sign."""
        z = self.encode(x)
        return self.critic(self.decode(z), z)
