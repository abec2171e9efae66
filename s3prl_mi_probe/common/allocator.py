"""Have the C allocator give large freed blocks back to the system at once (glibc), so memory stays flat.

glibc serves an allocation above its mmap threshold with a memory map of its own, unmapped when
freed. But it raises that threshold (up to 32 MB) each time such a block is freed, after which
blocks of that size come from its heaps, where freed memory is kept for reuse and fragments: a
long streamed run that reads blocks of a few MB in a background thread grew by about 1 GB that way.
A fixed threshold turns the adjustment off. The command line sets it; ``MALLOC_MMAP_THRESHOLD_`` in
the environment takes precedence.
"""

import ctypes
import ctypes.util
import os

M_MMAP_THRESHOLD = -3  # mallopt's parameter number (malloc.h)
LARGE_BLOCK_BYTES = 1 << 20


def release_large_blocks(threshold=LARGE_BLOCK_BYTES):
    """Fix glibc's mmap threshold at ``threshold`` bytes; False where that is not possible or already set."""
    if os.environ.get("MALLOC_MMAP_THRESHOLD_"):
        return False
    name = ctypes.util.find_library("c")
    try:
        mallopt = ctypes.CDLL(name).mallopt
    except (OSError, AttributeError, TypeError):
        return False
    return bool(mallopt(M_MMAP_THRESHOLD, threshold))
