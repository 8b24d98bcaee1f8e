"""What the benchmark scripts share: the MNIST loader, the thread pinning, and
`benchmarks/results.json`, which every script updates under its own keys (so `make bench`
can run them one by one and a single script can be re-run alone). Every key is stamped with
the machine it was measured on (`aebench.machine`), the time and the commit, so figures from
two machines are never read as one."""

from __future__ import annotations

import gzip
import json
import os
import statistics
import subprocess
import time
from pathlib import Path

import numpy as np

from aebench import machine
from aebench.io import write_text_atomic

REPO = Path(__file__).resolve().parents[1]
RESULTS = Path(os.environ.get("AEBENCH_BENCH_RESULTS", REPO / "benchmarks" / "results.json"))  # tests write elsewhere
MNIST = REPO.parent / "shared" / "data" / "mnist"


def load_mnist(n: int, folder: Path = MNIST, split: str = "train") -> tuple[np.ndarray, np.ndarray]:
    """The first `n` images of an MNIST split as float32 (n, 1, 28, 28) in [0, 1], and labels."""
    prefix = "train" if split == "train" else "t10k"
    images, labels = folder / f"{prefix}-images-idx3-ubyte.gz", folder / f"{prefix}-labels-idx1-ubyte.gz"
    if not images.exists():
        raise SystemExit(f"{images} is missing: pass --mnist with the folder holding the MNIST IDX files")
    with gzip.open(images) as fh:
        x = np.frombuffer(fh.read(), np.uint8, offset=16).reshape(-1, 1, 28, 28)[:n]
    with gzip.open(labels) as fh:
        y = np.frombuffer(fh.read(), np.uint8, offset=8)[:n]
    return x.astype(np.float32) / 255.0, y.astype(np.int64)


def pin_threads(n: int) -> None:
    """One thread count for torch and the BLAS libraries, so every contender gets the same."""
    import torch

    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[var] = str(n)
    torch.set_num_threads(n)


def load_results() -> dict:
    return json.loads(RESULTS.read_text()) if RESULTS.exists() else {}


def save_results(results: dict) -> None:
    """Write results.json whole or not at all: a benchmark killed mid-write loses nothing."""
    write_text_atomic(RESULTS, json.dumps(results, indent=1, sort_keys=True) + "\n")


def git_commit() -> str:
    """The checkout's short commit, `+dirty` when tracked files other than the benchmark
    results differ from it."""
    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True).stdout.strip()

    commit = git("rev-parse", "--short", "HEAD") or "unknown"
    # the figures' own files do not make the code dirty
    changed = git("status", "--porcelain", "--untracked-files=no", "--", ".", ":!benchmarks/results.*",
                  ":!docs/benchmarks.md")
    return commit + ("+dirty" if changed else "")


def stamp(results: dict) -> dict:
    """This machine entered in `results["machines"]`, and the stamp a figure measured now gets."""
    info = machine.describe()
    key = machine.machine_id(info)
    results.setdefault("machines", {})[key] = {**info, "label": machine.label(info)}
    return {"machine": key, "recorded": time.strftime("%Y-%m-%dT%H:%M:%S"), "commit": git_commit()}


def update_results(section: dict) -> dict:
    """Merge `section` (top-level keys -> values) into results.json, each key stamped with this
    machine, the time and the commit (`results["stamps"][key]`)."""
    results = load_results()
    now = stamp(results)
    for key, value in section.items():
        results[key] = value
        results.setdefault("stamps", {})[key] = now
    save_results(results)
    return results


def canary_seconds(repeats: int = 3) -> float:
    """Median time of a fixed single-core pure-Python loop: taken before and after a benchmark,
    it tells whether the machine (a shared VM, whose speed varied 1.8x within an hour here) was
    slower than usual while the benchmark ran."""
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        sum(i * i for i in range(5_000_000))
        times.append(time.perf_counter() - t0)
    return round(statistics.median(times), 3)
