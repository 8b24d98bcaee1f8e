"""ML-VAE: product of Gaussians, the group ELBO, batching, held-out groups and its metrics."""

import numpy as np
import pytest
import torch

from aebench.data.parquet import Split
from aebench.evaluation.context import EvalContext
from aebench.models import build_model
from aebench.models.base import DataInfo
from aebench.models.mlvae import MLVAEConfig, gaussian_kl, group_posterior
from aebench.models.mlvae.eval import Posteriors, ProbeSpec, accumulation_curve, mlvae_suite
from aebench.training import split_tensors

INFO = DataInfo((1, 8, 8), "image", 4, 64)


def model(**config):
    torch.manual_seed(0)
    return build_model("mlvae", {"content_dim": 3, "style_dim": 2, "hidden": 32, **config}, INFO)


def grouped_batch(n_groups=3, k=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    group = torch.arange(n_groups).repeat_interleave(k)
    return {"x": torch.rand(n_groups * k, 1, 8, 8, generator=g), "group": group, "label": group,
            "index": torch.arange(n_groups * k)}


def test_product_of_gaussians_matches_direct_formula_and_member_order():
    g = torch.Generator().manual_seed(0)
    mu, logvar = torch.randn(10, 4, generator=g, dtype=torch.float64), torch.randn(10, 4, generator=g, dtype=torch.float64)
    index = torch.tensor([0, 1, 0, 2, 1, 0, 2, 2, 1, 0])
    g_mu, g_lv = group_posterior(mu, logvar, index)
    for k in range(3):
        prec = torch.exp(-logvar[index == k]).sum(0)
        assert torch.allclose(g_lv[k], -torch.log(prec))
        assert torch.allclose(g_mu[k], (mu[index == k] * torch.exp(-logvar[index == k])).sum(0) / prec)
    perm = torch.randperm(10, generator=g)
    p_mu, p_lv = group_posterior(mu[perm], logvar[perm], index[perm])
    assert torch.allclose(p_mu, g_mu) and torch.allclose(p_lv, g_lv)


def test_variance_shrinks_as_members_are_added_and_extremes_stay_finite():
    g = torch.Generator().manual_seed(1)
    mu, logvar = torch.randn(8, 5, generator=g), torch.randn(8, 5, generator=g)
    variances = [group_posterior(mu[:m], logvar[:m], torch.zeros(m, dtype=torch.long))[1].exp() for m in range(1, 9)]
    for fewer, more in zip(variances, variances[1:]):
        assert (more < fewer).all()
    # a member 1e17 times more certain than the other decides the mean, without overflow
    g_mu, g_lv = group_posterior(torch.tensor([[2.0], [-3.0]]), torch.tensor([[-25.0], [15.0]]), torch.zeros(2, dtype=torch.long))
    assert torch.isfinite(g_lv).all() and torch.allclose(g_mu, torch.tensor([[2.0]])) and torch.allclose(g_lv, torch.tensor([[-25.0]]))


def test_group_elbo_counts_content_kl_once_per_group():
    m, batch = model(), grouped_batch(n_groups=3, k=4)
    torch.manual_seed(3)
    terms = m.loss(batch, 0)
    c_mu, c_lv, s_mu, s_lv = m.posteriors(batch["x"])
    g_mu, g_lv = group_posterior(c_mu, c_lv, batch["group"])
    assert torch.allclose(terms["kl_content"], gaussian_kl(g_mu, g_lv).sum() / 3)
    assert torch.allclose(terms["kl_style"], gaussian_kl(s_mu, s_lv).sum() / 3)
    # the same noise by hand: content drawn per observation from its group's posterior
    torch.manual_seed(3)
    content = g_mu[batch["group"]] + torch.randn_like(c_mu) * torch.exp(0.5 * g_lv[batch["group"]])
    style = s_mu + torch.randn_like(s_mu) * torch.exp(0.5 * s_lv)
    assert torch.allclose(terms["nll"], m.nll(torch.cat([content, style], 1), batch["x"]).sum() / 3)
    assert torch.allclose(terms["loss"], terms["nll"] + terms["kl_style"] + terms["kl_content"])


def test_group_slots_separate_groups_sharing_an_id_and_heldout_rows_are_ignored():
    m, batch = model(heldout_groups=[7]), grouped_batch(n_groups=2, k=3)
    batch["group"] = torch.zeros(6, dtype=torch.long)
    batch["group_slot"] = torch.tensor([0, 0, 0, 1, 1, 1])
    torch.manual_seed(0)
    two = m.loss(batch, 0)["kl_content"]
    c_mu, c_lv, _, _ = m.posteriors(batch["x"])
    g_mu, g_lv = group_posterior(c_mu, c_lv, batch["group_slot"])
    assert torch.allclose(two, gaussian_kl(g_mu, g_lv).sum() / 2)
    # appending rows of a held-out group changes nothing
    extra = grouped_batch(n_groups=1, k=2, seed=9)
    joined = {"x": torch.cat([batch["x"], extra["x"]]), "group": torch.tensor([0] * 6 + [7, 7]),
              "group_slot": torch.tensor([0, 0, 0, 1, 1, 1, 2, 2])}
    torch.manual_seed(0)
    assert torch.allclose(m.loss(joined, 0)["kl_content"], two)


def test_gradients_of_each_kl_reach_only_its_head():
    m = model()
    terms = m.loss(grouped_batch(), 0)
    m.zero_grad()
    terms["kl_content"].backward(retain_graph=True)
    assert m.content_head.weight.grad.abs().sum() > 0 and m.style_head.weight.grad is None
    assert m.body[1].weight.grad.abs().sum() > 0
    m.zero_grad()
    terms["kl_style"].backward()
    assert m.style_head.weight.grad.abs().sum() > 0 and m.content_head.weight.grad is None


def test_code_layout_and_latent_split():
    m = model()
    x = grouped_batch()["x"]
    z = m.encode(x)
    assert z.shape == (12, 5) and m.content_dim == 3
    content, style = m.split_code(z)
    c_mu, _, s_mu, _ = m.posteriors(x)
    assert torch.equal(content, c_mu) and torch.equal(style, s_mu)
    assert MLVAEConfig.model_validate({"latent_dim": 7}).content_dim == 4
    assert MLVAEConfig.model_validate({}).latent_dim == 20
    with pytest.raises(ValueError):
        MLVAEConfig.model_validate({"latent_dim": 7, "content_dim": 3, "style_dim": 3})


@pytest.mark.parametrize("batching", ["groups", "split"])
def test_training_batches_skip_heldout_groups(batching):
    m = model(batching=batching, group_size=4, heldout_groups=[2])
    group = torch.arange(40) % 4
    data = {"x": torch.rand(40, 1, 8, 8), "group": group, "label": group, "index": torch.arange(40), "pos": torch.arange(40)}
    batches = list(m.batches(data, 8, torch.Generator().manual_seed(0)))
    assert batches and all(not (b["group"] == 2).any() for b in batches)
    if batching == "groups":
        for b in batches:
            for s in b["group_slot"].unique():
                assert (b["group_slot"] == s).sum() == 4 and b["group"][b["group_slot"] == s].unique().numel() == 1


@pytest.mark.parametrize("spec", [ProbeSpec(kind="linear", sample=False),
                                  ProbeSpec(kind="mlp", sample=False, steps=300, lr=1e-3)], ids=["linear", "mlp"])
def test_accumulation_improves_a_probe_of_noisy_content(spec):
    """Members' content = class centre + noise of variance 4 (their stated variance): one
    observation is a poor guess, the product of ten is a good one, and variance falls as 1/k."""
    g = torch.Generator().manual_seed(0)

    def posteriors(n):
        group = torch.arange(n) % 4
        mu = 3.0 * torch.eye(4, dtype=torch.float64)[group] + 2.0 * torch.randn(n, 4, generator=g, dtype=torch.float64)
        lv = torch.full_like(mu, np.log(4.0))
        return Posteriors(mu, lv, mu[:, :1], lv[:, :1], group)

    rows = accumulation_curve(posteriors(800), posteriors(400), [1, 10], 3, spec, seed=0)
    single, ten = rows
    assert single["content_acc"] < 0.8 and ten["content_acc"] > 0.95
    assert single["content_var"] == pytest.approx(4.0) and ten["content_var"] == pytest.approx(0.4)


@pytest.mark.parametrize("probe", ["linear", "mlp"])
def test_suite_reports_curves_heldout_and_swap_grids(tmp_path, probe):
    rng = np.random.default_rng(0)

    def split(n):
        group = np.arange(n) % 5
        return Split(index=np.arange(n), x=rng.integers(0, 256, (n, 1, 8, 8), dtype=np.uint8), label=group,
                     group=group, shape=(1, 8, 8), kind="image", n_classes=5)

    m = model(heldout_groups=[3, 4], probe=probe, probe_steps=20, eval_group_sizes=[5, 1, 2], eval_repeats=2).eval()
    train, test = split(100), split(50)
    x_tr, x_te = split_tensors(train)["x"], split_tensors(test)["x"]
    with torch.no_grad():
        ctx = EvalContext(model=m, train=train, test=test, test_x=x_te, z_train=m.encode(x_tr).numpy(),
                          z_test=m.encode(x_te).numpy(), k=5, seed=0, plots=tmp_path, figure_examples=4)
    out = mlvae_suite(ctx)
    for key in ["content_acc", "style_acc", "chance_acc", "content_acc_g5", "heldout_content_acc",
                "heldout_style_acc", "heldout_chance", "heldout_content_acc_g5", "content_acc_accumulated",
                "heldout_content_acc_accumulated"]:
        assert 0.0 <= out[key] <= 1.0, key
    assert out["content_acc_accumulated"] == out["content_acc_g5"]  # the largest group size, in any order
    assert out["heldout_content_acc_accumulated"] == out["heldout_content_acc_g5"]
    assert out["content_var_g1"] > out["content_var_g2"] > out["content_var_g5"]
    assert out["chance_acc"] == pytest.approx(1 / 3) and out["heldout_chance"] == pytest.approx(0.5)
    for name in ["accumulation.csv", "accumulation.png", "swap_grid.png", "swap_grid_accumulated.png"]:
        assert (tmp_path / name).stat().st_size > 0
    lines = (tmp_path / "accumulation.csv").read_text().splitlines()
    assert lines[0].startswith("group_size,content_acc_seen,") and "content_acc_heldout" in lines[0]
    assert [line.split(",")[0] for line in lines[1:]] == ["1", "2", "5"]
