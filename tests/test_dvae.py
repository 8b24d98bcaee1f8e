"""DVAE: the KL to the local Gaussian, where each loss term's gradients go, the diffusion
map's plumbing (stage output -> prepare -> targets), sampling from a checkpoint, and the
paper's claim in miniature: random walks stay on a loop where a VAE's prior samples do not."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from aebench.config import TrainConfig
from aebench.data.parquet import read_split, write_processed
from aebench.data.datasets.manifolds import make_loop
from aebench.diffmap import fit_diffusion_map, nystrom
from aebench.data.embedding import load_embedding
from aebench.stages.diffmap import run as run_diffmap_stage
from aebench.errors import UserError
from aebench.models import build_model
from aebench.models.base import DataInfo
from aebench.models.dvae import kl_to_local_gaussian, local_covariance
from aebench.training import train

VEC = DataInfo((2,), "vector", 8, 300)


def loop_data(n=300, seed=0):
    raw = make_loop(n, seed, noise=0.03)
    x = torch.as_tensor(raw.x)
    return {"x": x, "label": torch.as_tensor(raw.label), "group": torch.as_tensor(raw.label),
            "index": torch.arange(n), "pos": torch.arange(n)}


def fitted_model(data, val=None, **options):
    """A DVAE with the diffusion map of `data` (and its Nystrom extension to `val`), as the
    diffmap stage would give it."""
    torch.manual_seed(0)
    model = build_model("dvae", {"latent_dim": 3, **options}, DataInfo((2,), "vector", 8, len(data["x"])))
    fit = fit_diffusion_map(data["x"].numpy(), 3, 15, "auto")
    index, coords = data["index"].numpy(), fit.embedding
    if val is not None:
        index, coords = np.r_[index, val["index"].numpy()], np.r_[coords, nystrom(fit, val["x"].numpy())]
    model.set_diffusion_map(index, coords)
    return model


def test_kl_is_zero_when_the_posterior_is_the_local_target_and_matches_torch():
    g = torch.Generator().manual_seed(0)
    A = torch.randn(4, 3, 3, generator=g, dtype=torch.float64)
    target = A @ A.transpose(1, 2) + 0.1 * torch.eye(3, dtype=torch.float64)
    eigvals, V = torch.linalg.eigh(target)
    assert kl_to_local_gaussian(V, 0.5 * eigvals.log(), target).abs().max() < 1e-10
    e = torch.randn(4, 3, generator=g, dtype=torch.float64)
    Q, _ = torch.linalg.qr(torch.randn(4, 3, 3, generator=g, dtype=torch.float64))
    sigma = Q @ torch.diag_embed(torch.exp(2 * e)) @ Q.transpose(1, 2)
    mvn = torch.distributions.MultivariateNormal
    expected = torch.distributions.kl_divergence(mvn(torch.zeros(4, 3, dtype=torch.float64), sigma),
                                                 mvn(torch.zeros(4, 3, dtype=torch.float64), target))
    assert torch.allclose(kl_to_local_gaussian(Q, e, target), expected, atol=1e-9)


def test_local_covariance_centred_and_authors_uncentred():
    nbrs = torch.tensor([[[2.0, 1.0], [4.0, 1.0]]])  # two neighbours differing along the first axis
    centred = local_covariance(nbrs, 0.1, centred=True)
    assert torch.allclose(centred, torch.tensor([[[1.1, 0.0], [0.0, 0.1]]]))
    uncentred = local_covariance(nbrs, 0.1, centred=False)  # sum_k m_k m_k^T + 0.1 I
    assert torch.allclose(uncentred, torch.tensor([[[20.1, 6.0], [6.0, 2.1]]]))


def test_each_loss_term_trains_the_right_parameters():
    data = loop_data(120)
    model = fitted_model(data)
    model._attach(data)
    batch = {k: v[:16] for k, v in data.items()}
    groups = {"encoder": model.encoder, "heads": torch.nn.ModuleList([model.precov_head, model.eig_head]),
              "decoder": model.decoder}
    expected = {"embed": {"encoder"}, "kl": {"heads"}, "neighbourhood": {"heads", "decoder"}}
    for term, owners in expected.items():
        model.zero_grad()
        torch.manual_seed(1)
        model.loss(batch, 0)[term].backward()
        reached = {name for name, module in groups.items()
                   if any(p.grad is not None and p.grad.abs().sum() > 0 for p in module.parameters())}
        assert reached == owners, term


def test_training_needs_the_diffusion_map_and_every_row_in_it():
    data = loop_data(64)
    model = build_model("dvae", {"latent_dim": 3}, VEC)
    with pytest.raises(UserError, match="diffusion map"):
        model.batches(data, 16, torch.Generator().manual_seed(0))
    model.set_diffusion_map(np.arange(10), np.zeros((10, 3)))
    with pytest.raises(UserError, match="row index 10"):
        model.targets(torch.tensor([3, 10]))


def test_stage_output_feeds_prepare(tmp_path):
    plan = "datasets: [loop]\nmodels: [dvae]\nruns: {loop-dvae: {dataset: loop, model: dvae}}\n"
    (tmp_path / "params.yaml").write_text(plan + "diffmap: {n_components: 4, n_neighbors: 12}\n")
    processed = tmp_path / "data" / "processed" / "loop"
    write_processed(make_loop(400, 0), "loop", processed, seed=0, val_fraction=0.1, test_fraction=0.2)
    out = run_diffmap_stage("loop", tmp_path)
    assert {p.name for p in out.iterdir()} >= {"embedding.parquet", "diffmap.json", "embedding.png"}
    index, coords, info = load_embedding("loop", tmp_path)
    assert sorted(index.tolist()) == list(range(400)) and coords.shape == (400, 4)  # every split, keyed by index
    assert info["params"]["n_neighbors"] == 12 and len(info["eigenvalues"]) == 4
    train_split = read_split(processed / "train.parquet")
    model = build_model("dvae", {"latent_dim": 3}, DataInfo((2,), "vector", 8, len(train_split.index)))
    model.prepare("loop", tmp_path)
    rows = np.searchsorted(index, train_split.index[:5], sorter=np.argsort(index))
    expected = coords[np.argsort(index)][rows, :3]
    assert np.allclose(model.targets(torch.as_tensor(train_split.index[:5])).numpy(), expected, atol=1e-6)
    with pytest.raises(UserError, match="n_components"):
        build_model("dvae", {"latent_dim": 6}, DataInfo((2,), "vector", 8, 280)).prepare("loop", tmp_path)
    (tmp_path / "params.yaml").write_text(plan + "diffmap: {n_neighbours: 12}\n")
    with pytest.raises(UserError, match="diffmap.n_neighbours"):
        run_diffmap_stage("loop", tmp_path)


@pytest.mark.slow
def test_walks_stay_on_the_loop_where_vae_prior_samples_do_not(tmp_path):
    data, val = loop_data(600, 0), loop_data(100, 1)
    val["index"] = val["index"] + 600
    cfg = TrainConfig(epochs=16, batch_size=64, lr=3e-3, max_steps_per_epoch=100, device="cpu")
    dvae = fitted_model(data, val)
    train(dvae, data, val, cfg, resume_path=tmp_path / "d.pt", fingerprint="d")
    torch.manual_seed(0)
    vae = build_model("vae", {"latent_dim": 3}, DataInfo((2,), "vector", 8, 600))
    train(vae, data, val, cfg, resume_path=tmp_path / "v.pt", fingerprint="v")
    off_loop = {name: (m.sample(300, torch.Generator().manual_seed(0)).detach().norm(dim=1) - 1).abs().mean().item()
                for name, m in (("dvae", dvae), ("vae", vae))}
    assert off_loop["dvae"] < 0.15 < off_loop["vae"], off_loop
    # the walk's seeds live in the checkpoint: a fresh model with the state dict samples the same
    clone = build_model("dvae", {"latent_dim": 3}, DataInfo((2,), "vector", 8, 600))
    clone.load_state_dict(dvae.state_dict())
    a = dvae.sample(20, torch.Generator().manual_seed(5))
    assert torch.equal(a, clone.sample(20, torch.Generator().manual_seed(5))) and a.shape == (20, 2)


class _Stop(Exception):
    pass


def test_resume_fingerprint_follows_the_diffusion_map(tmp_path, monkeypatch):
    """A changed diffmap output must not resume a checkpoint trained on the old one; a model
    without auxiliary inputs keeps its fingerprint."""
    from aebench.stages import train as train_stage

    plan = ("datasets: [loop]\nmodels: [dvae, vae]\nruns: {loop-dvae: {dataset: loop, model: dvae}, "
            "loop-vae: {dataset: loop, model: vae}}\nmodel: {dvae: {latent_dim: 3}}\n")
    (tmp_path / "params.yaml").write_text(plan + "diffmap: {n_components: 4, n_neighbors: 12}\n")
    write_processed(make_loop(400, 0), "loop", tmp_path / "data" / "processed" / "loop", seed=0,
                    val_fraction=0.1, test_fraction=0.2)
    run_diffmap_stage("loop", tmp_path)
    seen = []

    def record(path, fingerprint):
        seen.append(fingerprint)
        raise _Stop

    monkeypatch.setattr(train_stage, "load_resume", record)

    def fingerprints():
        for model in ("dvae", "vae"):
            with pytest.raises(_Stop):
                train_stage.run("loop", model, 0, tmp_path)
        return seen[-2:]

    first = fingerprints()
    assert fingerprints() == first  # deterministic
    (tmp_path / "params.yaml").write_text(plan + "diffmap: {n_components: 4, n_neighbors: 20}\n")
    run_diffmap_stage("loop", tmp_path)  # another diffusion map of the same data
    dvae_fp, vae_fp = fingerprints()
    assert dvae_fp != first[0] and vae_fp == first[1]


def test_own_suite_leaves_scores_to_the_topology_suite_and_draws_walks(tmp_path):
    from types import SimpleNamespace

    from aebench.models.dvae.eval import random_walk_suite

    data = loop_data(120)
    model = fitted_model(data)
    model._attach(data)
    ctx = SimpleNamespace(test=SimpleNamespace(kind="vector"), test_x=data["x"], plots=tmp_path, seed=0)
    model.eval()
    ctx.model = model
    assert model.own_metrics.suites == (random_walk_suite,) and random_walk_suite(ctx) == {}
    assert (tmp_path / "random_walk.png").stat().st_size > 0




def test_walks_start_from_test_inputs_under_walk_seeds_test_data(monkeypatch):
    """The authors' evaluation seeds its walks with random test images: the walks start from
    mu(x) of rows handed over by `start_sampling_from`."""
    data, test_x = loop_data(120), loop_data(40, seed=1)["x"]
    model = fitted_model(data, walk_seeds="test_data")
    model._attach(data)
    starts = []
    walk = model.random_walk
    monkeypatch.setattr(model, "random_walk", lambda seeds, *rest: starts.append(seeds) or walk(seeds, *rest))
    model.sample(32, torch.Generator().manual_seed(0))  # without data: the kept training codes
    model.start_sampling_from(test_x)
    model.sample(32, torch.Generator().manual_seed(0))
    stored, from_data = starts
    assert all(any(torch.equal(code, kept) for kept in model.seed_codes) for code in stored)
    pick = torch.randint(40, (2,), generator=torch.Generator().manual_seed(0))  # 32 samples, 16 leaves per seed
    with torch.no_grad():
        assert torch.allclose(from_data, model.encoder(test_x[pick]))

def test_train_codes_walks_ignore_handed_data():
    data = loop_data(120)
    model = fitted_model(data)
    model._attach(data)
    before = model.sample(32, torch.Generator().manual_seed(0))
    model.start_sampling_from(loop_data(40, seed=1)["x"])
    assert torch.equal(before, model.sample(32, torch.Generator().manual_seed(0)))


def test_uncentred_target_covariance_stays_positive_definite_under_bf16():
    """The authors' uncentred neighbour sum is near rank one for large codes: rounded to
    bf16 it is not positive definite, so the KL (Cholesky, log-determinants) runs in fp32."""
    from aebench.precision import autocast

    data = loop_data(200)
    model = fitted_model(data, local_cov="uncentred", latent_dim=3)
    model._attach(data)
    model.set_diffusion_map(data["index"].numpy(), 50.0 * model._bank.numpy() + 20.0)  # large, far from 0
    model._attach(data)
    with autocast(torch.bfloat16, "cpu"):
        for start in range(0, 200, 50):
            terms = model.loss({k: v[start:start + 50] for k, v in data.items()}, 0)
            assert torch.isfinite(terms["kl"]) and terms["kl"].dtype == torch.float32
