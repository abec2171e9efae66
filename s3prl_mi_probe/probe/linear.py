"""Independent linear probes for many layers, held as one weight tensor and trained as one model."""

import torch
from torch import nn

from s3prl_mi_probe.metrics.margin import geometric_margins


class LayerwiseLinearProbe(nn.Module):
    """L linear classifiers ``q(y|z_l) = softmax(z_l W_l + b_l)``; ``weight [L, D, C]``, ``bias [L, C]``.

    Starts at zero (the uniform predictor). Zero-padded input dimensions keep zero weights, so
    layers of different widths can share the tensor.
    """

    def __init__(self, num_layers, input_dim, num_classes):
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(num_layers, input_dim, num_classes))
        self.bias = nn.Parameter(torch.zeros(num_layers, num_classes))

    def forward(self, features):
        """Logits ``[L, N, C]`` of features ``[L, N, D]``."""
        return torch.baddbmm(self.bias.unsqueeze(1), features, self.weight)

    def margins(self, features, labels):
        """Per-sample geometric margins ``[L, N]`` (float64)."""
        return geometric_margins(features, labels, self.weight.detach(), self.bias.detach())
