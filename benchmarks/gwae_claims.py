"""Reproduce the GWAE paper's claims at CPU scale: not a test, an experiment.

    python benchmarks/gwae_claims.py --root /tmp/gwae --dataset shapes --models vae gwae_fnp --steps 800
    python benchmarks/gwae_claims.py --root /tmp/gwae --dataset digits --models vae gwae_gmp --steps 1500
    python benchmarks/gwae_claims.py --root /tmp/gwae --dataset mnist --models vae gwae_gmp --steps 800 --n-train 5000

Data go through the real pipeline functions (download, preprocess) in a temporary root
(`--root`, with `data.mirror` pointing at ../shared/data for MNIST and Omniglot); models are
trained with the benchmark's one training loop and scored with the evaluator's suites plus
`disentanglement_suite` and `ood_suite`. The OoD companion is the `letters` generator for
`digits` and Omniglot's evaluation set (the official test split) for `mnist`. Prints one JSON
line per model and writes `<root>/results/<dataset>-<model>.json`.
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path

import numpy as np
import torch
import yaml

REPO = Path(__file__).resolve().parents[1]

# name -> (type, config); the shared settings below are added to every model
MODELS: dict[str, tuple[str, dict]] = {
    "vae": ("vae", {}),
    "betavae": ("vae", {"beta": 4.0}),
    "wae": ("wae", {}),
    "gwae": ("gwae", {"prior": "np"}),
    "gwae_fnp": ("gwae", {"prior": "fnp"}),
    "gwae_gmp": ("gwae", {"prior": "gmp", "gmp_components": 10}),
}
COMPANION = {"digits": "letters", "mnist": "omniglot"}


def setup_root(root: Path, datasets: list[str]) -> None:
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["datasets"] = datasets
    params["runs"] = {f"{d}-vae": {"dataset": d, "model": "vae"} for d in datasets}  # unused here, must be valid
    params["data"]["mirror"] = str((REPO.parent / "shared" / "data").resolve())
    root.mkdir(parents=True, exist_ok=True)
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


def prepare(dataset: str, root: Path):
    from aebench import paths
    from aebench.stages import download, preprocess
    from aebench.data.parquet import read_split

    folder = paths.processed_dir(dataset, root)
    if not (folder / "test.parquet").exists():
        download.run(dataset, root)
        preprocess.run(dataset, root)
    return {s: read_split(folder / f"{s}.parquet") for s in ("train", "val", "test")}


def companion_x(dataset: str, root: Path, n: int, seed: int) -> tuple[str, torch.Tensor] | None:
    name = COMPANION.get(dataset)
    if name is None:
        return None
    if name == "letters":
        from aebench.data.datasets.letters import make_letters

        x = make_letters(n, seed + 1).x
    else:
        test = prepare(name, root)["test"]
        keep = np.sort(np.random.default_rng(seed).choice(len(test), min(n, len(test)), replace=False))
        x = test.x[keep]
    return name, torch.from_numpy(x.astype(np.float32) / 255.0)


def run(dataset: str, model_name: str, args) -> dict:
    from aebench.config import TrainConfig
    from aebench.evaluation.context import EvalContext, OodSet, encode_all
    from aebench.evaluation.suites import disentanglement_suite, ood_suite, reconstruction_suite, representation_suite
    from aebench.models import build_model
    from aebench.models.base import DataInfo
    from aebench.training import split_tensors, train

    root = Path(args.root)
    splits = prepare(dataset, root)
    tr, va, te = splits["train"], splits["val"], splits["test"]
    rng = np.random.default_rng(args.seed)
    if args.n_train and len(tr) > args.n_train:
        tr = tr.subset(np.sort(rng.choice(len(tr), args.n_train, replace=False)))
    if len(va) > 1000:
        va = va.subset(np.sort(rng.choice(len(va), 1000, replace=False)))
    if args.n_test and len(te) > args.n_test:
        te = te.subset(np.sort(rng.choice(len(te), args.n_test, replace=False)))
    kind, config = MODELS[model_name]
    config = {"latent_dim": args.latent_dim, **({"arch": args.arch} if args.arch else {}),
              **({"width": args.width} if args.width else {}), **config}
    if kind == "gwae" and args.critic_lr:
        config["critic_lr"] = args.critic_lr
    info = DataInfo(tuple(tr.shape), tr.kind, tr.n_classes, len(tr))
    torch.manual_seed(args.seed)
    model = build_model(kind, config, info)
    lr = args.gwae_lr if kind == "gwae" else args.lr
    steps_per_epoch = max(1, len(tr) // args.batch_size)
    epochs = max(1, round(args.steps / steps_per_epoch))
    cfg = TrainConfig(seed=args.seed, epochs=epochs, batch_size=args.batch_size, lr=lr, patience=args.patience,
                      num_threads=1, device="cpu", log_every=10**9)
    t0 = time.perf_counter()
    resume = root / "resume" / f"{dataset}-{model_name}.pt"
    resume.parent.mkdir(parents=True, exist_ok=True)
    resume.unlink(missing_ok=True)
    result = train(model, split_tensors(tr), split_tensors(va), cfg, resume_path=resume, fingerprint=str(time.time()))
    train_s = time.perf_counter() - t0
    metrics = {"dataset": dataset, "model": model_name, "steps": result.epochs_run * steps_per_epoch,
               "epochs": result.epochs_run, "best_epoch": int(np.argmin([h["val_loss"] for h in result.history])) + 1,
               "train_s": round(train_s, 1), "lr": lr}
    extra = companion_x(dataset, root, len(te), args.seed)

    def scores(plots: Path) -> dict:
        test_x = split_tensors(te)["x"]
        ctx = EvalContext(model=model, train=tr, test=te, test_x=test_x, z_train=encode_all(model, split_tensors(tr)["x"]),
                          z_test=encode_all(model, test_x), k=5, seed=args.seed, plots=plots, figure_examples=8)
        if extra is not None:
            ctx.ood = OodSet(*extra)
        out = {}
        for suite in (reconstruction_suite, representation_suite, disentanglement_suite, ood_suite):
            s0 = time.perf_counter()
            out.update(suite(ctx))
            out[f"{suite.__name__}_s"] = round(time.perf_counter() - s0, 1)
        if kind == "gwae":
            out["distance_coef"] = model.log_c.exp().item()
        return out

    # what the pipeline keeps (the best validation epoch), then the last epoch (the authors evaluate that)
    plots = root / "results" / f"{dataset}-{model_name}"
    metrics.update(scores(plots))
    (root / "results").mkdir(exist_ok=True)
    torch.save(model.state_dict(), root / "results" / f"{dataset}-{model_name}.pt")
    if metrics["best_epoch"] != metrics["epochs"]:
        model.load_state_dict(torch.load(resume, weights_only=True)["model"])
        model.eval()
        metrics.update({f"last_{k}": v for k, v in scores(plots / "last").items() if not k.endswith("_s")})
    metrics = {k: (round(v, 4) if isinstance(v, float) else v) for k, v in metrics.items()}
    (root / "results" / f"{dataset}-{model_name}.json").write_text(
        json.dumps({**metrics, "history": result.history}, indent=1))
    return metrics


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", required=True)
    parser.add_argument("--dataset", required=True)
    parser.add_argument("--models", nargs="+", default=["vae", "gwae"])
    parser.add_argument("--steps", type=int, default=800, help="training steps (rounded to whole epochs)")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=1e-3, help="learning rate of the baselines (Adam)")
    parser.add_argument("--gwae-lr", type=float, default=1e-4, help="main RMSprop learning rate of GWAE")
    parser.add_argument("--critic-lr", type=float, default=None, help="GWAE critic learning rate (default 1e-4)")
    parser.add_argument("--latent-dim", type=int, default=16)
    parser.add_argument("--arch", choices=["auto", "conv", "mlp"], default=None)
    parser.add_argument("--width", type=int, default=None)
    parser.add_argument("--n-train", type=int, default=None)
    parser.add_argument("--n-test", type=int, default=2000)
    parser.add_argument("--patience", type=int, default=1000, help="early stopping (default: effectively off)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    torch.set_num_threads(1)
    root = Path(args.root)
    datasets = [args.dataset] + ([COMPANION[args.dataset]] if COMPANION.get(args.dataset) == "omniglot" else [])
    setup_root(root, datasets)
    import os

    os.environ["AEBENCH_ROOT"] = str(root)
    for name in args.models:
        print(json.dumps(run(args.dataset, name, args)), flush=True)


if __name__ == "__main__":
    main()
