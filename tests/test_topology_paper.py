"""The DVAE authors' evaluation protocol: the locally bi-Lipschitz constant against known
answers, and gw_distance's reference set and set sizes (`evaluate.gw_reference`,
`evaluate.gw_points`) as the evaluator applies them."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from aebench.config import EvalConfig
from aebench.data.parquet import Split
from aebench.data.datasets.manifolds import make_loop
from aebench.evaluation.context import EvalContext, encode_all
from aebench.evaluation.suites import reconstruction_suite, topology_suite
from aebench.metrics.topology import bilipschitz, local_bilipschitz
from aebench.models import build_model
from aebench.models.base import DataInfo


def test_an_isometry_scores_one_and_a_scaling_its_factor():
    rng = np.random.default_rng(0)
    z = rng.standard_normal((150, 3))
    rotation, _ = np.linalg.qr(rng.standard_normal((5, 3)))  # R^3 -> R^5, distances kept
    x = z @ rotation.T + 7.0
    np.testing.assert_allclose(local_bilipschitz(z, x), 1.0, atol=1e-9)
    assert bilipschitz(z, 3.0 * x) == pytest.approx(3.0, abs=1e-9)
    assert bilipschitz(z, 0.25 * x) == pytest.approx(4.0, abs=1e-9)  # shrinking distorts as much as growing


def test_hand_computed_constants_with_neighbours_taken_in_latent_space():
    z = np.array([[0.0], [1.0], [3.0]])
    x = np.array([[0.0], [1.0], [4.0]])
    # k = 1: each point's latent nearest neighbour (0->1, 1->0, 2->1): ratios 1, 1 and 3/2
    np.testing.assert_allclose(local_bilipschitz(z, x, k=1), [1.0, 1.0, 1.5])
    # k = 2: both other points: max(1, 4/3), max(1, 3/2), max(3/2, 4/3)
    assert bilipschitz(z, x, k=2) == pytest.approx((4 / 3 + 1.5 + 1.5) / 3)
    assert bilipschitz(z, x, k=50) == bilipschitz(z, x, k=2)  # k is capped at N - 1


def test_a_collapsed_decoder_scores_huge_but_finite():
    z = np.random.default_rng(1).standard_normal((40, 2))
    value = bilipschitz(z, np.zeros((40, 3)))
    assert np.isfinite(value) and value > 1e6
    with pytest.raises(ValueError, match="one data row per latent row"):
        local_bilipschitz(z, np.zeros((39, 3)))


def test_subsampled_pairs_stay_paired_and_are_seeded():
    z = np.random.default_rng(2).standard_normal((500, 2))
    assert bilipschitz(z, 2.0 * z, k=5, max_points=100, seed=3) == pytest.approx(2.0)  # unpaired rows: >> 2
    bent = np.tanh(3.0 * z)
    a = bilipschitz(z, bent, k=5, max_points=100, seed=3)
    assert a == bilipschitz(z, bent, k=5, max_points=100, seed=3) != bilipschitz(z, bent, k=5, max_points=100, seed=4)


def test_gw_protocol_fields_validate():
    assert (EvalConfig().gw_reference, EvalConfig().gw_points) == ("test", 300)
    assert EvalConfig(gw_reference="train", gw_points=None).gw_points is None
    with pytest.raises(ValueError):
        EvalConfig(gw_reference="val")
    with pytest.raises(ValueError):
        EvalConfig(gw_points=0)


def loop_split(n: int, seed: int) -> Split:
    raw = make_loop(n, seed, variant="paper")
    return Split(index=np.arange(n) + 1000 * seed, x=raw.x, label=raw.label, group=raw.label, shape=(3,),
                 kind="vector", dataset="loop", n_classes=8)


def context(tmp_path, model_name="vae", options=None, **protocol) -> EvalContext:
    train, test = loop_split(90, 0), loop_split(30, 1)
    torch.manual_seed(0)
    model = build_model(model_name, {"latent_dim": 3, **(options or {})}, DataInfo((3,), "vector", 8, 90)).eval()
    test_x = torch.from_numpy(test.x)
    return EvalContext(model=model, train=train, test=test, test_x=test_x,
                       z_train=encode_all(model, torch.from_numpy(train.x)), z_test=encode_all(model, test_x), k=5,
                       seed=0, plots=tmp_path, figure_examples=1, **protocol)


@pytest.mark.parametrize("protocol, real_rows, sizes", [
    ({}, "test", (30, 30)),  # default: the test split, as many samples as its points
    ({"gw_reference": "train", "gw_points": None}, "train", (90, 90)),  # the authors': the whole training set
    ({"gw_reference": "train", "gw_points": 50}, "train", (50, 50)),  # capped for the CPU
])
def test_gw_compares_equal_sized_sets_of_the_chosen_split(tmp_path, monkeypatch, protocol, real_rows, sizes):
    import aebench.metrics.topology as topology

    seen = {}

    def fake_gw(real, generated, max_points, seed):
        real = topology._subsample(real, max_points, np.random.default_rng(seed))
        seen.update(real=real, sizes=(len(real), len(generated)))  # generated: already within the cap
        return 0.0

    monkeypatch.setattr(topology, "gw_distance", fake_gw)
    ctx = context(tmp_path, **protocol)
    reconstruction_suite(ctx)
    out = topology_suite(ctx)
    assert seen["sizes"] == sizes and {"gw_distance", "trustworthiness", "bilipschitz"} <= set(out)
    pool = ctx.train.x if real_rows == "train" else ctx.test.x
    assert {tuple(r) for r in seen["real"].astype(np.float32)} <= {tuple(r) for r in pool}


def test_bilipschitz_scores_the_decoder_from_test_codes_to_reconstructions(tmp_path):
    ctx = context(tmp_path)
    reconstruction_suite(ctx)
    rows = ctx.recon_rows
    assert topology_suite(ctx)["bilipschitz"] == bilipschitz(ctx.z_test[rows], ctx.x_hat)


def test_the_evaluator_hands_test_inputs_to_a_sampler_that_starts_from_data(tmp_path):
    ctx = context(tmp_path, "dvae", {"walk_seeds": "test_data"})
    ctx.samples
    assert ctx.model._walk_data is ctx.test_x
    plain = context(tmp_path, "dvae")
    plain.samples
    assert plain.model._walk_data is None  # train_codes: the kept codes, no data needed
