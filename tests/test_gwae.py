"""GWAE: the GW term, the gradient penalty, the two training phases, the three priors, OoD score."""

import math

import pytest
import torch

from aebench.models import build_model
from aebench.models.base import DataInfo
from aebench.models.gwae import FactorisedNeuralPrior, GaussianMixturePrior, NeuralPrior, gradient_penalty, gw_loss

INFO = DataInfo((1, 8, 8), "image", 10, 200)


def _model(**overrides):
    torch.manual_seed(0)
    return build_model("gwae", {"latent_dim": 4, "width": 8, "critic_hidden": 32, **overrides}, INFO)


def _isometric_images(zs: torch.Tensor, log_c: torch.Tensor) -> torch.Tensor:
    """Images whose pairwise distances are exactly the scaled code distances."""
    q, _ = torch.linalg.qr(torch.randn(64, zs.shape[1], dtype=zs.dtype))
    scale = zs.std(dim=0).mean()
    return (zs @ q.T * (log_c.exp() / scale)).view(-1, 1, 8, 8)


def test_gw_term_zero_for_isometric_decodings():
    torch.manual_seed(0)
    zs = torch.randn(32, 5, dtype=torch.float64) * torch.tensor([1.0, 2.0, 0.5, 1.0, 3.0], dtype=torch.float64)
    log_c = torch.tensor(math.log(2.5), dtype=torch.float64)
    x2s = _isometric_images(zs, log_c)
    assert gw_loss(x2s, zs, log_c).item() == pytest.approx(0.0, abs=1e-10)
    # data distances twice the code distances: the loss is their mean gap and the learned
    # scale is pushed up (negative gradient on log_c)
    log_c = log_c.clone().requires_grad_(True)
    loss = gw_loss(2 * x2s, zs, log_c)
    dz = torch.cdist(zs, zs) * 2.5 / zs.std(dim=0).mean()
    assert loss.item() == pytest.approx(dz.mean().item(), rel=1e-6)
    loss.backward()
    assert log_c.grad.item() < 0


def test_distance_scale_starts_from_the_data():
    model = _model()
    assert bool(model.log_c_pending)
    x = torch.rand(32, 1, 8, 8)
    torch.manual_seed(5)
    model.start_distance_scale(x)
    c = model.log_c.exp().item()
    assert not model.log_c_pending
    torch.manual_seed(5)
    model.start_distance_scale(3 * x)  # the scale is the ratio of data to code distances
    assert model.log_c.exp().item() == pytest.approx(3 * c, rel=1e-5)
    fixed = _model(distance_coef_init=2.5)
    assert not fixed.log_c_pending and fixed.log_c.exp().item() == pytest.approx(2.5)
    fixed.main_step({"x": x}, fixed.optimizers(1e-6)[0])
    assert fixed.log_c.exp().item() == pytest.approx(2.5, rel=1e-3)


def test_gradient_penalty_at_interpolates():
    torch.manual_seed(0)
    x, x2s = torch.rand(6, 1, 8, 8), torch.rand(6, 1, 8, 8)
    z, zs = torch.randn(6, 3) * 3, torch.randn(6, 3) * 3

    a, b = torch.randn(1, 1, 8, 8) * 0.1, torch.randn(3) * 0.1
    linear = lambda xx, zz: (xx * a).flatten(1).sum(1) + zz @ b  # noqa: E731
    expected = (torch.cat([a.flatten(), b]).norm() - 1) ** 2
    assert gradient_penalty(linear, x, z, x2s, zs).item() == pytest.approx(expected.item(), rel=1e-5)

    # f = ||z||^2 / 2 has gradient z: the penalty must use the interpolated codes
    quadratic = lambda xx, zz: 0.5 * zz.pow(2).sum(1) + 0 * xx.flatten(1).sum(1)  # noqa: E731
    t = torch.tensor([0.0, 0.2, 0.5, 0.5, 0.9, 1.0])
    zp = t[:, None] * z + (1 - t[:, None]) * zs
    expected = ((zp.norm(dim=1) - 1) ** 2).mean()
    assert gradient_penalty(quadratic, x, z, x2s, zs, t=t).item() == pytest.approx(expected.item(), rel=1e-5)
    at_ends = (((z.norm(dim=1) - 1) ** 2).mean() + ((zs.norm(dim=1) - 1) ** 2).mean()) / 2
    assert abs(expected - at_ends) > 0.1  # so the check above can tell the two apart


def _snapshot(module):
    return {k: v.detach().clone() for k, v in module.named_parameters()}


def _changed(before, module):
    return {k for k, v in module.named_parameters() if not torch.equal(before[k], v)}


def test_phases_update_only_their_own_parameters():
    model = _model(prior="gmp", gmp_components=3)
    model.train()
    main_opt, critic_opt = model.optimizers(1e-3)
    x = torch.rand(16, 1, 8, 8)
    main_names = {k for k, _ in model.named_parameters() if not k.startswith("critic.")}

    before = _snapshot(model)
    model.critic_phase(x, critic_opt)
    changed = _changed(before, model)
    assert changed and all(k.startswith("critic.") for k in changed)

    before = _snapshot(model)
    model.main_step({"x": x}, main_opt)
    changed = _changed(before, model)
    assert not any(k.startswith("critic.") for k in changed)
    assert {"log_c", "prior.means", "prior.roots"} <= changed
    assert any(k.startswith("encoder.") for k in changed) and any(k.startswith("decoder.") for k in changed)
    # the mixture logits only choose a component (Gumbel-max): they get no gradient, as in the authors' code
    assert "prior.logits" not in changed
    assert changed <= main_names


def test_train_step_runs_critic_steps_critic_updates():
    model = _model(critic_steps=5)
    opts = model.optimizers(1e-3)
    logs = model.train_step({"x": torch.rand(8, 1, 8, 8)}, opts, 0)
    critic_state = [s["step"] for s in opts[1].state.values()]
    main_state = [s["step"] for s in opts[0].state.values()]
    assert critic_state and all(int(s) == 5 for s in critic_state)
    assert main_state and all(int(s) == 1 for s in main_state)
    assert {"loss", "gw", "recon", "neg_entropy", "critic_gap", "critic_loss", "gp"} <= set(logs)


def test_loss_terms_and_entropy_sign():
    model = _model()
    x = torch.rand(8, 1, 8, 8)
    torch.manual_seed(3)
    terms = model.loss({"x": x}, 0)
    _, logvar = model.posterior(x)
    assert terms["neg_entropy"].item() == pytest.approx(-logvar.sum(1).mean().item(), rel=1e-5)
    total = terms["gw"] + terms["recon"] + 0.03 * terms["neg_entropy"] + terms["critic_gap"]
    assert terms["loss"].item() == pytest.approx(total.item(), rel=1e-5)
    # a larger posterior variance lowers the loss through the entropy term
    bias = model.encoder.net[-1].bias
    g = torch.autograd.grad(model.loss({"x": x}, 0)["neg_entropy"], bias)[0]
    assert (g[4:] < 0).all() and (g[:4] == 0).all()


@pytest.mark.parametrize("prior", [
    lambda: NeuralPrior(6, 0.5, 4, 0.2),
    lambda: FactorisedNeuralPrior(6, 0.5, 4, 0.2),
    lambda: GaussianMixturePrior(6, 0.5, 4),
])
def test_priors_are_standardised(prior):
    torch.manual_seed(0)
    p = prior().train()
    eps = p.noise(2048)
    z = p.norm(p.transform(eps))
    assert z.shape == (2048, 6)
    assert z.mean(0).abs().max() < 1e-4  # float32 sums over 2048 samples
    # unit variance up to batch-norm's eps (1e-5, significant while the untrained MLP's
    # outputs are small): var z = v / (v + eps) for pre-norm variance v
    v = p.transform(eps).var(0, unbiased=False)
    assert torch.allclose(z.var(0, unbiased=False), v / (v + 1e-5), atol=1e-4)
    assert p(7).shape == (7, 6)
    # evaluation mode standardises with running statistics, which track the batches seen
    for _ in range(40):  # momentum 0.5: the initial running_var of 1 decays as 0.5^n
        p(256)
    p.eval()
    t = p.transform(p.noise(4096)).detach()
    assert torch.allclose(p.norm.running_mean, t.mean(0), atol=0.1 * t.std(0).max().item())
    assert torch.allclose(p.norm.running_var, t.var(0), rtol=0.2)
    z = p(16, torch.Generator().manual_seed(1))
    assert z.shape == (16, 6) and torch.equal(z, p(16, torch.Generator().manual_seed(1)))


def _cross_dependence(prior) -> torch.Tensor:
    """|d z_i / d eps_j| summed over a batch: (output dim, noise dim)."""
    eps = torch.randn(64, prior.dim, requires_grad=True)
    weights = torch.randn(64)  # a plain sum would vanish: batch-norm outputs sum to zero
    z = prior.norm(prior.transform(eps))
    return torch.stack([torch.autograd.grad((z[:, i] * weights).sum(), eps, retain_graph=True)[0].abs().sum(0)
                        for i in range(prior.dim)])


def test_fnp_dimensions_depend_on_their_own_noise_only():
    torch.manual_seed(0)
    fnp = FactorisedNeuralPrior(5, 0.5, 4, 0.2).train()
    jac = _cross_dependence(fnp)
    off = jac - torch.diag(torch.diag(jac))
    assert off.abs().max() < 1e-6 and (torch.diag(jac) > 1e-2).all()
    np_jac = _cross_dependence(NeuralPrior(5, 0.5, 4, 0.2).train())
    assert (np_jac - torch.diag(torch.diag(np_jac))).abs().max() > 1e-2  # the unfactorised prior mixes


def test_gmp_components_follow_the_logits():
    torch.manual_seed(0)
    gmp = GaussianMixturePrior(3, 0.5, 4)
    with torch.no_grad():
        gmp.logits.copy_(torch.tensor([0.0, 50.0, 0.0, 0.0]))
    assert (gmp.component(500) == 1).all()
    with torch.no_grad():
        gmp.logits.copy_(torch.log(torch.tensor([0.1, 0.2, 0.3, 0.4])))
    counts = torch.bincount(gmp.component(20000), minlength=4) / 20000
    assert torch.allclose(counts, torch.tensor([0.1, 0.2, 0.3, 0.4]), atol=0.02)


def test_critic_is_spectrally_normalised():
    model = _model()
    model.train()
    for _ in range(30):  # power iterations run on every training forward
        model.critic(torch.rand(4, 1, 8, 8), torch.randn(4, 4))
    for layer in [model.critic.z_net[0], model.critic.head[2], model.critic.x_net[0]]:
        w = layer.weight.flatten(1)
        assert torch.linalg.matrix_norm(w, 2).item() == pytest.approx(1.0, abs=0.05)


def test_sampling_and_ood_score():
    model = _model(prior="fnp").eval()
    s = model.sample(5, torch.Generator().manual_seed(0))
    assert s.shape == (5, 1, 8, 8) and s.min() >= 0 and s.max() <= 1
    assert torch.equal(s, model.sample(5, torch.Generator().manual_seed(0)))
    x = torch.rand(7, 1, 8, 8)
    score = model.score_ood(x)
    z = model.encode(x)
    assert score.shape == (7,)
    assert torch.allclose(score, model.critic(model.decode(z), z))
