"""DVAE, the diffusion variational autoencoder with random-walk sampling (Li et al., ECCV 2020):
the model (`model.py`, registered as `dvae`) and its evaluation suite (`eval.py`)."""

from aebench.models.dvae.model import DVAE, DVAEConfig, kl_to_local_gaussian, local_covariance, sqrt_covariance

__all__ = ["DVAE", "DVAEConfig", "kl_to_local_gaussian", "local_covariance", "sqrt_covariance"]
