"""The process group of a sharded run (``torchrun --nproc_per_node=K``), or a lone process."""

import os
from collections.abc import Callable
from dataclasses import dataclass, replace


@dataclass
class ProcessGroup:
    """This process's rank, the number of processes, its device, a barrier, and a gather to rank 0."""

    rank: int = 0
    world_size: int = 1
    device: str = "cpu"
    barrier: Callable[[], None] = lambda: None
    close: Callable[[], None] = lambda: None
    gather: Callable[[object], list | None] = lambda value: [value]

    @property
    def leader(self):
        return self.rank == 0

    def share(self, items):
        """This rank's contiguous share of ``items`` (the first ranks take one more when they do not divide)."""
        items = list(items)
        size, extra = divmod(len(items), self.world_size)
        start = self.rank * size + min(self.rank, extra)
        return items[start : start + size + (self.rank < extra)]


def join_process_group(device="cpu"):
    """Join torchrun's group when launched by it (gloo on CPU, nccl on CUDA); else a lone process.

    On CUDA each process takes the GPU of its ``LOCAL_RANK``. ``close`` leaves the group.
    """
    if int(os.environ.get("WORLD_SIZE", "1")) == 1:
        return ProcessGroup(device=device)
    import torch
    import torch.distributed as dist

    on_cuda = device.startswith("cuda")
    if on_cuda:
        device = f"cuda:{int(os.environ.get('LOCAL_RANK', '0'))}"
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if on_cuda else "gloo")
    return replace(current_process_group(device), close=dist.destroy_process_group)


def current_process_group(device="cpu"):
    """The group this process already belongs to (torch.distributed initialised, e.g. by s3prl's runner
    under DDP), or a lone process; ``close`` does nothing: the group belongs to whoever started it."""
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()):
        return ProcessGroup(device=device)
    rank, world_size = dist.get_rank(), dist.get_world_size()

    def gather(value):
        """Every rank's ``value`` in rank order on rank 0 (None elsewhere)."""
        gathered = [None] * world_size if rank == 0 else None
        dist.gather_object(value, gathered, dst=0)
        return gathered

    return ProcessGroup(rank=rank, world_size=world_size, device=device, barrier=dist.barrier, gather=gather)
