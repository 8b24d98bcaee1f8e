"""WAE-MMD: the IMQ MMD estimator against a direct computation, and the loss terms."""

import pytest
import torch

from aebench.models import build_model
from aebench.models.base import DataInfo
from aebench.models.wae import IMQ_SCALES, imq_mmd


def _direct_mmd(q, p, c_base):
    n = len(q)
    k = lambda a, b, c: c / (c + ((a - b) ** 2).sum())  # noqa: E731
    total = 0.0
    for s in IMQ_SCALES:
        c = c_base * s
        within = sum(k(q[i], q[j], c) + k(p[i], p[j], c) for i in range(n) for j in range(n) if i != j) / (n * n - n)
        across = sum(k(q[i], p[j], c) for i in range(n) for j in range(n)) * 2 / (n * n)
        total += within - across
    return float(total)


def test_imq_mmd_matches_direct_formula_and_separates():
    torch.manual_seed(0)
    q, p = torch.randn(5, 3, dtype=torch.float64), torch.randn(5, 3, dtype=torch.float64)
    assert imq_mmd(q, p, 6.0).item() == pytest.approx(_direct_mmd(q, p, 6.0), rel=1e-10)
    same = imq_mmd(torch.randn(400, 4), torch.randn(400, 4), 8.0)
    shifted = imq_mmd(torch.randn(400, 4) + 1.0, torch.randn(400, 4), 8.0)
    assert abs(same.item()) < 0.01 and shifted.item() > 10 * abs(same.item())


def test_loss_terms_noise_and_sampling():
    torch.manual_seed(0)
    model = build_model("wae", {"latent_dim": 3, "width": 8}, DataInfo((1, 8, 8), "image", 10, 100))
    x = torch.rand(16, 1, 8, 8)
    terms = model.loss({"x": x}, 0)
    assert terms["loss"].item() == pytest.approx((terms["recon"] + 10.0 * terms["mmd"]).item(), rel=1e-6)
    model.eval()
    expected = 0.05 * ((x - model.decode(model.encode(x))) ** 2).flatten(1).sum(1).mean()
    assert model.loss({"x": x}, 0)["recon"].item() == pytest.approx(expected.item(), rel=1e-6)  # no noise in eval
    (opt,) = model.optimizers(1e-3)
    assert opt.defaults["betas"] == (0.5, 0.999)
    s = model.sample(4, torch.Generator().manual_seed(0))
    assert s.shape == (4, 1, 8, 8) and torch.equal(s, model.sample(4, torch.Generator().manual_seed(0)))
