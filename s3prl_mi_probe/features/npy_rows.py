"""Rows of a 2-D ``.npy`` file read with positioned reads, never memory-mapped.

A memory map would make every page it touches count towards the process's resident memory until
the kernel drops it; ``os.preadv`` into a buffer of our own leaves the data in the page cache (the
kernel's, reclaimable) and the process holds only what it asked for. Rows may be asked for in any
order; they are read as runs of nearby rows in file order, each run one system call.
"""

import os
from pathlib import Path

import numpy as np

MERGE_GAP_ROWS = 8  # rows between two wanted rows read through rather than paying another system call
MAX_RUN_BYTES = 16 << 20  # largest single read


class NpyRows:
    """The rows ``[N, D]`` of one C-ordered ``.npy`` file: ``shape``, ``dtype`` and :meth:`read`."""

    def __init__(self, path):
        self.path = Path(path)
        with open(self.path, "rb") as stream:
            version = np.lib.format.read_magic(stream)
            read_header = (
                np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
            )
            shape, fortran_order, dtype = read_header(stream)
            self.offset = stream.tell()
        if fortran_order and len(shape) > 1:
            raise ValueError(f"{self.path}: stored in Fortran order; save it C-ordered (np.ascontiguousarray)")
        if dtype.hasobject:
            raise ValueError(f"{self.path}: holds Python objects, not numbers")
        self.shape, self.dtype = tuple(shape), dtype
        self.row_bytes = int(np.prod(shape[1:], dtype=np.int64)) * dtype.itemsize if len(shape) else 0
        self._fd = None

    def __len__(self):
        return self.shape[0]

    def __getstate__(self):
        return {**self.__dict__, "_fd": None}

    def _descriptor(self):
        if self._fd is None:
            self._fd = os.open(self.path, os.O_RDONLY)
        return self._fd

    def __del__(self):
        if getattr(self, "_fd", None) is not None:
            os.close(self._fd)

    def read(self, rows, out=None):
        """Rows ``rows`` (a slice with step 1, or integer indices in any order) as ``[len, D]`` in the file's dtype.

        ``out`` (C-contiguous, the file's dtype) receives them when given.
        """
        if isinstance(rows, slice):
            start, stop, step = rows.indices(self.shape[0])
            if step != 1:
                raise ValueError("row slices must have step 1")
            out = self._empty(max(stop - start, 0), out)
            self._pread(out, start)
            return out
        rows = np.asarray(rows, dtype=np.int64)
        out = self._empty(rows.size, out)
        if rows.size == 0:
            return out
        if rows.min() < 0 or rows.max() >= self.shape[0]:
            raise IndexError(f"{self.path}: rows outside 0..{self.shape[0] - 1}")
        order = None if np.all(rows[1:] > rows[:-1]) else np.argsort(rows, kind="stable")
        wanted = rows if order is None else rows[order]
        target = out if order is None else np.empty_like(out)
        self._read_sorted(wanted, target)
        if order is not None:
            out[order] = target
        return out

    def _empty(self, count, out):
        shape = (count, *self.shape[1:])
        if out is None:
            return np.empty(shape, dtype=self.dtype)
        if out.shape != shape or out.dtype != self.dtype or not out.flags.c_contiguous:
            raise ValueError(f"out must be C-contiguous {shape} {self.dtype}, got {out.shape} {out.dtype}")
        return out

    def _read_sorted(self, rows, out):
        """Read ascending (possibly repeated) ``rows`` into ``out`` run by run."""
        max_run = max(1, MAX_RUN_BYTES // max(self.row_bytes, 1))
        breaks = np.flatnonzero(np.diff(rows) > MERGE_GAP_ROWS) + 1
        for first, last in zip(np.r_[0, breaks], np.r_[breaks, rows.size]):
            position = first
            while position < last:
                # Split long runs so a read stays below MAX_RUN_BYTES of file span.
                stop = position + int(np.searchsorted(rows[position:last], rows[position] + max_run))
                run = rows[position:stop]
                span_start, span_stop = int(run[0]), int(run[-1]) + 1
                if span_stop - span_start == run.size and np.all(np.diff(run) == 1):
                    self._pread(out[position:stop], span_start)
                else:
                    span = np.empty((span_stop - span_start, *self.shape[1:]), dtype=self.dtype)
                    self._pread(span, span_start)
                    out[position:stop] = span[run - span_start]
                position = stop

    def _pread(self, buffer, first_row):
        """Fill ``buffer`` with the bytes of the rows from ``first_row`` on."""
        view = memoryview(buffer.reshape(-1).view(np.uint8))
        offset, done = self.offset + first_row * self.row_bytes, 0
        while done < view.nbytes:
            count = os.preadv(self._descriptor(), [view[done:]], offset + done)
            if count == 0:
                raise OSError(f"{self.path}: file ends before row {first_row + done // max(self.row_bytes, 1)}")
            done += count
