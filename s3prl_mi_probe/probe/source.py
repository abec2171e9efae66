"""Where probes read their rows from: in-memory arrays or a features folder, optionally a subset of rows.

A :class:`RowSource` holds L per-layer readers of shape ``[N_all, D_l]`` (numpy arrays, tensors, or a
features folder's :class:`~s3prl_mi_probe.features.npy_rows.NpyRows`), the positions of its rows among
them, and one label (and optionally one group) per row. It never loads more than it is asked for:
:meth:`RowSource.read` returns the float32 block ``[L, B, D]`` of some of its rows (zero-padded to the
widest layer), so a trainer can go through data far larger than memory.
"""

import numpy as np
import torch

from s3prl_mi_probe.features.folder import GROUP_COLUMN, FeaturesFolder
from s3prl_mi_probe.features.npy_rows import NpyRows


class RowSource:
    """Rows of L layers with their labels (see the module docstring).

    ``layers``: L readers ``[N_all, D_l]``; ``labels``: one per row of the source; ``rows``: the
    source's positions among the readers' rows (None: all of them, in order); ``groups``: optional,
    one per row (e.g. the speaker; a carved dev split takes whole groups); ``layer_ids``: the
    layers' indices as reported (default 0..L-1); ``dim``: the padded width (default the widest).
    """

    def __init__(self, layers, labels, rows=None, groups=None, layer_ids=None, dim=None):
        self.layers = list(layers)
        self.rows = None if rows is None else np.asarray(rows, dtype=np.int64)
        self.labels = np.asarray(labels)
        self.groups = None if groups is None else np.asarray(groups)
        self.layer_ids = list(range(len(self.layers))) if layer_ids is None else list(layer_ids)
        self.layer_dims = [int(layer.shape[1]) for layer in self.layers]
        self.dim = max(self.layer_dims) if dim is None else dim
        count = len(self.layers[0]) if self.rows is None else self.rows.size
        if self.labels.shape != (count,) or (self.groups is not None and self.groups.shape != (count,)):
            raise ValueError(
                f"{count} rows of features but {self.labels.shape[0]} labels"
                + ("" if self.groups is None else f" and {self.groups.shape[0]} groups")
            )

    @classmethod
    def from_arrays(cls, features, labels, groups=None, name="X"):
        """A source over in-memory features: ``[L, N, D]`` or a list of L ``[N, D_l]`` arrays.

        ValueError with a clear message for a single 2-D array or layers and labels of different lengths.
        """
        if isinstance(features, (list, tuple)):
            layers = [layer if torch.is_tensor(layer) else np.asarray(layer) for layer in features]
            bad = [f"layer {k} is {layer.ndim}-D" for k, layer in enumerate(layers) if layer.ndim != 2]
            if bad or not layers:
                raise ValueError(f"{name}: a list of layers needs L arrays [N, D_l]; " + ("; ".join(bad) or "empty"))
        else:
            array = features if torch.is_tensor(features) else np.asarray(features)
            if array.ndim != 3:
                hint = " (one layer? pass X[None] or [X])" if array.ndim == 2 else ""
                raise ValueError(f"{name} is {array.ndim}-D {tuple(array.shape)}: expected [L, N, D]{hint}")
            layers = list(array)
        labels = np.asarray(labels)
        counts = sorted({len(layer) for layer in layers})
        if len(counts) > 1:
            raise ValueError(f"{name}: layers have different numbers of rows {[len(layer) for layer in layers]}")
        if labels.ndim != 1 or labels.size != counts[0]:
            raise ValueError(f"{name} has {counts[0]} rows but its labels are shaped {labels.shape}")
        return cls(layers, labels, groups=groups)

    @classmethod
    def from_folder(cls, folder, split, labels=None):
        """The rows of ``split`` in a :class:`FeaturesFolder`; ``labels`` (per row of the split) replace its own.

        Labels are the codes of the folder's sorted label strings (``folder.column("label").values``).
        """
        rows = folder.rows_of(split)
        groups = folder.columns[GROUP_COLUMN].codes[rows] if GROUP_COLUMN in folder.columns else None
        labels = folder.columns["label"].codes[rows] if labels is None else labels
        return cls(folder.layers, labels, rows=rows, groups=groups)

    @property
    def num_rows(self):
        return self.labels.size

    @property
    def num_layers(self):
        return len(self.layers)

    def subset(self, positions):
        """The source restricted to ``positions`` (indices or a boolean mask over its rows), in that order."""
        positions = np.asarray(positions)
        if positions.dtype == bool:
            positions = np.flatnonzero(positions)
        rows = positions if self.rows is None else self.rows[positions]
        groups = None if self.groups is None else self.groups[positions]
        return RowSource(self.layers, self.labels[positions], rows, groups, self.layer_ids, self.dim)

    def with_labels(self, labels):
        """The same rows with other labels (e.g. a control task's)."""
        return RowSource(self.layers, labels, self.rows, self.groups, self.layer_ids, self.dim)

    def select_layers(self, layer_ids):
        """The source restricted to the layers whose reported indices are ``layer_ids`` (padded width kept)."""
        keep = [self.layer_ids.index(layer) for layer in layer_ids]
        return RowSource([self.layers[k] for k in keep], self.labels, self.rows, self.groups, layer_ids, self.dim)

    def row_bytes(self, itemsize=4):
        """Bytes of one row of a ``[L, B, D]`` block with elements of ``itemsize`` bytes."""
        return self.num_layers * self.dim * itemsize

    def read(self, start=0, stop=None, out=None):
        """Float32 block ``[L, stop - start, D]`` of the source's rows ``start:stop`` (zero-padded to ``dim``).

        ``out`` (a float32 tensor of that shape, e.g. pinned memory) receives it when given.
        """
        stop = self.num_rows if stop is None else min(stop, self.num_rows)
        count = max(stop - start, 0)
        if out is None:
            out = torch.empty(self.num_layers, count, self.dim)
        where = slice(start, stop) if self.rows is None else self.rows[start:stop]
        scratch = {}  # one read buffer per file dtype and width, shared by the layers
        for index, layer in enumerate(self.layers):
            width = self.layer_dims[index]
            if isinstance(layer, NpyRows):
                buffer = scratch.setdefault((layer.dtype, width), np.empty((count, width), dtype=layer.dtype))
                values = torch.from_numpy(layer.read(where, out=buffer))
            elif torch.is_tensor(layer):
                values = layer[where if isinstance(where, slice) else torch.as_tensor(where)]
            else:
                values = torch.from_numpy(np.ascontiguousarray(layer[where]))
            out[index, :, :width].copy_(values)
            if width < self.dim:
                out[index, :, width:].zero_()
        return out


def as_source(data, labels=None, name="X", split="train"):
    """A :class:`RowSource` from what the probe API accepts.

    ``data`` is a RowSource, a :class:`FeaturesFolder` (its ``split`` rows), a ``(X, y)`` pair, or
    ``X`` with ``labels`` given separately.
    """
    if isinstance(data, RowSource):
        return data
    if isinstance(data, FeaturesFolder):
        return RowSource.from_folder(data, split)
    if labels is None:
        if not (isinstance(data, (tuple, list)) and len(data) == 2):
            raise ValueError(f"{name}: expected (X, y), a features folder or a RowSource")
        data, labels = data
    return RowSource.from_arrays(data, labels, name=name)
