"""Multi-GPU and multi-node training through ``torchrun`` and DistributedDataParallel.

``torchrun --nproc_per_node N -m cnnlab.cli train ...`` starts N copies of the same command;
each finds its rank in the environment (RANK, WORLD_SIZE, LOCAL_RANK), joins the process group
(nccl on CUDA, gloo on CPU), reads its shard of every batch, and only rank 0 prints and writes
files. Without those variables training runs as one process and nothing here is used.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class DistributedContext:
    """Where this process sits among the training processes."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """Rank 0: the only process that prints and writes the run directory."""
        return self.rank == 0


def context_from_env() -> DistributedContext:
    """The rank, world size and local rank that torchrun put in the environment."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        return DistributedContext()
    return DistributedContext(
        rank=int(os.environ["RANK"]),
        world_size=world_size,
        local_rank=int(os.environ.get("LOCAL_RANK", "0")),
    )


def setup(context: DistributedContext, device: torch.device) -> None:
    """Join the process group (once): nccl for CUDA devices, gloo for the CPU."""
    if not context.enabled or dist.is_initialized():
        return
    backend = "nccl" if device.type == "cuda" else "gloo"
    if device.type == "cuda":
        torch.cuda.set_device(device)
    dist.init_process_group(backend=backend, rank=context.rank, world_size=context.world_size)


def teardown() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()


def all_reduce_sum(tensor: torch.Tensor, context: DistributedContext) -> torch.Tensor:
    """Sum ``tensor`` over all processes (in place); a no-op for one process."""
    if context.enabled:
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor


def any_process(flag: bool, context: DistributedContext) -> bool:
    """True on every process if ``flag`` is true on any (used to stop all ranks together)."""
    if not context.enabled:
        return flag
    value = torch.tensor([1.0 if flag else 0.0])
    if dist.get_backend() == "nccl":
        value = value.cuda()
    dist.all_reduce(value, op=dist.ReduceOp.MAX)
    return bool(value.item())
