"""Encoder and decoder builders sized from the data's shape.

`arch="auto"` picks a convolutional net for images of at least 16x16 pixels and an MLP for
vectors and tiny images (8x8 digits), where convolutions buy nothing. The conv nets halve
the resolution with stride-2 4x4 convolutions while the side stays even and at least 8
(32 -> 16 -> 8 -> 4, 28 -> 14 -> 7) and mirror that with transposed convolutions, so any
such image size works without per-dataset code. Decoders return unconstrained outputs of the
data's shape; the model decides the output activation (logits, means).
"""

from __future__ import annotations

import math
from typing import Literal

import torch
from torch import nn

Arch = Literal["auto", "conv", "mlp"]


def resolve_arch(shape: tuple[int, ...], arch: Arch = "auto") -> str:
    if arch != "auto":
        if arch == "conv" and len(shape) != 3:
            raise ValueError(f"arch 'conv' needs image data (C, H, W), got shape {shape}")
        return arch
    return "conv" if len(shape) == 3 and min(shape[1:]) >= 16 else "mlp"


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
            layers += [nn.Conv2d(c_in, c, 4, stride=2, padding=1), nn.LeakyReLU(0.2)]
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
        self.project = nn.Sequential(nn.Linear(latent_dim, channels[0] * h * w), nn.LeakyReLU(0.2))
        layers: list[nn.Module] = []
        for c_in, c_out in zip(channels, channels[1:] + [channels[-1]]):
            layers += [nn.ConvTranspose2d(c_in, c_out, 4, stride=2, padding=1), nn.LeakyReLU(0.2)]
        layers.append(nn.Conv2d(channels[-1], shape[0], 3, padding=1))
        self.body = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.body(self.project(z).view(-1, *self.start))


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


def build_encoder(shape: tuple[int, ...], out_dim: int, arch: Arch = "auto", width: int = 32) -> nn.Module:
    """Data of `shape` -> vectors of `out_dim` (e.g. 2 x latent for mean and log-variance)."""
    if resolve_arch(shape, arch) == "conv":
        return ConvEncoder(shape, out_dim, width)
    return MLPEncoder(shape, out_dim, hidden=8 * width)


def build_decoder(latent_dim: int, shape: tuple[int, ...], arch: Arch = "auto", width: int = 32) -> nn.Module:
    """Codes of `latent_dim` -> unconstrained outputs of `shape`."""
    if resolve_arch(shape, arch) == "conv":
        return ConvDecoder(latent_dim, shape, width)
    return MLPDecoder(latent_dim, shape, hidden=8 * width)
