"""Where a training run's time goes: aebench's trainer against the bare loop of
`train_throughput.py`, on one dataset and model, with the trainer's own parts timed. A
benchmark, not a test:

    .venv/bin/python benchmarks/trainer_profile.py [--dataset digits] [--model ae] [--precision fp32]

It prints two tables:
- the breakdown of one `aebench.training.train` call: the model's `train_step` (forward,
  backward, optimiser), batch assembly (`model.batches`), validation, resume checkpoints,
  metric logging, and the rest (the loop itself: progress bar, NaN guard, float conversions),
  each in seconds and as a share of the call, beside the bare loop's seconds for the same
  steps. Logging is the MLflow `RunLogger` the train stage uses (a throw-away store), its
  final flush included, as `train_throughput.py` times it;
- torch.profiler's operators by self CPU time over the same call (profiled separately, since
  the profiler slows small operators down).
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import pin_threads  # noqa: E402
from train_throughput import BATCH, DTYPES, build, load_dataset, run_bare, trainer_inputs  # noqa: E402

from aebench import training  # noqa: E402


def timed(fn, seconds: dict, label: str):
    def wrapper(*args, **kwargs):
        t0 = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            seconds[label] += time.perf_counter() - t0
    return wrapper


def timed_batches(batches, seconds: dict):
    """`model.batches` with the time spent producing each batch counted."""
    def wrapper(*args, **kwargs):
        it = iter(batches(*args, **kwargs))
        while True:
            t0 = time.perf_counter()
            try:
                batch = next(it)
            except StopIteration:
                return
            finally:
                seconds["batch assembly"] += time.perf_counter() - t0
            yield batch
    return wrapper


def train_once(model_name: str, x: torch.Tensor, epochs: int, precision: str, seconds: dict | None,
               profiler=None) -> float:
    model = build(model_name, x)
    data, val, cfg = trainer_inputs(x, epochs, 1, precision)
    from aebench import tracking

    root = Path(tempfile.mkdtemp())
    client = tracking.client(root)
    logger = tracking.RunLogger(client, tracking.start_run(client, "profile", model_name, 0, tags={}, params={},
                                                           root=root), background=True)
    log_fn = logger
    patches = contextlib.ExitStack()
    if seconds is not None:
        model.train_step = timed(model.train_step, seconds, "train_step")
        model.batches = timed_batches(model.batches, seconds)
        for name, label in (("validation_loss", "validation"), ("_save_resume", "checkpoints")):
            original = getattr(training, name)
            setattr(training, name, timed(original, seconds, label))
            patches.callback(setattr, training, name, original)
        log_fn = timed(log_fn, seconds, "logging")
        logger.flush = timed(logger.flush, seconds, "logging")
    with patches, tempfile.TemporaryDirectory() as tmp, (profiler or contextlib.nullcontext()):
        t0 = time.perf_counter()
        training.train(model, data, val, cfg, resume_path=Path(tmp) / "resume.pt", fingerprint="profile",
                       log_fn=log_fn)
        logger.flush()
        return time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", default="digits")
    parser.add_argument("--model", default="ae")
    parser.add_argument("--precision", choices=list(DTYPES), default="fp32")
    parser.add_argument("--top", type=int, default=12)
    args = parser.parse_args()
    pin_threads(1)
    import logging

    logging.disable(logging.WARNING)
    x, epochs = load_dataset(args.dataset)
    steps = epochs * (len(x) // BATCH)
    train_once(args.model, x, epochs, args.precision, None)  # warm-up: kernels, allocator, imports
    bare = steps * BATCH / run_bare(args.model, x, epochs, DTYPES[args.precision])
    seconds: dict[str, float] = defaultdict(float)
    total = train_once(args.model, x, epochs, args.precision, seconds)
    seconds["the loop itself"] = total - sum(seconds.values())
    print(f"{args.dataset} {args.model} {args.precision}: {steps} steps of {BATCH}; aebench train() {total:.3f} s, "
          f"bare loop {bare:.3f} s (aebench / bare time {total / bare:.3f})")
    print(f"{'part':18s} {'seconds':>8s} {'share':>7s}")
    for label, s in sorted(seconds.items(), key=lambda kv: -kv[1]):
        print(f"{label:18s} {s:8.3f} {s / total:7.1%}")
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
        train_once(args.model, x, epochs, args.precision, None)
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=args.top))


if __name__ == "__main__":
    main()
