"""A Featurizer for s3prl's Runner that hands the downstream every hidden state, not a weighted sum."""

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from s3prl_mi_probe.features.hidden_states import describe_upstream, hidden_state_list
from s3prl_mi_probe.features.pooling import valid_frames


class LayerStack(NamedTuple):
    """Hidden states of a batch: ``hidden [L, B, T, D]`` (zero padded) and valid ``lengths [B]``."""

    hidden: torch.Tensor
    lengths: torch.Tensor


class AllLayerFeaturizer(nn.Module):
    """Selects every hidden state (or the one chosen by ``-l``) and stacks them for the expert.

    Has the interfaces the Runner checks (``output_dim``, ``downsample_rate``) and no parameters.
    Layers of different widths are zero padded to the widest (``output_dim``).
    """

    def __init__(self, upstream, feature_selection="hidden_states", layer_selection=None, upstream_device="cpu"):
        super().__init__()
        self.feature_selection = feature_selection
        all_dims, self.downsample_rate = describe_upstream(upstream, upstream_device, feature_selection)
        num_layers = len(all_dims)
        if layer_selection is None:
            self.layer_ids = list(range(num_layers))
        elif -num_layers <= layer_selection < num_layers:
            self.layer_ids = [layer_selection % num_layers]
        else:
            raise ValueError(f"-l {layer_selection} is out of range: the upstream has {num_layers} hidden states")
        self.layer_dims = [all_dims[k] for k in self.layer_ids]
        self.output_dim = max(self.layer_dims)

    def forward(self, wavs, features):
        layers = hidden_state_list(features, self.feature_selection)
        selected = [F.pad(layers[k], (0, self.output_dim - layers[k].size(-1))) for k in self.layer_ids]
        hidden = torch.stack(selected, dim=0)
        lengths = [valid_frames(len(wav), self.downsample_rate, hidden.size(2)) for wav in wavs]
        return LayerStack(hidden=hidden, lengths=torch.tensor(lengths, device=hidden.device))
