"""Feature arrays and labels as the probe trainer takes them: stacked layers, class indices, a dev carve."""

import numpy as np
import torch
import torch.nn.functional as F

from s3prl_mi_probe.corpus.splits import group_mask, pick_fraction

DEV_FRACTION = 0.1


def stack_layers(features):
    """Float32 tensor ``[L, N, D]`` from ``[L, N, D]`` or a list of L ``[N, D_l]``, zero-padded to max D_l."""
    if isinstance(features, (list, tuple)):
        layers = [torch.as_tensor(np.asarray(layer) if not torch.is_tensor(layer) else layer) for layer in features]
        width = max(layer.shape[1] for layer in layers)
        return torch.stack([F.pad(layer.float(), (0, width - layer.shape[1])) for layer in layers])
    return torch.as_tensor(np.asarray(features) if not torch.is_tensor(features) else features).float()


def encode_labels(labels, classes):
    """Class indices of the rows whose label is in ``classes`` (sorted), and the mask of those rows."""
    labels = np.asarray(labels)
    position = np.searchsorted(classes, labels).clip(0, len(classes) - 1)
    known = classes[position] == labels
    return torch.as_tensor(position[known], dtype=torch.long), known


def carve_dev(num_rows, groups=None, seed=0, fraction=DEV_FRACTION):
    """Boolean dev mask over training rows: whole groups (about ``fraction`` of them) or ``fraction`` of rows."""
    rng = np.random.default_rng(seed)
    if groups is None:
        dev = np.zeros(num_rows, dtype=bool)
        dev[pick_fraction(range(num_rows), fraction, rng)] = True
        return dev
    if np.unique(np.asarray(groups)).size < 2:
        raise ValueError("carving a dev split by groups needs at least two groups")
    return group_mask(groups, fraction, rng)
