"""Barber–Agakov bound pieces, in bits: label entropy (plug-in, Miller–Madow) and held-out cross-entropy.

I(Z;Y) >= H(Y) - CE, with CE = E[-log2 q(y|z)] measured on held-out data (docs/method.md, "The bound").
Nats are converted to bits once, here.
"""

import math

import numpy as np
import torch.nn.functional as F

LN2 = math.log(2.0)


def entropy_bits(counts):
    """Plug-in entropy (bits) of a label histogram."""
    counts = np.asarray(counts, dtype=np.float64)
    p = counts[counts > 0] / counts.sum()
    return float(-(p * np.log2(p)).sum())


def miller_madow_entropy_bits(counts):
    """Miller–Madow entropy (bits): plug-in entropy + (K_observed - 1) / (2 N ln 2), K_observed the non-empty bins."""
    counts = np.asarray(counts, dtype=np.float64)
    observed = int((counts > 0).sum())
    return entropy_bits(counts) + (observed - 1) / (2 * counts.sum() * LN2)


def cross_entropy_bits(logits, labels):
    """Per-sample cross-entropy in bits. ``logits [..., N, C]``, ``labels [N]`` -> ``[..., N]``."""
    log_q = F.log_softmax(logits.float(), dim=-1)
    index = labels.expand(*log_q.shape[:-1]).unsqueeze(-1)
    return -log_q.gather(-1, index).squeeze(-1) / LN2
