"""Encoder and decoder builders sized from the data's shape.

`arch="auto"` picks a convolutional net for images of at least 16x16 pixels and an MLP for
vectors and tiny images (8x8 digits), where convolutions buy nothing. The conv nets halve
the resolution with stride-2 4x4 convolutions while the side stays even and at least 8
(32 -> 16 -> 8 -> 4, 28 -> 14 -> 7) and mirror that with transposed convolutions, so any
such image size works without per-dataset code. Decoders return unconstrained outputs of the
data's shape; the model decides the output activation (logits, means).

`arch="acai"` is the architecture of the ACAI paper's official code (Berthelot et al. 2019,
brain-research/acai `lib/layers.py`), offered to every model so that comparisons can use the
paper's nets; see `ACAIEncoder`. It needs images; on vector data it falls back to the MLP so
that a model section may set it once for every dataset. Two options follow the authors' setups:
`latent_side` fixes the side of the code map (their `--latent_width`), and `pad_to` pads
smaller images (MNIST's 28x28) to the authors' 32x32 before the encoder and crops the
decoder's output back, so the rest of the pipeline still sees the data's own size.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Literal

import torch
from torch import nn

from aebench.errors import UserError

Arch = Literal["auto", "conv", "mlp", "acai"]


def resolve_arch(shape: tuple[int, ...], arch: Arch = "auto") -> str:
    """The family of nets `arch` means for data of `shape` (a key of `ARCHITECTURES`)."""
    if arch == "auto":
        return "conv" if len(shape) == 3 and min(shape[1:]) >= 16 else "mlp"
    if len(shape) != 3:
        fallback = ARCHITECTURES[arch].on_vectors
        if fallback is None:
            raise ValueError(f"arch {arch!r} needs image data (C, H, W), got shape {shape}")
        return fallback
    return arch


def leaky_relu(slope: float) -> nn.LeakyReLU:
    """LeakyReLU that overwrites its input, which in these nets is always a fresh conv or
    linear output that nothing else keeps (their backward passes save their inputs, not their
    outputs; autograd would refuse otherwise). Same values and gradients; it spares a
    full-size activation per layer, which made decoding 10,000 MNIST codes about 1.3x faster
    (training: about 1%)."""
    return nn.LeakyReLU(slope, inplace=True)


def _conv_plan(shape: tuple[int, ...], width: int) -> tuple[list[int], tuple[int, int]]:
    """Channels per stride-2 stage and the final spatial size."""
    _, h, w = shape
    channels: list[int] = []
    while h % 2 == 0 and w % 2 == 0 and min(h, w) >= 8 and len(channels) < 4:
        channels.append(width * 2 ** len(channels))
        h, w = h // 2, w // 2
    return channels, (h, w)


class ConvEncoder(nn.Module):
    def __init__(self, shape: tuple[int, ...], out_dim: int, width: int):
        super().__init__()
        channels, (h, w) = _conv_plan(shape, width)
        layers: list[nn.Module] = []
        c_in = shape[0]
        for c in channels:
            layers += [nn.Conv2d(c_in, c, 4, stride=2, padding=1), leaky_relu(0.2)]
            c_in = c
        self.features = nn.Sequential(*layers, nn.Flatten())
        self.head = nn.Linear(c_in * h * w, out_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


class ConvDecoder(nn.Module):
    def __init__(self, latent_dim: int, shape: tuple[int, ...], width: int):
        super().__init__()
        channels, (h, w) = _conv_plan(shape, width)
        channels = channels[::-1]
        self.start = (channels[0], h, w)
        self.project = nn.Sequential(nn.Linear(latent_dim, channels[0] * h * w), leaky_relu(0.2))
        layers: list[nn.Module] = []
        for c_in, c_out in zip(channels, channels[1:] + [channels[-1]]):
            layers += [nn.ConvTranspose2d(c_in, c_out, 4, stride=2, padding=1), leaky_relu(0.2)]
        layers.append(nn.Conv2d(channels[-1], shape[0], 3, padding=1))
        self.body = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.body(self.project(z).view(-1, *self.start))


# --------------------------------------------------------------------------------------------
# The ACAI paper's conv nets
# --------------------------------------------------------------------------------------------

ACAI_SLOPE = 0.2  # tf.nn.leaky_relu's default slope, used throughout the official code (PyTorch's: 0.01)


def acai_init_(module: nn.Module, slope: float = ACAI_SLOPE) -> nn.Module:
    """The official code's initialiser for every conv (here also the fallback linear maps):
    weights ~ N(0, 1 / ((1 + slope^2) fan_in)), fan_in = in_channels x kernel area (a He init
    corrected for the leaky slope), biases zero (TensorFlow's default)."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            fan_in = m.weight[0].numel()
            nn.init.normal_(m.weight, 0.0, 1.0 / math.sqrt((1.0 + slope**2) * fan_in))
            nn.init.zeros_(m.bias)
    return module


def acai_plan(shape: tuple[int, ...], latent_dim: int,
              latent_side: int | None = None) -> tuple[int, tuple[int, int], int, bool]:
    """(scales, (h, w) of the code map, code channels, whether a linear map is needed).

    The official code pools 32x32 images `scales` times down to a `latent_width` side and
    flattens `latent` channels there (lines: 4 scales to 2x2 x 16 channels = 64 numbers;
    MNIST: 3 scales to 4x4 x 2 = 32 or 4x4 x 16 = 256). Given `latent_side`, that is the plan:
    pool until the width is `latent_side` and give the map latent_dim / (h w) channels (see
    `_fixed_side_plan`). Without it the side is derived from `latent_dim`: halve while the side is
    even and above 2 (32 -> 2x2, 8 -> 2x2, 28 -> 7x7), and keep halving while h x w does not
    divide `latent_dim` (32 with latent 10 -> 1x1). The code map then has latent_dim / (h w)
    channels and the net is all-convolutional like the paper's. Where h x w still does not
    divide it (odd sides, e.g. 28x28 -> 7x7 with latent 16), the last conv gives
    ceil(latent_dim / (h w)) channels and a linear map (no activation) turns the flattened map
    into the code, mirrored in the decoder.
    """
    if latent_side is not None:
        return _fixed_side_plan(shape, latent_dim, latent_side)
    _, h, w = shape
    scales = 0
    while h % 2 == 0 and w % 2 == 0 and (min(h, w) > 2 or latent_dim % (h * w)):
        h, w, scales = h // 2, w // 2, scales + 1
    area = h * w
    return scales, (h, w), -(-latent_dim // area), latent_dim % area != 0


def _fixed_side_plan(shape: tuple[int, ...], latent_dim: int, side: int) -> tuple[int, tuple[int, int], int, bool]:
    """The authors' plan: scales = log2(image width / side), both sides divided by 2^scales,
    and the code exactly (latent_dim / (h w)) channels on that map, no linear map."""
    _, h, w = shape
    scales = round(math.log2(w / side)) if w >= side else -1
    if scales < 0 or side << scales != w or h % (1 << scales):
        raise UserError(f"`latent_side` = {side} does not fit {h}x{w} images (the encoder halves the side per "
                        f"scale): use {h}x{w} / a power of two, or set `pad_to` (e.g. 32 for 28x28 images)")
    h, w = h >> scales, w >> scales
    if latent_dim % (h * w):
        raise UserError(f"`latent_side` = {side} makes a {h}x{w} code map, whose area does not divide the code size "
                        f"{latent_dim} (latent_dim, or 2 x latent_dim for a mean and a log-variance): set "
                        f"`latent_dim` to a multiple of {h * w}")
    return scales, (h, w), latent_dim // (h * w), False


def padded_shape(shape: tuple[int, ...], pad_to: int | None) -> tuple[int, ...]:
    """The image shape the ACAI nets work at: (C, pad_to, pad_to), or `shape` without padding."""
    if pad_to is None:
        return shape
    c, h, w = shape
    if pad_to < max(h, w):
        raise UserError(f"`pad_to` = {pad_to} is smaller than the {h}x{w} images: use at least {max(h, w)}, "
                        f"or leave it unset")
    return (c, pad_to, pad_to)


def _margins(shape: tuple[int, ...], padded: tuple[int, ...]) -> tuple[int, int, int, int]:
    """(left, right, top, bottom) pixels added to centre `shape` in `padded` (the authors' 2 per
    side for 28 -> 32)."""
    dh, dw = padded[1] - shape[1], padded[2] - shape[2]
    return dw // 2, dw - dw // 2, dh // 2, dh - dh // 2


def pad_with_background(x: torch.Tensor, margins: tuple[int, int, int, int]) -> torch.Tensor:
    """`x` padded by `margins` with each image's background, taken as its smallest value. For
    white-on-black digits that is exactly the authors' constant (-1 on their [-1, 1] pixels), in
    whatever range the model feeds its encoder ([0, 1] or [-1, 1]); extending the border pixels
    instead would smear the strokes of the ~1% of MNIST digits that touch the edge. The border is
    a constant, as the authors' is: gradients reach `x` through its own pixels only."""
    background = x.detach().amin(dim=(1, 2, 3), keepdim=True)
    left, right, top, bottom = margins
    out = background.expand(-1, x.shape[1], x.shape[2] + top + bottom, x.shape[3] + left + right).clone()
    out[:, :, top:top + x.shape[2], left:left + x.shape[3]] = x
    return out


def _conv3_lrelu(c_in: int, c_out: int) -> list[nn.Module]:
    return [nn.Conv2d(c_in, c_out, 3, padding=1), leaky_relu(ACAI_SLOPE)]


class ACAIEncoder(nn.Module):
    """1x1 conv; per scale two [3x3 conv, LeakyReLU(0.2)] with width x 2^scale channels and
    2x2 average pooling; a 3x3 conv with width x 2^scales channels + LeakyReLU; a linear 3x3
    conv to the code channels; flattened (see `acai_plan`). No normalisation layers. With
    `pad_to`, images are first padded to that side with their background (`pad_with_background`)."""

    def __init__(self, shape: tuple[int, ...], out_dim: int, width: int, latent_side: int | None = None,
                 pad_to: int | None = None):
        super().__init__()
        padded = padded_shape(shape, pad_to)
        self.margins = _margins(shape, padded)
        scales, (h, w), code_channels, needs_linear = acai_plan(padded, out_dim, latent_side)
        layers: list[nn.Module] = [nn.Conv2d(shape[0], width, 1)]
        c_in = width
        for scale in range(scales):
            c = width << scale
            layers += [*_conv3_lrelu(c_in, c), *_conv3_lrelu(c, c), nn.AvgPool2d(2)]
            c_in = c
        top = width << scales
        layers += [*_conv3_lrelu(c_in, top), nn.Conv2d(top, code_channels, 3, padding=1), nn.Flatten()]
        if needs_linear:
            layers.append(nn.Linear(code_channels * h * w, out_dim))
        self.net = acai_init_(nn.Sequential(*layers))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if any(self.margins):
            x = pad_with_background(x, self.margins)
        return self.net(x)


class ACAIDecoder(nn.Module):
    """The encoder mirrored: the code as a (channels, h, w) map; per scale (largest first) two
    [3x3 conv, LeakyReLU(0.2)] and nearest-neighbour 2x upsampling; a 3x3 conv with `width`
    channels + LeakyReLU; a linear 3x3 conv to the image channels (no output activation). With
    `pad_to` it decodes at the padded size and returns the centre crop of the data's size."""

    def __init__(self, latent_dim: int, shape: tuple[int, ...], width: int, latent_side: int | None = None,
                 pad_to: int | None = None):
        super().__init__()
        padded = padded_shape(shape, pad_to)
        left, _, top, _ = _margins(shape, padded)
        self.crop = (slice(top, top + shape[1]), slice(left, left + shape[2]))
        scales, (h, w), code_channels, needs_linear = acai_plan(padded, latent_dim, latent_side)
        self.start = (code_channels, h, w)
        self.project = nn.Linear(latent_dim, code_channels * h * w) if needs_linear else nn.Identity()
        layers: list[nn.Module] = []
        c_in = code_channels
        for scale in range(scales - 1, -1, -1):
            c = width << scale
            layers += [*_conv3_lrelu(c_in, c), *_conv3_lrelu(c, c), nn.Upsample(scale_factor=2, mode="nearest")]
            c_in = c
        layers += [*_conv3_lrelu(c_in, width), nn.Conv2d(width, shape[0], 3, padding=1)]
        self.body = nn.Sequential(*layers)
        acai_init_(self)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        out = self.body(self.project(z).view(-1, *self.start))
        return out[:, :, self.crop[0], self.crop[1]]


def mlp(sizes: list[int], activation: type[nn.Module] = nn.SiLU) -> nn.Sequential:
    """Linear layers with `activation` between them (none after the last)."""
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(sizes, sizes[1:])):
        layers.append(nn.Linear(a, b))
        if i < len(sizes) - 2:
            layers.append(activation())
    return nn.Sequential(*layers)


class MLPEncoder(nn.Module):
    def __init__(self, shape: tuple[int, ...], out_dim: int, hidden: int):
        super().__init__()
        self.net = mlp([math.prod(shape), hidden, hidden, out_dim])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x.flatten(1))


class MLPDecoder(nn.Module):
    def __init__(self, latent_dim: int, shape: tuple[int, ...], hidden: int):
        super().__init__()
        self.shape = shape
        self.net = mlp([latent_dim, hidden, hidden, math.prod(shape)])

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z).view(-1, *self.shape)


@dataclass(frozen=True)
class Architecture:
    """A family of nets: its encoder `(shape, out_dim, width, **options)` and decoder
    `(latent_dim, shape, width, **options)` builders, and the family used instead on vector
    data (None: the family needs images)."""

    encoder: Callable[..., nn.Module]
    decoder: Callable[..., nn.Module]
    on_vectors: str | None


ARCHITECTURES: dict[str, Architecture] = {
    "conv": Architecture(lambda shape, out_dim, width, **_: ConvEncoder(shape, out_dim, width),
                         lambda latent_dim, shape, width, **_: ConvDecoder(latent_dim, shape, width), None),
    "mlp": Architecture(lambda shape, out_dim, width, **_: MLPEncoder(shape, out_dim, hidden=8 * width),
                        lambda latent_dim, shape, width, **_: MLPDecoder(latent_dim, shape, hidden=8 * width), "mlp"),
    "acai": Architecture(ACAIEncoder, ACAIDecoder, "mlp"),
}


def build_encoder(shape: tuple[int, ...], out_dim: int, arch: Arch = "auto", width: int = 32, **options) -> nn.Module:
    """Data of `shape` -> vectors of `out_dim` (e.g. 2 x latent for mean and log-variance).
    `options` shape the `acai` nets only (`latent_side`, `pad_to`: see `ACAIEncoder`)."""
    return ARCHITECTURES[resolve_arch(shape, arch)].encoder(shape, out_dim, width, **options)


def build_decoder(latent_dim: int, shape: tuple[int, ...], arch: Arch = "auto", width: int = 32,
                  **options) -> nn.Module:
    """Codes of `latent_dim` -> unconstrained outputs of `shape` (`options`: as in `build_encoder`)."""
    return ARCHITECTURES[resolve_arch(shape, arch)].decoder(latent_dim, shape, width, **options)
