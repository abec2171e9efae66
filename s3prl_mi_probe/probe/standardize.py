"""Per-layer, per-dimension standardisation with training statistics."""

import torch
from torch import nn

UPDATE_ROWS = 1024  # rows converted to float64 at a time


class RunningStandardizer(nn.Module):
    """Accumulates mean and variance of training features ``[L, N, D]`` and standardises with them.

    The statistics are buffers, so they travel with checkpoints; evaluation uses them as they are.
    """

    def __init__(self, num_layers, dim, eps=1e-5):
        super().__init__()
        self.eps = eps
        self.register_buffer("count", torch.zeros((), dtype=torch.float64))
        self.register_buffer("total", torch.zeros(num_layers, dim, dtype=torch.float64))
        self.register_buffer("total_sq", torch.zeros(num_layers, dim, dtype=torch.float64))

    @torch.no_grad()
    def update(self, features):
        """Add a batch of training features ``[L, N, D]`` to the statistics (float64 sums, a few rows at a time)."""
        self.count += features.size(1)
        for layer, values in enumerate(features):
            for rows in values.split(UPDATE_ROWS):
                rows = rows.to(self.total.device, torch.float64)
                self.total[layer] += rows.sum(dim=0)
                self.total_sq[layer] += (rows * rows).sum(dim=0)

    @torch.no_grad()
    def update_across_ranks(self, features):
        """:meth:`update` with the statistics of every rank's batch (all-reduced over torch.distributed's group)."""
        import torch.distributed as dist

        before = [buffer.clone() for buffer in self.buffers()]
        self.update(features)
        for buffer, previous in zip(self.buffers(), before):
            added = buffer - previous
            dist.all_reduce(added)
            buffer.copy_(previous + added)

    def _mean_scale(self):
        count = self.count.clamp_min(1)
        mean = self.total / count
        var = (self.total_sq / count - mean * mean).clamp_min(0)
        return mean, 1.0 / (var.sqrt() + self.eps)

    def forward(self, features):
        """Standardise ``[L, N, D]`` with the statistics gathered so far."""
        mean, scale = self._mean_scale()
        return ((features.double() - mean.unsqueeze(1)) * scale.unsqueeze(1)).to(features.dtype)

    def affine(self, device=None):
        """``(mean, scale)``, float32 ``[L, 1, D]`` on ``device``: ``(x - mean) * scale`` standardises ``[L, N, D]``."""
        mean, scale = self._mean_scale()
        return tuple(value.float().unsqueeze(1).to(device or value.device) for value in (mean, scale))
