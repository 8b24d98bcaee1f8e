"""Diffusion-map speed and memory at 2k, 10k and 60k MNIST images, against pydiffmap and
scikit-learn's SpectralEmbedding, in one run (a benchmark, not a test).

    .venv/bin/pip install pydiffmap          # for this script only; not a project dependency
    .venv/bin/python benchmarks/diffmap_bench.py [--mnist ../shared/data/mnist] [--timeout 300]

Every (method, size) runs in its own subprocess, so its peak resident memory is its own; a
method that exceeds `--timeout` at one size is not tried at larger ones. All methods compute
10 coordinates from a 16-nearest-neighbour graph. To compare the algorithms on equal input,
the peers and `aebench-pca50` get the same 50-dimensional PCA features (computed once, not
timed); `aebench-pixels` starts from the 784 raw pixels and includes its own PCA, which is the
time the diffmap stage takes. pydiffmap gets the bandwidth aebench chose (its kernel is
exp(-d^2 / 4 eps), so eps / 4) and alpha = 1; SpectralEmbedding builds its own affinity
(connectivity of the k-NN graph), with its default ARPACK solver and with LOBPCG.
Quality: 5-NN accuracy of the digit labels on the embedding (80/20 split of the points).
Columns: wall and CPU seconds (CPU time is what a busy shared machine cannot distort),
peak resident memory in MiB.
"""

from __future__ import annotations

import argparse
import gzip
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import REPO, update_results  # noqa: E402
SIZES = (2_000, 10_000, 60_000)
METHODS = ("aebench-pixels", "aebench-pca50", "pydiffmap", "sklearn-arpack", "sklearn-lobpcg")
K, M = 16, 10


def load_mnist(folder: Path, n: int) -> tuple[np.ndarray, np.ndarray]:
    with gzip.open(folder / "train-images-idx3-ubyte.gz") as fh:
        x = np.frombuffer(fh.read(), np.uint8, offset=16).reshape(-1, 784)[:n]
    with gzip.open(folder / "train-labels-idx1-ubyte.gz") as fh:
        y = np.frombuffer(fh.read(), np.uint8, offset=8)[:n]
    return x.astype(np.float32) / 255.0, y.astype(np.int64)


def knn_accuracy(embedding: np.ndarray, labels: np.ndarray) -> float:
    from sklearn.neighbors import KNeighborsClassifier

    cut = int(0.8 * len(labels))
    clf = KNeighborsClassifier(5).fit(embedding[:cut], labels[:cut])
    return float(clf.score(embedding[cut:], labels[cut:]))


def worker(method: str, n: int, mnist: Path) -> dict:
    """Runs in a subprocess: one method at one size."""
    from aebench.diffmap import fit_diffusion_map, pca_fit

    x, y = load_mnist(mnist, n)
    if method != "aebench-pixels":
        mean, axes = pca_fit(x, 50)
        x = ((x - mean) @ axes.T).astype(np.float32)
    eps = fit_diffusion_map(x[:2000], M, K, "auto").epsilon if method == "pydiffmap" else None
    base_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    t0, c0 = time.perf_counter(), time.process_time()
    if method.startswith("aebench"):
        fit = fit_diffusion_map(x, M, K, "auto", pca_components=50 if method == "aebench-pixels" else None)
        emb = fit.embedding
    elif method == "pydiffmap":
        from pydiffmap.diffusion_map import DiffusionMap

        emb = DiffusionMap.from_sklearn(alpha=1.0, k=K, epsilon=eps / 4, n_evecs=M).fit_transform(x)
    else:
        from sklearn.manifold import SpectralEmbedding

        solver = method.split("-")[1]
        emb = SpectralEmbedding(n_components=M, affinity="nearest_neighbors", n_neighbors=K, eigen_solver=solver,
                                random_state=0).fit_transform(x)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"method": method, "n": n, "wall_s": round(wall, 2), "cpu_s": round(cpu, 2), "peak_mib": round(peak),
            "data_mib": round(base_mib), "knn5_acc": round(knn_accuracy(np.real(emb), y), 4)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mnist", type=Path, default=REPO.parent / "shared" / "data" / "mnist")
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds per (method, size)")
    parser.add_argument("--sizes", type=int, nargs="*", default=list(SIZES))
    parser.add_argument("--methods", nargs="*", default=list(METHODS))
    parser.add_argument("--worker", nargs=2, metavar=("METHOD", "N"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(args.worker[0], int(args.worker[1]), args.mnist)))
        return
    print(f"{'method':16s} {'n':>6s} {'wall s':>8s} {'cpu s':>8s} {'peak MiB':>9s} {'5nn acc':>8s}")
    seconds: dict[str, dict[str, float | None]] = {}
    peak: dict[str, dict[str, float | None]] = {}
    for method in args.methods:
        seconds[method] = {str(n): None for n in args.sizes}  # None: did not finish (timeout / failure)
        peak[method] = {str(n): None for n in args.sizes}
        for n in sorted(args.sizes):
            cmd = [sys.executable, __file__, "--mnist", str(args.mnist), "--worker", method, str(n)]
            try:
                proc = subprocess.run(cmd, capture_output=True, text=True, timeout=args.timeout)
            except subprocess.TimeoutExpired:
                print(f"{method:16s} {n:6d}  did not finish within {args.timeout:.0f} s", flush=True)
                break
            if proc.returncode != 0:
                print(f"{method:16s} {n:6d}  failed: {proc.stderr.strip().splitlines()[-1][:120]}", flush=True)
                break
            r = json.loads(proc.stdout.strip().splitlines()[-1])
            seconds[method][str(n)], peak[method][str(n)] = r["wall_s"], r["peak_mib"]
            print(f"{method:16s} {n:6d} {r['wall_s']:8.2f} {r['cpu_s']:8.2f} {r['peak_mib']:9d} {r['knn5_acc']:8.4f}",
                  flush=True)
            update_results({"diffmap_seconds": seconds, "diffmap_peak_mb": peak})  # each figure as it is measured


if __name__ == "__main__":
    main()
