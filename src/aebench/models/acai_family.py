"""What ACAI and the autoencoders of its comparison (Berthelot et al. 2019) share.

The authors' models (brain-research/acai) all see images in [-1, 1], decode with a linear
output layer, and reconstruct with the mean squared error in that range; their loss weights
(ACAI's lambda, the AAE's adversarial weight, the VQ-VAE's beta) and the denoising noise level
(sigma = 1) are relative to that scale. `PaperPixelAE` keeps that convention inside the model:
inputs in [0, 1] are mapped to 2 x - 1 before the encoder, losses are computed on [-1, 1]
images against the raw decoder output, and only the public `decode` maps back to the
pipeline's [0, 1] (clamped, as the model contract promises pixel intensities). Vector data is
used as it is.

`simultaneous_step` is the authors' two-player update: both objectives are computed from one
forward pass and each optimiser steps on the gradient of its own objective with respect to
its own parameters only (TensorFlow's `minimize(loss, var_list=...)` grouped in one op), so the
critic's loss never moves the autoencoder and the autoencoder's loss never moves the critic.
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from aebench.models.base import AutoEncoderBase, DataInfo, ModelConfig


class PaperPixelAE(AutoEncoderBase):
    """An encoder/decoder pair from `aebench.nets` working in the paper's pixel range."""

    def __init__(self, config: ModelConfig, info: DataInfo):
        super().__init__(config, info)
        self.encoder, self.decoder = self.encoder_net(config.latent_dim), self.decoder_net()

    def to_paper(self, x: torch.Tensor) -> torch.Tensor:
        """Pipeline pixels [0, 1] -> the paper's [-1, 1] (vectors unchanged)."""
        return 2.0 * x - 1.0 if self.info.kind == "image" else x

    def from_paper(self, y: torch.Tensor) -> torch.Tensor:
        """The paper's [-1, 1] -> pipeline pixels, clamped to [0, 1] (vectors unchanged)."""
        return ((y + 1.0) / 2.0).clamp(0.0, 1.0) if self.info.kind == "image" else y

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder(self.to_paper(x))

    def decode_raw(self, z: torch.Tensor) -> torch.Tensor:
        """The decoder's unconstrained output, in the paper's range (what the interpolation
        benchmark scores, as the authors do)."""
        return self.decoder(z)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.from_paper(self.decode_raw(z))

    def autoencoder_parameters(self) -> list[nn.Parameter]:
        return [*self.encoder.parameters(), *self.decoder.parameters()]


def mse(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """tf.losses.mean_squared_error: the mean over every element."""
    return F.mse_loss(y, x)


def simultaneous_step(players: Sequence[tuple[torch.Tensor, list[nn.Parameter], torch.optim.Optimizer]]) -> None:
    """One step of every (objective, parameters, optimiser), each on its own gradient, all
    taken at the same parameter values (one shared forward graph)."""
    grads = [torch.autograd.grad(loss, params, retain_graph=i < len(players) - 1, allow_unused=True)
             for i, (loss, params, _) in enumerate(players)]
    for (_, params, optimizer), g in zip(players, grads):
        optimizer.zero_grad(set_to_none=True)
        for p, gp in zip(params, g):
            p.grad = gp
        optimizer.step()
