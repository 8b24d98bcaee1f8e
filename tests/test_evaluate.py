"""The evaluator's sharing rules: reconstructions on a seeded subset when the test split is
large (and the figure shows rows of that subset), and one draw of samples for every suite."""

from __future__ import annotations

import numpy as np
import torch

from aebench.data.parquet import Split
from aebench.evaluation.context import EvalContext, encode_all
from aebench.evaluation.suites import figures_suite, reconstruction_suite
from aebench.models import build_model, config_class
from aebench.models.base import DataInfo


def context(tmp_path, n_test: int, max_recon: int) -> EvalContext:
    rng = np.random.default_rng(0)

    def split(n):
        return Split(index=np.arange(n), x=rng.integers(0, 256, (n, 1, 8, 8), dtype=np.uint8),
                     label=rng.integers(0, 10, n), group=np.zeros(n, dtype=np.int64), shape=(1, 8, 8), kind="image",
                     dataset="toy", n_classes=10)

    train, test = split(64), split(n_test)
    torch.manual_seed(0)
    model = build_model("vae", config_class("vae")(latent_dim=4), DataInfo((1, 8, 8), "image", 10, 64)).eval()
    test_x = torch.from_numpy(test.x.astype(np.float32) / 255)
    z_test = encode_all(model, test_x)
    return EvalContext(model=model, train=train, test=test, test_x=test_x, z_train=z_test[:0], z_test=z_test, k=5,
                       seed=0, plots=tmp_path, figure_examples=4, max_recon=max_recon)


def test_reconstruction_uses_a_seeded_subset_of_a_large_test_split(tmp_path):
    small = context(tmp_path, n_test=30, max_recon=100)
    assert np.array_equal(small.recon_rows, np.arange(30))
    ctx = context(tmp_path, n_test=30, max_recon=10)
    rows = ctx.recon_rows
    assert len(rows) == 10 and len(set(rows)) == 10 and np.array_equal(rows, ctx.recon_rows)
    metrics = reconstruction_suite(ctx)
    with torch.no_grad():
        expected = ctx.model.decode(torch.as_tensor(ctx.z_test[rows], dtype=torch.float32)).numpy()
    np.testing.assert_allclose(ctx.x_hat, expected, atol=1e-6)
    np.testing.assert_allclose(metrics["recon_mse"], np.mean((ctx.test_x[rows].numpy() - expected) ** 2), rtol=1e-5)
    figures_suite(ctx)
    assert (tmp_path / "reconstructions.png").exists()


def test_samples_are_drawn_once_and_shared(tmp_path):
    ctx = context(tmp_path, n_test=30, max_recon=100)
    calls = []
    sample = ctx.model.sample
    ctx.model.sample = lambda n, generator=None: calls.append(n) or sample(n, generator)
    first = ctx.samples
    figures_suite(ctx)
    assert ctx.samples is first and calls == [300]  # GW_POINTS covers the figure's 8
