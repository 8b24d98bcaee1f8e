"""Time of the evaluator's metric suites on 10,000 MNIST test codes per model (a benchmark,
not a test):

    .venv/bin/python benchmarks/eval_speed.py [--models vae acn ...] [--threads N]

Data go through the real pipeline functions (download from ../shared/data, preprocess) into a
throw-away root; MNIST's test split is subsampled to 10,000 images, the kNN / probe reference
to 20,000 train codes (the evaluator's `max_train_codes`), and the OoD companion is Omniglot's
test split (10,000 images), as in the GWAE protocol. MNIST has no factor columns, so for the
disentanglement suite (DCI with random forests, MIG) the test split is given three real
properties of each image as factors: its digit, its ink (mean intensity) and the horizontal
centre of its ink. Models are freshly initialised (what is timed does not depend on training;
a model's own suites may, slightly, through early exits). Every suite the evaluator runs
is timed, as the evaluate stage runs them, plus the encoding of the codes; the total is what
`eval_seconds` in metrics.json measures.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import MNIST, REPO, canary_seconds, pin_threads, update_results  # noqa: E402

N_TEST = 10_000


def prepare_root(root: Path) -> None:
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["datasets"] = ["mnist", "omniglot"]
    params["runs"] = {"mnist-vae": {"dataset": "mnist", "model": "vae"}}
    params["data"]["mirror"] = str(MNIST.parent)
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    os.environ["AEBENCH_ROOT"] = str(root)
    from aebench.stages import download, preprocess

    for name in ("mnist", "omniglot"):
        download.run(name, root)
        preprocess.run(name, root)


def with_image_factors(split):
    """The split with three real per-image properties as factor columns (see module doc)."""
    x = split.x.reshape(len(split.x), 28, 28).astype(np.float64) / 255.0
    ink = x.sum(axis=(1, 2))
    centre = (x.sum(axis=1) * np.arange(28)).sum(axis=1) / np.maximum(ink, 1e-9)
    return replace(split, factors={"digit": split.label.astype(np.float64), "ink": ink / 784.0, "centre_x": centre})


def time_model(model_name: str, root: Path, train, test, ood_x) -> dict[str, float]:
    import torch

    from aebench.plan import load_params, resolve_model
    from aebench.evaluation.context import EvalContext, OodSet, encode_all
    from aebench.evaluation.suites import SUITES
    from aebench.models import build_model
    from aebench.models.base import DataInfo
    from aebench.training import memory_format, split_tensors

    model_type, config, train_cfg = resolve_model(load_params(REPO / "params.yaml"), model_name)
    torch.manual_seed(0)
    model = build_model(model_type, config, DataInfo(tuple(test.shape), test.kind, test.n_classes, len(train)))
    model.to(memory_format=memory_format(train_cfg)).eval()  # as the evaluate stage loads it
    times: dict[str, float] = {}
    t0 = time.perf_counter()
    test_x = split_tensors(test)["x"]
    ctx = EvalContext(model=model, train=train, test=test, test_x=test_x,
                      z_train=encode_all(model, split_tensors(train)["x"]), z_test=encode_all(model, test_x),
                      k=5, seed=0, plots=root / "plots" / model_name, figure_examples=8,
                      ood=OodSet("omniglot", ood_x))
    ctx.plots.mkdir(parents=True, exist_ok=True)
    times["encode"] = time.perf_counter() - t0
    for suite in SUITES:
        s0 = time.perf_counter()
        suite(ctx)
        times[suite.__name__.removesuffix("_suite")] = time.perf_counter() - s0
    times["total"] = time.perf_counter() - t0
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="*", help="default: every model in params.yaml except DVAE and ML-VAE "
                        "(they need their dataset's diffusion map / groups)")
    parser.add_argument("--threads", type=int, default=os.cpu_count(),
                        help="default: every core, as the evaluate stage runs (train.num_threads: null)")
    args = parser.parse_args()
    pin_threads(args.threads)
    logging.basicConfig(level=logging.WARNING)
    from aebench.plan import load_params
    from aebench.data.parquet import read_split
    from aebench.training import split_tensors

    models = args.models or [m for m in load_params(REPO / "params.yaml").models if m not in ("dvae", "mlvae")]
    canary = {"before": canary_seconds()}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        prepare_root(root)
        processed = root / "data" / "processed"
        rng = np.random.default_rng(0)
        train = read_split(processed / "mnist" / "train.parquet")
        train = train.subset(np.sort(rng.choice(len(train), 20_000, replace=False)))
        test = read_split(processed / "mnist" / "test.parquet")
        test = with_image_factors(test.subset(np.sort(rng.choice(len(test), N_TEST, replace=False))))
        ood = read_split(processed / "omniglot" / "test.parquet")
        ood_x = split_tensors(ood.subset(np.sort(rng.choice(len(ood), min(N_TEST, len(ood)), replace=False))))["x"]
        results, columns = {}, None
        for name in models:
            times = time_model(name, root, train, test, ood_x)
            results[name] = times
            if columns is None:
                columns = list(times)
                print(f"{'model':14s} " + " ".join(f"{c[:11]:>11s}" for c in columns), flush=True)
            print(f"{name:14s} " + " ".join(f"{times[c]:11.2f}" for c in columns), flush=True)
            record(args.threads, canary, results)  # each model as it is measured: a later failure loses nothing
    canary["after"] = canary_seconds()
    print(f"machine canary (pure-Python loop, s): before {canary['before']}, after {canary['after']}")
    record(args.threads, canary, results)


def record(threads: int, canary: dict, results: dict) -> None:
    update_results({"eval_threads": threads, "eval_canary_seconds": canary,
                    "eval_seconds": {m: round(t["total"], 2) for m, t in results.items()},
                    "eval_suite_seconds": {m: {k: round(v, 2) for k, v in t.items()} for m, t in results.items()}})


if __name__ == "__main__":
    main()
