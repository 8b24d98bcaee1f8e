"""The conditional PixelCNN decoder: causality of its masks, a normalised likelihood, a
sampler that draws from that likelihood, and conditioning on z."""

import itertools

import pytest
import torch

from aebench.models.base import DataInfo
from aebench.models.pixelcnn import PixelCNN, PixelCNNConfig, make_decoder


def net(shape, layers=3, kernel=3, levels=2, channels=8, latent=4, seed=0) -> PixelCNN:
    torch.manual_seed(seed)
    return PixelCNN(DataInfo(shape, "image", 10, 10), latent, PixelCNNConfig(layers=layers, channels=channels,
                                                                             kernel=kernel, levels=levels)).double()


def input_gradients(model: PixelCNN) -> torch.Tensor:
    """(H*W, H*W) map: entry [i, j] = |d outputs at pixel i / d input pixel j| (raster order,
    summed over channels). One backward pass: copy i of the batch only back-propagates the
    output at pixel i, and copies never interact (no batch statistics)."""
    c, h, w = model.shape
    x = torch.randn(h * w, c, h, w, dtype=torch.float64, requires_grad=True)
    out = model(x, torch.randn(h * w, 4, dtype=torch.float64))
    out = out.flatten(1, -3) if out.dim() == 5 else out  # (copies, C * levels, H, W)
    pick = torch.eye(h * w, dtype=torch.float64).view(h * w, 1, h, w)
    (grad,) = torch.autograd.grad((out * pick).sum(), x)
    return grad.abs().sum(1).flatten(1)


@pytest.mark.parametrize("shape, levels", [((1, 6, 6), 2), ((3, 5, 5), 4)])
def test_output_pixel_depends_only_on_earlier_pixels(shape, levels):
    model = net(shape, levels=levels)
    _, h, w = shape
    grads = input_gradients(model)
    for i, (row, col) in enumerate(itertools.product(range(h), range(w))):
        assert torch.all(grads[i, i:] == 0), f"pixel {(row, col)} sees itself or a later pixel"
        if col > 0:
            assert grads[i, i - 1] > 0, "the pixel to the left must be visible"
        if row > 0:
            assert grads[i, i - w] > 0, "the pixel above must be visible"


def test_no_blind_spot_up_and_to_the_right():
    # the original PixelCNN's stacked masks never see (row - 1, col + 2) at this depth; the
    # vertical stack of the gated PixelCNN does
    grads = input_gradients(net((1, 6, 6), layers=3, kernel=3))
    assert grads[3 * 6 + 2, 2 * 6 + 4] > 0


@pytest.mark.parametrize("shape, levels", [((1, 2, 2), 2), ((1, 2, 2), 3), ((2, 1, 2), 2)])
def test_likelihood_is_normalised(shape, levels):
    """Summing p(x | z) over every discrete image gives 1: only true if the factorisation is autoregressive."""
    model = net(shape, levels=levels)
    c, h, w = shape
    images = torch.tensor(list(itertools.product(range(levels), repeat=c * h * w)), dtype=torch.float64)
    x = (images if levels == 2 else (images + 0.5) / levels).view(-1, c, h, w)  # intensities of each level
    z = torch.randn(1, 4, dtype=torch.float64).expand(len(x), 4)
    total = torch.exp(-model.nll(z, x)).sum()
    assert torch.isclose(total, torch.tensor(1.0, dtype=torch.float64), atol=1e-9)


def test_sampler_draws_from_the_likelihood():
    model = net((1, 2, 2), levels=2).float()
    z = torch.randn(1, 4).expand(2000, 4)
    draws = model.decode(z, torch.Generator().manual_seed(0))
    assert set(draws.unique().tolist()) <= {0.0, 1.0}
    images = torch.tensor(list(itertools.product([0.0, 1.0], repeat=4))).view(-1, 1, 2, 2)
    expected = torch.exp(-model.nll(z[:16], images)).detach()
    observed = torch.stack([(draws == img).flatten(1).all(1).float().mean() for img in images])
    assert torch.allclose(observed, expected, atol=0.03)
    again = model.decode(z[:50], torch.Generator().manual_seed(0))
    assert torch.equal(again, draws[:50]), "a seeded sample is reproducible"


def test_conditioning_on_z_reaches_the_likelihood():
    model = net((1, 4, 4))
    z = torch.randn(3, 4, dtype=torch.float64, requires_grad=True)
    model.nll(z, torch.rand(3, 1, 4, 4, dtype=torch.float64)).sum().backward()
    assert z.grad.abs().sum() > 0


def test_binarisation_and_quantisation():
    x = torch.tensor([0.0, 0.49, 0.51, 1.0]).view(1, 1, 2, 2)
    assert net((1, 2, 2)).discretise(x).flatten().tolist() == [0, 0, 1, 1]
    assert net((1, 2, 2), levels=4).discretise(x).flatten().tolist() == [0, 1, 2, 3]


def test_choices_and_refusals():
    info = DataInfo((1, 8, 8), "image", 10, 10)
    assert isinstance(make_decoder("pixelcnn", info, 4), PixelCNN)
    assert not isinstance(make_decoder("deconv", info, 4), PixelCNN)
    with pytest.raises(ValueError, match="image"):
        make_decoder("pixelcnn", DataInfo((3,), "vector", 0, 10), 4)
    with pytest.raises(ValueError, match="odd"):
        PixelCNNConfig(kernel=4)


@pytest.mark.parametrize("layers, kernel, levels", [(3, 3, 2), (2, 5, 4), (4, 3, 2)])
def test_sampling_on_cropped_rows_matches_the_full_pass(layers, kernel, levels):
    """`decode` runs each pass on the `context_rows` above the pixel only: the logits of every
    row must equal the full image's, and so must a whole seeded sample."""
    model = net((1, 16, 7), layers=layers, kernel=kernel, levels=levels)
    torch.manual_seed(1)
    q = torch.randint(0, levels, (3, 1, 16, 7))
    z = torch.randn(3, 4, dtype=torch.float64)
    full = model.logits(q, z)
    for r in range(16):
        top = max(0, r - model.context_rows)
        cropped = model.logits(q[:, :, top:r + 1], z)
        torch.testing.assert_close(cropped[..., r - top, :], full[..., r, :], rtol=0, atol=1e-12)

    def full_pass_sample(generator):  # the plain sampler: the whole image at every pixel
        uniforms = torch.rand(3, 1, 16, 7, generator=generator)
        out_q = torch.zeros(3, 1, 16, 7, dtype=torch.long)
        for r, col in itertools.product(range(16), range(7)):
            out = model.logits(out_q, z)
            u = uniforms[:, :, r, col]
            if levels == 2:
                out_q[:, :, r, col] = (u < torch.sigmoid(out[:, :, r, col])).long()
            else:
                cdf = torch.softmax(out[:, :, :, r, col], dim=2).cumsum(2)
                out_q[:, :, r, col] = (cdf < u.unsqueeze(2)).sum(2).clamp(max=levels - 1)
        return model.to_intensity(out_q)

    expected = full_pass_sample(torch.Generator().manual_seed(5))
    torch.testing.assert_close(model.decode(z, torch.Generator().manual_seed(5)), expected)
