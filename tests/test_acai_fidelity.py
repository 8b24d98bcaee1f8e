"""ACAI's paper setups: the code map's side and MNIST's padding in the `arch: acai` nets (for
every model of the comparison), the paper's train-fitted clustering protocol, and the linear
probe trained alongside the model (`train.joint_probe`)."""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pydantic
import pytest
import torch
from torch import nn

from aebench.config import TrainConfig
from aebench.errors import UserError
from aebench.evaluation.context import EvalContext
from aebench.evaluation.suites import joint_probe_suite, representation_suite
from aebench.metrics.representation import cluster_acc, cluster_acc_paper, linear_head_acc
from aebench.models import build_model, config_class
from aebench.models.base import DataInfo
from aebench.nets import acai_plan, build_decoder, build_encoder, pad_with_background
from aebench.training import train

MNIST = DataInfo((1, 28, 28), "image", 10, 64)
COMPARISON = ["acai", "dropout_ae", "denoising_ae", "aae", "vqvae", "vae"]  # paper_ae is a dropout_ae


# -- the code map's side ----------------------------------------------------------------------

@pytest.mark.parametrize("shape, latent, side, plan", [
    ((1, 32, 32), 64, 2, (4, (2, 2), 16, False)),  # lines: --latent_width=2 --latent=16
    ((1, 32, 32), 32, 4, (3, (4, 4), 2, False)),  # MNIST: --latent_width=4 --latent=2
    ((1, 32, 32), 256, 4, (3, (4, 4), 16, False)),  # MNIST: --latent_width=4 --latent=16
    ((3, 32, 32), 64, 4, (3, (4, 4), 4, False)),  # a VAE's mean and log-variance of 32
    ((1, 32, 32), 16, None, (4, (2, 2), 4, False)),  # unset: the derived plan
])
def test_latent_side_sets_the_scales_like_the_authors(shape, latent, side, plan):
    assert acai_plan(shape, latent, side) == plan


def test_mnist_latent_32_is_a_4x4x2_map_after_3_poolings():
    enc = build_encoder((1, 28, 28), 32, "acai", 16, latent_side=4, pad_to=32)
    assert sum(isinstance(m, nn.AvgPool2d) for m in enc.modules()) == 3
    assert not any(isinstance(m, nn.Linear) for m in enc.modules())  # all-convolutional, as the paper's
    assert [m for m in enc.modules() if isinstance(m, nn.Conv2d)][-1].out_channels == 2
    dec = build_decoder(32, (1, 28, 28), "acai", 16, latent_side=4, pad_to=32)
    assert sum(isinstance(m, nn.Upsample) for m in dec.modules()) == 3
    assert dec(enc(torch.rand(3, 1, 28, 28))).shape == (3, 1, 28, 28)


@pytest.mark.parametrize("kwargs, shape, latent, match", [
    ({"latent_side": 3}, (1, 32, 32), 18, "latent_side"),  # 32 is not 3 x 2^k
    ({"latent_side": 4}, (1, 28, 28), 32, "pad_to"),  # 28 -> 14 -> 7: no 4x4 map without padding
    ({"latent_side": 4}, (1, 32, 32), 30, "latent_dim"),  # 30 numbers do not fill a 4x4 map
    ({"pad_to": 16}, (1, 28, 28), 16, "pad_to"),
])
def test_impossible_plans_are_user_errors_naming_the_key(kwargs, shape, latent, match):
    with pytest.raises(UserError, match=match):
        build_encoder(shape, latent, "acai", 4, **kwargs)


# -- padding to 32x32 -------------------------------------------------------------------------

def test_padding_uses_each_images_background_and_centres_it():
    x = torch.full((2, 1, 28, 28), -1.0)
    x[0, 0, 10:12, 0] = 1.0  # a stroke touching the left edge must not be smeared outward
    x[1] = x[1] * 0 + 0.25  # a uniform image: its background is its value
    out = pad_with_background(x, (2, 2, 2, 2))
    assert out.shape == (2, 1, 32, 32)
    torch.testing.assert_close(out[:, :, 2:30, 2:30], x)
    assert (out[0, :, :, :2] == -1).all() and (out[0, :, :2] == -1).all() and (out[0, :, 30:] == -1).all()
    assert (out[1] == 0.25).all()


def test_padded_encoder_sees_the_authors_32x32_input_and_decoder_crops_back():
    torch.manual_seed(0)
    enc = build_encoder((1, 28, 28), 32, "acai", 4, latent_side=4, pad_to=32)
    x = torch.rand(3, 1, 28, 28) * 2 - 1
    x[:, :, :4] = -1.0  # every image has the background -1, as MNIST on [-1, 1] pixels
    authors = nn.functional.pad(x, (2, 2, 2, 2), value=-1.0)  # tf.pad(..., constant_values=-1.)
    torch.testing.assert_close(enc(x), enc.net(authors))
    dec = build_decoder(32, (1, 28, 28), "acai", 4, latent_side=4, pad_to=32)
    z = enc(x)
    torch.testing.assert_close(dec(z), dec.body(z.view(-1, 2, 4, 4))[:, :, 2:30, 2:30])


# -- every model of the comparison --------------------------------------------------------------

@pytest.mark.parametrize("kind", COMPARISON)
def test_every_model_of_the_comparison_takes_the_paper_nets(kind):
    torch.manual_seed(0)
    extra = {"z_log_size": 4} if kind == "vqvae" else {}
    m = build_model(kind, {"latent_dim": 32, "arch": "acai", "width": 4, "latent_side": 4, "pad_to": 32, **extra},
                    MNIST)
    convs = [c for c in m.modules() if isinstance(c, nn.Conv2d)]
    assert any(c.in_channels == 2 for c in convs)  # a decoder starts from the 4x4x2 code map
    x = torch.rand(5, 1, 28, 28)
    batch = {"x": x, "label": torch.arange(5), "group": torch.arange(5), "index": torch.arange(5),
             "pos": torch.arange(5)}
    z = m.encode(x)
    assert z.shape == (5, 32)
    assert m.decode(z).shape == (5, 1, 28, 28)
    assert math.isfinite(m.loss(batch, 0)["loss"].item())
    if kind == "acai":  # the critic reads images with the encoder's architecture, padding included
        assert m.critic_net.margins == (2, 2, 2, 2)


def test_defaults_keep_the_derived_plan():
    """Unset options build exactly the nets of before (same parameter shapes)."""
    plain = build_encoder((1, 32, 32), 64, "acai", 16)
    explicit = build_encoder((1, 32, 32), 64, "acai", 16, latent_side=None, pad_to=None)
    assert [p.shape for p in plain.parameters()] == [p.shape for p in explicit.parameters()]
    assert plain.margins == (0, 0, 0, 0)


@pytest.mark.parametrize("key", ["latent_side", "pad_to"])
def test_options_are_refused_for_other_architectures(key):
    with pytest.raises(pydantic.ValidationError, match=key):
        config_class("vae").model_validate({"arch": "conv", key: 4})
    assert getattr(config_class("vae").model_validate({"arch": "acai", key: 4}), key) == 4


# -- the paper's clustering protocol ------------------------------------------------------------

def _blobs(n_per_class: int, seed: int, centres: np.ndarray, spread: float = 0.3):
    rng = np.random.default_rng(seed)
    y = np.repeat(np.arange(len(centres)), n_per_class)
    return centres[y] + spread * rng.normal(size=(len(y), centres.shape[1])), y


def test_separated_blobs_recover_the_test_labels_exactly():
    centres = 10 * np.random.default_rng(0).normal(size=(10, 8))
    z_train, y_train = _blobs(50, 1, centres)
    z_test, y_test = _blobs(20, 2, centres)
    perm = np.random.default_rng(3).permutation(10)  # label ids are arbitrary: matching finds them
    assert cluster_acc_paper(z_train, perm[y_train], z_test, perm[y_test], n_init=10, max_iter=100) == 1.0
    # invariant to an invertible affine map of the codes (whitening on the train codes)
    a = np.random.default_rng(4).normal(size=(8, 8))
    assert cluster_acc_paper(z_train @ a + 5, y_train, z_test @ a + 5, y_test, n_init=10) == 1.0


def test_clusters_are_fitted_on_train_not_test():
    """Train: class 0 around 0, class 1 around 10. Test: class 0 at 3, class 1 at 7 and at 30. The
    train clusters put the boundary at 5 and classify every test code; clustering the test codes
    themselves groups {3, 7} against {30} and scores 0.75."""
    rng = np.random.default_rng(0)
    z_train = np.concatenate([rng.normal(0, 0.5, 100), rng.normal(10, 0.5, 100)])[:, None]
    y_train = np.repeat([0, 1], 100)
    z_test = np.array([3.0] * 50 + [7.0] * 25 + [30.0] * 25)[:, None]
    y_test = np.repeat([0, 1], 50)
    assert cluster_acc_paper(z_train, y_train, z_test, y_test, n_init=5) == 1.0
    assert cluster_acc(z_test, y_test) == 0.75


def test_unlabelled_rows_and_bad_arguments():
    centres = np.array([[0.0, 0.0], [10.0, 10.0]])
    z_train, y_train = _blobs(30, 0, centres)
    z_test, y_test = _blobs(10, 1, centres)
    y_test_missing = y_test.copy()
    y_test_missing[:5] = -1
    z_test_noisy = z_test.copy()
    z_test_noisy[:5] = z_test[-1]  # unlabelled rows that would be wrong if scored
    assert cluster_acc_paper(z_train, y_train, z_test_noisy, y_test_missing, n_init=3) == 1.0
    assert math.isnan(cluster_acc_paper(z_train, -np.ones_like(y_train), z_test, y_test, n_init=3))
    assert cluster_acc_paper(np.zeros_like(z_train), y_train, z_test, y_test, n_init=3) == 0.5  # one cluster
    for bad in ({"n_init": 0}, {"max_iter": 0}, {"n_init": 1.5}):
        with pytest.raises(ValueError):
            cluster_acc_paper(z_train, y_train, z_test, y_test, **bad)


def _context(restarts: int) -> EvalContext:
    centres = np.array([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]])
    z_train, y_train = _blobs(30, 0, centres)
    z_test, y_test = _blobs(10, 1, centres)
    return EvalContext(model=None, train=SimpleNamespace(label=y_train), test=SimpleNamespace(label=y_test),
                       test_x=torch.zeros(0), z_train=z_train, z_test=z_test, k=5, seed=0, plots=None,
                       figure_examples=1, cluster_paper_restarts=restarts)


def test_evaluator_reports_cluster_acc_paper_unless_switched_off():
    assert representation_suite(_context(3))["cluster_acc_paper"] == 1.0
    assert "cluster_acc_paper" not in representation_suite(_context(0))


# -- the linear probe trained alongside the model ------------------------------------------------

def test_linear_head_acc_known_answer():
    weight = np.array([[1.0, 0.0], [0.0, 1.0], [0.0, 0.0]])
    bias = np.array([0.0, 0.0, 0.5])
    z = np.array([[2.0, 0.0], [0.0, 2.0], [0.1, 0.1], [2.0, 0.0]])
    assert linear_head_acc(weight, bias, z, [0, 1, 2, 1]) == 0.75
    assert linear_head_acc(weight, bias, z, [0, 1, 2, -1]) == 1.0  # unlabelled rows are not scored
    assert math.isnan(linear_head_acc(weight, bias, z, [-1] * 4))
    with pytest.raises(ValueError, match="weight"):
        linear_head_acc(weight[:, :1], bias, z, [0, 1, 2, 1])


def _two_class_images(n: int, seed: int) -> dict[str, torch.Tensor]:
    """Class 0 dark, class 1 bright 8x8 images: any encoder's codes tell them apart."""
    g = torch.Generator().manual_seed(seed)
    label = torch.arange(n) % 2
    x = (0.3 * torch.rand(n, 1, 8, 8, generator=g) + 0.6 * label[:, None, None, None]).clamp(0, 1)
    return {"x": x, "label": label, "group": label, "index": torch.arange(n), "pos": torch.arange(n)}


def _train(joint_probe: bool, tmp_path, name: str = "run.pt", log_fn=None, **cfg):
    torch.manual_seed(0)
    m = build_model("dropout_ae", {"latent_dim": 8, "arch": "acai", "width": 4, "keep_prob": 0.5},
                    DataInfo((1, 8, 8), "image", 2, 64))
    cfg = TrainConfig(**{"epochs": 3, "batch_size": 16, "num_threads": 1, "joint_probe": joint_probe, **cfg})
    result = train(m, _two_class_images(64, 1), _two_class_images(32, 2), cfg,
                   resume_path=tmp_path / f"{joint_probe}-{name}", fingerprint="t", log_fn=log_fn)
    return m, result


def test_joint_probe_never_moves_the_model(tmp_path):
    """Same seed with and without the probe: identical weights (dropout draws from the training
    random stream, so a probe that touched it would show)."""
    plain, without = _train(False, tmp_path)
    probed, with_probe = _train(True, tmp_path)
    assert without.probe_state is None and with_probe.probe_state is not None
    for key, value in plain.state_dict().items():
        torch.testing.assert_close(probed.state_dict()[key], value, rtol=0, atol=0)
    assert "train_probe_loss" in with_probe.history[0] and "train_probe_loss" not in without.history[0]


def test_joint_probe_learns_the_labels_from_the_codes(tmp_path):
    model, result = _train(True, tmp_path, joint_probe_lr=3e-2)
    test = _two_class_images(64, 3)
    with torch.no_grad():
        z = model.encode(test["x"]).double().numpy()
    head = result.probe_state
    acc = linear_head_acc(head["head.weight"].double().numpy(), head["head.bias"].double().numpy(), z,
                          test["label"].numpy())
    assert acc >= 0.9
    assert 0 <= result.history[-1]["train_probe_acc"] <= 1  # logged beside the loss
    ctx = _context(0)
    ctx.z_test, ctx.test = z, SimpleNamespace(label=test["label"].numpy())
    ctx.joint_probe = head
    assert joint_probe_suite(ctx) == {"linear_acc_joint": acc}
    assert joint_probe_suite(_context(0)) == {}  # no probe trained: no metric


def test_joint_probe_is_skipped_without_labels(tmp_path):
    m = build_model("dropout_ae", {"latent_dim": 8, "arch": "acai", "width": 4}, DataInfo((1, 8, 8), "image", 0, 64))
    data = _two_class_images(32, 1)
    data["label"] = torch.full((32,), -1)
    cfg = TrainConfig(epochs=1, batch_size=16, num_threads=1, joint_probe=True)
    assert train(m, data, data, cfg, resume_path=tmp_path / "r.pt", fingerprint="t").probe_state is None


def test_joint_probe_resumes_with_the_run(tmp_path):
    """A run killed in epoch 3 resumes the probe and its optimiser from epoch 2's checkpoint and
    ends with the probe of the uninterrupted run."""
    def crash_in_epoch_three(metrics, step):
        if "val_loss" in metrics and step == 12:  # 4 steps per epoch
            raise KeyboardInterrupt

    settings = {"epochs": 4, "checkpoint_seconds": 0.0, "joint_probe_lr": 1e-2}
    _, expected = _train(True, tmp_path, "ref.pt", **settings)
    with pytest.raises(KeyboardInterrupt):
        _train(True, tmp_path, "crash.pt", log_fn=crash_in_epoch_three, **settings)
    _, resumed = _train(True, tmp_path, "crash.pt", **settings)
    assert resumed.resumed_from_epoch == 2
    for key, value in expected.probe_state.items():
        torch.testing.assert_close(resumed.probe_state[key], value, rtol=0, atol=0)
