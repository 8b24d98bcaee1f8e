"""ACN's code-space machinery: the neighbour search of training, the nearest-neighbour chain
and the coding cost of sending a set of codes along it (`chain_coding_cost`), and the
gathering of every rank's rows under data-parallel training.
"""

from __future__ import annotations

import math
from typing import Callable

import torch
import torch.distributed as dist


# -- neighbour search -----------------------------------------------------------------------
@torch.no_grad()
def nearest_codes(queries: torch.Tensor, table: torch.Tensor, k: int, exclude: torch.Tensor | None = None,
                  chunk: int = 16384) -> torch.Tensor:
    """Rows (B, k) of `table` indices nearest to each query (Euclidean), nearest first.

    Per chunk of table rows, one fused matrix product gives |t|^2 - 2 q.t (the squared
    distance less |q|^2, which is the same for every row and so irrelevant to the ranking);
    its top-k merges into a running top-k. Memory is O(B x chunk) whatever the table size.
    `exclude[b]` (a table row) is never returned for query b.
    """
    n = len(table)
    k = min(k, n - 1 if exclude is not None else n)
    if k < 1:
        raise ValueError(f"the code table has {n} rows: too few to draw a neighbour")
    rows = torch.arange(len(queries), device=queries.device)
    best_d, best_i = None, None
    for start in range(0, n, chunk):
        block = table[start:start + chunk]
        dist = torch.addmm(block.pow(2).sum(1), queries, block.T, alpha=-2)
        if exclude is not None:
            local = exclude - start
            inside = (local >= 0) & (local < len(block))
            dist[rows[inside], local[inside]] = math.inf
        d, i = dist.topk(min(k, len(block)), dim=1, largest=False)
        i = i + start
        if best_d is not None:
            d, pick = torch.cat([best_d, d], 1).topk(k, dim=1, largest=False)
            i = torch.cat([best_i, i], 1).gather(1, pick)
        best_d, best_i = d, i
    return best_i


@torch.no_grad()
def nearest_neighbour_chain(codes: torch.Tensor, start: int | None = None) -> torch.Tensor:
    """An ordering of all rows: from `start`, always step to the nearest (Euclidean) row not
    yet used; ties go to the lowest row. The default start is the row nearest the origin (the
    cheapest first message under N(0, I)), so the chain depends on the set of codes and not on
    the order of their rows. Sequential by nature (each step depends on the last), so one
    matrix-vector product per datum; a used row's norm is set to +inf, which keeps it out of
    every later argmin."""
    n = len(codes)
    norms = codes.pow(2).sum(1)
    order = torch.empty(n, dtype=torch.long, device=codes.device)
    current = int(norms.argmin()) if start is None else start
    for i in range(n):
        order[i] = current
        norms[current] = math.inf
        if i + 1 < n:
            current = int(torch.addmv(norms, codes, codes[current], alpha=-2).argmin())
    return order


@torch.no_grad()
def chain_coding_cost(codes: torch.Tensor, kl_after: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
                      batch_size: int = 256) -> torch.Tensor:
    """Per-datum coding cost (nats, one per row of `codes`, in row order) of sending every
    code once along its nearest-neighbour chain: the protocol behind `coding_cost_nats`.

    - The set: every row, each sent exactly once (the evaluator passes the posterior means
      c(x) of the whole test split; posteriors are N(c, I)).
    - The order: `nearest_neighbour_chain` from the code nearest the origin.
    - The first code is coded under the standard prior, KL(N(c, I) || N(0, I)) = |c|^2 / 2.
    - Every later code c_i under the prior conditioned on the code sent just before it:
      `kl_after(c_i, c_{i-1})` = KL(N(c_i, I) || p(z | c_{i-1})), batched along the chain.
    The conditioning code is the chain's predecessor, a test code the receiver already holds,
    not one of the K nearest training codes that training draws from."""
    order = nearest_neighbour_chain(codes)
    chained = codes[order]
    per_datum = torch.empty(len(codes), dtype=codes.dtype, device=codes.device)
    per_datum[order[0]] = 0.5 * chained[0].pow(2).sum()
    for i in range(1, len(chained), batch_size):
        current = chained[i:i + batch_size]
        per_datum[order[i:i + len(current)]] = kl_after(current, chained[i - 1:i - 1 + len(current)])
    return per_datum


def gather_from_ranks(*tensors: torch.Tensor) -> list[torch.Tensor]:
    """Each tensor's rows from every rank, concatenated in rank order (shares may differ in
    length by one, so they are padded to the longest for `all_gather` and trimmed after)."""
    world = dist.get_world_size()
    count = torch.tensor([len(tensors[0])], device=tensors[0].device)
    counts = [torch.empty_like(count) for _ in range(world)]
    dist.all_gather(counts, count)
    longest = int(max(counts))
    gathered = []
    for t in tensors:
        padded = t.new_zeros((longest, *t.shape[1:]))
        padded[:len(t)] = t
        parts = [torch.empty_like(padded) for _ in range(world)]
        dist.all_gather(parts, padded)
        gathered.append(torch.cat([part[:int(n)] for part, n in zip(parts, counts)]))
    return gathered
