"""Gaussian-class features for the probe trainers' tests: arrays, and resident train/dev rows."""

import numpy as np
import torch

from s3prl_mi_probe.probe.rows import ResidentRows


def gaussian_layers(rng, num_rows, scales, num_classes=5, dim=6):
    """Features ``[L, N, D]`` (float32) of Gaussian classes, one separation ``scale`` per layer, and labels."""
    labels = rng.integers(num_classes, size=num_rows)
    means = rng.standard_normal((num_classes, dim))
    layers = [scale * means[labels] + rng.standard_normal((num_rows, dim)) for scale in scales]
    return np.stack(layers).astype(np.float32), labels


def two_layer_rows(seed):
    """Train (1,000 rows) and dev (500 rows) of two Gaussian layers (separations 0.3 and 1.0), resident."""
    features, labels = gaussian_layers(np.random.default_rng(seed), 1500, (0.3, 1.0))
    train = ResidentRows(torch.as_tensor(features[:, :1000]), torch.as_tensor(labels[:1000]))
    dev = ResidentRows(torch.as_tensor(features[:, 1000:]), torch.as_tensor(labels[1000:]))
    return train, dev
