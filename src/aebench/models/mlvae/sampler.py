"""Batch sampler for grouped observations (the ML-VAE's `batching: groups`): every batch is
made of whole groups.

A *group* is a set of observations sharing a group id (the Parquet `group` column: the label
by default, or a factor chosen in preprocessing). The ML-VAE objective accumulates the
content evidence of a group's members, so a batch must hold complete groups of a known size,
and two groups that happen to share an id (e.g. two sets of eights in one MNIST batch) must
stay distinct. `group_batches` therefore yields, with the rows of each batch, a `slot`
tensor numbering the groups within the batch (0..m-1); the id itself says nothing about
which rows were drawn together.

Pure torch: deterministic given the `torch.Generator`, no DataLoader, no model knowledge.
"""

from __future__ import annotations

from typing import Iterable, Iterator

import torch


def draw_groups(group_ids: torch.Tensor, group_size: int, generator: torch.Generator | None = None,
                exclude: Iterable[int] = ()) -> torch.Tensor:
    """One epoch's groups as a (n_groups, group_size) tensor of row positions.

    Every id not in `exclude` has its rows shuffled and cut into consecutive groups of
    `group_size` (a remainder smaller than a group is left out this epoch; the shuffle makes
    it a different remainder each time). Groups are then put in random order. Ids with fewer
    than `group_size` rows give no group. Positions are on the CPU.
    """
    if group_size < 1:
        raise ValueError(f"group_size must be at least 1, got {group_size}")
    ids = group_ids.detach().cpu().long()
    keep = torch.ones_like(ids, dtype=torch.bool)
    excluded = torch.as_tensor(list(exclude), dtype=torch.long)
    if excluded.numel():
        keep &= ~torch.isin(ids, excluded)
    rows = torch.nonzero(keep).squeeze(1)
    rows = rows[torch.randperm(len(rows), generator=generator)]  # random order within each id ...
    rows = rows[torch.sort(ids[rows], stable=True).indices]  # ... then rows sorted by id
    _, counts = torch.unique_consecutive(ids[rows], return_counts=True)
    offsets = torch.cumsum(counts, 0) - counts
    starts = torch.cat([off + group_size * torch.arange(int(c) // group_size) for off, c in zip(offsets, counts)]
                       ) if len(counts) else torch.zeros(0, dtype=torch.long)
    groups = rows[starts[:, None] + torch.arange(group_size)]
    return groups[torch.randperm(len(groups), generator=generator)]


def group_batches(group_ids: torch.Tensor, group_size: int, groups_per_batch: int,
                  generator: torch.Generator | None = None, exclude: Iterable[int] = (),
                  max_batches: int | None = None) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Batches of `groups_per_batch` whole groups of `group_size` rows, for one epoch.

    Yields `(rows, slot)`: row positions (groups_per_batch * group_size,) and, for each row,
    the number of its group within the batch. Incomplete last batches are dropped, except
    when the epoch has fewer groups than one batch: then that single smaller batch is
    yielded (as the plain minibatch iterator does for tiny datasets). Raises ValueError when
    no id has `group_size` rows.
    """
    if groups_per_batch < 1:
        raise ValueError(f"groups_per_batch must be at least 1, got {groups_per_batch}")
    groups = draw_groups(group_ids, group_size, generator, exclude)
    if len(groups) == 0:
        raise ValueError(f"no group id has {group_size} rows (after exclusions): lower the group size")
    n_batches = max(1, len(groups) // groups_per_batch)
    if max_batches is not None:
        n_batches = min(n_batches, max_batches)
    for b in range(n_batches):
        chunk = groups[b * groups_per_batch:(b + 1) * groups_per_batch]
        slot = torch.arange(len(chunk)).repeat_interleave(group_size)
        yield chunk.reshape(-1), slot
