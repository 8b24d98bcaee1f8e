"""How a claim's checks move with the training budget: the claim's models retrained and
re-evaluated at several budgets on one dataset of a profile run, each check's two values per
budget, a figure and a table.

    python benchmarks/claim_budgets.py acai-downstream mnist --epochs 1 2 4
    python benchmarks/claim_budgets.py dvae-topology rotation --epochs 30 100 300 --steps-per-epoch 10

It works from the profile's worktree (`.profiles/<profile>/`, made by `aebench profile`): its
processed data and params, with each compared run's `train.epochs` replaced (and its early
stopping off) in a scratch root per budget beside it, so the profile's own outputs are not
touched. Results: `results/<profile>-budgets/<claim>-<dataset>.{json,md,png}`; a budget already
on the curve is replaced, the others are kept, so a curve grows by the budgets (or seeds,
`--seeds 0 1 2`) added to it, each point naming the machine and arithmetic it trained in.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]


def scratch_root(tree: Path, base: Path, runs: list[str], epochs: int, steps_per_epoch: int | None,
                 precision: str | None = None) -> Path:
    """A root sharing the worktree's data, whose params give `runs` `epochs` epochs (of at
    most `steps_per_epoch` steps, when given; in `precision`, when given)."""
    root = base / f"epochs-{epochs}"
    root.mkdir(parents=True, exist_ok=True)
    if not (root / "data").exists():
        (root / "data").symlink_to(tree / "data")
    params = yaml.safe_load((tree / "params.yaml").read_text())
    for key in runs:
        train = params["runs"][key].setdefault("train", {})
        train.update(epochs=epochs, patience=epochs)
        if steps_per_epoch:
            train["max_steps_per_epoch"] = steps_per_epoch
        if precision:
            train["precision"] = precision
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    return root


def measure(claim, dataset: str, epochs: list[int], steps_per_epoch: int | None, tree: Path, base: Path,
            precision: str | None = None, seeds: tuple[int, ...] = (0,), measured: dict | None = None) -> list[dict]:
    """One point per budget: each compared model trained and evaluated on every seed of `seeds`,
    the claim decided over them as the report decides it (one seed: inconclusive)."""
    from aebench.stages import evaluate, train
    from aebench.report.claims import Budget, RunData, evaluate_on, read_traits

    models = claim.models
    points = []
    for e in epochs:
        root = scratch_root(tree, base, [f"{dataset}-{m}" for m in models], e, steps_per_epoch, precision)
        os.environ["AEBENCH_ROOT"] = str(root)
        seed_metrics, budgets = {}, {}
        for model in models:
            for seed in seeds:
                t0 = time.perf_counter()
                train.run(dataset, model, seed, root)
                seed_metrics.setdefault((dataset, model), {})[seed] = evaluate.run(dataset, model, seed, root)
                print(f"{claim.id} {dataset} {model} seed {seed} at {e} epochs: {time.perf_counter() - t0:.0f} s",
                      flush=True)
            run = json.loads((root / "models" / dataset / model / f"seed{seeds[0]}" / "run.json").read_text())
            budgets[(dataset, model)] = Budget.from_run(run)
        traits, n_classes = read_traits(root / "data" / "processed" / dataset, has_ood_companion=True)
        run_data = RunData([dataset], models, seed_metrics, {dataset: n_classes}, {dataset: traits}, budgets)
        row = evaluate_on(claim, dataset, run_data)
        points.append({
            "epochs": e, "seeds": list(seeds), "status": row.status,
            "samples_seen": {m: (b.samples_seen if (b := budgets[(dataset, m)]) else None) for m in models},
            "checks": [{"text": c.describe(), "status": c.status, "left": c.left.value, "right": c.right.value,
                        "threshold": c.threshold} for c in row.checks],
            **({"measured": measured} if measured else {}),
        })
    return points


def merged(saved: list[dict], new: list[dict]) -> list[dict]:
    """The curve's points by budget: a new point replaces a saved one of the same epochs."""
    by_epochs = {p["epochs"]: p for p in saved} | {p["epochs"]: p for p in new}
    return [by_epochs[e] for e in sorted(by_epochs)]


def write(claim, dataset: str, points: list[dict], out: Path) -> None:
    """The curve's JSON, table (with where each point was measured) and figure."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out.mkdir(parents=True, exist_ok=True)
    stem = out / f"{claim.id}-{dataset}"
    stem.with_suffix(".json").write_text(json.dumps({"claim": claim.id, "dataset": dataset, "points": points},
                                                    indent=2) + "\n")
    lines = [f"# {claim.id} on {dataset}: checks by training budget", ""]
    for where in {json.dumps(p["measured"], sort_keys=True): p["measured"] for p in points if p.get("measured")}.values():
        at = ", ".join(str(p["epochs"]) for p in points if p.get("measured") == where)
        lines += [f"Epochs {at}: trained on {where['machine']} in {where['precision']} ({where['date']}).", ""]
    lines += ["| epochs | seeds | samples seen | status | " + " | ".join(c.metric for c in claim.checks) + " |",
              "| --- | --- | --- | --- | " + " | ".join("---" for _ in claim.checks) + " |"]
    for p in points:
        seen = ", ".join(f"{m} {n:,}" for m, n in p["samples_seen"].items() if n is not None)
        seeds = ", ".join(str(s) for s in p.get("seeds", [0]))
        lines.append(f"| {p['epochs']} | {seeds} | {seen} | {p['status']} | " + " | ".join(c["text"] for c in p["checks"])
                     + " |")
    stem.with_suffix(".md").write_text("\n".join(lines) + "\n")
    fig, axes = plt.subplots(1, len(claim.checks), figsize=(4.2 * len(claim.checks), 3.2), squeeze=False)
    x = [max(n for n in p["samples_seen"].values() if n is not None) for p in points]
    for ax, (i, check) in zip(axes[0], enumerate(claim.checks)):
        ax.plot(x, [p["checks"][i]["left"] for p in points], "o-", label=f"{check.model} {check.metric}")
        right = f"{check.right_model} {check.right_metric}" if check.is_comparison else "threshold"
        ax.plot(x, [p["checks"][i]["threshold"] for p in points], "s--", label=right + (
            f" + {check.plus:g}" if check.plus else ""))
        ax.set_xscale("log", base=2)
        ax.set_xlabel("training samples per model")
        ax.set_title(f"{check.metric} ({check.op})", fontsize=9)
        ax.legend(fontsize=7)
    fig.suptitle(f"{claim.id} on {dataset}", fontsize=10)
    fig.tight_layout()
    fig.savefig(stem.with_suffix(".png"), dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("claim")
    parser.add_argument("dataset")
    parser.add_argument("--epochs", type=int, nargs="+", required=True)
    parser.add_argument("--steps-per-epoch", type=int, default=None,
                        help="cap every compared run's epochs at this many steps (equal budgets in steps)")
    parser.add_argument("--profile", default="paper")
    parser.add_argument("--precision", choices=["fp32", "bf16", "auto"],
                        help="train every budget in this arithmetic (default: the profile's), e.g. fp32 to match "
                             "runs made on a CPU without native bf16")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0],
                        help="train every budget on these seeds; the claim is decided over them")
    parser.add_argument("--replot", action="store_true", help="rewrite the table and figure from the saved JSON")
    args = parser.parse_args()
    tree = REPO / ".profiles" / args.profile
    if not (tree / "params.yaml").is_file():
        sys.exit(f"{tree} has no params.yaml: run `aebench profile {args.profile}` first")
    sys.path.insert(0, str(tree / "src"))  # the profile's code, as its stages ran it
    from aebench.errors import setup_logging
    from aebench.report.claims import load_claims

    setup_logging()
    claim = next((c for c in load_claims() if c.id == args.claim), None)
    if claim is None:
        sys.exit(f"no claim {args.claim!r} in claims.yaml")
    out = REPO / "results" / f"{args.profile}-budgets"
    saved_file = out / f"{args.claim}-{args.dataset}.json"
    saved = json.loads(saved_file.read_text())["points"] if saved_file.is_file() else []
    if args.replot:
        write(claim, args.dataset, saved, out)
        return
    base = tree.parent / f"{args.profile}-budgets" / f"{args.claim}-{args.dataset}"
    import torch

    from aebench import machine
    from aebench.plan import load_params
    from aebench.precision import resolve

    dtype = resolve(args.precision or load_params(tree / "params.yaml").train.precision,
                    "cuda" if torch.cuda.is_available() else "cpu")
    measured = {"machine": machine.label(), "precision": "bf16" if dtype == torch.bfloat16 else "fp32",
                "date": time.strftime("%Y-%m-%d", time.gmtime())}
    points = measure(claim, args.dataset, args.epochs, args.steps_per_epoch, tree, base, args.precision,
                     tuple(args.seeds), measured)
    write(claim, args.dataset, merged(saved, points), out)
    shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
