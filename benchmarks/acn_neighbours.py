"""How much ACN's neighbour search costs at MNIST scale (60,000 codes), against the obvious
alternatives. Prints a table; not a test.

ACN searches the whole code table for the K nearest codes of every datum of every training
batch, and the table changes after every step, so index structures (trees, graphs) would
have to be rebuilt each step. aebench's search is chunked matrix products with a running
top-k (`aebench.models.acn.nearest_codes`). Compared here:
- chunked:  nearest_codes, default chunk of 16,384 rows (bounded memory);
- one-shot: torch.cdist over the whole table then topk (memory O(batch x table));
- kd-tree:  scikit-learn's KDTree rebuilt on the table, then queried (what a table that
  changes every step would need);
and the greedy nearest-neighbour chain that orders a test split for the coding cost.

    python benchmarks/acn_neighbours.py [--codes 60000] [--dim 16] [--threads 1]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from aebench.models.acn import nearest_codes, nearest_neighbour_chain


def timed(fn, repeats: int) -> tuple[float, float]:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--codes", type=int, default=60000)
    parser.add_argument("--dim", type=int, default=16)
    parser.add_argument("--k", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--chain", type=int, default=14000, help="codes in the coding-cost chain (MNIST test split)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    table = torch.randn(args.codes, args.dim)
    print(f"table {args.codes} x {args.dim}, K = {args.k}, {args.threads} thread(s), torch {torch.__version__}")
    print(f"{'method':<34}{'batch':>7}{'median ms':>11}{'min ms':>9}{'us/query':>10}")
    for batch in (64, 512):
        queries = table[:batch] + 0.01 * torch.randn(batch, args.dim)
        exclude = torch.arange(batch)
        methods = {
            "chunked matmul top-k (aebench)": lambda: nearest_codes(queries, table, args.k, exclude),
            "one-shot cdist + topk": lambda: torch.cdist(queries, table).topk(args.k + 1, largest=False),
        }
        try:
            from sklearn.neighbors import KDTree

            methods["kd-tree rebuilt each step"] = lambda: KDTree(table.numpy()).query(queries.numpy(), k=args.k + 1)
        except ImportError:
            pass
        for name, fn in methods.items():
            med, best = timed(fn, args.repeats if "kd" not in name else max(3, args.repeats // 5))
            print(f"{name:<34}{batch:>7}{med * 1e3:>11.2f}{best * 1e3:>9.2f}{med / batch * 1e6:>10.1f}")
    ref = nearest_codes(table[:512], table, args.k, torch.arange(512))
    check = torch.cdist(table[:512].double(), table.double())
    check[torch.arange(512), torch.arange(512)] = float("inf")
    agree = (ref == check.topk(args.k, largest=False).indices).all(1).float().mean()
    print(f"chunked result equals float64 brute force on {float(agree):.1%} of 512 queries (ties aside)")
    codes = torch.randn(args.chain, args.dim)
    t0 = time.perf_counter()
    nearest_neighbour_chain(codes)
    print(f"nearest-neighbour chain over {args.chain} codes: {time.perf_counter() - t0:.2f} s")


if __name__ == "__main__":
    main()
