"""The process group of a sharded extraction (``torchrun --nproc_per_node=K``), or a lone process."""

import os
from collections.abc import Callable
from dataclasses import dataclass


@dataclass
class ProcessGroup:
    """This process's rank, the number of processes, its device, and a barrier across them."""

    rank: int = 0
    world_size: int = 1
    device: str = "cpu"
    barrier: Callable[[], None] = lambda: None
    close: Callable[[], None] = lambda: None

    @property
    def leader(self):
        return self.rank == 0


def join_process_group(device="cpu"):
    """Join torchrun's group when launched by it (gloo on CPU, nccl on CUDA); else a lone process.

    On CUDA each process takes the GPU of its ``LOCAL_RANK``.
    """
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size == 1:
        return ProcessGroup(device=device)
    import torch
    import torch.distributed as dist

    on_cuda = device.startswith("cuda")
    if on_cuda:
        device = f"cuda:{int(os.environ.get('LOCAL_RANK', '0'))}"
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if on_cuda else "gloo")
    return ProcessGroup(
        rank=dist.get_rank(),
        world_size=dist.get_world_size(),
        device=device,
        barrier=dist.barrier,
        close=dist.destroy_process_group,
    )
