"""How much of the probe data to hold, and where: the memory budget and the plan made from it.

The budget is what probe training may hold on top of the process's baseline (the interpreter,
torch, the labels): the probe bank and its optimiser state, evaluation chunks, and feature rows. A
split is *resident* when its rows fit what is left: it is read once (one block, a full permutation
per epoch, as an in-memory trainer would). Otherwise it is *streamed*: read block by block from its
source every pass, one block ahead in a background thread, so memory stays flat whatever the number
of rows. On a GPU, rows resident on the device are kept as float16 (standardised per batch in
float32) and streamed blocks travel through pinned host memory.
"""

import re
from dataclasses import asdict, dataclass

DEFAULT_MEMORY_BUDGET = 2 << 30
RING_SLOTS = 3  # streamed block buffers: the block in use, the one returned last, the one being read
STREAM_COPIES = RING_SLOTS + 1  # and headroom for read buffers, float64 statistics, minibatch copies
STATE_COPIES = 12  # parameters, gradients, Adam's two moments, the epoch average, the best, the polish's
EVAL_SHARE = 8  # an evaluation chunk may take 1/EVAL_SHARE of the budget
DEVICE_SHARE = 0.85  # of the free device memory, what resident rows and the bank may take
MIN_CHUNK_ROWS, MAX_CHUNK_ROWS = 64, 4096
LOAD_BLOCK_BYTES = 256 << 20  # largest block read at a time when loading resident rows
_SIZE = re.compile(r"^\s*([0-9]*\.?[0-9]+)\s*([kmgt]?)(i?b)?\s*$", re.IGNORECASE)


def parse_size(text):
    """Bytes of a size such as ``2G``, ``512M``, ``1.5GB``, ``300MiB`` or ``1000000`` (powers of 1024)."""
    match = _SIZE.match(str(text))
    if not match:
        raise ValueError(f"not a size: {text!r} (e.g. 2G, 512M, 1.5GB)")
    value, unit = float(match.group(1)), match.group(2).lower()
    return int(value * 1024 ** " kmgt".index(unit or " "))


def bank_state_bytes(num_parameters, copies=STATE_COPIES):
    """Bytes the probe bank's training holds for ``num_parameters`` float32 parameters, ``copies`` of them."""
    return num_parameters * 4 * copies


@dataclass(frozen=True)
class MemoryPlan:
    """Where the rows of train and dev live and in what pieces they are read.

    ``block_rows``: rows of a streamed block (train's size when resident); ``chunk_rows``: rows of an
    evaluation chunk; ``read_rows``: rows read at a time to load resident rows or to evaluate a split;
    ``storage``: dtype of resident rows; ``pinned``: streamed blocks use pinned memory.
    """

    device: str
    train_resident: bool
    dev_resident: bool
    block_rows: int
    chunk_rows: int
    read_rows: int
    storage: str = "float32"
    pinned: bool = False

    def describe(self):
        """The plan as a JSON-able dict (for provenance)."""
        return asdict(self)


def plan_memory(
    num_train,
    num_dev,
    num_layers,
    dim,
    num_classes,
    state_bytes,
    budget=DEFAULT_MEMORY_BUDGET,
    device="cpu",
    batch_size=256,
    device_free=None,
):
    """The :class:`MemoryPlan` for ``num_train`` and ``num_dev`` rows of ``[num_layers, dim]`` within ``budget``.

    On a CUDA ``device``, residency is decided against ``device_free`` bytes of device memory (default:
    what the device reports free) with float16 rows; the host budget then only bounds streamed blocks.
    """
    row_bytes = num_layers * dim * 4
    chunk_rows = _chunk_rows(budget, num_layers, dim, num_classes)
    eval_bytes = chunk_rows * num_layers * max(dim, num_classes) * 8 * 6
    on_cuda = str(device).startswith("cuda")
    if on_cuda:
        if device_free is None:
            import torch

            device_free = torch.cuda.mem_get_info(torch.device(device))[0]
        room, storage_bytes = DEVICE_SHARE * device_free - state_bytes - eval_bytes, row_bytes // 2
        host_room = budget - eval_bytes
    else:
        room, storage_bytes = budget - state_bytes - eval_bytes, row_bytes
        host_room = room
    storage = "float16" if on_cuda else "float32"
    resident_bytes = (num_train + num_dev) * storage_bytes
    # Resident rows are loaded through blocks read one ahead, which must fit beside them.
    left = host_room - (0 if on_cuda else resident_bytes)
    largest_read = max(1, LOAD_BLOCK_BYTES // row_bytes)
    read_rows = min(largest_read, int(left // (STREAM_COPIES * row_bytes)))
    if resident_bytes <= room and read_rows >= min(batch_size, largest_read):
        return MemoryPlan(str(device), True, True, max(num_train, 1), chunk_rows, read_rows, storage, on_cuda)
    dev_resident = num_dev * storage_bytes <= room / 2
    if dev_resident and not on_cuda:
        host_room -= num_dev * storage_bytes
    block_rows = max(batch_size, int(host_room // (STREAM_COPIES * row_bytes)) // batch_size * batch_size)
    block_rows = min(block_rows, max(num_train, 1))
    return MemoryPlan(str(device), False, dev_resident, block_rows, chunk_rows, block_rows, storage, on_cuda)


def _chunk_rows(budget, num_layers, dim, num_classes):
    """Rows per evaluation chunk within a share of the budget: a few float32 copies of the features
    ``[L, rows, D]`` (read, standardised, padded) and of the scores and margins (float64 ``[L, rows, C]``)."""
    per_row = num_layers * (dim * 4 * 4 + num_classes * 8 * 6)
    return int(min(MAX_CHUNK_ROWS, max(MIN_CHUNK_ROWS, budget // EVAL_SHARE // per_row)))
