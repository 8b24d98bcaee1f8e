"""ML-VAE evaluation: what the content and style codes know about the group, and how
evidence accumulated over a group sharpens the content (the paper's Section 5 analyses).

Every probe predicts the *group id* (the `group` column: the label by default) and, as in
the first author's `classification_accuracy.py`, is fitted on train-split codes and scored
on test-split codes of the same kind. Codes are posterior samples (`probe_input: sample`,
the authors' protocol: what the decoder actually receives, so a dimension whose mean varies
a little under a prior-sized variance counts for little) or posterior means (`mean`).
- `content_acc_g{k}`: both splits cut at random into groups of k observations of one id;
  each group's content posterior is the product of its members' Gaussians, and each member
  gets a code from it; `content_var_g{k}` is that posterior's variance averaged over groups
  and dimensions. `content_acc` = `content_acc_g1` (single observations). The test-side
  partition is drawn `eval_repeats` times and averaged. Written to `accumulation.csv`/`.png`.
- `style_acc`: the same for the single-observation style code; near `chance_acc` (the test
  share of the most frequent id) when style carries no group information.
- `heldout_*`: the same probes, fitted and scored on the ids of `heldout_groups` only (the
  model never trained on them): their content still separates them if it generalises.
- `swap_grid.png`: decoder means with the style of the row's test image and the content of
  the column's; `swap_grid_accumulated.png` takes each column's content from ten test images
  of its group (image data only).
Probes: a softmax regression (`probe: linear`, the default: seconds) or the authors'
classifier shape, an MLP with two hidden layers of 256 (`probe: mlp`: about 15 minutes for
20k MNIST codes on a busy two-core machine, and a stronger reader of style: on MNIST it
finds 79% where the linear probe finds 58%).
"""

from __future__ import annotations

import csv
import io
import warnings
from dataclasses import dataclass

import numpy as np
import torch

from aebench import figures
from aebench.data.samplers import draw_groups
from aebench.io import atomic_path
from aebench.models.mlvae import group_posterior

SWAP_MAX_GROUPS = 10
SWAP_ACCUMULATE = 10


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


def fit_probe(z: np.ndarray, y: np.ndarray, kind: str, seed: int):
    """A classifier of `y` from standardised `z`, with `predict`."""
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression
    from sklearn.neural_network import MLPClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    if kind == "linear":
        clf = LogisticRegression(max_iter=1000, random_state=seed)
    else:
        clf = MLPClassifier(hidden_layer_sizes=(256, 256), max_iter=200, early_stopping=len(z) >= 2000,
                            random_state=seed)
    probe = make_pipeline(StandardScaler(), clf)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        probe.fit(z, y)
    return probe


def chance(y: np.ndarray) -> float:
    """Accuracy of always predicting the most frequent id."""
    return float(np.bincount(y - y.min()).max() / len(y)) if len(y) else float("nan")


def _draw(mu: torch.Tensor, logvar: torch.Tensor, sample: bool, generator: torch.Generator) -> np.ndarray:
    if sample:
        mu = mu + torch.randn(mu.shape, generator=generator, dtype=mu.dtype) * torch.exp(0.5 * logvar)
    return mu.numpy()


def group_codes(post: Posteriors, k: int, sample: bool, generator: torch.Generator
                ) -> tuple[np.ndarray, np.ndarray, float]:
    """Content codes of every member of random groups of k (one id each), their ids, and the
    group posteriors' mean variance. Rows of ids with fewer than k members are left out."""
    members = draw_groups(post.group, k, generator)
    if len(members) == 0:
        return np.zeros((0, post.c_mu.shape[1])), np.zeros(0, dtype=np.int64), float("nan")
    flat = members.reshape(-1)
    index = torch.arange(len(members)).repeat_interleave(k)
    g_mu, g_lv = group_posterior(post.c_mu[flat], post.c_lv[flat], index, len(members))
    codes = _draw(g_mu[index], g_lv[index], sample, generator)
    return codes, post.group[flat].numpy(), float(g_lv.exp().mean())


def accumulation_curve(train: Posteriors, test: Posteriors, sizes: list[int], repeats: int, kind: str,
                       sample: bool, seed: int) -> list[dict]:
    """Per test group size k: probe accuracy of the accumulated content and its variance."""
    generator = torch.Generator().manual_seed(seed)
    rows = []
    for k in sizes:
        z_tr, y_tr, _ = group_codes(train, k, sample, generator)
        if len(np.unique(y_tr)) < 2:
            continue
        probe = fit_probe(z_tr, y_tr, kind, seed)
        accs, variances, counts = [], [], []
        for _ in range(1 if (k == 1 and not sample) else repeats):
            z_te, y_te, var = group_codes(test, k, sample, generator)
            if len(y_te) == 0:
                break
            accs.append(float(np.mean(probe.predict(z_te) == y_te)))
            variances.append(var)
            counts.append(len(y_te) // k)
        if accs:
            rows.append({"group_size": k, "content_acc": float(np.mean(accs)),
                         "content_var": float(np.mean(variances)), "n_groups": int(np.mean(counts))})
    return rows


def style_accuracy(train: Posteriors, test: Posteriors, kind: str, sample: bool, seed: int) -> float:
    generator = torch.Generator().manual_seed(seed + 1)
    probe = fit_probe(_draw(train.s_mu, train.s_lv, sample, generator), train.group.numpy(), kind, seed)
    return float(np.mean(probe.predict(_draw(test.s_mu, test.s_lv, sample, generator)) == test.group.numpy()))


def mlvae_metrics(model, ctx) -> dict[str, float]:
    from aebench.training import split_tensors

    cfg = model.config
    sample = cfg.probe_input == "sample"
    held = np.asarray(cfg.heldout_groups, dtype=np.int64)
    train = posteriors_of(model, split_tensors(ctx.train, model.device)["x"], ctx.train.group)
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
        curves[name] = accumulation_curve(tr, te, cfg.eval_group_sizes, cfg.eval_repeats, cfg.probe, sample,
                                          ctx.seed)
        for row in curves[name]:
            out[f"{prefix}content_acc_g{row['group_size']}"] = row["content_acc"]
            if name == "seen":
                out[f"content_var_g{row['group_size']}"] = row["content_var"]
        if 1 in cfg.eval_group_sizes:
            out[f"{prefix}content_acc"] = out[f"{prefix}content_acc_g1"]
        out[f"{prefix}style_acc"] = style_accuracy(tr, te, cfg.probe, sample, ctx.seed)
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
    import matplotlib.pyplot as plt

    fig, (acc_ax, var_ax) = plt.subplots(1, 2, figsize=(8.5, 3.4))
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
    import matplotlib.pyplot as plt

    n_rows, n_cols, channels, h, w = cells.shape
    canvas = np.ones((n_rows * (h + 1) + 1, n_cols * (w + 1) + 1, channels))
    for i in range(n_rows):
        for j in range(n_cols):
            canvas[1 + i * (h + 1):(i + 1) * (h + 1), 1 + j * (w + 1):(j + 1) * (w + 1)] = \
                np.clip(cells[i, j], 0, 1).transpose(1, 2, 0)
    fig, ax = plt.subplots(figsize=(0.5 * n_cols + 1.2, 0.5 * n_rows + 0.8))
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
