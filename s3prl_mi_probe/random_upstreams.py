"""Randomly initialised upstreams saved in s3prl's own checkpoint formats.

They are controls (what a probe finds in an untrained network) and test/benchmark upstreams that
need no download; s3prl loads them through its ordinary ``*_local`` entries, e.g.
``-u hubert_local -k tiny_hubert.pt``.
"""

import torch

# Seven conv layers whose strides multiply to 320 samples (20 ms), as in HuBERT.
_CONV_LAYERS = "[({dim}, 10, 5)] + [({dim}, 3, 2)] * 4 + [({dim}, 2, 2)] * 2"


def write_random_hubert(path, num_layers=2, dim=32, ffn_dim=None, heads=2, conv_dim=None, seed=0):
    """Write a random HuBERT as s3prl's converted checkpoint (loadable with ``hubert_local``).

    The defaults make a tiny model (~175 KB) with ``num_layers + 1`` hidden states; HuBERT Base
    is ``num_layers=12, dim=768, ffn_dim=3072, heads=12, conv_dim=512``.
    """
    from s3prl.upstream.hubert.hubert_model import HubertConfig, HubertModel, HubertPretrainingConfig
    from s3prl.upstream.utils import merge_with_parent

    task_cfg = {"label_rate": 50.0, "sample_rate": 16000, "normalize": False}
    model_cfg = {
        "label_rate": 50.0,
        "extractor_mode": "default",
        "conv_feature_layers": _CONV_LAYERS.format(dim=conv_dim or dim),
        "encoder_layers": num_layers,
        "encoder_embed_dim": dim,
        "encoder_ffn_embed_dim": ffn_dim or 2 * dim,
        "encoder_attention_heads": heads,
        "final_dim": max(dim // 2, 8),
        "conv_pos": 16,
        "conv_pos_groups": min(16, dim),
        "encoder_layerdrop": 0.0,
    }
    torch.manual_seed(seed)
    model = HubertModel(
        merge_with_parent(HubertConfig, model_cfg), merge_with_parent(HubertPretrainingConfig, task_cfg), [None]
    )
    checkpoint = {
        "task_cfg": task_cfg,
        "model_cfg": model_cfg,
        "model_weight": model.state_dict(),
        "dictionaries_symbols": [None],
    }
    torch.save(checkpoint, path)
    return path
