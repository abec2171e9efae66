"""Standardised rows on the training device, resident or streamed, as the probe trainer consumes them.

Both kinds give the same two views of a split: :meth:`chunks` (every row once, in order: evaluation,
full-batch objectives) and :meth:`batches` (one shuffled epoch of minibatches). Resident rows shuffle
all rows with one permutation per epoch; streamed rows shuffle the order of their blocks and the rows
within each block, both from the same seeded generator, and read the next block in a background
thread while the current one is used (see :mod:`s3prl_mi_probe.probe.memory`).
"""

import math
from concurrent.futures import ThreadPoolExecutor
from functools import partial

import torch
from tqdm import tqdm

from s3prl_mi_probe.probe.memory import RING_SLOTS


def prefetched(loaders):
    """Results of the zero-argument callables ``loaders`` in order, each started while the previous is in use."""
    loaders = iter(loaders)
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="probe-rows") as pool:
        first = next(loaders, None)
        pending = None if first is None else pool.submit(first)
        while pending is not None:
            following = next(loaders, None)
            upcoming = None if following is None else pool.submit(following)
            yield pending.result()
            pending = upcoming


def _standardize_(features, affine):
    """Standardise float32 ``[L, B, D]`` in place with ``affine = (mean, scale)`` ``[L, 1, D]``."""
    if affine is not None:
        mean, scale = affine
        for layer in range(features.shape[0]):
            features[layer].sub_(mean[layer]).mul_(scale[layer])
    return features


class ResidentRows:
    """A split held whole on the device: ``features [L, N, D]`` (float32, or float16 standardised on use)."""

    def __init__(self, features, targets, affine=None):
        self.features, self.targets, self.affine = features, targets, affine

    @property
    def num_rows(self):
        return self.targets.numel()

    def _use(self, features):
        if self.affine is None and features.dtype == torch.float32:
            return features
        return _standardize_(features.float(), self.affine)

    def chunks(self, chunk_rows):
        """``(features [L, c, D], targets [c])`` in row order."""
        for start in range(0, self.num_rows, chunk_rows):
            yield self._use(self.features[:, start : start + chunk_rows]), self.targets[start : start + chunk_rows]

    def num_batches(self, batch_size):
        return math.ceil(self.num_rows / batch_size)

    def batches(self, generator, batch_size):
        """One epoch of shuffled minibatches: a fresh permutation of all rows from ``generator``."""
        order = torch.randperm(self.num_rows, generator=generator).to(self.targets.device)
        for start in range(0, self.num_rows, batch_size):
            rows = order[start : start + batch_size]
            yield self._use(self.features[:, rows]), self.targets[rows]


class StreamedRows:
    """A split read block by block from its :class:`~s3prl_mi_probe.probe.source.RowSource` on every pass."""

    def __init__(self, source, targets, affine, block_rows, device="cpu", pinned=False):
        self.source, self.targets, self.affine = source, targets.cpu(), affine
        self.device, self.pinned = torch.device(device), pinned
        self.blocks = [
            (start, min(start + block_rows, source.num_rows)) for start in range(0, source.num_rows, block_rows)
        ]

    @property
    def num_rows(self):
        return self.source.num_rows

    def _pass(self, spans):
        """The blocks ``spans`` on the device, standardised, each read while the previous one is in use.

        On the CPU the blocks are read into a ring of RING_SLOTS buffers allocated once per pass (the
        block in use, the one returned last, the one being read); on a GPU into pinned memory that
        torch's caching host allocator recycles once the asynchronous copy is done.
        """
        ring = [None] * RING_SLOTS
        shape = (self.source.num_layers, max((stop - start for start, stop in spans), default=0), self.source.dim)

        def loader(index, start, stop):
            def load():
                if self.pinned:
                    out = torch.empty(shape[0], stop - start, shape[2], pin_memory=True)
                else:
                    slot = index % RING_SLOTS
                    ring[slot] = torch.empty(shape) if ring[slot] is None else ring[slot]
                    out = ring[slot][:, : stop - start]
                features = self.source.read(start, stop, out=out)
                if self.device.type == "cpu":
                    _standardize_(features, self.affine)
                return features, self.targets[start:stop]

            return load

        for features, targets in prefetched(loader(index, *span) for index, span in enumerate(spans)):
            if self.device.type != "cpu":
                features = _standardize_(features.to(self.device, non_blocking=self.pinned), self.affine)
                targets = targets.to(self.device, non_blocking=self.pinned)
            yield features, targets

    def chunks(self, chunk_rows):
        """``(features [L, c, D], targets [c])`` in row order, block after block."""
        for features, targets in self._pass(self.blocks):
            for start in range(0, targets.numel(), chunk_rows):
                yield features[:, start : start + chunk_rows], targets[start : start + chunk_rows]

    def num_batches(self, batch_size):
        return sum(math.ceil((stop - start) / batch_size) for start, stop in self.blocks)

    def batches(self, generator, batch_size):
        """One epoch: blocks in a shuffled order, rows shuffled within each block, all from ``generator``."""
        order = torch.randperm(len(self.blocks), generator=generator).tolist()
        for features, targets in self._pass([self.blocks[index] for index in order]):
            within = torch.randperm(targets.numel(), generator=generator).to(targets.device)
            for start in range(0, targets.numel(), batch_size):
                rows = within[start : start + batch_size]
                yield features[:, rows], targets[rows]


def load_rows(source, targets, plan, resident, standardizer=None, fit_statistics=False, progress=False):
    """The rows of ``source`` standardised with ``standardizer``, resident or streamed as ``plan`` says.

    With ``fit_statistics`` the standardizer first gathers the statistics of these rows: during the
    load when resident, in one extra pass otherwise. ``targets`` are class indices ``[N]`` (a tensor).
    """
    device = torch.device(plan.device)
    if not resident:
        if fit_statistics:
            for features, _ in StreamedRows(source, targets, None, plan.block_rows).chunks(plan.block_rows):
                standardizer.update(features)
        affine = standardizer.affine(device)
        return StreamedRows(source, targets, affine, plan.block_rows, device, plan.pinned)
    storage = torch.empty(
        source.num_layers, source.num_rows, source.dim, dtype=getattr(torch, plan.storage), device=device
    )
    starts = range(0, source.num_rows, plan.read_rows)
    spans = [(start, min(start + plan.read_rows, source.num_rows)) for start in starts]
    bar = tqdm(total=source.num_rows, desc="load rows", unit="row", disable=not progress or len(spans) < 4, leave=False)
    for (start, stop), block in zip(spans, prefetched(partial(source.read, *span) for span in spans)):
        if fit_statistics:
            standardizer.update(block)
        storage[:, start:stop].copy_(block, non_blocking=False)
        bar.update(stop - start)
    bar.close()
    affine = standardizer.affine(device)
    if storage.dtype == torch.float32:
        return ResidentRows(_standardize_(storage, affine), targets.to(device))
    return ResidentRows(storage, targets.to(device), affine)
