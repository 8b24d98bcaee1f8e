"""Dropout autoencoder: a baseline of the ACAI paper's comparison (the authors' `dropout.py`).

The plain autoencoder, except that during training the code passes through dropout before
the decoder: each of its numbers is kept with probability `keep_prob` = 0.5 and scaled by
1 / keep_prob (TensorFlow's `tf.nn.dropout(code, keep_prob)`), which pushes the decoder to
cope with partial codes. Loss: the mean squared error in the paper's [-1, 1] pixels. The
representation is the clean code. Validation (the model in eval mode) reconstructs from the
clean code, so model selection measures the autoencoder that is evaluated.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from pydantic import Field

from aebench.models import register
from aebench.models.acai_family import PaperPixelAE, mse
from aebench.models.base import ModelConfig


class DropoutAEConfig(ModelConfig):
    keep_prob: float = Field(0.5, gt=0, le=1, description="probability of keeping each code number in training")


@register("dropout_ae")
class DropoutAE(PaperPixelAE):
    config_class = DropoutAEConfig

    def loss(self, batch: dict[str, torch.Tensor], step: int) -> dict[str, torch.Tensor]:
        x = self.to_paper(batch["x"])
        z = F.dropout(self.encoder(x), p=1.0 - self.config.keep_prob, training=self.training)
        recon = mse(x, self.decoder(z))
        return {"loss": recon, "mse": recon}
