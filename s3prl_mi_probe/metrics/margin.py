"""Per-sample geometric margin of a linear classifier (docs/method.md, "Margins").

gamma_i = min_{j != y_i} ((w_{y_i} - w_j)·z_i + b_{y_i} - b_j) / ||w_{y_i} - w_j||,
positive iff sample i is classified right, and then its distance to the decision boundary.
Pairwise norms come from the Gram matrix W Wᵀ.
"""

import numpy as np
import torch

from s3prl_mi_probe.metrics.columns import MARGIN_COLUMNS


def geometric_margins(features, labels, weight, bias):
    """Margins ``[..., N]`` of ``features [..., N, D]`` under ``weight [..., D, C]``, ``bias [..., C]``."""
    features, weight, bias = features.double(), weight.double(), bias.double()
    scores = features @ weight + bias.unsqueeze(-2)  # [..., N, C]
    gram = weight.transpose(-1, -2) @ weight  # [..., C, C]
    diag = torch.diagonal(gram, dim1=-2, dim2=-1)
    sq_dist = (diag.unsqueeze(-1) + diag.unsqueeze(-2) - 2 * gram).clamp_min(0)  # ||w_a - w_b||^2
    label_index = labels.expand(*scores.shape[:-1]).unsqueeze(-1)
    gap = scores.gather(-1, label_index) - scores  # [..., N, C]: s_y - s_j
    distance = sq_dist.index_select(-2, labels).sqrt()  # [..., N, C]: ||w_y - w_j||
    # Where w_y == w_j the pair's decision is constant in z: right (+inf), wrong (-inf) or a tie (0).
    unbounded = torch.sign(gap) * torch.where(gap == 0, 0.0, float("inf"))
    ratio = torch.where(distance > 0, gap / distance.clamp_min(1e-300), unbounded)
    ratio = ratio.scatter(-1, label_index, float("inf"))
    return ratio.min(dim=-1).values


def margin_summary(margins):
    """Median, 10th percentile, minimum and fraction positive of per-sample margins (NaN when there are none)."""
    margins = np.asarray(margins, dtype=np.float64)
    if margins.size == 0:
        return dict.fromkeys(MARGIN_COLUMNS, float("nan"))
    return {
        "margin_median": float(np.median(margins)),
        "margin_p10": float(np.percentile(margins, 10)),
        "margin_min": float(margins.min()),
        "margin_positive_frac": float((margins > 0).mean()),
    }
