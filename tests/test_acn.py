"""ACN: the neighbour draw (never the datum itself, always among the K nearest), the code
table's update and checkpointing, the prior's mixture density and KL, the coding-cost chain,
gradients, daydreams and the evaluation hook."""

import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from torch import distributions as D

from aebench.metrics.representation import knn_acc
from aebench.models import build_model, checkpoint_payload, load_checkpoint
from aebench.models.acn import (PriorNetwork, chain_coding_cost, mixture_log_prob, nearest_codes,
                                nearest_neighbour_chain)
from aebench.models.acn.eval import daydream_suite
from aebench.models.coding_cost import claim_suite
from aebench.models.base import DataInfo

INFO = DataInfo((1, 8, 8), "image", 10, 120)


def acn(**config):
    torch.manual_seed(0)
    return build_model("acn", {"latent_dim": 4, "prior_hidden": 32, "mixture_components": 3, **config}, INFO)


def batch(n=16, seed=1):
    g = torch.Generator().manual_seed(seed)
    pos = torch.randperm(INFO.n_train, generator=g)[:n]
    return {"x": torch.rand(n, 1, 8, 8, generator=g), "label": torch.zeros(n, dtype=torch.long),
            "group": torch.zeros(n, dtype=torch.long), "index": pos + 1000, "pos": pos}


@pytest.mark.parametrize("chunk", [7, 1000])
def test_nearest_codes_match_brute_force_and_exclude_self(chunk):
    torch.manual_seed(0)
    table = torch.randn(300, 5)
    pos = torch.tensor([0, 6, 7, 150, 299])  # at chunk edges too
    queries = table[pos].clone()  # each query's own row is at distance exactly 0
    got = nearest_codes(queries, table, 5, exclude=pos, chunk=chunk)
    dist = torch.cdist(queries.double(), table.double())
    dist[torch.arange(5), pos] = math.inf
    assert torch.equal(got, dist.topk(5, largest=False).indices)
    assert not (got == pos[:, None]).any()
    # without exclusion the datum is its own nearest neighbour: the bug exclusion prevents
    assert torch.equal(nearest_codes(queries, table, 5, chunk=chunk)[:, 0], pos)


def test_training_draw_never_returns_the_datum_and_stays_among_its_k_nearest():
    model = acn(neighbours=5).train()
    b = batch()
    with torch.no_grad():
        model.codes[b["pos"]] = model.encode(b["x"])  # the table holds each datum's current code
    seen = []
    log_prob = model.prior.log_prob
    model.prior.log_prob = lambda z, c: seen.append(c.clone()) or log_prob(z, c)
    for _ in range(60):
        model.loss(b, step=0)
    drawn = torch.stack(seen)  # (draws, batch, d)
    rows = (drawn.unsqueeze(2) == model.codes).all(-1).float().argmax(-1)  # table row of each draw
    codes = model.encode(b["x"]).detach()
    dist = torch.cdist(codes.double(), model.codes.double())
    dist[torch.arange(len(codes)), b["pos"]] = math.inf
    k_nearest = dist.topk(5, largest=False).indices
    assert not (rows == b["pos"]).any(), "a datum was its own neighbour"
    assert (rows.unsqueeze(-1) == k_nearest).any(-1).all(), "a draw fell outside the K nearest"
    for i in range(len(codes)):  # uniform over the K: every one of them comes up in 60 draws
        assert set(rows[:, i].tolist()) == set(k_nearest[i].tolist())


def test_table_gets_the_batch_codes_after_the_step_and_is_checkpointed(tmp_path):
    model = acn()
    b = batch()
    before = model.codes.clone()
    codes_before_step = model.encode(b["x"]).detach()
    model.train_step(b, model.optimizers(1e-2), step=0)
    others = torch.ones(len(before), dtype=torch.bool)
    others[b["pos"]] = False
    assert torch.allclose(model.codes[b["pos"]], codes_before_step)
    assert torch.equal(model.codes[others], before[others])
    assert not torch.allclose(model.encode(b["x"]), codes_before_step), "the step changed the encoder"
    assert "codes" in model.state_dict() and all(p is not model.codes for p in model.parameters())
    torch.save(checkpoint_payload(model, "acn"), tmp_path / "c.pt")
    loaded, _ = load_checkpoint(tmp_path / "c.pt")
    assert torch.equal(loaded.codes, model.codes)


def test_only_train_steps_with_positions_write_the_table():
    model = acn().eval()
    b = batch()
    with torch.no_grad():
        model.codes[b["pos"]] = model.encode(b["x"])
    snapshot = model.codes.clone()
    picked = nearest_codes(model.encode(b["x"]), model.codes, 1)
    assert torch.equal(picked[:, 0], b["pos"]), "outside training, a code's own row is a fair neighbour"
    model.loss(b, 0)
    model.train().loss(b, 0)
    model.train_step({k: v for k, v in b.items() if k != "pos"}, model.optimizers(1e-3), 0)
    assert torch.equal(model.codes, snapshot)


def test_gradients_reach_encoder_decoder_and_prior_but_not_the_table():
    model = acn(decoder="pixelcnn", pixelcnn={"layers": 2, "channels": 8, "kernel": 3})
    model.loss(batch(), 0)["loss"].backward()
    for name in ("encoder", "decoder", "prior"):
        grads = [p.grad for p in getattr(model, name).parameters()]
        assert all(g is not None for g in grads) and sum(float(g.abs().sum()) for g in grads) > 0, name
    assert not model.codes.requires_grad


def test_mixture_log_density_matches_torch_distributions():
    torch.manual_seed(0)
    logits, means, log_scales = torch.randn(6, 4, 3), torch.randn(6, 4, 3), torch.randn(6, 4, 3) * 0.5
    z = torch.randn(6, 4) * 2
    reference = D.MixtureSameFamily(D.Categorical(logits=logits), D.Normal(means, log_scales.exp())).log_prob(z)
    assert torch.allclose(mixture_log_prob(z, logits, means, log_scales), reference, atol=1e-5)


def test_prior_network_wiring_and_kl():
    torch.manual_seed(0)
    prior = PriorNetwork(3, hidden=16, layers=3, components=1).double()
    assert len(prior.input_skips) == 2 and len(prior.output_skips) == 3
    c, code = torch.randn(5, 3, dtype=torch.float64), torch.randn(5, 3, dtype=torch.float64)
    _, m, log_s = prior(c)
    m, s = m[..., 0], log_s[..., 0].exp()
    exact = (torch.log(s) + (1 + (code - m) ** 2) / (2 * s**2) - 0.5).sum(1)  # KL(N(code, 1) || N(m, s^2))
    assert torch.allclose(prior.kl_from_unit_gaussian(code, c), exact, atol=1e-9)
    mixture = PriorNetwork(3, hidden=16, layers=3, components=4).double()
    z = code + torch.randn(20000, 5, 3, dtype=torch.float64)
    log_p = mixture.log_prob(z.flatten(0, 1), c.repeat(20000, 1)).view(20000, 5)
    monte_carlo = (D.Normal(code, 1.0).log_prob(z).sum(-1) - log_p).mean(0)
    assert torch.allclose(mixture.kl_from_unit_gaussian(code, c), monte_carlo, atol=0.1)


def test_nearest_neighbour_chain_known_answer():
    points = torch.tensor([[0.0], [10.0], [1.0], [11.0], [2.0]])
    assert nearest_neighbour_chain(points).tolist() == [0, 2, 4, 1, 3]
    assert nearest_neighbour_chain(points, start=3).tolist() == [3, 1, 4, 2, 0]
    codes = torch.randn(50, 4)
    assert sorted(nearest_neighbour_chain(codes).tolist()) == list(range(50)), "every code exactly once"


# Five 2-D codes on a line; row 1 is nearest the origin, so the chain is rows 1, 3, 0, 2, 4.
CHAIN_CODES = torch.tensor([[4.0, 0.0], [0.5, 0.0], [9.0, 0.0], [2.0, 0.0], [20.0, 0.0]], dtype=torch.float64)


def unit_gaussian_prior_kl(code, previous):
    """KL(N(code, I) || N(previous, I)): a prior that is the predecessor's own posterior."""
    return 0.5 * (code - previous).pow(2).sum(1)


def test_coding_cost_chain_protocol_known_answer():
    """The first code (nearest the origin) pays |c|^2 / 2 under N(0, I); each later one pays its
    KL under the prior of the code sent just before it; costs come back in row order."""
    assert nearest_neighbour_chain(CHAIN_CODES).tolist() == [1, 3, 0, 2, 4]
    per_datum = chain_coding_cost(CHAIN_CODES, unit_gaussian_prior_kl, batch_size=2)  # batches cross the chain
    # row 0 follows row 3 (4 - 2), row 1 is first (0.5^2 / 2), row 2 follows row 0 (9 - 4),
    # row 3 follows row 1 (2 - 0.5), row 4 follows row 2 (20 - 9)
    assert per_datum.tolist() == [2.0, 0.125, 12.5, 1.125, 60.5]


def test_coding_cost_depends_on_the_set_of_codes_not_their_row_order():
    codes = torch.randn(30, 3, dtype=torch.float64)
    perm = torch.randperm(30)
    cost = chain_coding_cost(codes, unit_gaussian_prior_kl)
    torch.testing.assert_close(chain_coding_cost(codes[perm], unit_gaussian_prior_kl), cost[perm])


def test_acn_coding_cost_conditions_each_code_on_its_chain_predecessor():
    model = acn().double()
    codes = torch.randn(12, 4, dtype=torch.float64)
    order = nearest_neighbour_chain(codes)
    expected = torch.empty(12, dtype=torch.float64)
    expected[order[0]] = 0.5 * codes[order[0]].pow(2).sum()
    with torch.no_grad():
        expected[order[1:]] = model.prior.kl_from_unit_gaussian(codes[order[1:]], codes[order[:-1]])
    torch.testing.assert_close(model.coding_cost(codes), expected)


def test_daydreams_and_claim_metrics(tmp_path):
    model = acn().eval()
    g = torch.Generator().manual_seed(3)
    samples = model.sample(5, g)
    assert samples.shape == (5, 1, 8, 8) and samples.min() >= 0 and samples.max() <= 1
    assert torch.equal(samples, model.sample(5, torch.Generator().manual_seed(3)))
    x = torch.rand(40, 1, 8, 8)
    z = model.encode(x).detach().double().numpy()
    labels = (z[:, 0] > np.median(z[:, 0])).astype(int)  # two balanced labels the code determines

    def context(scale, kind="image"):  # a "vector" kind skips the figure
        return SimpleNamespace(model=model, z_test=z * scale, z_train=z * scale, test_x=x, seed=0, plots=tmp_path,
                               figure_examples=4, k=3, has_labels=True, test=SimpleNamespace(kind=kind, label=labels),
                               train=SimpleNamespace(label=labels))

    # codes far larger than the unit posterior noise are readable; codes far smaller are not,
    # though their means still separate the labels: the evaluator's knn_acc (on the means)
    # reports that side beside knn_acc_sampled
    collapsed = context(1e-3, "vector")
    assert model.own_metrics.suites == (claim_suite, daydream_suite)
    assert claim_suite(collapsed)["knn_acc_sampled"] < 0.8
    assert knn_acc(collapsed.z_train, labels, collapsed.z_test, labels, k=3) >= 0.9
    ctx = context(1e4)
    metrics = claim_suite(ctx)
    assert daydream_suite(ctx) == {}
    assert metrics["knn_acc_sampled"] > 0.9
    assert metrics["coding_cost_nats"] > 0 and metrics["coding_cost_recon_nats"] > 0
    total = metrics["coding_cost_nats"] + metrics["coding_cost_recon_nats"]
    assert math.isclose(metrics["coding_cost_total_nats"], total)
    assert (tmp_path / "daydream.png").stat().st_size > 0
    per_datum = model.coding_cost(torch.as_tensor(ctx.z_test, dtype=torch.float32))
    assert per_datum.shape == (40,) and math.isclose(float(per_datum.mean()), metrics["coding_cost_nats"], rel_tol=1e-6)


DDP_SCRIPT = """
import sys, torch
from pathlib import Path
from aebench import distributed
from aebench.config import TrainConfig
from aebench.models import build_model
from aebench.models.acn.eval import daydream_suite
from aebench.models.coding_cost import claim_suite
from aebench.models.base import DataInfo
from aebench.training import train

torch.set_num_threads(1)
distributed.init(torch.device("cpu"))
g = torch.Generator().manual_seed(0)
def data(n):
    return {"x": torch.rand(n, 1, 8, 8, generator=g), "label": torch.zeros(n, dtype=torch.long),
            "group": torch.zeros(n, dtype=torch.long), "index": torch.arange(n), "pos": torch.arange(n)}
train_data, val_data = data(90), data(20)
torch.manual_seed(7)
model = build_model("acn", {"latent_dim": 3, "width": 4, "prior_hidden": 16}, DataInfo((1, 8, 8), "image", 10, 90))
initial = model.codes.clone()
train(model, train_data, val_data, TrainConfig(epochs=1, batch_size=30, lr=1e-2),
      resume_path=Path(sys.argv[1] + f".resume{distributed.rank()}"), fingerprint="x")
torch.save({"initial": initial, "final": model.codes}, sys.argv[1] + f".rank{distributed.rank()}")
distributed.shutdown()
"""


@pytest.mark.slow
def test_code_table_stays_whole_and_identical_across_ranks(tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    script = tmp_path / "acn_ddp.py"
    script.write_text(DDP_SCRIPT)
    torchrun = Path(sys.executable).with_name("torchrun")
    proc = subprocess.run([str(torchrun), "--standalone", "--nproc_per_node=2", str(script), str(tmp_path / "t")],
                          timeout=300, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    a, b = (torch.load(tmp_path / f"t.rank{r}", weights_only=True) for r in (0, 1))
    assert torch.equal(a["initial"], b["initial"])
    assert torch.equal(a["final"], b["final"]), "the ranks' tables diverged"
    assert (a["final"] != a["initial"]).any(1).all(), "one epoch visits every row (shares of 15 per rank)"
