"""What an s3prl upstream returns: its list of hidden states, their widths and its frame rate."""

import torch

from s3prl_mi_probe.corpus.audio import SAMPLE_RATE


def hidden_state_list(features, feature_selection="hidden_states"):
    """The list of per-layer tensors ``[B, T, D_l]`` that an upstream returned under a key."""
    if feature_selection not in features:
        raise ValueError(f"the upstream returns no {feature_selection!r}; choose -s among {sorted(features.keys())}")
    selected = features[feature_selection]
    if isinstance(selected, dict):
        return list(selected.values())
    if isinstance(selected, (list, tuple)):
        return list(selected)
    return [selected]


def describe_upstream(upstream, device, feature_selection="hidden_states"):
    """``(layer_dims, downsample_rate)`` of an upstream, from one forward of 1 s of noise."""
    upstream.eval()
    with torch.no_grad():
        layers = hidden_state_list(upstream([torch.randn(SAMPLE_RATE, device=device)]), feature_selection)
    if hasattr(upstream, "get_downsample_rates"):
        rate = upstream.get_downsample_rates(feature_selection)
    else:
        rate = round(SAMPLE_RATE / layers[0].size(1))
    return [layer.size(-1) for layer in layers], rate
