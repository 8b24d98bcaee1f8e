"""Data-parallel training under `torchrun` (gloo on CPU, nccl on GPU), with no model code.

Every rank holds the whole model and draws the same global batch order (the shuffling
generator is seeded identically); each takes its contiguous share of every global batch,
and gradients are averaged across ranks just before each optimiser step. That is what
DistributedDataParallel does, done at the optimiser rather than in `forward`, because models
here call their own sub-networks and own several optimisers (critics, priors) in
`train_step`: averaging at every `step()` covers all of them without a special case.
With mean-reduced losses, the result equals a single-process run with the same global batch
(up to floating-point summation order). BatchNorm statistics stay per rank, as with DDP
without SyncBatchNorm; a model whose state is indexed by datum (ACN's code table) gathers
its rows across ranks itself. Rank 0 alone logs, checkpoints and registers.
"""

from __future__ import annotations

import os

import torch
import torch.distributed as dist


def world_size() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))


def rank() -> int:
    return int(os.environ.get("RANK", "0"))


def is_main() -> bool:
    return rank() == 0


def active() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def init(device: torch.device) -> bool:
    """Join the process group torchrun describes; a no-op for a single process."""
    if world_size() <= 1 or active():
        return active()
    backend = "nccl" if device.type == "cuda" else "gloo"
    if device.type == "cuda":
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    dist.init_process_group(backend=backend)
    return True


def shutdown() -> None:
    if active():
        dist.barrier()
        dist.destroy_process_group()


def broadcast_module(module: torch.nn.Module) -> None:
    """Start every rank from rank 0's weights and buffers."""
    for tensor in list(module.parameters()) + list(module.buffers()):
        dist.broadcast(tensor.data, src=0)


def average_gradients(params) -> None:
    grads = [p.grad for p in params if p.grad is not None]
    if not grads:
        return
    flat = torch.cat([g.reshape(-1) for g in grads])
    dist.all_reduce(flat, op=dist.ReduceOp.SUM)
    flat /= dist.get_world_size()
    offset = 0
    for g in grads:
        g.copy_(flat[offset:offset + g.numel()].view_as(g))
        offset += g.numel()


def synchronise(optimizer: torch.optim.Optimizer) -> torch.optim.Optimizer:
    """Make `optimizer.step()` average its parameters' gradients across ranks first."""
    params = [p for group in optimizer.param_groups for p in group["params"]]
    original_step = optimizer.step

    def step(*args, **kwargs):
        average_gradients(params)
        return original_step(*args, **kwargs)

    optimizer.step = step
    return optimizer


def shard(batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """This rank's contiguous share of a global batch."""
    n, size, r = len(batch["x"]), dist.get_world_size(), dist.get_rank()
    lo, hi = n * r // size, n * (r + 1) // size
    return {k: v[lo:hi] for k, v in batch.items()}
