"""Independent ReLU MLP probes for many layers, held as stacked weight tensors and trained as one model."""

import math

import torch
from torch import nn

from s3prl_mi_probe.metrics.margin import geometric_margins


class LayerwiseMLPProbe(nn.Module):
    """P independent MLPs ``q(y|z_p) = softmax(W h_p + b)``, ``h_p`` after ``depth`` ReLU layers of ``mlp_width``.

    Parameters: ``hidden_weights[k] [P, D_k, H]`` and ``hidden_biases[k] [P, H]`` (``D_0`` is the input
    width), then the output layer ``weight [P, H, C]``, ``bias [P, C]``. Hidden weights start He-uniform,
    drawn from ``seed``, hidden biases at zero; the output layer starts at zero, so every probe starts at
    the uniform predictor. A zero-padded input dimension adds nothing to any pre-activation, so its
    weights never change the output and receive no gradient from the loss: layers of different widths
    can share the bank.
    """

    def __init__(self, num_probes, input_dim, num_classes, mlp_width, depth=1, seed=0):
        super().__init__()
        if depth < 1:
            raise ValueError(f"an MLP probe needs at least one hidden layer, got depth={depth}")
        generator = torch.Generator().manual_seed(seed)
        widths = [input_dim] + [mlp_width] * depth
        self.hidden_weights = nn.ParameterList(
            nn.Parameter(he_uniform((num_probes, fan_in, mlp_width), generator)) for fan_in in widths[:-1]
        )
        self.hidden_biases = nn.ParameterList(nn.Parameter(torch.zeros(num_probes, mlp_width)) for _ in range(depth))
        self.weight = nn.Parameter(torch.zeros(num_probes, mlp_width, num_classes))
        self.bias = nn.Parameter(torch.zeros(num_probes, num_classes))

    def hidden(self, features):
        """Last hidden activations ``[P, N, H]`` of features ``[P, N, D]``."""
        for weight, bias in zip(self.hidden_weights, self.hidden_biases):
            features = torch.relu(torch.baddbmm(bias.unsqueeze(1), features, weight))
        return features

    def forward(self, features):
        """Logits ``[P, N, C]`` of features ``[P, N, D]``."""
        return torch.baddbmm(self.bias.unsqueeze(1), self.hidden(features), self.weight)

    def margins(self, features, labels):
        """Per-sample geometric margins ``[P, N]`` (float64) of the output layer, in the probe's hidden space.

        Distances are to the output layer's decision boundaries among the last hidden activations, not
        in input space, so they compare across layers only for probes of the same kind and width.
        Positive iff the sample is classified right.
        """
        with torch.no_grad():
            hidden = self.hidden(features)
        return geometric_margins(hidden, labels, self.weight.detach(), self.bias.detach())


def he_uniform(shape, generator):
    """``shape = (P, fan_in, fan_out)`` drawn uniformly with He's variance ``2 / fan_in`` (suits ReLU)."""
    bound = math.sqrt(6 / shape[1])
    return torch.empty(shape).uniform_(-bound, bound, generator=generator)
