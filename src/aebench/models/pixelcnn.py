"""A conditional gated PixelCNN decoder p(x | z), and the plain feed-forward decoder behind
the same three-method interface, so a model picks either by one config field.

Why it exists: the ACN paper's central claim (Graves, Menick & van den Oord 2018) is about
autoregressive decoders. A PixelCNN can model the pixels without the code, so a VAE that pays
KL(q || N(0, I)) for every nat it puts in z learns to ignore z ("posterior collapse"), while
ACN's cheap local prior keeps its codes informative. Testing that needs a decoder that is
autoregressive, conditioned on z, and selectable for both `acn` and `vae`.

The network (van den Oord et al. 2016, "Conditional image generation with PixelCNN decoders"):
- pixels are discretised: `levels = 2` binarises at 0.5 (`base.binarize`, the threshold the
  models' `binarize` option applies for both decoders) and uses one Bernoulli per pixel and
  channel (binarised MNIST, as in the ACN paper); `levels > 2` quantises to that many levels
  and uses a categorical distribution;
- a vertical stack sees the rows above, a horizontal stack the pixels to the left, so there is
  no blind spot. The horizontal convolutions are masked: type A in the first layer (the pixel
  itself excluded), type B after it (included: it then only carries earlier pixels). The
  vertical stack's causality comes from its kernel shape and top-only padding; it reaches the
  horizontal stack shifted down one row, so row r only ever sees rows < r through it;
- gated activations tanh(a) * sigmoid(b), with z added to every layer's pre-activations
  through a linear map (global conditioning), and residual connections in the horizontal
  stack after the first layer;
- channels of one pixel are conditionally independent given z and the earlier pixels, a
  valid autoregressive factorisation that keeps the masks simple for colour images.
Ordering is raster order over pixels: output pixel i depends only on input pixels < i.

Size: the ACN paper's decoder is a gated PixelCNN, but the text available to us gives no
depth or width (no official code exists), so the paper-scale size is ours
(`profiles/paper-scale-acn.yaml`): the smallest kernel-5 stack whose context covers a whole
MNIST image, `layers: 14, channels: 64, kernel: 5` (context_rows = 14 * 2 + 1 = 29 >= 28; 64
feature maps is the usual gated-PixelCNN width on binarised MNIST). The posterior-collapse
claim needs a decoder that can model the image without z, hence the full context. Cost per
step at batch 64 with bf16 autocast: 6.5-6.8 s on 2 CPU cores (1.6 hours per 843-step MNIST
epoch), 0.05 s on one H200 (`results/paper-scale/`); the 2-core paper profile runs
4 x 16 x 3 instead.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from pydantic import Field, field_validator, model_validator
from torch import nn

from aebench.config import Strict
from aebench.models.base import DataInfo, Likelihood, ModelConfig, binarize
from aebench.nets import Arch, build_decoder

DecoderKind = Literal["deconv", "pixelcnn"]


class PixelCNNConfig(Strict):
    layers: int = Field(5, ge=1, description="gated layers (the first one's horizontal mask is type A); context "
                                             "rows = layers * (kernel // 2) + 1. Paper profile (28x28): 14, the "
                                             "full image's context (the paper gives no size)")
    channels: int = Field(32, gt=0, description="feature maps per stack. Paper profile: 64 (the paper gives no size)")
    kernel: int = Field(5, ge=3, description="odd filter width: each layer reaches kernel // 2 pixels further. "
                                             "Paper profile: 5")
    levels: int = Field(2, ge=2, le=256, description="2: Bernoulli on binarised pixels; >2: categorical on quantised")

    @field_validator("kernel")
    @classmethod
    def _odd(cls, kernel: int) -> int:
        if kernel % 2 == 0:
            raise ValueError(f"must be odd, got {kernel}")
        return kernel


class DecoderConfig(ModelConfig):
    """The fields of the models whose decoder is either net below (the VAE family, ACN): which
    p(x | z), and which data it models.

    `binarize` applies to the whole model, encoder input and likelihood target alike: the model
    sees and scores `base.binarize(x)`, the same binary image under either decoder, so `acn`
    and `acn_pixelcnn` (and `vae`, `vae_pixelcnn`) model the same data and their nats (loss,
    `neg_elbo`, `coding_cost_*`) are true negative log-likelihoods. The evaluator's
    `recon_mse` and `psnr` still compare the decoder's output with the dataset's own test
    images, the target every model shares, so for binarising models they include the
    binarisation's own error (the distance of each grey image to its thresholded copy)."""

    decoder: DecoderKind = Field("deconv", description="p(x|z): deconv, the feed-forward net (Bernoulli per pixel "
                                                       "for images); pixelcnn, a conditional gated PixelCNN")
    pixelcnn: PixelCNNConfig = PixelCNNConfig()
    binarize: bool = Field(True, description="images: threshold pixels at 0.5 before encoding and scoring (the ACN "
                                             "paper's binarised MNIST: true); false keeps grey levels, on which the "
                                             "feed-forward decoder's Bernoulli cross-entropy is not a likelihood. "
                                             "Vector data keeps its Gaussian likelihood either way")
    sigma_init: float = Field(
        1.0, gt=0, description="vector data: starting scale of the Gaussian likelihood's learned noise. Above the "
                               "data's spread (the manifolds' std is 0.6-0.7) the model settles on explaining "
                               "everything as noise, a stable collapse; 0.1 reconstructs")

    @model_validator(mode="after")
    def _binary_levels(self) -> "DecoderConfig":
        if self.binarize and self.decoder == "pixelcnn" and self.pixelcnn.levels != 2:
            raise ValueError(f"binarize: true leaves 2 pixel levels, but pixelcnn.levels is {self.pixelcnn.levels}: "
                             "set pixelcnn.levels: 2 or binarize: false")
        return self

    def binarizes(self, info: DataInfo) -> bool:
        """Whether the model built from this config models binarised data (images only)."""
        return self.binarize and info.kind == "image"


def down_shift(x: torch.Tensor) -> torch.Tensor:
    """Move every row one down (zeros on top): row r then holds what row r - 1 computed."""
    return F.pad(x, (0, 0, 1, 0))[:, :, :-1, :]


class HorizontalConv(nn.Conv2d):
    """A 1 x (k//2 + 1) convolution over the current pixel and the k//2 to its left; the
    type A mask zeroes the tap on the current pixel."""

    def __init__(self, c_in: int, c_out: int, kernel: int, mask_type: Literal["A", "B"]):
        super().__init__(c_in, c_out, (1, kernel // 2 + 1))
        self.pad = kernel // 2
        mask = torch.ones_like(self.weight)
        if mask_type == "A":
            mask[..., -1] = 0
        self.register_buffer("mask", mask, persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(F.pad(x, (self.pad, 0, 0, 0)), self.weight * self.mask, self.bias)


class VerticalConv(nn.Conv2d):
    """A (k//2 + 1) x k convolution over the current row and the k//2 rows above, padded on top
    only: output row r depends on input rows <= r."""

    def __init__(self, c_in: int, c_out: int, kernel: int):
        super().__init__(c_in, c_out, (kernel // 2 + 1, kernel))
        self.pad = kernel // 2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(F.pad(x, (self.pad, self.pad, self.pad, 0)))


def gate(x: torch.Tensor) -> torch.Tensor:
    a, b = x.chunk(2, dim=1)
    return torch.tanh(a) * torch.sigmoid(b)


class GatedLayer(nn.Module):
    def __init__(self, c_in: int, channels: int, kernel: int, latent_dim: int, first: bool):
        super().__init__()
        self.vertical = VerticalConv(c_in, 2 * channels, kernel)
        self.horizontal = HorizontalConv(c_in, 2 * channels, kernel, "A" if first else "B")
        self.vertical_to_horizontal = nn.Conv2d(2 * channels, 2 * channels, 1)
        self.condition = nn.Linear(latent_dim, 4 * channels)
        self.out = nn.Conv2d(channels, channels, 1)
        self.residual = not first

    def forward(self, v: torch.Tensor, h: torch.Tensor, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        cond_v, cond_h = self.conditions(z)
        v_pre = self.vertical(v)
        h_out = self.horizontal_step(h, self.vertical_to_horizontal(down_shift(v_pre)), cond_h)
        return gate(v_pre + cond_v), h_out

    def conditions(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The latent's bias on the vertical and the horizontal stack."""
        return self.condition(z)[:, :, None, None].chunk(2, dim=1)

    def horizontal_step(self, h: torch.Tensor, link: torch.Tensor, cond_h: torch.Tensor) -> torch.Tensor:
        """The horizontal stack, given what it receives from the vertical stack's row above."""
        h_out = self.out(gate(self.horizontal(h) + link + cond_h))
        return h_out + h if self.residual else h_out


class PixelCNN(nn.Module):
    """p(x | z) for images of `info.shape`; `nll` is teacher-forced (one pass), `decode`
    samples pixel by pixel (H x W passes)."""

    def __init__(self, info: DataInfo, latent_dim: int, config: PixelCNNConfig):
        super().__init__()
        if info.kind != "image" or len(info.shape) != 3:
            raise ValueError(f"the PixelCNN decoder needs image data (C, H, W), got {info.kind} of shape {info.shape}")
        self.shape = tuple(info.shape)
        self.levels = config.levels
        c, k = config.channels, config.kernel
        self.layers = nn.ModuleList(
            GatedLayer(self.shape[0] if i == 0 else c, c, k, latent_dim, first=i == 0) for i in range(config.layers))
        self.per_channel = 1 if self.levels == 2 else self.levels
        # Output row r depends on input rows r - context_rows .. r only: each layer's vertical
        # conv reaches k // 2 rows up, and the vertical-to-horizontal link one more.
        self.context_rows = config.layers * (k // 2) + 1
        self.head = nn.Sequential(nn.ReLU(), nn.Conv2d(c, c, 1), nn.ReLU(),
                                  nn.Conv2d(c, self.shape[0] * self.per_channel, 1))

    # -- discretisation -----------------------------------------------------------------
    def discretise(self, x: torch.Tensor) -> torch.Tensor:
        """Pixel intensities in [0, 1] -> integer levels 0..levels-1 (0.5 threshold when binary)."""
        if self.levels == 2:
            return binarize(x).long()
        return (x * self.levels).floor().clamp(0, self.levels - 1).long()

    def to_intensity(self, q: torch.Tensor) -> torch.Tensor:
        return q.float() / (self.levels - 1)

    # -- the network --------------------------------------------------------------------
    def logits(self, x_levels: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """Raw outputs (B, C, H, W) for Bernoulli, (B, C, levels, H, W) for categorical."""
        return self(self._inputs(x_levels, z), z)

    def forward(self, inputs: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """The network on real-valued inputs (discretised intensities mapped to [-1, 1])."""
        v = h = inputs
        for layer in self.layers:
            v, h = layer(v, h, z)
        out = self.head(h)
        if self.per_channel == 1:
            return out
        b, _, hh, ww = out.shape
        return out.view(b, self.shape[0], self.levels, hh, ww)

    def nll(self, z: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """Per-datum -log p(x | z) in nats of the discretised image, summed over pixels."""
        q = self.discretise(x)
        out = self.logits(q, z)
        if self.per_channel == 1:
            per_pixel = F.binary_cross_entropy_with_logits(out, q.to(out.dtype), reduction="none")
        else:
            per_pixel = F.cross_entropy(out.transpose(1, 2), q, reduction="none")
        return per_pixel.flatten(1).sum(1)

    @torch.no_grad()
    def decode(self, z: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """An ancestral sample in raster order, as intensities in [0, 1]. The uniforms are drawn
        up front (on the CPU, from `generator` if given), so a seeded call is reproducible.

        Exactly the full pass's logits at a fraction of its cost: the horizontal stack of row
        r sees the vertical stack only through the row above (down-shifted), which is fixed
        while row r fills. So the vertical stack runs once per row, on the `context_rows`
        above it, and each pixel then runs only the horizontal stack on its own row (its
        convolutions are one row high). Identical samples, 6x (8 x 8, 4 layers) to 8x (28 x 28)
        faster than running every layer on the cropped rows at every pixel."""
        n, (c, hh, ww) = len(z), self.shape
        uniforms = torch.rand(n, c, hh, ww, generator=generator).to(z.device)
        q = torch.zeros(n, c, hh, ww, dtype=torch.long, device=z.device)
        conditions = [layer.conditions(z) for layer in self.layers]
        for r in range(hh):
            links = self._links_from_rows_above(q[:, :, max(0, r - self.context_rows):r], conditions, n, ww, z)
            for col in range(ww):
                h = self._inputs(q[:, :, r:r + 1], z)
                for layer, (_, cond_h), link in zip(self.layers, conditions, links):
                    h = layer.horizontal_step(h, link, cond_h)
                out = self.head(h)
                u = uniforms[:, :, r, col]
                if self.per_channel == 1:
                    q[:, :, r, col] = (u < torch.sigmoid(out[:, :, 0, col])).long()
                else:
                    cdf = torch.softmax(out.view(n, c, self.levels, 1, ww)[:, :, :, 0, col], dim=2).cumsum(2)
                    q[:, :, r, col] = (cdf < u.unsqueeze(2)).sum(2).clamp(max=self.levels - 1)
        return self.to_intensity(q)

    def _inputs(self, q: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        return 2 * self.to_intensity(q).to(z.dtype) - 1

    def _links_from_rows_above(self, rows: torch.Tensor, conditions: list, n: int, ww: int,
                               z: torch.Tensor) -> list[torch.Tensor]:
        """Per layer, what the vertical stack passes to the horizontal stack of the row below
        `rows` (its last row's pre-activation through the 1x1 link; zeros above row 0)."""
        if rows.shape[2] == 0:
            zeros = torch.zeros(n, self.layers[0].vertical_to_horizontal.in_channels, 1, ww, dtype=z.dtype,
                                device=z.device)
            return [layer.vertical_to_horizontal(zeros) for layer in self.layers]
        links, v = [], self._inputs(rows, z)
        for layer, (cond_v, _) in zip(self.layers, conditions):
            v_pre = layer.vertical(v)
            links.append(layer.vertical_to_horizontal(v_pre[:, :, -1:]))
            v = gate(v_pre + cond_v)
        return links


class FeedForwardDecoder(nn.Module):
    """The foundation's decoder net (`aebench.nets`) and `Likelihood`, behind the PixelCNN's
    interface: `nll(z, x)` and `decode(z, generator)` (here the likelihood's mean)."""

    def __init__(self, info: DataInfo, latent_dim: int, arch: Arch, width: int, sigma_init: float = 1.0, **nets):
        super().__init__()
        self.net = build_decoder(latent_dim, info.shape, arch, width, **nets)
        self.likelihood = Likelihood(info.kind, sigma_init)

    def nll(self, z: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return self.likelihood.nll(self.net(z), x)

    def decode(self, z: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        return self.likelihood.mean(self.net(z))


def make_decoder(kind: DecoderKind, info: DataInfo, latent_dim: int, arch: Arch = "auto", width: int = 32,
                 pixelcnn: PixelCNNConfig | None = None, sigma_init: float = 1.0, **nets) -> nn.Module:
    """p(x | z) with `nll(z, x) -> Tensor[B]` (nats) and `decode(z, generator) -> data-space Tensor`.
    `nets`: the feed-forward decoder's `arch: acai` options (`aebench.nets.build_decoder`)."""
    if kind == "pixelcnn":
        return PixelCNN(info, latent_dim, pixelcnn or PixelCNNConfig())
    return FeedForwardDecoder(info, latent_dim, arch, width, sigma_init, **nets)
