"""Minibatches over in-memory tensors (the datasets here fit in memory, and a plain index
permutation is several times faster than a DataLoader for them)."""

from __future__ import annotations

from typing import Iterator

import torch

Batch = dict[str, torch.Tensor]


def iterate_batches(data: Batch, batch_size: int, generator: torch.Generator | None = None,
                    max_steps: int | None = None) -> Iterator[Batch]:
    """Shuffled minibatches when a generator is given, in order otherwise. The last short
    batch is kept only when unshuffled (evaluation), so training batch statistics are even."""
    n = len(data["x"])
    if generator is not None:
        order = torch.randperm(n, generator=generator).to(data["x"].device)
        stops = range(0, n - batch_size + 1, batch_size) if n >= batch_size else [0]
    else:
        order = None
        stops = range(0, n, batch_size)
    for step, start in enumerate(stops):
        if max_steps is not None and step >= max_steps:
            return
        if order is None:
            yield {k: v[start:start + batch_size] for k, v in data.items()}
        else:
            idx = order[start:start + batch_size]
            yield {k: v[idx] for k, v in data.items()}
