"""The Multi-Level VAE (Bouchacourt, Tomioka & Nowozin, AAAI 2018): grouped observations.

Observations come in groups that share a factor (the digit class, a face's identity). The
latent code splits in two: a *content* C_G shared by the whole group and a *style* S_i of
each observation, both with prior N(0, I). The encoder has one shared body and two heads
giving Gaussian posteriors q(C | x_i) and q(S_i | x_i). The group's content posterior is
the product of its members' content Gaussians (no prior in the product), so evidence
accumulates: precisions add,

    1 / var_G = sum_i 1 / var_i,        mu_G = var_G * sum_i mu_i / var_i,

computed here in log space (a log-sum-exp of the negative log-variances), which stays exact
when one member is far more certain than another. The group ELBO is

    sum_i E log p(x_i | C_G, S_i) - sum_i KL(q(S_i|x_i) || p) - KL(q(C_G|X_G) || p)

with the content KL counted once per group; the loss is minus its average over the groups
in the batch, and the content is sampled once per observation from its group's posterior
(the first author's corrected code, DianeBouchacourt/multi-level-vae, `training.py`).

Defaults are that code's MNIST setup: an MLP 784-500-(10 content, 10 style) with tanh
(`arch: paper`), a Gaussian decoder with a per-pixel log-variance squashed by tanh into
[-1, 1], LeCun-normal initialisation of weights and biases, and batches that are random
minibatches split into groups by their group id (`batching: split`). The optimiser comes
from the train section: the authors use Adam 1e-3 with batch 256 (`model.mlvae.train:
{batch_size: 256}`); the batch size matters here more than for other models, because a
larger batch holds more members of each group and so accumulates more evidence per group.
`batching: groups` draws whole groups of `group_size` instead (`sampler.py`).
`heldout_groups` keeps some group ids out of training entirely, so that the evaluation can
measure how the content generalises to groups never seen; the loss drops their rows too, so
the validation loss that picks the best epoch never sees them.
Under data-parallel training a rank gets a contiguous share of each batch, which keeps whole
groups when the batch size is a multiple of world size x group size.

`encode(x)` is the single-observation posterior mean [content, style]; `content_dim` and
`split_code(z)` say where content ends. The group posterior is in `posterior.py`; the model's
evaluation suite (content/style probes, evidence accumulation curve, held-out groups, swap
grids) is `eval.py`, declared in `MLVAE.own_metrics`.
"""

from __future__ import annotations

import math
from typing import Any, Iterator, Literal

import torch
from pydantic import Field, model_validator
from torch import nn

from aebench.models import register
from aebench.models.base import AutoEncoderBase, DataInfo, ModelConfig
from aebench.models.mlvae.eval import MLVAE_METRICS
from aebench.models.mlvae.posterior import gaussian_kl, group_posterior, lecun_normal_
from aebench.models.mlvae.sampler import group_batches

LOGVAR_RANGE = (-30.0, 20.0)  # as the VAE: keeps exp() finite without touching usual values


class MLVAEConfig(ModelConfig):
    """`latent_dim` = content_dim + style_dim; give either the two parts or the total (split
    evenly, content taking the odd unit) or the total and one part."""

    latent_dim: int = Field(20, gt=1, description="content_dim + style_dim")
    content_dim: int = Field(10, gt=0, description="group-level code size (paper: 10 on MNIST)")
    style_dim: int = Field(10, gt=0, description="observation-level code size (paper: 10 on MNIST)")
    arch: Literal["paper", "auto", "conv", "mlp"] = Field(
        "paper", description="paper: one tanh hidden layer of `hidden` units each way; others: aebench.nets")
    hidden: int = Field(500, gt=0, description="units of the paper MLP's hidden layer (and of the body's output)")
    likelihood: Literal["gaussian", "bernoulli"] = Field(
        "gaussian", description="gaussian: per-datum mean and per-pixel log-variance (the paper); bernoulli: images only")
    decoder_logvar_bound: float = Field(1.0, gt=0, description="decoder log-variance = bound * tanh(.) (paper: 1)")
    lecun_init: bool = Field(True, description="LeCun-normal weights and biases of every Linear layer (authors' code)")
    batching: Literal["split", "groups"] = Field(
        "split", description="split: random minibatch split by group id (authors' code); groups: whole groups")
    group_size: int = Field(8, gt=0, description="observations per group when batching = groups")
    heldout_groups: list[int] = Field(default_factory=list, description="group ids never trained on")
    probe: Literal["mlp", "linear"] = Field(
        "mlp", description="group-id probe of content/style: the authors' MLP (256-256, BatchNorm, LeakyReLU 0.2, "
                           "Adam) or a softmax regression (a weaker reader: finds less group information in style)")
    probe_steps: int = Field(
        500, gt=0, description="Adam steps of each MLP probe (paper: 100000); cost is per probe, not per datum: "
                               "the default evaluation fits 10 (~1-2 s each on CPU)")
    probe_batch_size: int = Field(128, gt=1, description="minibatch of the MLP probe (paper: 128)")
    probe_lr: float = Field(1e-4, gt=0, description="Adam learning rate of the MLP probe (paper: 1e-4)")
    probe_input: Literal["sample", "mean"] = Field(
        "sample", description="probe posterior samples (authors' classification code) or posterior means")
    eval_group_sizes: list[int] = Field(default_factory=lambda: [1, 2, 5, 10], description="test group sizes")
    eval_repeats: int = Field(5, gt=0, description="random partitions of the test split into groups, averaged")

    @model_validator(mode="before")
    @classmethod
    def _split_latent(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        data = dict(data)
        total, content, style = data.get("latent_dim"), data.get("content_dim"), data.get("style_dim")
        if total is None:
            data.setdefault("content_dim", 10)
            data.setdefault("style_dim", 10)
            data["latent_dim"] = data["content_dim"] + data["style_dim"]
        elif content is None and style is None:
            data["content_dim"], data["style_dim"] = total - total // 2, total // 2
        elif content is None:
            data["content_dim"] = total - style
        elif style is None:
            data["style_dim"] = total - content
        elif content + style != total:
            raise ValueError(f"latent_dim ({total}) must equal content_dim + style_dim ({content} + {style})")
        return data

    @model_validator(mode="after")
    def _check(self) -> "MLVAEConfig":
        if min(self.eval_group_sizes, default=0) < 1:
            raise ValueError("eval_group_sizes must be a non-empty list of sizes >= 1")
        return self


@register("mlvae")
class MLVAE(AutoEncoderBase):
    config_class = MLVAEConfig
    own_metrics = MLVAE_METRICS
    needs_stored_rows = True  # its batches are whole groups of stored rows (`batches`)

    def __init__(self, config: MLVAEConfig, info: DataInfo):
        super().__init__(config, info)
        if config.likelihood == "bernoulli" and info.kind != "image":
            raise ValueError("likelihood 'bernoulli' needs image data in [0, 1]; use 'gaussian'")
        self.content_dim, self.style_dim = config.content_dim, config.style_dim
        self.n_out = 2 if config.likelihood == "gaussian" else 1  # mean (+ log-variance) per pixel
        size = math.prod(info.shape)
        if config.arch == "paper":
            self.body = nn.Sequential(nn.Flatten(), nn.Linear(size, config.hidden), nn.Tanh())
            self.decoder = nn.Sequential(nn.Linear(config.latent_dim, config.hidden), nn.Tanh(),
                                         nn.Linear(config.hidden, self.n_out * size))
        else:
            self.body = nn.Sequential(self.encoder_net(config.hidden), nn.Tanh())
            self.decoder = self.decoder_net(shape=(self.n_out * info.shape[0], *info.shape[1:]))
        self.content_head = nn.Linear(config.hidden, 2 * config.content_dim)
        self.style_head = nn.Linear(config.hidden, 2 * config.style_dim)
        if config.lecun_init:
            self.apply(lecun_normal_)

    # -- inference ------------------------------------------------------------------
    def posteriors(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Single-observation posteriors: (content_mu, content_logvar, style_mu, style_logvar)."""
        h = self.body(x)
        c_mu, c_lv = self.content_head(h).chunk(2, dim=1)
        s_mu, s_lv = self.style_head(h).chunk(2, dim=1)
        return c_mu, c_lv.clamp(*LOGVAR_RANGE), s_mu, s_lv.clamp(*LOGVAR_RANGE)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """[content mean, style mean] of each observation on its own (a group of one)."""
        c_mu, _, s_mu, _ = self.posteriors(x)
        return torch.cat([c_mu, s_mu], dim=1)

    def split_code(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(content, style) parts of codes from `encode` (works on numpy arrays too)."""
        return z[:, :self.content_dim], z[:, self.content_dim:]

    # -- generation -----------------------------------------------------------------
    def _decoder_out(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        out = self.decoder(z).view(len(z), self.n_out, *self.info.shape)
        if self.n_out == 1:
            return out[:, 0], None
        return out[:, 0], self.config.decoder_logvar_bound * torch.tanh(out[:, 1])

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """The decoder's mean for codes [content, style]; images are clipped to [0, 1]."""
        mean, _ = self._decoder_out(z)
        if self.config.likelihood == "bernoulli":
            return torch.sigmoid(mean)
        return mean.clamp(0.0, 1.0) if self.info.kind == "image" else mean

    def nll(self, z: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """-log p(x | z) per observation, in nats (a density for the Gaussian)."""
        mean, logvar = self._decoder_out(z)
        if logvar is None:
            return nn.functional.binary_cross_entropy_with_logits(mean, x, reduction="none").flatten(1).sum(1)
        per_dim = 0.5 * ((x - mean).pow(2) * torch.exp(-logvar) + logvar + math.log(2 * math.pi))
        return per_dim.flatten(1).sum(1)

    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        z = torch.randn(n, self.config.latent_dim, generator=generator).to(self.device)
        return self.decode(z)

    # -- objective ------------------------------------------------------------------
    def group_terms(self, x: torch.Tensor, group_index: torch.Tensor) -> dict[str, torch.Tensor]:
        """Summed NLL (B,), style KL (B,) and content KL (G,) for rows grouped by `group_index`."""
        n_groups = int(group_index.max()) + 1
        c_mu, c_lv, s_mu, s_lv = self.posteriors(x)
        g_mu, g_lv = group_posterior(c_mu, c_lv, group_index, n_groups)
        content = g_mu[group_index] + torch.randn_like(c_mu) * torch.exp(0.5 * g_lv[group_index])
        style = s_mu + torch.randn_like(s_mu) * torch.exp(0.5 * s_lv)
        return {"nll": self.nll(torch.cat([content, style], dim=1), x), "kl_style": gaussian_kl(s_mu, s_lv),
                "kl_content": gaussian_kl(g_mu, g_lv)}

    def _grouping(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """Rows to use (held-out groups dropped) and their group numbers 0..G-1.

        A batch from the group sampler carries `group_slot` (the group of each row within the
        batch: two groups may share an id); any other batch is split by its group ids.
        """
        key = batch.get("group_slot", batch["group"])
        keep = torch.ones_like(key, dtype=torch.bool)
        if self.config.heldout_groups:
            keep = ~torch.isin(batch["group"], torch.tensor(self.config.heldout_groups, device=key.device))
        _, index = torch.unique(key[keep], return_inverse=True)
        return keep, index

    def loss(self, batch: dict[str, torch.Tensor], step: int) -> dict[str, torch.Tensor]:
        keep, index = self._grouping(batch)
        if not bool(keep.any()):  # a validation batch made only of held-out groups
            zero = batch["x"].new_zeros(())
            return {"loss": zero, "nll": zero, "kl_style": zero, "kl_content": zero}
        terms = self.group_terms(batch["x"][keep], index)
        n_groups = float(index.max() + 1)
        out = {k: v.sum() / n_groups for k, v in terms.items()}
        out["loss"] = out["nll"] + out["kl_style"] + out["kl_content"]
        return out

    def neg_elbo(self, x: torch.Tensor) -> torch.Tensor:
        """Per-datum negative ELBO of each observation as a group of one."""
        terms = self.group_terms(x, torch.arange(len(x), device=x.device))
        return terms["nll"] + terms["kl_style"] + terms["kl_content"]

    # -- batching -------------------------------------------------------------------
    def batches(self, data: dict[str, torch.Tensor], batch_size: int, generator: torch.Generator | None,
                max_steps: int | None = None) -> Iterator[dict[str, torch.Tensor]]:
        """Training batches without held-out groups: whole groups, or random rows split by id."""
        device = data["x"].device
        if self.config.batching == "groups":
            per_batch = max(1, batch_size // self.config.group_size)
            for rows, slot in group_batches(data["group"], self.config.group_size, per_batch, generator,
                                            exclude=self.config.heldout_groups, max_batches=max_steps):
                rows = rows.to(device)
                yield {**{k: v[rows] for k, v in data.items()}, "group_slot": slot.to(device)}
            return
        rows = torch.arange(len(data["x"]))
        if self.config.heldout_groups:
            rows = rows[~torch.isin(data["group"].cpu(), torch.tensor(self.config.heldout_groups))]
        rows = rows[torch.randperm(len(rows), generator=generator)]
        n_batches = max(1, len(rows) // batch_size)
        if max_steps is not None:
            n_batches = min(n_batches, max_steps)
        for b in range(n_batches):
            chunk = rows[b * batch_size:(b + 1) * batch_size].to(device)
            yield {k: v[chunk] for k, v in data.items()}
