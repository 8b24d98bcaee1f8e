"""ACAI and the baselines of its comparison: the paper's nets, each loss's known terms, which
parameters each objective moves, the VQ-VAE's EMA codebook, and one epoch through the trainer."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from aebench.config import TrainConfig
from aebench.models import build_model
from aebench.models.base import DataInfo
from aebench.nets import acai_plan, build_decoder, build_encoder, resolve_arch
from aebench.training import train

FAMILY = ["acai", "dropout_ae", "denoising_ae", "aae", "vqvae"]
INFO8 = DataInfo((1, 8, 8), "image", 10, 128)


def batch(n: int = 8, shape=(1, 8, 8), seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {"x": torch.rand(n, *shape, generator=g), "label": torch.arange(n) % 10,
            "group": torch.arange(n) % 10, "index": torch.arange(n), "pos": torch.arange(n)}


def model(kind: str, **cfg):
    torch.manual_seed(0)
    return build_model(kind, {"latent_dim": 8, "arch": "acai", "width": 4, **cfg}, INFO8)


# -- the paper's architecture --------------------------------------------------------------

@pytest.mark.parametrize("shape, latent, plan", [
    ((1, 32, 32), 64, (4, (2, 2), 16, False)),  # the paper's lines setting: 2x2 x 16
    ((1, 8, 8), 16, (2, (2, 2), 4, False)),
    ((1, 32, 32), 10, (5, (1, 1), 10, False)),  # 4 does not divide 10: pool to 1x1
    ((1, 28, 28), 16, (2, (7, 7), 1, True)),  # odd side: a linear map to the code
])
def test_acai_arch_shapes(shape, latent, plan):
    assert acai_plan(shape, latent) == plan
    enc, dec = build_encoder(shape, latent, "acai", 4), build_decoder(latent, shape, "acai", 4)
    z = enc(torch.randn(3, *shape))
    assert z.shape == (3, latent) and dec(z).shape == (3, *shape)


def test_acai_arch_layers_and_init():
    enc = build_encoder((1, 32, 32), 64, "acai", 16)
    dec = build_decoder(64, (1, 32, 32), "acai", 16)
    convs = [m for m in enc.modules() if isinstance(m, nn.Conv2d)]
    assert [c.kernel_size for c in convs] == [(1, 1)] + [(3, 3)] * 10
    assert [c.out_channels for c in convs] == [16, 16, 16, 32, 32, 64, 64, 128, 128, 256, 16]
    assert all(m.negative_slope == 0.2 for m in enc.modules() if isinstance(m, nn.LeakyReLU))
    assert sum(isinstance(m, nn.AvgPool2d) for m in enc.modules()) == 4
    ups = [m for m in dec.modules() if isinstance(m, nn.Upsample)]
    assert len(ups) == 4 and all(u.mode == "nearest" for u in ups)
    big = convs[-2]  # 128 -> 256 channels, 3x3: 294,912 weights
    expected = 1 / math.sqrt((1 + 0.2**2) * 128 * 9)
    assert big.weight.std().item() == pytest.approx(expected, rel=0.02)
    assert big.bias.abs().max() == 0
    assert resolve_arch((3,), "acai") == "mlp"  # vectors fall back to the MLP


# -- ACAI ------------------------------------------------------------------------------------

def test_acai_terms_match_the_paper_formulas():
    m = model("acai", advweight=0.5, reg=0.2)
    b = batch()
    torch.manual_seed(5)
    terms = m.objectives(b)
    torch.manual_seed(5)
    u = torch.rand(8, 1)
    alpha = 0.5 - (u - 0.5).abs()
    assert (alpha >= 0).all() and (alpha <= 0.5).all()
    x = 2 * b["x"] - 1  # the paper's pixels
    z = m.encoder(x)
    x_hat = m.decoder(z)
    mix = m.decoder(alpha * z + (1 - alpha) * z[torch.arange(7, -1, -1)])
    crit = lambda v: m.critic_net(v).mean(1)  # noqa: E731
    expect_critic = ((crit(mix) - alpha[:, 0]) ** 2).mean() + (crit(0.2 * x + 0.8 * x_hat) ** 2).mean()
    expect_ae = ((x - x_hat) ** 2).mean() + 0.5 * (crit(mix) ** 2).mean()
    assert terms["critic"].item() == pytest.approx(expect_critic.item(), rel=1e-5)
    assert terms["autoencoder"].item() == pytest.approx(expect_ae.item(), rel=1e-5)
    assert m.loss(b, 0)["loss"].item() == pytest.approx(((x - x_hat) ** 2).mean().item(), rel=1e-5)


@pytest.mark.parametrize("kind, objectives, groups", [
    ("acai", ("autoencoder", "critic"), ("autoencoder_parameters", "critic_parameters")),
    ("aae", ("autoencoder", "discriminator"), ("autoencoder_parameters", None)),
])
def test_each_player_moves_only_its_own_parameters(kind, objectives, groups):
    """One train step with SGD: each parameter group moves by exactly -lr x the gradient of its
    own objective, although the adversary's objective also depends on the autoencoder."""
    m = model(kind)
    b = batch()
    own = [getattr(m, groups[0])(), getattr(m, groups[1])() if groups[1] else list(m.discriminator.parameters())]
    assert not {id(p) for p in own[0]} & {id(p) for p in own[1]}
    torch.manual_seed(1)
    terms = m.objectives(b)
    expected = [torch.autograd.grad(terms[name], params, retain_graph=True, allow_unused=True)
                for name, params in zip(objectives, own)]
    leak = torch.autograd.grad(terms[objectives[1]], own[0], allow_unused=True)
    assert any(g is not None and g.abs().sum() > 0 for g in leak), "adversary loss must reach the AE for this test"
    before = [[p.detach().clone() for p in ps] for ps in own]
    lr = 0.1
    optimizers = [torch.optim.SGD(ps, lr=lr) for ps in own]
    torch.manual_seed(1)
    m.train_step(b, optimizers, 0)
    for ps, olds, grads in zip(own, before, expected):
        for p, old, g in zip(ps, olds, grads):
            step = torch.zeros_like(p) if g is None else -lr * g
            torch.testing.assert_close(p.detach() - old, step, atol=1e-6, rtol=1e-4)


# -- the baselines ---------------------------------------------------------------------------

def test_aae_discriminator_and_prior_samples():
    m = model("aae")
    assert [l.out_features for l in m.discriminator if isinstance(l, nn.Linear)] == [100, 100, 1]
    terms = m.objectives(batch())
    assert 0 <= terms["disc_accuracy"] <= 1
    # log 2 per term for an undecided discriminator is the scale of the BCE terms
    assert 0.1 < terms["disc_code"].item() < 5
    assert m.sample(5).shape == (5, 1, 8, 8)
    assert m.optimizers(3e-3)[1].param_groups[0]["lr"] == 3e-3  # default: the training rate
    assert model("aae", adversary_lr=1e-4).optimizers(3e-3)[1].param_groups[0]["lr"] == 1e-4


def test_dropout_only_in_training():
    m = model("dropout_ae", keep_prob=0.5)
    b = batch()
    m.eval()
    assert m.loss(b, 0)["loss"] == m.loss(b, 0)["loss"]
    m.train()
    torch.manual_seed(0)
    first = m.loss(b, 0)["loss"]
    assert first != m.loss(b, 0)["loss"]
    kept = model("dropout_ae", keep_prob=1.0).train()
    assert kept.loss(b, 0)["loss"] == kept.eval().loss(b, 0)["loss"]


def test_denoising_reconstructs_the_clean_image_in_paper_pixels():
    m = model("denoising_ae", noise=0.0)
    b = batch()
    x = 2 * b["x"] - 1
    clean = ((m.decoder(m.encoder(x)) - x) ** 2).mean()
    assert m.loss(b, 0)["loss"].item() == pytest.approx(clean.item(), rel=1e-6)
    noisy = model("denoising_ae", noise=1.0)
    torch.manual_seed(3)
    loss = noisy.loss(b, 0)["loss"]
    torch.manual_seed(3)
    corrupted = x + torch.randn_like(x)  # sigma = 1 on [-1, 1] pixels
    assert loss.item() == pytest.approx(((noisy.decoder(noisy.encoder(corrupted)) - x) ** 2).mean().item(), rel=1e-6)
    torch.testing.assert_close(noisy.encode(b["x"]), noisy.encode(b["x"]))  # the code is of the clean image
    out = noisy.decode(noisy.encode(b["x"]))
    assert out.min() >= 0 and out.max() <= 1


def test_vqvae_ema_codebook_update_is_the_authors_formula():
    m = model("vqvae", z_log_size=3, num_latents=2, decay=0.9, epsilon=1e-5, beta=10.0)
    b = batch()
    k = 8
    with torch.no_grad():
        v, e, idx = m.quantize(m.encoder(2 * b["x"] - 1))
    flat = v.reshape(-1, 8)
    count = 0.1 * torch.bincount(idx, minlength=k).float()
    sums = 0.9 * m.ema_sum + 0.1 * torch.zeros(k, 8).index_add_(0, idx, flat)
    n = count.sum()
    expect = sums / ((count + 1e-5) / (n + k * 1e-5) * n)[:, None]
    before = m.codebook.clone()
    m.eval()
    m.loss(b, 0)
    assert torch.equal(m.codebook, before)  # validation leaves it alone
    m.train()
    terms = m.loss(b, 0)
    torch.testing.assert_close(m.codebook, expect, rtol=1e-5, atol=1e-6)
    assert not torch.equal(before, m.codebook)
    assert terms["loss"].item() == pytest.approx(terms["mse"].item() + 10 * terms["commitment"].item(), rel=1e-5)
    assert terms["commitment"].item() == pytest.approx(((flat - e.reshape(-1, 8)) ** 2).mean().item(), rel=1e-5)


def test_vqvae_gradients_pass_straight_through_and_codebook_is_not_learned():
    m = model("vqvae", z_log_size=4)
    assert "codebook" not in dict(m.named_parameters())
    m.loss(batch(), 0)["loss"].backward()
    for name, p in m.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name
    # decoding quantises: a tiny nudge of the code leaves the chosen entries, hence the image
    z = m.encode(batch()["x"])
    torch.testing.assert_close(m.decode(z), m.decode(z + 1e-6))


@pytest.mark.parametrize("kind", ["dropout_ae", "denoising_ae"])
def test_baseline_gradients_reach_encoder_and_decoder(kind):
    m = model(kind).train()
    m.loss(batch(), 0)["loss"].backward()
    for name, p in m.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0, name


# -- through the trainer ---------------------------------------------------------------------

@pytest.mark.parametrize("kind", FAMILY)
def test_one_epoch_through_the_trainer(kind, tmp_path):
    m = model(kind, **({"z_log_size": 6} if kind == "vqvae" else {}))
    data = batch(64, seed=1)
    cfg = TrainConfig(epochs=1, batch_size=16, lr=1e-3, max_steps_per_epoch=3, num_threads=1)
    before = {k: v.clone() for k, v in m.state_dict().items()}
    result = train(m, data, batch(32, seed=2), cfg, resume_path=tmp_path / "r.pt", fingerprint="t")
    assert result.epochs_run == 1 and math.isfinite(result.best_val_loss)
    assert any(not torch.equal(before[k], v) for k, v in m.state_dict().items())
    assert all(math.isfinite(v) for v in result.history[0].values())
