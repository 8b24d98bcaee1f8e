"""Is bf16 safe as the default? The default pipeline run three times from one commit: fp32
with train.seed 0, bf16 with train.seed 0, and fp32 with train.seed 1 (the run-to-run noise
a user sees anyway). For every run's best validation loss and every metric, the bf16 change
(bf16 - fp32) is set beside the seed change (fp32 seed 1 - fp32 seed 0); the claim statuses
and the wall times of the three are compared too. A benchmark, not a test:

    benchmarks/precision_evidence.py --runs fp32=DIR bf16=DIR fp32-seed1=DIR [--out results/precision]

Each DIR is a workspace where `dvc repro` ran (its models/, eval/ and reports/); the script
writes `precision.json` and `precision.md` to --out.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
from pathlib import Path


def load(root: Path) -> dict:
    runs, metrics = {}, {}
    for path in sorted(root.glob("models/*/*/run.json")):
        run = json.loads(path.read_text())
        runs[f"{path.parts[-3]}/{path.parts[-2]}"] = {k: float(run[k]) for k in ("best_val_loss", "train_seconds", "steps")}
    for path in sorted(root.glob("eval/*/*/metrics.json")):
        values = json.loads(path.read_text())
        metrics[f"{path.parts[-3]}/{path.parts[-2]}"] = {k: float(v) for k, v in values.items()
                                                         if isinstance(v, (int, float)) and not isinstance(v, bool)}
    claims = json.loads((root / "reports" / "claims.json").read_text())
    status = {f"{c['claim']}@{c['dataset']}": c["status"] for c in claims}
    return {"runs": runs, "metrics": metrics, "claims": status}


def compare(base: dict, other: dict, noise: dict) -> list[dict]:
    """One row per (run, quantity): the bf16 change, the seed change, and whether the bf16
    change is inside the seed change (|bf16 change| <= |seed change|, or both below 1e-6)."""
    rows = []
    pairs = [(run, "best_val_loss", base["runs"][run]["best_val_loss"], other["runs"].get(run, {}).get("best_val_loss"),
              noise["runs"].get(run, {}).get("best_val_loss")) for run in base["runs"]]
    pairs += [(run, key, value, other["metrics"].get(run, {}).get(key), noise["metrics"].get(run, {}).get(key))
              for run, values in base["metrics"].items() for key, value in values.items()]
    for run, key, b, o, n in pairs:
        if o is None or n is None or not all(map(math.isfinite, (b, o, n))):
            continue
        d_prec, d_seed = o - b, n - b
        rows.append({"run": run, "quantity": key, "fp32": b, "bf16": o, "fp32_seed1": n, "bf16_change": d_prec,
                     "seed_change": d_seed, "within_noise": abs(d_prec) <= abs(d_seed) or abs(d_prec) < 1e-6})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", nargs=3, required=True, metavar="LABEL=DIR")
    parser.add_argument("--times", type=Path, help="file of `label ... seconds=N` lines (wall time of each repro)")
    parser.add_argument("--out", type=Path, default=Path("results/precision"))
    args = parser.parse_args()
    dirs = dict(item.split("=", 1) for item in args.runs)
    fp32, bf16, seed1 = (load(Path(dirs[k])) for k in ("fp32", "bf16", "fp32-seed1"))
    rows = compare(fp32, bf16, seed1)
    within = sum(r["within_noise"] for r in rows)
    val = [r for r in rows if r["quantity"] == "best_val_loss"]
    rel = lambda rs, k: statistics.median(abs(r[k]) / max(abs(r["fp32"]), 1e-12) for r in rs)  # noqa: E731
    claims = sorted(set(fp32["claims"]) | set(bf16["claims"]))
    flips_bf16 = [c for c in claims if fp32["claims"].get(c) != bf16["claims"].get(c)]
    flips_seed = [c for c in claims if fp32["claims"].get(c) != seed1["claims"].get(c)]
    train_s = {label: round(sum(r["train_seconds"] for r in d["runs"].values()), 1)
               for label, d in (("fp32", fp32), ("bf16", bf16), ("fp32-seed1", seed1))}
    wall = {}
    if args.times and args.times.exists():
        for line in args.times.read_text().splitlines():
            fields = dict(f.split("=", 1) for f in line.split()[1:] if "=" in f)
            wall[line.split()[0]] = float(fields["seconds"])
    summary = {
        "quantities": len(rows), "bf16_within_seed_noise": within,
        "median_relative_change": {"bf16": rel(rows, "bf16_change"), "seed": rel(rows, "seed_change")},
        "best_val_loss_median_relative_change": {"bf16": rel(val, "bf16_change"), "seed": rel(val, "seed_change")},
        "claims_changed_by_bf16": {c: [fp32["claims"].get(c), bf16["claims"].get(c)] for c in flips_bf16},
        "claims_changed_by_seed": {c: [fp32["claims"].get(c), seed1["claims"].get(c)] for c in flips_seed},
        "train_seconds": train_s, "repro_wall_seconds": wall,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "precision.json").write_text(json.dumps({"summary": summary, "rows": rows}, indent=1) + "\n")
    worst = sorted((r for r in rows if not r["within_noise"]),
                   key=lambda r: -abs(r["bf16_change"]) / max(abs(r["seed_change"]), 1e-12))[:15]
    lines = ["# bf16 vs fp32 on the default pipeline", "",
             f"{within} of {len(rows)} quantities (best validation loss and every metric of every run) change less "
             "under bf16 than under a different training seed.", "",
             f"- median relative change: bf16 {summary['median_relative_change']['bf16']:.2%}, "
             f"seed {summary['median_relative_change']['seed']:.2%}",
             f"- best validation loss, median relative change: bf16 "
             f"{summary['best_val_loss_median_relative_change']['bf16']:.2%}, seed "
             f"{summary['best_val_loss_median_relative_change']['seed']:.2%}",
             f"- claims whose status bf16 changes: {', '.join(f'{c} ({a} -> {b})' for c, (a, b) in summary['claims_changed_by_bf16'].items()) or 'none'}",
             f"- claims whose status the seed changes: {', '.join(f'{c} ({a} -> {b})' for c, (a, b) in summary['claims_changed_by_seed'].items()) or 'none'}",
             f"- training seconds summed over runs: {train_s}",
             f"- `dvc repro` wall seconds: {wall or 'not given'}", "",
             "The seconds are those of whole pipeline runs, one after another on a shared machine: they are "
             "not a speed comparison (benchmarks/train_throughput.py interleaves fp32 and bf16 for that).", "",
             "Largest bf16 changes relative to the seed change (a discrete metric the seed left unchanged "
             "gives a very large ratio for any change):", "",
             "| run | quantity | fp32 | bf16 | fp32 seed 1 | bf16 change / seed change |", "|---|---|---|---|---|---|"]
    lines += [f"| {r['run']} | {r['quantity']} | {r['fp32']:.4g} | {r['bf16']:.4g} | {r['fp32_seed1']:.4g} | "
              f"{abs(r['bf16_change']) / max(abs(r['seed_change']), 1e-12):.3g} |" for r in worst]
    (args.out / "precision.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
