"""Fine-tune-from-layer probes: per chosen layer l, trainable upper layers of the upstream and a linear head."""

import torch
from torch import nn

from s3prl_mi_probe.features.pooling import pool_batch
from s3prl_mi_probe.finetune.upper_layers import upper_layers
from s3prl_mi_probe.metrics.margin import geometric_margins


class FinetuneProbes(nn.Module):
    """One :class:`UpperLayers` and one linear head (zero-initialised) per entry of ``from_layers``.

    Only the copies and the heads are parameters: the upstream itself is not held, so it is neither
    trained nor saved with the probes. ``members`` (indices into ``from_layers``, default all) lets a
    caller run only some of the probes, e.g. those still training.
    """

    def __init__(self, upstream, from_layers, num_classes):
        super().__init__()
        self.from_layers = list(from_layers)
        self.uppers = nn.ModuleList(upper_layers(upstream, layer) for layer in self.from_layers)
        dim = self.uppers[0].dim
        self.weight = nn.Parameter(torch.zeros(len(self.from_layers), dim, num_classes))
        self.bias = nn.Parameter(torch.zeros(len(self.from_layers), num_classes))

    def _members(self, members):
        return list(range(len(self.from_layers))) if members is None else list(members)

    def pooled(self, hidden, lengths, pooling, members=None):
        """Segments ``[F, S, D]`` of the last layer each probe computes from its hidden state.

        ``hidden``: all upstream hidden states (list or stacked) of ``[B, T, D]``; ``lengths [B]``: the
        frames the blocks attend to; ``pooling``: per utterance a ``[S_b, T_b]`` matrix from
        ``segment_pooling_matrix``; segments of the batch are concatenated in utterance order.
        """
        pooled = []
        for index in self._members(members):
            top = self.uppers[index](hidden[self.from_layers[index]], lengths)
            pooled.append(pool_batch(top, pooling))
        return torch.stack(pooled)

    def forward(self, pooled, members=None):
        """Logits ``[F, S, C]`` of the heads on pooled segments ``[F, S, D]``."""
        members = self._members(members)
        return pooled @ self.weight[members] + self.bias[members].unsqueeze(1)

    def margins(self, pooled, labels, members=None):
        """Geometric margins ``[F, S]`` of the heads on pooled segments ``[F, S, D]`` with labels ``[S]``."""
        members = self._members(members)
        return geometric_margins(pooled, labels, self.weight[members], self.bias[members])
