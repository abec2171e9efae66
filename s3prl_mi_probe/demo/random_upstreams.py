"""Randomly initialised upstreams saved in s3prl's own checkpoint formats.

They are controls (what a probe finds in an untrained network) and demo upstreams that need no
download; s3prl loads them through its ordinary ``*_local`` entries, e.g.
``-u hubert_local -k tiny_hubert.pt``. The defaults make a tiny model (2 layers, dim 32, ~200 KB)
with ``num_layers + 1`` hidden states. The Base models are ``num_layers=12, dim=768, ffn_dim=3072,
heads=12, conv_dim=512``. :func:`encoder_config` and :func:`seeded` serve writers of the other
families' formats too (the tests' wav2vec 2.0, data2vec and WavLM).
"""

import torch

from s3prl_mi_probe.toolkit.models import hubert_model

# Seven conv layers whose strides multiply to 320 samples (20 ms), as in HuBERT.
_CONV_LAYERS = "[({dim}, 10, 5)] + [({dim}, 3, 2)] * 4 + [({dim}, 2, 2)] * 2"
TASK_CONFIG = {"sample_rate": 16000, "normalize": False}  # the task_cfg of s3prl's converted checkpoints


def encoder_config(num_layers, dim, ffn_dim, heads, conv_dim, layer_norm_first):
    """The architecture fields that fairseq-style configs (and WavLM's) share."""
    return {
        "extractor_mode": "default",
        "conv_feature_layers": _CONV_LAYERS.format(dim=conv_dim or dim),
        "encoder_layers": num_layers,
        "encoder_embed_dim": dim,
        "encoder_ffn_embed_dim": ffn_dim or 2 * dim,
        "encoder_attention_heads": heads,
        "layer_norm_first": layer_norm_first,
        "conv_pos": 16,
        "conv_pos_groups": min(16, dim),
        "encoder_layerdrop": 0.0,
    }


def seeded(seed, build):
    """``build()`` with torch's global generator seeded, leaving the caller's random state as it was."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return build()


def write_random_hubert(
    path, num_layers=2, dim=32, ffn_dim=None, heads=2, conv_dim=None, layer_norm_first=False, seed=0
):
    """Write a random HuBERT as s3prl's converted checkpoint (loadable with ``hubert_local``)."""
    task_cfg = {**TASK_CONFIG, "label_rate": 50.0}
    model_cfg = {
        **encoder_config(num_layers, dim, ffn_dim, heads, conv_dim, layer_norm_first),
        "label_rate": 50.0,
        "final_dim": max(dim // 2, 8),
    }
    model = seeded(seed, lambda: hubert_model(model_cfg, task_cfg))
    checkpoint = {
        "task_cfg": task_cfg,
        "model_cfg": model_cfg,
        "model_weight": model.state_dict(),
        "dictionaries_symbols": [None],
    }
    torch.save(checkpoint, path)
    return path
