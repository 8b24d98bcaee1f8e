"""DVAE: the diffusion variational autoencoder with random-walk sampling (Li, Lindenbaum,
Cheng & Cloninger, "Variational Diffusion Autoencoders with Random Walk Sampling", ECCV 2020;
code: lihenryhfl/SpectralVAEGAN, `vdae/networks.py`).

The latent space is the data's diffusion-map embedding, so the "prior" is the data manifold
itself, and new data come from random walks on it rather than from a Gaussian prior that
ignores the data's topology.

- Encoder mean mu(x): trained to reproduce the precomputed diffusion coordinates of the
  `diffmap@<dataset>` stage (the authors train a SpectralNet to approximate them, then freeze
  it; here the exact map is precomputed, and mu extends it to new points). Only the
  embedding loss trains mu: the other terms see it detached, as the authors' frozen net.
- Encoder covariance Sigma(x) = V diag(exp(2e)) V^T from two MLP heads on mu (one hidden
  layer of 500 ReLU units each, as the authors' `arch=[500]`): one outputs a d x d matrix
  whose QR factor Q is V, the other the half log-eigenvalues e.
- Local target: the Gaussian N(mu, Sigma_nb) with Sigma_nb the covariance of the diffusion
  coordinates of the k training points nearest to the posterior sample z (the point itself
  excluded), plus `cov_reg` I. The authors' code takes the uncentred second moment
  sum_k m_k m_k^T of the neighbours' means (`local_cov: uncentred` reproduces it); that
  matrix is dominated by the outer product of the position itself, not the neighbourhood's
  spread, so the centred covariance is the default here (the paper's intent: the local
  Jacobian of the embedding). The regulariser is KL(N(mu, Sigma) || N(mu, Sigma_nb)); the
  authors' sum log e_nb - log e - 1 + tr(...) is twice the KL, hence `kl_weight: 2`.
- Decoder trained on neighbourhoods: dec(z) fitted to the inputs of those k neighbours, so
  it learns to map a point near the latent manifold to data on it. The authors use the mean
  squared error averaged over pixels (`recon_loss: mse`); against a KL in nats that term is
  tiny on images, the KL then sets the covariance alone, and on `lines` every decoded image
  came out black (gw_distance 0.56). The default is the likelihood the other models use,
  in nats summed over dimensions (Bernoulli for images, Gaussian for vectors), which makes
  the loss a neighbourhood ELBO and gave sharp lines and walks along the angle (0.016).
- Sampling by random walks (the authors' `walk`): from seed codes, repeat `walk_steps` times:
  branch each walker `walk_branch` ways, z ~ N(mu, Sigma(mu)), x' = dec(z), mu = mu(x').
  The authors evaluate with 4 steps and branch factor 2. By default the seeds are diffusion
  coordinates of training points kept in the checkpoint (`seed_codes`), so sampling needs no
  data; `walk_seeds: test_data` starts from mu(x) of random test inputs instead, as the
  authors' evaluation does (the evaluator hands them over through `start_sampling_from`).

Where the defaults differ from the authors' code, a field gives the authors' value (the
paper preset sets it): `local_cov: uncentred`, `recon_loss: mse`, `walk_seeds: test_data`;
their example notebook also uses `neighbours: 2` and latent_dim 3 on the loop.

Data: the model needs its dataset's diffusion map while training. The train stage calls
`prepare(dataset, root)`, which reads `data/diffmap/<dataset>/embedding.parquet` (every split's
rows, keyed by `index`) and returns a digest of the coordinates it uses, so a changed diffusion
map never resumes a checkpoint trained on the old one; `set_diffusion_map(index, coords)` does
the same from arrays. Without one, `loss` still works on a lone batch (neighbours within the
batch, no embedding term: the model contract's smoke test), but training through `batches`
refuses to start.

Evaluation: the evaluator's topology suite scores the walks' samples (`gw_distance`,
`offmanifold_rate`), the codes (`trustworthiness`) and the decoder at the codes
(`bilipschitz`, the authors' locally bi-Lipschitz constant) as it does every model's; the
model's own suite (`eval.py`) adds the figure of single random walks (`random_walk.png`).
"""

from __future__ import annotations

import hashlib
import math
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from pydantic import Field
from torch import nn

from aebench.data.embedding import load_embedding
from aebench.batching import iterate_batches
from aebench.errors import UserError
from aebench.models import register
from aebench.models.base import AutoEncoderBase, DataInfo, Likelihood, ModelConfig, OwnMetrics
from aebench.models.dvae.eval import random_walk_suite
from aebench.nets import mlp


class DVAEConfig(ModelConfig):
    latent_dim: int = Field(10, gt=0, description="diffusion coordinates used (the first ones of the diffmap stage's); "
                                                  "the authors' MNIST latent size")
    neighbours: int = Field(16, gt=0, description="k nearest embedded neighbours for the local Gaussian and the "
                                                  "decoder's targets (the authors' VDAE default; their example "
                                                  "notebook runs use 2)")
    cov_reg: float = Field(0.1, gt=0, description="added to the local covariance (the authors' lam = 0.1)")
    local_cov: Literal["centred", "uncentred"] = Field(
        "centred", description="neighbours' covariance (divided by k), or the authors' uncentred sum of outer "
                               "products (not divided). Paper: uncentred")
    kl_weight: float = Field(2.0, ge=0, description="weight of the KL (the authors' term is twice the KL)")
    embed_weight: float = Field(1.0, gt=0, description="weight of ||mu(x) - diffusion coordinates||^2")
    recon_loss: Literal["mse", "nll"] = Field(
        "nll", description="decoder loss on the neighbours: the authors' squared error averaged over pixels and the "
                           "k neighbours, or the negative log-likelihood in nats (Bernoulli for images, Gaussian for "
                           "vectors). Paper: mse")
    head_hidden: int = Field(500, gt=0, description="hidden units of each covariance head (authors: [500])")
    walk_steps: int = Field(4, ge=0, description="random-walk steps per sample (authors' evaluation: 4)")
    walk_branch: int = Field(2, gt=0, description="walkers spawned per walker and step (authors: 2)")
    seed_bank: int = Field(2000, gt=0, description="diffusion coordinates of training points kept for walk seeds")
    walk_seeds: Literal["train_codes", "test_data"] = Field(
        "train_codes", description="where walks start: the kept diffusion coordinates of training points (sampling "
                                   "needs no data), or mu(x) of the test inputs the evaluator hands over (without "
                                   "them, the kept codes). Paper: test_data (random test images)")


def sqrt_covariance(V: torch.Tensor, e: torch.Tensor) -> torch.Tensor:
    """Sigma^(1/2) = V diag(exp(e)) V^T for Sigma = V diag(exp(2e)) V^T, batched (B, d, d)."""
    return (V * torch.exp(e)[:, None, :]) @ V.transpose(1, 2)


def kl_to_local_gaussian(V: torch.Tensor, e: torch.Tensor, target_cov: torch.Tensor) -> torch.Tensor:
    """KL(N(m, V diag(exp(2e)) V^T) || N(m, target_cov)) per datum, in nats (same means).

    0.5 [tr(T^-1 Sigma) - d + log det T - log det Sigma], with tr(T^-1 Sigma) =
    sum_j exp(2 e_j) |L^-1 v_j|^2 for T = L L^T.
    """
    L = torch.linalg.cholesky(target_cov)
    W = torch.linalg.solve_triangular(L, V, upper=False)
    trace = (torch.exp(2 * e) * W.pow(2).sum(1)).sum(1)
    logdet_target = 2 * torch.log(torch.diagonal(L, dim1=1, dim2=2)).sum(1)
    return 0.5 * (trace - e.shape[1] + logdet_target - 2 * e.sum(1))


def local_covariance(neighbour_codes: torch.Tensor, reg: float, centred: bool) -> torch.Tensor:
    """(B, k, d) neighbours' codes -> (B, d, d) target covariance (see module docs)."""
    codes = neighbour_codes - neighbour_codes.mean(1, keepdim=True) if centred else neighbour_codes
    cov = codes.transpose(1, 2) @ codes
    if centred:
        cov = cov / codes.shape[1]
    return cov + reg * torch.eye(codes.shape[2], dtype=codes.dtype, device=codes.device)


@register("dvae")
class DVAE(AutoEncoderBase):
    config_class = DVAEConfig
    own_metrics = OwnMetrics(suites=(random_walk_suite,))
    needs_diffmap = True  # trains on `data/diffmap/<dataset>/`: its train stage depends on diffmap@<dataset>
    needs_stored_rows = True  # its targets are the embedding's rows, looked up by `index`

    def __init__(self, config: DVAEConfig, info: DataInfo):
        super().__init__(config, info)
        d = config.latent_dim
        self.encoder = self.encoder_net(d)
        self.precov_head = mlp([d, config.head_hidden, d * d], nn.ReLU)
        self.eig_head = mlp([d, config.head_hidden, d], nn.ReLU)
        self.decoder = self.decoder_net(d)
        self.output = Likelihood(info.kind)
        self.register_buffer("seed_codes", torch.zeros(min(config.seed_bank, max(info.n_train, 1)), d))
        # Training-time state, never checkpointed: the diffusion coordinates of every split's
        # rows (sorted by index) and the training data they are aligned with.
        self._table_index: torch.Tensor | None = None
        self._table_codes: torch.Tensor | None = None
        self._train: dict[str, torch.Tensor] | None = None
        self._bank: torch.Tensor | None = None
        self._walk_data: torch.Tensor | None = None  # walk_seeds: test_data, from `start_sampling_from`

    # -- the diffusion map --------------------------------------------------------------
    def prepare(self, dataset: str, root: Path | None = None) -> str:
        """Load `data/diffmap/<dataset>/` (the train stage calls this before training); returns
        the digest of the diffusion coordinates used (see `set_diffusion_map`)."""
        index, coords, _ = load_embedding(dataset, root)
        if coords.shape[1] < self.config.latent_dim:
            raise UserError(f"model dvae has latent_dim {self.config.latent_dim} but diffmap@{dataset} computed "
                            f"{coords.shape[1]} coordinates: raise `diffmap.n_components` or lower "
                            f"`model.<name>.latent_dim` in params.yaml")
        return self.set_diffusion_map(index, coords)

    def set_diffusion_map(self, index: np.ndarray, coords: np.ndarray) -> str:
        """Diffusion coordinates (N, >= latent_dim) of the rows with these `index` ids; returns
        a sha256 digest of the (index, coordinates) table the model trains on."""
        order = np.argsort(index, kind="stable")
        self._table_index = torch.as_tensor(np.asarray(index)[order], dtype=torch.long)
        self._table_codes = torch.as_tensor(np.asarray(coords)[order, :self.config.latent_dim], dtype=torch.float32)
        self._train = self._bank = None
        digest = hashlib.sha256(self._table_index.numpy().tobytes())
        digest.update(self._table_codes.numpy().tobytes())
        return digest.hexdigest()[:16]

    def targets(self, index: torch.Tensor) -> torch.Tensor:
        """Diffusion coordinates of rows `index`; a UserError names a row the map lacks."""
        table = self._table_index.to(index.device)
        pos = torch.searchsorted(table, index).clamp(max=len(table) - 1)
        found = table[pos] == index
        if not bool(found.all()):
            missing = int(index[~found][0])
            raise UserError(f"row index {missing} has no diffusion coordinates: the diffmap output is stale, rerun "
                            f"`dvc repro` (diffmap then train)")
        return self._table_codes.to(index.device)[pos]

    def _attach(self, data: dict[str, torch.Tensor]) -> None:
        """Align the map with the training tensors and keep seed codes for sampling."""
        if self._train is not None and self._train["x"] is data["x"]:
            return
        if self._table_index is None:
            raise UserError("model dvae needs its dataset's diffusion map: run `dvc repro diffmap@<dataset>`; the "
                            "train stage must call `model.prepare(dataset, root)` before training")
        self._train = {"x": data["x"], "index": data["index"]}
        self._bank = self.targets(data["index"])
        pick = torch.randperm(len(self._bank), generator=torch.Generator().manual_seed(0))
        pick = pick.repeat(math.ceil(len(self.seed_codes) / len(pick)))[:len(self.seed_codes)]
        self.seed_codes.copy_(self._bank[pick.to(self._bank.device)])

    def batches(self, data, batch_size, generator, max_steps=None):
        self._attach(data)
        return iterate_batches(data, batch_size, generator, max_steps)

    # -- the model ------------------------------------------------------------------------
    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder(x)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.output.mean(self.decoder(z))

    def covariance(self, mu: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(V, e): orthonormal eigenvectors (B, d, d) and half log-eigenvalues (B, d) of Sigma."""
        d = self.config.latent_dim
        V, _ = torch.linalg.qr(self.precov_head(mu).view(-1, d, d))
        return V, self.eig_head(mu).clamp(-15.0, 5.0)

    def sample_latent(self, mu: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """z ~ N(mu, Sigma(mu))."""
        V, e = self.covariance(mu)
        noise = torch.randn(mu.shape, generator=generator).to(mu.device)
        return mu + (sqrt_covariance(V, e) @ noise[:, :, None])[:, :, 0]

    def loss(self, batch: dict[str, torch.Tensor], step: int) -> dict[str, torch.Tensor]:
        x = batch["x"]
        mu = self.encoder(x)
        m = mu.detach()
        if self._table_index is not None:
            embed = (mu - self.targets(batch["index"])).pow(2).sum(1).mean()
        else:
            embed = mu.sum() * 0.0
        if self._bank is not None:
            ref_codes, ref_x, ref_ids = self._bank, self._train["x"], self._train["index"]
        else:  # no training set attached: the batch is its own reference set
            ref_codes, ref_x = m, x
            ref_ids = batch.get("index", torch.arange(len(x), device=x.device))
        ids = batch.get("index", ref_ids if ref_codes is m else torch.full((len(x),), -1, device=x.device))

        V, e = self.covariance(m)
        z = m + (sqrt_covariance(V, e) @ torch.randn_like(m)[:, :, None])[:, :, 0]
        k = min(self.config.neighbours, len(ref_codes) - 1)
        dist = torch.cdist(z.detach(), ref_codes)
        dist = dist.masked_fill(ids[:, None] == ref_ids[None, :], math.inf)
        nbrs = dist.topk(k, dim=1, largest=False).indices  # (B, k)
        with torch.autocast(x.device.type, enabled=False):  # Cholesky and log-determinants need fp32
            target_cov = local_covariance(ref_codes[nbrs].float(), self.config.cov_reg,
                                          self.config.local_cov == "centred")
            kl = kl_to_local_gaussian(V.float(), e.float(), target_cov).mean()
        nbhd = self.neighbourhood_loss(self.decoder(z), ref_x[nbrs])
        total = self.config.embed_weight * embed + self.config.kl_weight * kl + nbhd
        return {"loss": total, "embed": embed, "kl": kl, "neighbourhood": nbhd}

    def neighbourhood_loss(self, out: torch.Tensor, neighbours: torch.Tensor) -> torch.Tensor:
        """Decoder outputs (B, ...) against the inputs of each one's k neighbours (B, k, ...)."""
        if self.config.recon_loss == "mse":
            return (self.output.mean(out)[:, None] - neighbours).pow(2).flatten(2).mean(2).mean()
        k = neighbours.shape[1]
        expanded = out[:, None].expand(-1, k, *out.shape[1:]).reshape(-1, *out.shape[1:])
        return self.output.nll(expanded, neighbours.reshape(-1, *out.shape[1:])).mean()

    @torch.no_grad()
    def random_walk(self, seeds: torch.Tensor, steps: int, branch: int,
                    generator: torch.Generator | None = None) -> list[torch.Tensor]:
        """Walk from seed codes: each step branches every walker `branch` ways, draws
        z ~ N(mu, Sigma(mu)), decodes x' = dec(z) and re-encodes mu = mu(x'). Returns the
        generated data of every step (the seeds decoded first)."""
        mu = seeds
        path = [self.decode(mu)]
        for _ in range(steps):
            mu = mu.repeat_interleave(branch, dim=0)
            x = self.decode(self.sample_latent(mu, generator))
            path.append(x)
            mu = self.encoder(x)
        return path

    def start_sampling_from(self, x: torch.Tensor) -> None:
        """Under `walk_seeds: test_data`, later walks start from mu of rows of `x` (the evaluator
        hands over the test inputs); under `train_codes` the data are not needed."""
        if self.config.walk_seeds == "test_data":
            self._walk_data = x

    @torch.no_grad()
    def walk_seeds(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """n seed codes drawn with replacement: mu(x) of the inputs handed to
        `start_sampling_from`, else the kept diffusion coordinates of training points."""
        pool = self.seed_codes if self._walk_data is None else self._walk_data
        pick = torch.randint(len(pool), (n,), generator=generator).to(pool.device)
        return self.seed_codes[pick] if self._walk_data is None else self.encoder(pool[pick])

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        cfg = self.config
        leaves = cfg.walk_branch ** cfg.walk_steps
        seeds = self.walk_seeds(math.ceil(n / leaves), generator)
        out = self.random_walk(seeds, cfg.walk_steps, cfg.walk_branch, generator)[-1]
        order = torch.randperm(len(out), generator=generator).to(out.device)
        return out[order[:n]]
