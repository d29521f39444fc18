"""Distributed set-up for torchrun: NCCL on GPU, gloo on CPU, any number of processes.

Every trainer calls :func:`init` once; with no torchrun environment it returns a single-process
context, so the same code runs under ``python`` and under ``torchrun --nproc_per_node N``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class DistContext:
    """Where this process stands in the job."""

    rank: int
    world_size: int
    local_rank: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def init(device: str | torch.device | None = None, timeout_s: float = 600.0) -> DistContext:
    """Initialise the process group from torchrun's environment (RANK, WORLD_SIZE, LOCAL_RANK).

    Args:
        device: ``"cuda"`` / ``"cpu"`` / None (CUDA when available). Under torchrun on CUDA each
            process takes GPU ``LOCAL_RANK``.
        timeout_s: collective timeout.
    """
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    want = torch.device(device) if device is not None else None
    use_cuda = torch.cuda.is_available() if want is None else want.type == "cuda"
    if use_cuda:
        torch.cuda.set_device(local_rank)
        dev = torch.device("cuda", local_rank)
    else:
        dev = torch.device("cpu")
    if world_size > 1 and not dist.is_initialized():
        # NVLink multicast stays off on shared hosts.
        os.environ.setdefault("NCCL_NVLS_ENABLE", "0")
        backend = "nccl" if use_cuda else "gloo"
        dist.init_process_group(backend=backend, timeout=timedelta(seconds=timeout_s))
    return DistContext(rank=rank, world_size=world_size, local_rank=local_rank, device=dev)


def shutdown() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def barrier() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.barrier()


def all_reduce_mean(x: torch.Tensor) -> torch.Tensor:
    """Mean of ``x`` over all processes (returns ``x`` unchanged when not distributed)."""
    if not (dist.is_available() and dist.is_initialized()):
        return x
    y = x.detach().clone()
    dist.all_reduce(y, op=dist.ReduceOp.SUM)
    return y / dist.get_world_size()


def rank0_flag(flag: bool, ctx: DistContext) -> bool:
    """Rank 0's ``flag`` on every process (e.g. a time-budget verdict, so that all ranks stop at the same step)."""
    if not ctx.distributed:
        return flag
    t = torch.tensor([1.0 if flag else 0.0], device=ctx.device)
    dist.broadcast(t, src=0)
    return bool(t.item() > 0.5)


def shard(items: list[Any], rank: int, world_size: int) -> list[Any]:
    """Round-robin share of ``items`` for ``rank`` (every item goes to exactly one process)."""
    return items[rank::world_size]
