"""torchrun awareness: one process per device, ranks read from the environment torchrun sets."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class DistContext:
    rank: int = 0
    local_rank: int = 0
    world_size: int = 1

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """Only the main process writes checkpoints and logs, so files and MLflow runs have one author."""
        return self.rank == 0


def init_distributed(device_type: str) -> DistContext:
    """Join the process group when launched by torchrun (`WORLD_SIZE` > 1): nccl on CUDA, gloo on CPU."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        return DistContext()
    ctx = DistContext(int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0")), world_size)
    if not dist.is_initialized():
        if device_type == "cuda":
            torch.cuda.set_device(ctx.local_rank)
        dist.init_process_group(backend="nccl" if device_type == "cuda" else "gloo")
    return ctx


def shutdown_distributed(ctx: DistContext) -> None:
    if ctx.enabled and dist.is_initialized():
        dist.destroy_process_group()


def gather_to_all(ctx: DistContext, obj: Any) -> list[Any]:
    """Every rank's `obj`, in rank order, so rank 0 can save the RNG and data state of all ranks."""
    if not ctx.enabled:
        return [obj]
    out: list[Any] = [None] * ctx.world_size
    dist.all_gather_object(out, obj)
    return out


def mean_across_ranks(ctx: DistContext, value: float, device: torch.device) -> float:
    """The mean of a scalar over ranks, so the logged training loss covers every rank's batch."""
    if not ctx.enabled:
        return value
    t = torch.tensor([value], dtype=torch.float32, device=device)
    dist.all_reduce(t)
    return t.item() / ctx.world_size


def broadcast_flag(ctx: DistContext, flag: bool, device: torch.device) -> bool:
    """Rank 0's `flag` on every rank: decisions such as stopping early must be the same everywhere."""
    if not ctx.enabled:
        return flag
    t = torch.tensor([int(flag)], dtype=torch.int32, device=device)
    dist.broadcast(t, src=0)
    return bool(t.item())


def broadcast_object(ctx: DistContext, obj: Any) -> Any:
    """Rank 0's `obj` (any picklable value) on every rank, for decisions only rank 0 can make, such as which
    checkpoint to resume from."""
    if not ctx.enabled:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]
