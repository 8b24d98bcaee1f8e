"""The model contract every autoencoder implements; the trainer and evaluator use nothing else.

A model is an `nn.Module` built from its config (its params.yaml section) and the data's
`DataInfo`. It must provide:
- `encode(x) -> Tensor[B, d]`: the deterministic representation (posterior mean).
- `decode(z) -> Tensor`: back to data space (pixel intensities in [0, 1] for images).
- `loss(batch, step) -> dict[str, Tensor]`: key `loss` plus named terms, logged as-is.
Optional, with defaults here:
- `optimizers(lr)` and `train_step(batch, optimizers, step)` for models with critics or
  several optimisers; the default is one Adam step on `loss`.
- `sample(n, generator)`: draws from the model's generative process (None if it has none).
- `neg_elbo(x)`: per-datum negative ELBO in nats, for models with a likelihood.
- `on_epoch_start(epoch, train_x)`: a hook for models with per-epoch state.
- `prepare(dataset, root) -> str`: load auxiliary inputs before training (a precomputed
  embedding) and return a digest of them ("" when none); the train stage puts it into the
  resume fingerprint, so changed inputs never resume a checkpoint trained on the old ones.
State that must survive a checkpoint lives in parameters or buffers.

- `batches(data, batch_size, generator, max_steps)`: the training batches of an epoch
  (default: shuffled minibatches; a model that needs whole groups overrides it).
- `score_ood(x)`: per-datum out-of-distribution score, higher = more anomalous.
- `decode_raw(z)`: the decoder's unclamped output in [-1, 1] pixels, for models whose
  decoder works in that range (the interpolation benchmark scores it); None otherwise.

What a model adds to the evaluation it declares in one class attribute, `own_metrics` (an
`OwnMetrics`), so that nothing outside its files names its metrics: its evaluation suites
(functions of the evaluator's context returning metrics, and drawing figures under
`ctx.plots`) run in the evaluator's suite order (`aebench.evaluation.suites.SUITES`), "max" or "min" (which is better) for every metric
they add, and the few of them `aebench models` shows.

Nets: `encoder_net` and `decoder_net` build `aebench.nets` encoders and decoders from the
config's `arch`, `width` and the arch's options, so every model sizes them the same way.

A batch is a dict of tensors on the model's device: `x` (float; images in [0, 1]), `label`,
`group`, `index` (stable row ids) and `pos` (position 0..N-1 within the split).
"""

from __future__ import annotations

import abc
import math
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, ClassVar, Literal, Optional

import torch
import torch.nn.functional as F
from pydantic import Field, ValidationInfo, field_validator
from torch import nn

from aebench.batching import iterate_batches
from aebench.config import Strict
from aebench.nets import build_decoder, build_encoder

Suite = Callable[[Any], dict[str, float]]  # an evaluation suite: the evaluator's context -> metrics


@dataclass(frozen=True)
class OwnMetrics:
    """A model's own evaluation: its suites, in order; the direction ("max" or "min") of every
    metric they write; the key metrics `aebench models` shows."""

    suites: tuple[Suite, ...] = ()
    directions: dict[str, str] = field(default_factory=dict)
    key: tuple[str, ...] = ()


class ModelConfig(Strict):
    """Fields every model shares; a model's config class adds its own."""

    latent_dim: int = Field(16, gt=0, description="size of the representation")
    arch: Literal["auto", "conv", "mlp", "acai"] = "auto"
    width: int = Field(32, gt=0, description="first conv layer's channels; MLP hidden units = 8 x width")
    latent_side: Optional[int] = Field(
        None, gt=0, description="arch acai: side of the code map (the authors' --latent_width); the code is "
                                "latent_dim / side^2 channels on it. None: derived from latent_dim. Paper: 2 on lines "
                                "(64 = 2x2x16), 4 on MNIST/SVHN/CIFAR (32 = 4x4x2, 256 = 4x4x16)")
    pad_to: Optional[int] = Field(
        None, gt=0, description="arch acai: pad images to pad_to x pad_to with their background before the encoder "
                                "and crop the decoder's output back. None: no padding. Paper: 32 on MNIST")

    @field_validator("latent_side", "pad_to")
    @classmethod
    def _acai_only(cls, value: Optional[int], info: ValidationInfo) -> Optional[int]:
        """Other nets would silently ignore these options."""
        if value is not None and info.data.get("arch") != "acai":
            raise ValueError(f"shapes the `arch: acai` nets only: set `arch: acai` or remove `{info.field_name}`")
        return value


@dataclass(frozen=True)
class DataInfo:
    """What a model may know about its data: enough to size its nets and likelihood."""

    shape: tuple[int, ...]  # (C, H, W) for images, (D,) for vectors
    kind: str  # "image" or "vector"
    n_classes: int
    n_train: int

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "DataInfo":
        return cls(shape=tuple(data["shape"]), kind=data["kind"], n_classes=int(data["n_classes"]), n_train=int(data["n_train"]))


class Likelihood(nn.Module):
    """p(x | z) from decoder outputs: Bernoulli on pixel intensities for images (the usual
    choice for MNIST-like data, in nats), Gaussian with a learned global scale for vectors."""

    def __init__(self, kind: str, sigma_init: float = 1.0):
        super().__init__()
        self.kind = kind
        if kind == "vector":
            self.log_sigma = nn.Parameter(torch.tensor(math.log(sigma_init)))

    def mean(self, out: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(out) if self.kind == "image" else out

    def nll(self, out: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """Per-datum negative log-likelihood in nats, summed over dimensions."""
        if self.kind == "image":
            return F.binary_cross_entropy_with_logits(out, x, reduction="none").flatten(1).sum(1)
        var = torch.exp(2 * self.log_sigma)
        per_dim = 0.5 * ((x - out) ** 2 / var + 2 * self.log_sigma + math.log(2 * math.pi))
        return per_dim.flatten(1).sum(1)


def binarize(x: torch.Tensor) -> torch.Tensor:
    """Pixel intensities thresholded at 0.5 (1 above, 0 at or below), in x's dtype.

    The one binarisation of the models with a Bernoulli likelihood (their `binarize` option,
    and the binary PixelCNN's discretisation), so a feed-forward and an autoregressive decoder
    model the same binary data, on which the Bernoulli cross-entropy is a true negative
    log-likelihood. Deterministic (a fixed binarisation of the data) and idempotent."""
    return (x > 0.5).to(x.dtype)


def adam(params, lr: float, **kwargs) -> torch.optim.Adam:
    """Adam with torch's fused kernel: one pass over every parameter instead of a dozen small
    ops per tensor. Same update up to float rounding; 1.3x the training throughput of the
    small MLPs (digits), unchanged for conv nets where the optimiser is a small share."""
    return torch.optim.Adam(params, lr=lr, fused=True, **kwargs)


class AutoEncoderBase(nn.Module, metaclass=abc.ABCMeta):
    """Shared plumbing; subclasses set `config_class` and implement the contract."""

    config_class: ClassVar[type[ModelConfig]] = ModelConfig
    own_metrics: ClassVar[OwnMetrics] = OwnMetrics()
    needs_diffmap: ClassVar[bool] = False  # trains on data/diffmap/<dataset>/ (aebench.plan: its stage depends on it)
    # True when training looks its rows up by position or index, or groups them (a neighbour table, an
    # embedding, groups): fresh samples have no stored row, so `train.fresh_data` refuses the model.
    needs_stored_rows: ClassVar[bool] = False

    def __init__(self, config: ModelConfig, info: DataInfo):
        super().__init__()
        self.config = config
        self.info = info

    # -- nets -----------------------------------------------------------------------
    def net_options(self) -> dict[str, Any]:
        """The config's options of the `arch: acai` nets (`latent_side`, `pad_to`; None unless
        `arch: acai`, which the config checks), passed to `aebench.nets`."""
        return {"latent_side": self.config.latent_side, "pad_to": self.config.pad_to}

    def encoder_net(self, out_dim: int, width: int | None = None) -> nn.Module:
        """An encoder of the config's `arch`: data -> `out_dim` numbers (`width`: the config's
        unless given)."""
        c = self.config
        return build_encoder(self.info.shape, out_dim, c.arch, width or c.width, **self.net_options())

    def decoder_net(self, latent_dim: int | None = None, shape: tuple[int, ...] | None = None) -> nn.Module:
        """A decoder of the config's `arch`: codes of `latent_dim` (the config's unless given) ->
        unconstrained outputs of `shape` (the data's unless given)."""
        c = self.config
        return build_decoder(latent_dim or c.latent_dim, shape or self.info.shape, c.arch, c.width,
                             **self.net_options())

    # -- required -------------------------------------------------------------------
    @abc.abstractmethod
    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """See the module docstring."""

    @abc.abstractmethod
    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """See the module docstring."""

    @abc.abstractmethod
    def loss(self, batch: dict[str, torch.Tensor], step: int) -> dict[str, torch.Tensor]:
        """See the module docstring."""

    # -- optional -------------------------------------------------------------------
    def optimizers(self, lr: float) -> list[torch.optim.Optimizer]:
        return [adam(self.parameters(), lr)]

    def train_step(self, batch: dict[str, torch.Tensor], optimizers: list[torch.optim.Optimizer], step: int) -> dict[str, torch.Tensor]:
        (optimizer,) = optimizers
        terms = self.loss(batch, step)
        optimizer.zero_grad(set_to_none=True)
        terms["loss"].backward()
        optimizer.step()
        return {k: v.detach() for k, v in terms.items()}

    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode(x))

    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor | None:
        return None

    def start_sampling_from(self, x: torch.Tensor) -> None:
        """Hand `sample` the data a sampler starts from (DVAE's walks from test images, as the
        authors evaluate them); samplers that start from a prior ignore it."""
        return None

    def neg_elbo(self, x: torch.Tensor) -> torch.Tensor | None:
        return None

    def on_epoch_start(self, epoch: int, train_x: torch.Tensor) -> None:
        return None

    def prepare(self, dataset: str, root) -> str:
        """Load auxiliary inputs a model trains on beyond its split (a precomputed embedding) and
        return a digest of them for the resume fingerprint ("": nothing loaded)."""
        return ""

    def batches(self, data: dict[str, torch.Tensor], batch_size: int, generator: torch.Generator | None,
                max_steps: int | None = None):
        return iterate_batches(data, batch_size, generator, max_steps)

    def score_ood(self, x: torch.Tensor) -> torch.Tensor | None:
        return None

    def decode_raw(self, z: torch.Tensor) -> torch.Tensor | None:
        return None

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device
