"""ML-VAE evaluation: what the content and style codes know about the group, and how
evidence accumulated over a group sharpens the content (the paper's Section 5 analyses).

`mlvae_suite` is the evaluation suite the model declares (`MLVAE.own_metrics`); the evaluator
runs it after the shared suites without knowing its metrics, whose directions and key
metrics are declared here too.

Every probe predicts the *group id* (the `group` column: the label by default) and, as in
the first author's `classification_accuracy.py`, is fitted on train-split codes and scored
on test-split codes of the same kind. Codes are posterior samples (`probe_input: sample`,
the authors' protocol: what the decoder actually receives, so a dimension whose mean varies
a little under a prior-sized variance counts for little) or posterior means (`mean`).
- `content_acc_g{k}`: both splits cut at random into groups of k observations of one id;
  each group's content posterior is the product of its members' Gaussians, and each member
  gets a code from it; `content_var_g{k}` is that posterior's variance averaged over groups
  and dimensions. `content_acc` = `content_acc_g1` (single observations, no accumulation);
  `content_acc_accumulated` = the largest k of `eval_group_sizes` (the authors accumulate
  over the members of each id in a random batch of 128 MNIST images: about 13). The
  test-side partition is drawn `eval_repeats` times and averaged. Written to
  `accumulation.csv`/`.png`.
- `style_acc`: the same for the single-observation style code; `chance_acc` is the test
  share of the most frequent id.
- `heldout_*`: the same probes, fitted and scored on the ids of `heldout_groups` only (the
  model never trained on them): their content still separates them if it generalises.
- `swap_grid.png`: decoder means with the style of the row's test image and the content of
  the column's; `swap_grid_accumulated.png` takes each column's content from ten test images
  of its group (image data only).

The probe is the authors' classifier by default (`probe: mlp`: 256-256, BatchNorm, LeakyReLU
0.2, Adam 1e-4, batch 128, codes redrawn every step; `probe_steps` Adam steps, 100000 in the
authors' script). It reads style far better than a softmax regression (`probe: linear`):
on MNIST a style code the linear probe puts at 58% the MLP puts at 79%, so "style near
chance" is not what the method delivers, and it is not what the paper claims: the paper's
claim is that the content, with evidence accumulated over a group, predicts the group far
better than the style does, and that it does so for groups unseen in training too.
"""

from __future__ import annotations

import csv
import io
import warnings
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from aebench import figures
from aebench.io import atomic_path
from aebench.models.mlvae.posterior import group_posterior, lecun_normal_
from aebench.models.base import OwnMetrics
from aebench.models.mlvae.sampler import draw_groups

SWAP_MAX_GROUPS = 10
SWAP_ACCUMULATE = 10

METRIC_DIRECTIONS: dict[str, str] = {
    "content_acc": "max",
    "content_acc_accumulated": "max",
    "style_acc": "min",
    "heldout_content_acc": "max",
    "heldout_content_acc_accumulated": "max",
    "heldout_style_acc": "min",
}
KEY_METRICS = ("content_acc",)


@dataclass
class Posteriors:
    """Single-observation posteriors of one split (float64 tensors on the CPU) and group ids."""

    c_mu: torch.Tensor
    c_lv: torch.Tensor
    s_mu: torch.Tensor
    s_lv: torch.Tensor
    group: torch.Tensor

    def subset(self, rows: np.ndarray) -> "Posteriors":
        rows = torch.from_numpy(np.flatnonzero(rows))
        return Posteriors(self.c_mu[rows], self.c_lv[rows], self.s_mu[rows], self.s_lv[rows], self.group[rows])


@torch.no_grad()
def posteriors_of(model, x: torch.Tensor, group: np.ndarray, batch_size: int = 512) -> Posteriors:
    parts = [model.posteriors(x[i:i + batch_size]) for i in range(0, len(x), batch_size)]
    c_mu, c_lv, s_mu, s_lv = (torch.cat([p[j] for p in parts]).cpu().double() for j in range(4))
    return Posteriors(c_mu, c_lv, s_mu, s_lv, torch.from_numpy(np.asarray(group, dtype=np.int64)))


@dataclass(frozen=True)
class ProbeSpec:
    """How to fit a probe: `kind` (mlp | linear), whether it reads posterior samples, and the
    MLP's optimisation budget (see `MLVAEConfig`)."""

    kind: str = "mlp"
    sample: bool = True
    steps: int = 2000
    batch_size: int = 128
    lr: float = 1e-4
    device: str = "cpu"

    @classmethod
    def from_config(cls, cfg, device: torch.device | str = "cpu") -> "ProbeSpec":
        return cls(kind=cfg.probe, sample=cfg.probe_input == "sample", steps=cfg.probe_steps,
                   batch_size=cfg.probe_batch_size, lr=cfg.probe_lr, device=str(device))


def probe_net(n_in: int, n_classes: int) -> nn.Sequential:
    """The first author's classifier shape: two hidden layers of 256, each Linear -> BatchNorm
    -> LeakyReLU(0.2), LeCun-normal weights and biases (`classification_accuracy.py`)."""
    layers: list[nn.Module] = []
    for width_in in (n_in, 256):
        layers += [nn.Linear(width_in, 256), nn.BatchNorm1d(256), nn.LeakyReLU(0.2)]
    net = nn.Sequential(*layers, nn.Linear(256, n_classes))
    net.apply(lecun_normal_)
    return net


class MLPProbe:
    """The authors' MLP probe. Trained with Adam for a fixed number of steps on minibatches
    whose codes are redrawn from the posteriors at every step (the authors reparameterise
    inside their training loop), so the probe sees the noise the decoder sees; a fixed
    step count keeps its cost independent of the dataset's size. Predicts with BatchNorm's
    running statistics."""

    def __init__(self, spec: ProbeSpec, seed: int):
        self.spec, self.seed = spec, seed

    def fit(self, mu: np.ndarray, logvar: np.ndarray, y: np.ndarray) -> "MLPProbe":
        self.classes, targets = np.unique(y, return_inverse=True)
        device = torch.device(self.spec.device)
        mu_t = torch.as_tensor(mu, dtype=torch.float32, device=device)
        std_t = torch.exp(0.5 * torch.as_tensor(logvar, dtype=torch.float32, device=device))
        y_t = torch.as_tensor(targets, device=device)
        with torch.random.fork_rng(devices=[]), torch.enable_grad():
            torch.manual_seed(self.seed)
            gen = torch.Generator(device=device).manual_seed(self.seed)
            self.net = probe_net(mu_t.shape[1], len(self.classes)).to(device).train()
            opt = torch.optim.Adam(self.net.parameters(), lr=self.spec.lr, betas=(0.9, 0.999))
            batch = min(self.spec.batch_size, len(mu_t))
            for _ in range(self.spec.steps):
                rows = torch.randint(len(mu_t), (batch,), generator=gen, device=device)
                z = mu_t[rows]
                if self.spec.sample:
                    z = z + std_t[rows] * torch.randn(z.shape, generator=gen, device=device)
                loss = nn.functional.cross_entropy(self.net(z), y_t[rows])
                opt.zero_grad()
                loss.backward()
                opt.step()
        self.net.eval()
        return self

    @torch.no_grad()
    def predict(self, z: np.ndarray) -> np.ndarray:
        logits = self.net(torch.as_tensor(z, dtype=torch.float32, device=torch.device(self.spec.device)))
        return self.classes[logits.argmax(1).cpu().numpy()]


def fit_probe(mu: np.ndarray, logvar: np.ndarray, y: np.ndarray, spec: ProbeSpec, seed: int):
    """A classifier of `y` from codes with posterior means `mu` and log-variances `logvar`,
    with `predict(codes)`: the authors' MLP, or a softmax regression on standardised codes
    (one posterior sample per row when `spec.sample`)."""
    if spec.kind == "mlp":
        return MLPProbe(spec, seed).fit(mu, logvar, y)
    # scikit-learn loads in about a second; only the linear probe needs it
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from sklearn.exceptions import ConvergenceWarning

    generator = torch.Generator().manual_seed(seed)
    z = _draw(torch.as_tensor(mu), torch.as_tensor(logvar), spec.sample, generator)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000, random_state=seed)).fit(z, y)


def chance(y: np.ndarray) -> float:
    """Accuracy of always predicting the most frequent id."""
    return float(np.bincount(y - y.min()).max() / len(y)) if len(y) else float("nan")


def _draw(mu: torch.Tensor, logvar: torch.Tensor, sample: bool, generator: torch.Generator) -> np.ndarray:
    if sample:
        mu = mu + torch.randn(mu.shape, generator=generator, dtype=mu.dtype) * torch.exp(0.5 * logvar)
    return mu.numpy()


def group_codes(post: Posteriors, k: int, generator: torch.Generator
                ) -> tuple[torch.Tensor, torch.Tensor, np.ndarray, float]:
    """Content posteriors (mean, log-variance) of every member of random groups of k (one id
    each), each member getting its group's product of Gaussians; their ids; and the group
    posteriors' mean variance. Rows of ids with fewer than k members are left out."""
    members = draw_groups(post.group, k, generator)
    if len(members) == 0:
        empty = post.c_mu[:0]
        return empty, empty, np.zeros(0, dtype=np.int64), float("nan")
    flat = members.reshape(-1)
    index = torch.arange(len(members)).repeat_interleave(k)
    g_mu, g_lv = group_posterior(post.c_mu[flat], post.c_lv[flat], index, len(members))
    return g_mu[index], g_lv[index], post.group[flat].numpy(), float(g_lv.exp().mean())


def accumulation_curve(train: Posteriors, test: Posteriors, sizes: list[int], repeats: int, spec: ProbeSpec,
                       seed: int) -> list[dict]:
    """Per test group size k: probe accuracy of the accumulated content and its variance.

    The probe of size k is trained on train-split groups of k (as the authors train theirs on
    codes accumulated over the groups of a minibatch) and scored on test-split groups of k.
    """
    generator = torch.Generator().manual_seed(seed)
    rows = []
    for k in sorted(set(sizes)):
        mu_tr, lv_tr, y_tr, _ = group_codes(train, k, generator)
        if len(np.unique(y_tr)) < 2:
            continue
        probe = fit_probe(mu_tr.numpy(), lv_tr.numpy(), y_tr, spec, seed)
        accs, variances, counts = [], [], []
        for _ in range(1 if (k == 1 and not spec.sample) else repeats):
            mu_te, lv_te, y_te, var = group_codes(test, k, generator)
            if len(y_te) == 0:
                break
            accs.append(float(np.mean(probe.predict(_draw(mu_te, lv_te, spec.sample, generator)) == y_te)))
            variances.append(var)
            counts.append(len(y_te) // k)
        if accs:
            rows.append({"group_size": k, "content_acc": float(np.mean(accs)),
                         "content_var": float(np.mean(variances)), "n_groups": int(np.mean(counts))})
    return rows


def style_accuracy(train: Posteriors, test: Posteriors, spec: ProbeSpec, seed: int) -> float:
    generator = torch.Generator().manual_seed(seed + 1)
    probe = fit_probe(train.s_mu.numpy(), train.s_lv.numpy(), train.group.numpy(), spec, seed)
    return float(np.mean(probe.predict(_draw(test.s_mu, test.s_lv, spec.sample, generator)) == test.group.numpy()))


def mlvae_suite(ctx) -> dict[str, float]:
    """The probes' accuracies (module docs) of `ctx.model`, `accumulation.csv`/`.png` and, for
    images, the swap grids."""
    model = ctx.model
    cfg = model.config
    spec = ProbeSpec.from_config(cfg, model.device)
    held = np.asarray(cfg.heldout_groups, dtype=np.int64)
    train = posteriors_of(model, ctx.train_x, ctx.train.group)
    test = posteriors_of(model, ctx.test_x, ctx.test.group)
    out: dict[str, float] = {}
    curves: dict[str, list[dict]] = {}
    for name, prefix in [("seen", ""), ("heldout", "heldout_")]:
        in_tr, in_te = np.isin(ctx.train.group, held), np.isin(ctx.test.group, held)
        if name == "seen":
            in_tr, in_te = ~in_tr, ~in_te
        tr, te = train.subset(in_tr), test.subset(in_te)
        if len(np.unique(tr.group.numpy())) < 2 or len(te.group) == 0:
            continue
        curves[name] = accumulation_curve(tr, te, cfg.eval_group_sizes, cfg.eval_repeats, spec, ctx.seed)
        for row in curves[name]:
            out[f"{prefix}content_acc_g{row['group_size']}"] = row["content_acc"]
            if name == "seen":
                out[f"content_var_g{row['group_size']}"] = row["content_var"]
            if row["group_size"] == 1:
                out[f"{prefix}content_acc"] = row["content_acc"]
        if curves[name]:
            out[f"{prefix}content_acc_accumulated"] = max(curves[name], key=lambda r: r["group_size"])["content_acc"]
        out[f"{prefix}style_acc"] = style_accuracy(tr, te, spec, ctx.seed)
        out["chance_acc" if name == "seen" else "heldout_chance"] = chance(te.group.numpy())

    if curves:
        write_curves(curves, ctx.plots / "accumulation.csv")
        figures.save(curve_figure(curves, out), ctx.plots / "accumulation.png")
    if ctx.test.kind == "image":
        save_swap_grids(model, ctx.test_x, ctx.test.group, ctx.plots, ctx.seed)
    return out


def write_curves(curves: dict[str, list[dict]], path) -> None:
    """One row per group size, columns `content_acc_<groups>`, `content_var_<groups>` and
    `n_groups_<groups>` for groups = seen (and heldout): wide, so a DVC plot can take
    `x: group_size, y: [content_acc_seen, content_acc_heldout]`."""
    by_size: dict[int, dict[str, float]] = {}
    for name, rows in curves.items():
        for r in rows:
            cells = by_size.setdefault(r["group_size"], {})
            for key in ("content_acc", "content_var", "n_groups"):
                cells[f"{key}_{name}"] = r[key]
    columns = [f"{key}_{name}" for name in curves for key in ("content_acc", "content_var", "n_groups")]
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(["group_size", *columns])
    for k in sorted(by_size):
        writer.writerow([k, *(by_size[k].get(c, "") for c in columns)])
    with atomic_path(path) as tmp:
        tmp.write_text(buf.getvalue())


def curve_figure(curves: dict[str, list[dict]], metrics: dict[str, float]):
    fig, (acc_ax, var_ax) = figures.pyplot().subplots(1, 2, figsize=(8.5, 3.4))
    for name, rows in curves.items():
        k = [r["group_size"] for r in rows]
        acc_ax.plot(k, [r["content_acc"] for r in rows], "o-", label=f"content, {name} groups")
        var_ax.plot(k, [r["content_var"] for r in rows], "o-", label=f"{name} groups")
    if "style_acc" in metrics:
        acc_ax.axhline(metrics["style_acc"], ls="--", c="grey", label="style (single obs.)")
        acc_ax.axhline(metrics["chance_acc"], ls=":", c="black", label="chance")
    acc_ax.set_xlabel("test group size"), acc_ax.set_ylabel("group-id accuracy"), acc_ax.legend(fontsize=7)
    var_ax.set_xscale("log"), var_ax.set_yscale("log")
    var_ax.set_xlabel("test group size"), var_ax.set_ylabel("mean content posterior variance")
    var_ax.legend(fontsize=7)
    fig.suptitle("ML-VAE: evidence accumulation over test groups", fontsize=10)
    fig.tight_layout()
    return fig


def mosaic_figure(cells: np.ndarray, row_labels: list[str], col_labels: list[str], title: str):
    """One image of a (R, C) grid of (channels, H, W) cells in [0, 1], one pixel of padding
    between cells (a single imshow: an 11 x 11 grid of subplots takes seconds to draw)."""
    n_rows, n_cols, channels, h, w = cells.shape
    canvas = np.ones((n_rows * (h + 1) + 1, n_cols * (w + 1) + 1, channels))
    for i in range(n_rows):
        for j in range(n_cols):
            canvas[1 + i * (h + 1):(i + 1) * (h + 1), 1 + j * (w + 1):(j + 1) * (w + 1)] = \
                np.clip(cells[i, j], 0, 1).transpose(1, 2, 0)
    fig, ax = figures.pyplot().subplots(figsize=(0.5 * n_cols + 1.2, 0.5 * n_rows + 0.8))
    ax.imshow(canvas[..., 0] if channels == 1 else canvas, cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    ax.set_xticks([(j + 0.5) * (w + 1) for j in range(n_cols)], col_labels, fontsize=7)
    ax.set_yticks([(i + 0.5) * (h + 1) for i in range(n_rows)], row_labels, fontsize=7)
    ax.tick_params(length=0)
    ax.set_title(title, fontsize=9)
    return fig


@torch.no_grad()
def save_swap_grids(model, test_x: torch.Tensor, groups: np.ndarray, plots, seed: int) -> None:
    """Row i: the style of test image i; column j: the content of test image j (or of up to
    ten images of j's group). The first row and column show the source images."""
    device = test_x.device
    ids = np.unique(groups)[:SWAP_MAX_GROUPS]
    rng = np.random.default_rng(seed)
    members = [rng.permutation(np.flatnonzero(groups == g))[:SWAP_ACCUMULATE] for g in ids]
    refs = torch.as_tensor(np.array([m[0] for m in members]), device=device)
    c_mu, _, s_mu, _ = model.posteriors(test_x[refs])
    rows = torch.as_tensor(np.concatenate(members), device=device)
    index = torch.arange(len(members), device=device).repeat_interleave(
        torch.as_tensor([len(m) for m in members], device=device))
    all_mu, all_lv, _, _ = model.posteriors(test_x[rows])
    acc_mu, _ = group_posterior(all_mu, all_lv, index, len(members))
    sources = test_x[refs].cpu().numpy()
    n = len(ids)
    for content, name, note in [(c_mu, "swap_grid.png", "one image"),
                                (acc_mu, "swap_grid_accumulated.png", f"up to {SWAP_ACCUMULATE} images")]:
        swapped = model.decode(torch.cat([content.repeat(n, 1), s_mu.repeat_interleave(n, 0)], dim=1))
        cells = np.ones((n + 1, n + 1, *sources.shape[1:]))
        cells[0, 1:], cells[1:, 0] = sources, sources
        cells[1:, 1:] = swapped.cpu().numpy().reshape(n, n, *sources.shape[1:])
        labels = [""] + [str(g) for g in ids]
        fig = mosaic_figure(cells, labels, labels,
                            f"style of the row, content of the column's group ({note})")
        figures.save(fig, plots / name)


MLVAE_METRICS = OwnMetrics(suites=(mlvae_suite,), directions=METRIC_DIRECTIONS, key=KEY_METRICS)  # `MLVAE.own_metrics`
