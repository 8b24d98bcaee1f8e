"""Does `torch.compile` pay for the claim models' training steps? Per run of
`profiles/paper-full.yaml`: seconds per step eager and compiled, the compile's warm-up, and
whether the compiled step computes the same losses.

    .venv/bin/python benchmarks/compile_bench.py [--workspace .profiles/paper] [--steps 10] [--runs ...]

Each mode compiles every net of the model in place (`nn.Module.compile` on its children that
hold parameters: the encoder, decoder, critic, prior), leaving the model's own loss code, its
noise and its optimiser steps eager, so one model file serves both. Modes: `default` (inductor's
fused kernels) everywhere; on a GPU also `reduce-overhead` (the same kernels replayed as CUDA
graphs, which removes the per-kernel launch cost that dominates small nets). A mode that fails
for a model is recorded with the error's first line: GWAE's gradient penalty takes a double
backward, which compiled graphs do not support.

`same_losses`: the largest relative difference between the eager and the compiled model's loss
terms on the first step, from equal weights, batch and random state. Timing: the first three
steps (where compilation happens) are the warm-up; then `--steps` rounds of one eager and one
compiled step, so that the machine's drift weighs on both alike; the speed-up is the ratio of
the two medians. Results
go to `benchmarks/results.json` under `compile.<machine>`, one run at a time as it is measured;
`benchmarks/write_tables.py` renders them (docs/benchmarks.md, "torch.compile").
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch
import torch._functorch.config

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import REPO, load_results, save_results, stamp  # noqa: E402
from full_budget import PROFILE, RunStep, prepare_run  # noqa: E402

from aebench.plan import load_params  # noqa: E402

# The runs the claims compare, one per model and data shape.
CLAIM_RUNS = ["lines-acai", "lines-paper_ae", "mnist-acai", "mnist-paper_ae", "mnist-acn", "mnist-vae",
              "mnist-acn_pixelcnn", "mnist-vae_pixelcnn", "mnist-gwae_gmp", "shapes-gwae_fnp", "shapes-vae",
              "loop-dvae", "loop-vae", "rotation-dvae", "rotation-vae", "mnist-mlvae"]
WARMUP_STEPS = 3

# ACAI's simultaneous step runs two backward passes over one forward (retain_graph); compiled
# graphs donate their saved buffers to the first unless told not to.
torch._functorch.config.donated_buffer = False


def modes(device: torch.device) -> list[str]:
    return ["default", "reduce-overhead"] if device.type == "cuda" else ["default"]


def compile_nets(model: torch.nn.Module, mode: str) -> int:
    """Compile in place every child of `model` that holds parameters; how many."""
    nets = [child for child in model.children() if any(True for _ in child.parameters())]
    for net in nets:
        net.compile(mode=mode)
    return len(nets)


def first_steps(run: RunStep) -> tuple[dict, float]:
    """The first step's loss terms (from a fixed random state) and the seconds of the first
    `WARMUP_STEPS` steps, where a compiled model compiles."""
    torch.manual_seed(1)
    t0 = time.perf_counter()
    first = {k: float(v) for k, v in run.step(0).items()}
    for i in range(1, WARMUP_STEPS):
        run.step(i)
    return first, time.perf_counter() - t0


def step_time(run: RunStep, i: int) -> float:
    t0 = time.perf_counter()
    run.step(i)
    return time.perf_counter() - t0


def largest_difference(a: dict, b: dict) -> float:
    return max(abs(a[k] - b[k]) / max(abs(a[k]), 1e-12) for k in a)


def measure(root: Path, params, key: str, steps: int) -> dict:
    """Eager and each mode's steps timed in turn, one of each per round, so a machine's drift
    (another job, a clock change) weighs on both sides alike."""
    eager = prepare_run(root, params, key, WARMUP_STEPS + 3 * steps)  # two modes' rounds, or eager alone
    losses, warmup = first_steps(eager)
    device = eager.device
    out = {"eager": {"warmup_s": round(warmup, 2)},
           "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"}
    done, eager_times = WARMUP_STEPS, []
    for mode in modes(device):
        torch._dynamo.reset()
        run = prepare_run(root, params, key, WARMUP_STEPS + steps)
        nets = compile_nets(run.model, mode)
        try:
            compiled, warmup = first_steps(run)
            pairs = [(step_time(eager, done + i), step_time(run, WARMUP_STEPS + i)) for i in range(steps)]
        except Exception as exc:  # a mode this model's step cannot take is a result, not a crash
            out[mode] = {"error": (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]}
            continue
        done += steps
        eager_times += [e for e, _ in pairs]
        mine, theirs = statistics.median(c for _, c in pairs), statistics.median(e for e, _ in pairs)
        out[mode] = {"sec_per_step": round(mine, 5), "warmup_s": round(warmup, 2), "nets": nets,
                     "speedup": round(theirs / mine, 3), "same_losses": largest_difference(losses, compiled)}
    if not eager_times:  # every mode failed: eager alone
        eager_times = [step_time(eager, done + i) for i in range(steps)]
    out["eager"]["sec_per_step"] = round(statistics.median(eager_times), 5)
    return out


def record(root: Path, params, key: str, steps: int) -> dict:
    """`measure` run `key` and file it in results.json under this machine."""
    result = measure(root, params, key, steps)
    results = load_results()
    now = stamp(results)
    results.setdefault("compile", {}).setdefault(now["machine"], {})[key] = {**result, **now}
    save_results(results)  # each run as it is measured
    shown = ", ".join(f"{mode} {v['speedup']:.2f}x (warm-up {v['warmup_s']:.0f} s)" if "speedup" in v
                      else f"{mode} failed: {v['error']}" for mode, v in result.items() if mode not in ("eager", "device"))
    print(f"{key:22s} eager {result['eager']['sec_per_step']:.4f} s/step; {shown}", flush=True)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workspace", type=Path, default=REPO / ".profiles" / "paper")
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--runs", nargs="*", default=CLAIM_RUNS)
    args = parser.parse_args()
    params = load_params(PROFILE)
    for key in args.runs:
        record(args.workspace, params, key, args.steps)


if __name__ == "__main__":
    main()
