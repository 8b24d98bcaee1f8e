"""The Multi-Level VAE (Bouchacourt, Tomioka & Nowozin, AAAI 2018) and what only it needs.

- `model.py`: the model and its config (registered as `mlvae`);
- `posterior.py`: the group posterior (a product of Gaussians) shared by model and evaluation;
- `sampler.py`: batches made of whole groups;
- `eval.py`: its evaluation suite (group-id probes of content and style, evidence accumulation).
"""

from aebench.models.mlvae.model import MLVAE, MLVAEConfig
from aebench.models.mlvae.posterior import gaussian_kl, group_posterior, lecun_normal_

__all__ = ["MLVAE", "MLVAEConfig", "gaussian_kl", "group_posterior", "lecun_normal_"]
