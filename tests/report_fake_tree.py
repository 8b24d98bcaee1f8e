"""A small fake pipeline tree for the report tests: params, metrics, figures, curves, run records.

Not a test module: `test_report_*.py` import it. Everything is written the way the stages
write it (metrics.json with null for missing values, roc.csv with a `score` column, the
schema metadata `aebench.n_classes` in train.parquet).
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np

CURVE = "epoch,train_loss,val_loss\n1,1.0,1.2\n2,0.6,0.8\n3,0.4,0.7\n"
ROC = "score,fpr,tpr,threshold\n" + "".join(
    f"{name},{f},{t},{th}\n" for name, pts in (("-log N(z)", [(0, 0), (0.1, 0.5), (0.4, 0.9), (1, 1)]),
                                              ("negative ELBO", [(0, 0), (0.3, 0.5), (1, 1)]))
    for th, (f, t) in enumerate(pts))


def png(label: str, seed: int = 0, size: tuple[float, float] = (2.4, 1.6)) -> bytes:
    """A small labelled image, different per (label, seed), so screenshots show what is where."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=size, dpi=60)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    ax.imshow(np.random.default_rng(seed).random((6, 10)), cmap="viridis")
    ax.set_title(label, fontsize=9)
    ax.set_axis_off()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


def write_parquet_meta(folder: Path, n_classes: int, kind: str = "image", traits: tuple[str, ...] = (),
                       factors: tuple[str, ...] = ()) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    folder.mkdir(parents=True, exist_ok=True)
    table = pa.table({"index": [0, 1], "label": [0, 1], **{f"factor_{f}": [0.0, 1.0] for f in factors}})
    table = table.replace_schema_metadata({b"aebench.n_classes": json.dumps(n_classes).encode(),
                                           b"aebench.kind": json.dumps(kind).encode(),
                                           b"aebench.traits": json.dumps(list(traits)).encode()})
    for split in ("train", "val", "test"):
        pq.write_table(table, folder / f"{split}.parquet")


def build_tree(root: Path, metrics: dict[str, dict[str, dict]], *, kinds=("reconstructions", "samples", "codes_2d"),
               extra_kinds: dict[tuple[str, str], list[str]] | None = None, roc: tuple[tuple[str, str], ...] = (),
               models: list[str] | None = None, n_classes: dict[str, int] | None = None,
               plan_runs: bool = True, traits: dict[str, tuple[str, ...]] | None = None,
               factors: dict[str, tuple[str, ...]] | None = None, seeds: tuple[int, ...] = (0,)) -> Path:
    """metrics: {dataset: {model: metrics dict}}; every model listed gets figures of `kinds`,
    a training curve and a run.json; `extra_kinds` adds figures to one (dataset, model);
    `n_classes`, `traits` and `factors` (names of varying factor columns) write a dataset's
    train.parquet.
    params.yaml plans exactly these pairs in `runs` (or, with plan_runs=False, has no `runs`), each
    trained on `seeds` with the same metrics."""
    datasets = list(metrics)
    models = models or list(dict.fromkeys(m for d in metrics.values() for m in d))
    root.mkdir(parents=True, exist_ok=True)
    runs = {f"{d}-{m}": {"dataset": d, "model": m} for d in metrics for m in metrics[d]}
    (root / "params.yaml").write_text(f"datasets: {json.dumps(datasets)}\nmodels: {json.dumps(models)}\n"
                                      + (f"runs: {json.dumps(runs)}\n" if plan_runs else "")
                                      + f"seeds: {json.dumps(list(seeds))}\n"
                                      + "train:\n  epochs: 3\n")
    for di, dataset in enumerate(datasets):
        n_classes, traits, factors = n_classes or {}, traits or {}, factors or {}
        if dataset in n_classes or dataset in traits or dataset in factors:
            write_parquet_meta(root / "data" / "processed" / dataset, n_classes.get(dataset, 1),
                               traits=traits.get(dataset, ()), factors=factors.get(dataset, ()))
        for mi, (model, values), seed in ((mi, mv, seed) for mi, mv in enumerate(metrics[dataset].items())
                                          for seed in seeds):
            folder = root / "eval" / dataset / model / f"seed{seed}"
            (folder / "plots").mkdir(parents=True, exist_ok=True)
            (folder / "metrics.json").write_text(json.dumps(values))
            for ki, kind in enumerate([*kinds, *(extra_kinds or {}).get((dataset, model), [])]):
                (folder / "plots" / f"{kind}.png").write_bytes(png(f"{dataset} {model} {kind}", 100 * di + 10 * mi + ki))
            (folder / "plots" / "training_curve.csv").write_text(CURVE)
            if (dataset, model) in roc:
                (folder / "plots" / "roc.csv").write_text(ROC)
            run = {"run_id": f"run{di}{mi}", "registered_name": f"{dataset}-{model}", "version": "1",
                   "git_commit": "c" * 40, "data_hash": "d" * 64, "train_seconds": 10.0 + mi, "epochs": 3,
                   "device": "cpu"}
            (root / "models" / dataset / model / f"seed{seed}").mkdir(parents=True, exist_ok=True)
            (root / "models" / dataset / model / f"seed{seed}" / "run.json").write_text(json.dumps(run))
    return root


def many_metrics(seed: int = 0) -> dict[str, dict[str, dict]]:
    """Metrics with the keys the evaluate stage writes (every suite, coding costs, group-size
    accuracies, variant probes, timings), on a labelled image dataset (`digits`), one with a
    single generative factor (`lines`) and one with several (`shapes`)."""
    rng = np.random.default_rng(seed)

    def shared(ood: bool, factors: bool) -> dict:
        out = {"recon_mse": 0.02 + 0.03 * rng.random(), "psnr": 14 + 3 * rng.random(),
               "knn_acc": 0.8 + 0.15 * rng.random(), "linear_acc": 0.8 + 0.1 * rng.random(),
               "cluster_acc": 0.7 + 0.1 * rng.random(), "cluster_acc_paper": 0.7 + 0.1 * rng.random(),
               "nmi": 0.6 + 0.1 * rng.random(), "bilipschitz": 2 + 10 * rng.random(),
               "trustworthiness": 0.85 + 0.1 * rng.random(), "train_seconds": 1 + 10 * rng.random(),
               "train_samples_per_s": 1000 + 30000 * rng.random(), "eval_seconds": 0.5 + rng.random()}
        if ood:
            out["ood_auroc"] = 0.2 + 0.6 * rng.random()
        if factors:
            out |= {"dci_disentanglement": 1.0, "dci_completeness": 0.5 + 0.2 * rng.random(),
                    "dci_informativeness": 0.95 + 0.04 * rng.random(), "mig": 0.05 * rng.random()}
        return out

    def generative() -> dict:
        return {"neg_elbo": 20 + 20 * rng.random(), "gw_distance": 0.1 * rng.random(), "offmanifold_rate": 0.0,
                "coding_cost_nats": 3 * rng.random(), "coding_cost_recon_nats": 15 + 5 * rng.random(),
                "coding_cost_total_nats": 18 + 5 * rng.random(), "knn_acc_sampled": 0.3 + 0.4 * rng.random(),
                "ood_auroc_neg_elbo": 0.9 + 0.1 * rng.random()}

    sizes = (1, 2, 5, 10)
    grouped = {"chance_acc": 0.13, "heldout_chance": 0.51, "style_acc": 0.14, "heldout_style_acc": 0.51,
               "content_acc": 0.69, "content_acc_accumulated": 0.999, "heldout_content_acc": 0.77,
               "heldout_content_acc_accumulated": 0.94,
               **{f"content_acc_g{k}": 1 - 0.31 / k for k in sizes},
               **{f"heldout_content_acc_g{k}": 1 - 0.23 / k for k in sizes},
               **{f"content_var_g{k}": 0.73 / k for k in sizes}}
    digits = {"ae": shared(True, False), "vae": shared(True, False) | generative(),
              "acai": shared(True, False) | {"linear_acc_joint": 0.1},
              "acn": shared(True, False) | generative(),
              "mlvae": shared(True, False) | generative() | grouped}
    lines = {"ae": shared(False, True) | {"interp_mean_distance": 0.0068, "interp_smoothness": 0.44},
             "acai": shared(False, True) | {"interp_mean_distance": 0.0002, "interp_smoothness": 0.10,
                                            "linear_acc_joint": 0.2}}
    shapes = {"vae": shared(False, True) | generative(), "mlvae": shared(False, True) | generative() | grouped}
    for model in shapes.values():
        model["dci_disentanglement"] = 0.3 + 0.2 * rng.random()
    return {"digits": digits, "lines": lines, "shapes": shapes}
