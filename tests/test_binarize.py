"""The `binarize` option of the models with a Bernoulli likelihood (VAE family, ACN): one
threshold shared with the binary PixelCNN, the same binary data under both decoders, and
Bernoulli nats that are then a true likelihood."""

import itertools

import pytest
import torch

from aebench.models import build_model, config_class
from aebench.models.base import DataInfo, binarize
from aebench.models.pixelcnn import PixelCNN, PixelCNNConfig, make_decoder

IMAGES = DataInfo((1, 4, 4), "image", 10, 32)
SMALL_PIXELCNN = {"layers": 2, "channels": 4, "kernel": 3}


def model(kind, decoder, **config):
    torch.manual_seed(0)
    extra = {"prior_hidden": 8, "mixture_components": 2} if kind == "acn" else {}
    return build_model(kind, {"latent_dim": 3, "width": 4, "decoder": decoder, "pixelcnn": SMALL_PIXELCNN, **extra,
                              **config}, IMAGES)


def test_threshold_known_answer_and_idempotent():
    x = torch.tensor([0.0, 0.25, 0.5, 0.5001, 1.0], dtype=torch.float64)
    assert binarize(x).tolist() == [0.0, 0.0, 0.0, 1.0, 1.0] and binarize(x).dtype == torch.float64
    assert torch.equal(binarize(binarize(x)), binarize(x))


def test_the_binary_pixelcnn_discretises_with_the_same_helper():
    x = torch.rand(3, 1, 4, 4)
    x[0, 0, 0, :2] = torch.tensor([0.5, 0.5001])  # the threshold's edge
    pixelcnn = PixelCNN(IMAGES, 3, PixelCNNConfig(**SMALL_PIXELCNN))
    assert torch.equal(pixelcnn.discretise(x), binarize(x).long())


@pytest.mark.parametrize("kind", ["vae", "acn"])
def test_both_decoders_model_the_same_binary_data(kind):
    """Whatever the decoder, the encoder and the likelihood get binarize(x), never the grey x."""
    x = torch.rand(6, 1, 4, 4)
    for decoder in ("deconv", "pixelcnn"):
        m = model(kind, decoder).train()
        seen = {}
        encoder_forward, nll = m.encoder.forward, m.decoder.nll
        m.encoder.forward = lambda inputs: seen.update(encoder=inputs) or encoder_forward(inputs)
        m.decoder.nll = lambda z, target: seen.update(target=target) or nll(z, target)
        m.loss({"x": x, "pos": torch.arange(6)}, 0)
        assert torch.equal(seen["encoder"], binarize(x)), decoder
        assert torch.equal(seen["target"], binarize(x)), decoder
        assert torch.equal(m.encode(x), m.encode(binarize(x))), "codes of the evaluator's grey test images"


@pytest.mark.parametrize("kind", ["vae", "acn"])
def test_binarize_false_keeps_grey_levels(kind):
    m = model(kind, "deconv", binarize=False).eval()
    x = torch.rand(6, 1, 4, 4)
    assert not torch.equal(m.encode(x), m.encode(binarize(x)))


def test_feed_forward_bernoulli_is_a_likelihood_on_binary_data():
    """Summing p(x | z) over all 2^4 binary 2x2 images gives 1: the nats of a binarising model
    are a true negative log-likelihood (on grey targets the cross-entropy is not one)."""
    torch.manual_seed(0)
    decoder = make_decoder("deconv", DataInfo((1, 2, 2), "image", 10, 8), 3, "mlp", 4).double()
    images = torch.tensor(list(itertools.product([0.0, 1.0], repeat=4)), dtype=torch.float64).view(-1, 1, 2, 2)
    z = torch.randn(1, 3, dtype=torch.float64).expand(len(images), 3)
    total = torch.exp(-decoder.nll(z, images)).sum()
    assert torch.isclose(total, torch.tensor(1.0, dtype=torch.float64), atol=1e-12)


def test_vector_data_keeps_its_gaussian_likelihood():
    vectors = DataInfo((5,), "vector", 0, 32)
    m = build_model("vae", {"latent_dim": 2, "width": 4}, vectors)
    x = torch.rand(4, 5)
    assert not m.binarized and torch.equal(m.observe(x), x)


def test_acn_and_vae_share_the_default():
    """The coding-cost claim compares `acn` with `vae`: both must model the same data."""
    assert config_class("acn")().binarize is config_class("vae")().binarize is True


def test_binarize_refuses_a_multilevel_pixelcnn():
    with pytest.raises(ValueError, match="pixelcnn.levels: 2 or binarize: false"):
        config_class("acn")(decoder="pixelcnn", pixelcnn={"levels": 4})
    assert config_class("vae")(decoder="pixelcnn", pixelcnn={"levels": 4}, binarize=False).pixelcnn.levels == 4


def test_vector_likelihood_starts_at_sigma_init():
    """A Gaussian likelihood starting above the data's spread collapses to its mean (the
    manifolds' VAE); `sigma_init` sets where the learned scale starts."""
    import math

    from aebench.models.base import Likelihood

    assert float(Likelihood("vector").log_sigma) == 0.0
    assert math.isclose(float(Likelihood("vector", 0.1).log_sigma.exp()), 0.1, rel_tol=1e-6)
