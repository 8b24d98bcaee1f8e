"""The group batch sampler: whole groups of the asked size, nothing excluded, nothing twice."""

import pytest
import torch

from aebench.models.mlvae.sampler import draw_groups, group_batches

# ids 0..4 with 7, 9, 3, 12 and 5 rows, shuffled
IDS = torch.tensor([0] * 7 + [1] * 9 + [2] * 3 + [3] * 12 + [4] * 5)
IDS = IDS[torch.randperm(len(IDS), generator=torch.Generator().manual_seed(0))]


def test_draw_groups_makes_whole_groups_of_one_id():
    groups = draw_groups(IDS, 4, torch.Generator().manual_seed(1))
    # floor(n / 4) groups per id: 1 + 2 + 0 + 3 + 1
    assert groups.shape == (7, 4)
    for members in groups:
        assert len(set(IDS[members].tolist())) == 1
    assert len(set(groups.reshape(-1).tolist())) == 28  # no row twice
    assert 2 not in IDS[groups[:, 0]].tolist()  # id 2 has only 3 rows


def test_batches_hold_whole_groups_with_slots_and_respect_exclusions():
    batches = list(group_batches(IDS, 3, 2, torch.Generator().manual_seed(2), exclude=[3]))
    seen = []
    for rows, slot in batches:
        assert len(rows) == 6 and slot.tolist() == [0, 0, 0, 1, 1, 1]
        for s in (0, 1):
            assert len(set(IDS[rows[slot == s]].tolist())) == 1
        seen += rows.tolist()
    assert 3 not in IDS[seen].tolist()
    assert len(seen) == len(set(seen))
    # groups of 3 without id 3: 2 + 3 + 1 + 0 + 1 = 7 -> 3 full batches of 2 groups
    assert len(batches) == 3


def test_deterministic_capped_and_small_data():
    a = [r.tolist() for r, _ in group_batches(IDS, 2, 3, torch.Generator().manual_seed(5), max_batches=2)]
    b = [r.tolist() for r, _ in group_batches(IDS, 2, 3, torch.Generator().manual_seed(5), max_batches=2)]
    assert a == b and len(a) == 2
    # fewer groups than one batch: one smaller batch of all of them
    (rows, slot), = group_batches(IDS, 5, 100, torch.Generator().manual_seed(0))
    assert slot.max() + 1 == 1 + 1 + 0 + 2 + 1 and len(rows) == 25


def test_impossible_group_size_is_an_error():
    with pytest.raises(ValueError, match="group size"):
        next(group_batches(IDS, 13, 1))
