"""ML-VAE's group-id probes: the authors' MLP reads nonlinear codes a linear probe cannot."""

import numpy as np
import pytest
import torch

from aebench.models.mlvae import MLVAEConfig
from aebench.models.mlvae.eval import ProbeSpec, fit_probe, probe_net

FAST_MLP = ProbeSpec(kind="mlp", sample=False, steps=400, lr=1e-3)


def rings(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Two concentric circles (radius 1: id 3, radius 3: id 8): no line separates them."""
    rng = np.random.default_rng(seed)
    outer = np.arange(n) % 2 == 1
    angle = rng.uniform(0, 2 * np.pi, n)
    radius = np.where(outer, 3.0, 1.0)
    z = np.stack([radius * np.cos(angle), radius * np.sin(angle)], 1) + 0.1 * rng.standard_normal((n, 2))
    return z, np.where(outer, 8, 3)


def xor(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """The id is the sign of the product of two coordinates (each away from zero)."""
    rng = np.random.default_rng(seed)
    z = rng.choice([-1.0, 1.0], (n, 2)) * rng.uniform(0.5, 2.0, (n, 2))
    return z, (np.sign(z[:, 0] * z[:, 1]) > 0).astype(np.int64)


@pytest.mark.parametrize("data", [rings, xor])
def test_mlp_probe_reads_a_labelling_no_linear_probe_can(data):
    z_tr, y_tr = data(400, 0)
    z_te, y_te = data(400, 1)
    logvar = np.zeros_like(z_tr)
    linear = fit_probe(z_tr, logvar, y_tr, ProbeSpec(kind="linear", sample=False), seed=0)
    mlp = fit_probe(z_tr, logvar, y_tr, FAST_MLP, seed=0)
    assert np.mean(linear.predict(z_te) == y_te) < 0.7
    assert np.mean(mlp.predict(z_te) == y_te) > 0.95
    assert set(np.unique(mlp.predict(z_te))) == set(np.unique(y_tr))  # predicts the ids, not their ranks


def test_mlp_probe_is_deterministic_under_its_seed_and_leaves_the_global_rng_alone():
    z, y = rings(200, 0)
    logvar = np.full_like(z, -1.0)
    spec = ProbeSpec(kind="mlp", sample=True, steps=50)
    state = torch.random.get_rng_state()
    a, b = (fit_probe(z, logvar, y, spec, seed=3) for _ in range(2))
    assert torch.equal(torch.random.get_rng_state(), state)
    for pa, pb in zip(a.net.state_dict().values(), b.net.state_dict().values()):
        assert torch.equal(pa, pb)
    c = fit_probe(z, logvar, y, spec, seed=4)
    assert not torch.equal(a.net[0].weight, c.net[0].weight)


def test_probe_reads_posterior_samples_so_noise_hides_a_small_mean_difference():
    """Means 0.2 apart under unit variance: a probe of means separates them, one of samples
    (the authors' protocol) cannot do much better than chance."""
    rng = np.random.default_rng(0)
    y = np.arange(600) % 2
    mu = np.stack([0.2 * y + 0.01 * rng.standard_normal(600), np.zeros(600)], 1)
    logvar = np.zeros_like(mu)
    gen = torch.Generator().manual_seed(0)
    noisy = (torch.from_numpy(mu) + torch.randn(mu.shape, generator=gen, dtype=torch.float64)).numpy()
    on_means = fit_probe(mu, logvar, y, ProbeSpec(kind="mlp", sample=False, steps=300, lr=1e-3), seed=0)
    on_samples = fit_probe(mu, logvar, y, ProbeSpec(kind="mlp", sample=True, steps=300, lr=1e-3), seed=0)
    assert np.mean(on_means.predict(mu) == y) > 0.95
    assert np.mean(on_samples.predict(noisy) == y) < 0.65


def test_probe_net_has_the_authors_shape_and_the_config_defaults_to_it():
    net = probe_net(10, 7)
    kinds = [type(m).__name__ for m in net]
    assert kinds == ["Linear", "BatchNorm1d", "LeakyReLU"] * 2 + ["Linear"]
    assert net[0].out_features == net[3].out_features == 256 and net[-1].out_features == 7
    assert net[2].negative_slope == 0.2
    cfg = MLVAEConfig.model_validate({})
    spec = ProbeSpec.from_config(cfg)
    assert (spec.kind, spec.sample, spec.batch_size, spec.lr) == ("mlp", True, 128, 1e-4)
    assert ProbeSpec.from_config(MLVAEConfig.model_validate({"probe": "linear"})).kind == "linear"
