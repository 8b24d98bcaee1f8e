"""The full budgets' cost: per run of `profiles/paper-full.yaml`, the seconds per training step
measured on this machine (its model, data, batch and precision as the profile sets them), the
steps its budget plans, and the hours that makes over its seeds.

    .venv/bin/python benchmarks/full_budget.py [--workspace .profiles/paper] [--steps 3]

`--workspace` is a folder holding `data/processed/<dataset>/` (and `data/diffmap/` for DVAE) of
the profile's datasets: the paper profile's worktree, or a `benchmarks/paper_scale.py`
workspace on a machine with a GPU. Each run's step is the trainer's own
(`aebench.training.training_step`: the joint probe's step included where a run trains one, a
fresh batch drawn where it trains on fresh data), timed after one warm-up step, with the
trainer's precision (`train.precision: auto`) and channels-last layout. Results go to
`benchmarks/results.json` under `full_budget.<machine>`; `benchmarks/write_tables.py` renders
them (docs/benchmarks.md, "The full budgets"). Budgets that stop on a patience (GWAE) count
their epoch cap: an upper bound.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import REPO, load_results, save_results, stamp  # noqa: E402

from aebench.data.parquet import read_split  # noqa: E402
from aebench.data.registry import FRESH  # noqa: E402
from aebench.models import build_model  # noqa: E402
from aebench.models.base import DataInfo  # noqa: E402
from aebench.plan import load_params, resolve_model  # noqa: E402
from aebench.precision import resolve  # noqa: E402
from aebench.training import (epoch_batches, joint_probe, memory_format, resolve_device, split_tensors,  # noqa: E402
                               steps_per_epoch, training_step)

PROFILE = REPO / "profiles" / "paper-full.yaml"


@dataclass
class RunStep:
    """One run of the profile ready to step on this machine: its model, optimisers, batches
    (drawn as training draws them, `aebench.training.epoch_batches`) and arithmetic."""

    model: torch.nn.Module
    optimizers: list
    batches: Iterator
    dtype: torch.dtype
    device: torch.device
    steps_per_epoch: int
    train_rows: int
    probe: tuple = (None, None)  # `train.joint_probe`'s head and its optimiser, stepped with the model

    def step(self, i: int) -> dict:
        """One training step as the trainer takes it (its batch drawn inside it, the joint probe's
        step included), finished on the device."""
        terms = training_step(self.model, next(self.batches), self.optimizers, i, self.dtype, *self.probe)
        if self.device.type == "cuda":
            torch.cuda.synchronize()
        return terms


def prepare_run(root: Path, params, key: str, max_steps: int, seed: int = 0) -> RunStep:
    """Run `key` of the profile, built from the workspace `root` with weights from `seed`, its
    batches enough for `max_steps` steps."""
    run = params.runs[key]
    model_type, config, cfg = resolve_model(params, run.model, PROFILE, run=key)
    split = read_split(root / "data" / "processed" / run.dataset / "train.parquet")
    device = resolve_device(cfg.device)
    info = DataInfo(shape=tuple(split.shape), kind=split.kind, n_classes=split.n_classes, n_train=len(split))
    torch.manual_seed(seed)
    model = build_model(model_type, config, info)
    model.prepare(run.dataset, root)
    data = split_tensors(split, device)
    model.to(device, memory_format=memory_format(cfg)).train()
    fresh = FRESH[run.dataset] if cfg.fresh_data else None
    generator = torch.Generator().manual_seed(seed)
    batches = (batch for _ in range(max_steps) for batch in epoch_batches(model, data, cfg, generator, fresh))
    return RunStep(model, model.optimizers(cfg.lr), batches, resolve(cfg.precision, device), device,
                   steps_per_epoch(len(split), cfg), len(split), joint_probe(model, data, cfg, parallel=False))


def step_seconds(root: Path, params, key: str, steps: int) -> tuple[float, int, int]:
    """(seconds per step, steps per epoch, train rows) of run `key` on this machine: the median
    of `steps` steps after one warm-up step."""
    run = prepare_run(root, params, key, steps + 1)
    times = []
    for i in range(steps + 1):
        t0 = time.perf_counter()
        run.step(i)
        times.append(time.perf_counter() - t0)
    return statistics.median(times[1:] or times), run.steps_per_epoch, run.train_rows


def record(root: Path, params, key: str, steps: int) -> tuple[float, int]:
    """Measure run `key`'s step (`step_seconds`), file it in results.json under this machine;
    returns (seconds per step, steps one seed plans)."""
    seconds, per_epoch, rows = step_seconds(root, params, key, steps)
    _, _, cfg = resolve_model(params, params.runs[key].model, PROFILE, run=key)
    results = load_results()
    now = stamp(results)
    results.setdefault("full_budget", {}).setdefault(now["machine"], {})[key] = {
        "sec_per_step": round(seconds, 5), "steps_per_epoch": per_epoch, "train_rows": rows,
        "epochs": cfg.epochs, "batch_size": cfg.batch_size, "seeds": len(params.seeds_of(key)),
        "patience": cfg.patience, "recorded": now["recorded"], "commit": now["commit"]}
    save_results(results)  # each run as it is measured
    return seconds, per_epoch * cfg.epochs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workspace", type=Path, default=REPO / ".profiles" / "paper")
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--runs", nargs="*")
    args = parser.parse_args()
    params = load_params(PROFILE)
    for key in [k for k in params.runs if not args.runs or k in args.runs]:
        seconds, steps = record(args.workspace, params, key, args.steps)
        seeds = len(params.seeds_of(key))
        print(f"{key:24s} {seconds:8.4f} s/step x {steps:>9,} steps x {seeds} seeds = "
              f"{seconds * steps * seeds / 3600:9.1f} h", flush=True)


if __name__ == "__main__":
    main()
