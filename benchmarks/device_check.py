"""One call on a lent GPU machine, prepared ahead: the full-budget profile's measurements that
only a GPU can make, within one time budget.

    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target /tmp/site .whl/*.whl && PYTHONPATH=/tmp/site:src \
        python3 benchmarks/device_check.py --mirror .gpu/data --out "$OUT" --budget 480
    .venv/bin/python benchmarks/device_check.py --merge FILES_AT/results.json   # back here

(`.whl` and `.gpu` made by `make device-kit` and carried to the machine.)

Where DVC and MLflow are missing (the lent machine has torch and the scientific stack; pydantic
and POT travel as wheels: `make device-kit`), the pipeline's own stage functions run through
`benchmarks/paper_scale.py`. Each step writes as it goes under OUT, so a call cut short still
returns what it measured:

1. the workspace `OUT/work/paper-full/`: the profile's datasets from the mirror, preprocessed,
   and the diffusion maps DVAE trains on;
2. the seconds per training step of every run on this device (`full_budget.py`'s measurement,
   `OUT/results.json` under `full_budget.<machine>`);
3. eager vs `torch.compile` and CUDA graphs for `--compile-runs` (`compile_bench.py`, under
   `compile.<machine>`);
4. the biggest slice of the full budgets that fits what is left: the comparisons of `SLICES` in
   their order (ACAI vs its AE on lines first), each costed from step 2's times, at all its seeds
   where they fit, else at its first seed, else left out; trained and evaluated by the stage
   functions and bundled into `OUT/paper_scale.tgz` (`slice.json` says what was chosen and why).

`--merge` copies a device's results.json figures into `benchmarks/results.json` (they stay under
their machine), for `write_tables.py` to render. `--smoke` runs the whole path on a CPU in
minutes (`paper_scale.py --smoke`: small data, one step per run).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
# The comparisons a claim makes, in the order they are worth a GPU's minutes.
SLICES = [("lines-acai", "lines-paper_ae"), ("mnist-acai", "mnist-paper_ae"), ("mnist-acn_pixelcnn", "mnist-vae_pixelcnn"),
          ("rotation-dvae", "rotation-vae"), ("mnist-gwae_gmp", "mnist-vae"), ("shapes-gwae_fnp", "shapes-vae"),
          ("mnist-acai_256", "mnist-paper_ae_256"), ("loop-dvae", "loop-vae"), ("sphere-dvae", "sphere-vae"),
          ("torus-dvae", "torus-vae"), ("mnist-acn", "mnist-vae"), ("mnist-mlvae",)]
EVAL_SHARE = 0.25  # evaluation and validation, on top of the training steps (the paper profile: 23% + 11%)
RUN_OVERHEAD_S = 20.0  # per seed: the model's set-up, the evaluation's encodes and figures


def plan_slice(slices, seconds_per_seed: dict[str, float], seeds: dict[str, list[int]],
               budget: float) -> tuple[dict[str, list[int]], float]:
    """(run -> seeds to train, seconds planned): greedy in the order of `slices`, each comparison
    at all its seeds if they fit what is left, else at its first seed, else not at all. A run
    two comparisons share is costed once."""
    chosen: dict[str, list[int]] = {}
    left = budget
    for group in slices:
        if not all(run in seconds_per_seed for run in group):
            continue
        for first_only in (False, True):
            picks = {run: seeds[run][:1] if first_only else seeds[run] for run in group}
            new = {run: [s for s in picks[run] if s not in chosen.get(run, [])] for run in group}
            cost = sum(seconds_per_seed[run] * len(new[run]) for run in group)
            if cost <= left:
                for run in group:
                    chosen[run] = sorted({*chosen.get(run, []), *picks[run]})
                left -= cost
                break
    return chosen, budget - left


def seconds_per_seed(sec_per_step: float, steps: int) -> float:
    return sec_per_step * steps * (1 + EVAL_SHARE) + RUN_OVERHEAD_S


def merge(path: Path) -> None:
    """Copy each machine's figures of a device's results.json into benchmarks/results.json."""
    from common import load_results, save_results

    theirs, ours = json.loads(path.read_text()), load_results()
    for section, value in theirs.items():
        for machine_key, figures in value.items():
            ours.setdefault(section, {}).setdefault(machine_key, {}).update(figures)
    save_results(ours)
    print(f"merged {', '.join(sorted(theirs))} from {path}")


def left(deadline: float) -> float:
    return deadline - time.monotonic()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path)
    parser.add_argument("--mirror")
    parser.add_argument("--budget", type=float, default=500.0, help="seconds this script may take in all")
    parser.add_argument("--steps", type=int, default=5, help="timed steps per run (after one warm-up)")
    parser.add_argument("--compile-runs", nargs="*", default=["lines-acai", "lines-paper_ae"])
    parser.add_argument("--runs", nargs="*", help="only these runs (default: every run of the profile)")
    parser.add_argument("--smoke", action="store_true")
    parser.add_argument("--merge", type=Path, help="merge this device results.json here, and stop")
    args = parser.parse_args()
    sys.path.insert(0, str(HERE))
    if args.merge:
        return merge(args.merge)
    if not args.out:
        parser.error("--out is required")
    deadline = time.monotonic() + args.budget
    os.environ["AEBENCH_BENCH_RESULTS"] = str(args.out / "results.json")  # before `common` reads it
    import compile_bench
    import full_budget
    import paper_scale

    from aebench.errors import setup_logging

    setup_logging()
    root = paper_scale.make_workspace(HERE.parent / "profiles" / "paper-full.yaml", args.out / "work", args.mirror,
                                      args.smoke)
    params, runs = paper_scale.prepare(root, args.runs)
    print(f"workspace ready ({left(deadline):.0f} s left)", flush=True)
    cost = {}
    for key in runs:
        if left(deadline) < 60:
            break
        seconds, steps = full_budget.record(root, params, key, args.steps)
        cost[key] = seconds_per_seed(seconds, steps)
        print(f"{key:24s} {seconds:.5f} s/step x {steps:,} steps ({left(deadline):.0f} s left)", flush=True)
    for key in [k for k in args.compile_runs if k in runs]:
        if left(deadline) < 120:
            break
        compile_bench.record(root, params, key, args.steps)
    chosen, planned = plan_slice(SLICES, cost, {k: params.seeds_of(k) for k in cost}, left(deadline) - 30)
    (args.out / "slice.json").write_text(json.dumps({"chosen": chosen, "planned_s": planned, "left_s": left(deadline),
                                                     "seconds_per_seed": cost}, indent=1))
    print(f"slice: {chosen} (planned {planned:.0f} s of {left(deadline):.0f} s left)", flush=True)
    for seeds in sorted({tuple(s) for s in chosen.values()}):
        paper_scale.run_workspace(root, [k for k, s in chosen.items() if tuple(s) == seeds], list(seeds))
    print(f"bundle: {paper_scale.bundle([root], args.out)} ({left(deadline):.0f} s left)")


if __name__ == "__main__":
    main()
