"""The model contract, for every registered type, on image and vector data."""

import pytest
import torch

from aebench.errors import UserError
from aebench.models import build_model, checkpoint_payload, known_types, load_checkpoint
from aebench.models.base import DataInfo
from aebench.nets import resolve_arch

SHAPES = [((1, 8, 8), "image"), ((1, 28, 28), "image"), ((1, 32, 32), "image"), ((3,), "vector")]


@pytest.mark.parametrize("model_type", known_types())
@pytest.mark.parametrize("shape, kind", SHAPES)
def test_contract(model_type, shape, kind):
    torch.manual_seed(0)
    model = build_model(model_type, {"latent_dim": 6}, DataInfo(shape, kind, 10, 200))
    x = torch.rand(7, *shape)
    batch = {"x": x, "label": torch.arange(7) % 3, "group": torch.arange(7) % 3, "index": torch.arange(7)}
    z = model.encode(x)
    assert z.shape == (7, 6)
    out = model.decode(z)
    assert out.shape == x.shape
    if kind == "image":
        assert out.min() >= 0 and out.max() <= 1
    terms = model.loss(batch, step=0)
    assert terms["loss"].ndim == 0 and torch.isfinite(terms["loss"])
    optimizers = model.optimizers(1e-3)
    before = [p.detach().clone() for p in model.parameters()]
    logs = model.train_step(batch, optimizers, step=0)
    assert "loss" in logs
    assert any(not torch.equal(b, p) for b, p in zip(before, model.parameters())), "a train step must change weights"


def test_arch_choice():
    assert resolve_arch((1, 8, 8)) == "mlp"
    assert resolve_arch((1, 28, 28)) == "conv"
    assert resolve_arch((5,)) == "mlp"
    with pytest.raises(ValueError):
        resolve_arch((5,), "conv")


def test_vae_neg_elbo_matches_loss_at_beta_one():
    torch.manual_seed(0)
    model = build_model("vae", {"latent_dim": 4}, DataInfo((1, 8, 8), "image", 10, 100))
    x = torch.rand(16, 1, 8, 8)
    torch.manual_seed(1)
    loss = model.loss({"x": x}, 0)["loss"]
    torch.manual_seed(1)
    assert torch.allclose(model.neg_elbo(x).mean(), loss)
    # the KL is zero exactly when the posterior is the prior
    kl = model.kl_per_datum(x)
    assert (kl >= 0).all()


def test_checkpoint_round_trip_and_refusals(tmp_path):
    info = DataInfo((1, 8, 8), "image", 10, 100)
    model = build_model("ae", {"latent_dim": 5}, info)
    path = tmp_path / "ckpt.pt"
    torch.save(checkpoint_payload(model, "ae"), path)
    loaded, payload = load_checkpoint(path)
    x = torch.rand(3, 1, 8, 8)
    assert torch.allclose(loaded.encode(x), model.encode(x))
    assert payload["model_name"] == "ae"

    # a state dict of another shape is refused with a clear message
    bad = checkpoint_payload(model, "ae")
    bad["config"]["latent_dim"] = 7
    torch.save(bad, path)
    with pytest.raises(UserError, match="does not fit"):
        load_checkpoint(path)

    # a pickled object (arbitrary code) is refused by weights_only loading
    class Evil:
        def __reduce__(self):
            return (print, ("owned",))

    torch.save({"format": 1, "evil": Evil()}, path)
    with pytest.raises(UserError, match="not a loadable"):
        load_checkpoint(path)

    path.write_bytes(b"garbage")
    with pytest.raises(UserError):
        load_checkpoint(path)
    with pytest.raises(UserError, match="missing"):
        load_checkpoint(tmp_path / "absent.pt")
