"""What the benchmark scripts share: the MNIST loader, the thread pinning, and
`benchmarks/results.json`, which every script updates under its own keys (so `make bench`
can run them one by one and a single script can be re-run alone)."""

from __future__ import annotations

import gzip
import json
import os
import platform
import statistics
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results.json"
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


def update_results(section: dict) -> dict:
    """Merge `section` (top-level keys -> values) into results.json, stamped with the machine."""
    results = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    results.update(section)
    results["machine"] = {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version()}
    results["updated"] = time.strftime("%Y-%m-%dT%H:%M:%S")
    RESULTS.write_text(json.dumps(results, indent=1, sort_keys=True) + "\n")
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
