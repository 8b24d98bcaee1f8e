"""The report's figures: every model's figures grouped by kind, the training curves, and metrics
that form a curve (a value per group size, `suites.py`) drawn against that size.

Figures are compared across models, so the page shows one kind at a time (all models'
reconstructions side by side, then all samples, ...) rather than one model at a time.
Training curves are small multiples, one panel per model with its own y-axis: the models
optimise different objectives (an MSE, a negative ELBO, adversarial terms that can be
negative), so one shared axis would flatten all but the largest.
"""

from __future__ import annotations

import base64
import io
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from aebench.report.formatting import caption

# Figure kinds shown first, in this order (file stems under eval/<d>/<m>/plots/); any other
# kind follows alphabetically.
KIND_ORDER = ("reconstructions", "samples", "interpolations", "codes_2d", "roc", "swap_grid",
              "swap_grid_accumulated", "accumulation", "daydream", "random_walks", "random_walk")


@dataclass
class FigureKind:
    name: str  # file stem, e.g. "codes_2d"
    items: list[tuple[str, Path]]  # (model, png), in the run's model order

    @property
    def title(self) -> str:
        return caption(self.name)


def _panels(n: int, max_cols: int, panel_size: tuple[float, float]):
    """A figure of `n` panels in rows of at most `max_cols`, and its first `n` axes (the
    grid's spare cells hidden)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    ncols = min(max_cols, n)
    nrows = math.ceil(n / ncols)
    fig = Figure(figsize=(panel_size[0] * ncols + 0.4, panel_size[1] * nrows + 0.6), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    grid = fig.subplots(nrows, ncols, squeeze=False).flat
    for ax in grid[n:]:
        ax.set_visible(False)
    return fig, list(grid[:n])


def group_by_kind(models: Sequence) -> list[FigureKind]:
    """PNG figures of a dataset's models grouped by file stem, known kinds first."""
    kinds: dict[str, list[tuple[str, Path]]] = {}
    for model in models:
        for png in model.plots:
            kinds.setdefault(png.stem, []).append((model.name, png))

    def rank(name: str) -> tuple[int, str]:
        return (KIND_ORDER.index(name) if name in KIND_ORDER else len(KIND_ORDER)), name

    return [FigureKind(name, kinds[name]) for name in sorted(kinds, key=rank)]


def data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def render_training_curves(curves: Sequence[tuple[str, object]], dataset: str) -> bytes | None:
    """One panel per model (validation solid, train dashed), as PNG bytes; None if no curve."""
    curves = [(name, c) for name, c in curves if c is not None]
    if not curves:
        return None
    from matplotlib.ticker import MaxNLocator

    fig, axes = _panels(len(curves), 4, (2.6, 2.1))
    for ax, (name, curve) in zip(axes, curves):
        ax.plot(curve.epoch, curve.val_loss, color="C0", linewidth=1.6, label="validation")
        if any(math.isfinite(v) for v in curve.train_loss):
            ax.plot(curve.epoch, curve.train_loss, color="C1", linestyle="--", linewidth=1.2, label="train")
        values = [v for v in curve.val_loss + curve.train_loss if math.isfinite(v)]
        if values and min(values) > 0 and max(values) / min(values) > 50:
            ax.set_yscale("log")
        ax.set_title(name, fontsize=10)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.tick_params(labelsize=8)
        ax.grid(True, alpha=0.3)
    axes[0].legend(fontsize=7, loc="best")
    fig.supxlabel("epoch", fontsize=9)
    fig.supylabel("loss (each model's own objective)", fontsize=9)
    fig.suptitle(f"Training curves: {dataset}", fontsize=11)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", metadata={"Software": None})
    return buf.getvalue()


def render_group_curves(series: Sequence, dataset: str, axis: str = "group size") -> bytes | None:
    """Metrics against group size (`suites.CurveSeries`): a panel per metric, a line per model,
    a dashed line at a model's chance level where it reports one; PNG bytes, None if none."""
    if not series:
        return None
    from matplotlib.ticker import FixedLocator, NullLocator

    metrics = list(dict.fromkeys(s.metric for s in series))
    models = list(dict.fromkeys(s.model for s in series))
    colour = {m: f"C{i % 10}" for i, m in enumerate(models)}
    fig, axes = _panels(len(metrics), 3, (3.0, 2.4))
    for ax, metric in zip(axes, metrics):
        sizes: set[int] = set()
        chance_label = "chance"
        for s in (s for s in series if s.metric == metric):
            ax.plot(s.sizes, s.values, "o-", color=colour[s.model], linewidth=1.6, markersize=4, label=s.model)
            if s.chance is not None:
                ax.axhline(s.chance, color=colour[s.model], linestyle=":", linewidth=1.0, label=chance_label)
                chance_label = None
            sizes.update(s.sizes)
        if min(sizes) > 0 and max(sizes) / min(sizes) >= 8:
            ax.set_xscale("log")
        ax.xaxis.set_major_locator(FixedLocator(sorted(sizes)))
        ax.xaxis.set_minor_locator(NullLocator())
        ax.set_xticklabels([str(n) for n in sorted(sizes)])
        ax.set_title(metric, fontsize=10)
        ax.tick_params(labelsize=8)
        ax.grid(True, alpha=0.3)
    axes[0].legend(fontsize=7, loc="best")
    fig.supxlabel(axis, fontsize=9)
    fig.suptitle(f"Metrics by {axis}: {dataset}", fontsize=11)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", metadata={"Software": None})
    return buf.getvalue()


def _finite(side: dict) -> list[float]:
    """A check side's finite per-seed values (a row from before seeds carries one `value`)."""
    values = side.get("values", [side.get("value")])
    return [float(v) for v in values or [] if v is not None and math.isfinite(v)]


def render_claim_seeds(row: dict) -> bytes | None:
    """A claim's checks as PNG bytes, one panel each: the left side's per-seed values at x=0,
    the right side's at x=1 (a dashed line at value + plus for a fixed right-hand side), a bar
    at each mean. The verdict is decided on a mean and an interval over seeds; the dots show
    whether the seeds agree or one seed carries it. None when no check has a finite value."""
    checks = [(c.get("left") or {}, c.get("right") or {}, c) for c in row.get("checks") or []]
    if not any(_finite(left) or _finite(right) for left, right, _ in checks):
        return None
    fig, axes = _panels(len(checks), 4, (2.2, 2.0))
    for ax, (left, right, check) in zip(axes, checks):
        for x, side, colour in ((0, left, "C0"), (1, right, "C1")):
            values = _finite(side)
            if x == 1 and "model" not in side:  # a fixed right-hand side: the threshold itself
                for v in values:
                    ax.axhline(v + (check.get("plus") or 0.0), color=colour, linestyle="--", linewidth=1.2)
                continue
            n = len(values)
            jitter = [0.16 * (i / (n - 1) - 0.5) if n > 1 else 0.0 for i in range(n)]
            ax.plot([x + j for j in jitter], values, "o", color=colour, markersize=4, alpha=0.8)
            if values:
                ax.hlines(sum(values) / n, x - 0.2, x + 0.2, color=colour, linewidth=2.0)
        ax.set_xlim(-0.5, 1.5)
        ax.set_xticks([0, 1], [left.get("model", "left"), right.get("model") or right.get("text", "right")], fontsize=7)
        ax.margins(y=0.15)
        ax.set_title(f"{left.get('metric') or '?'}: {check.get('status', '?')}", fontsize=8)
        ax.tick_params(axis="y", labelsize=7)
        ax.grid(True, axis="y", alpha=0.3)
    fig.suptitle(f"{row.get('claim', '')} ({row.get('dataset', '')}): {row.get('status', '')}", fontsize=9)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", metadata={"Software": None})
    return buf.getvalue()
