"""Randomly initialised upstreams saved in s3prl's own checkpoint formats.

They are controls (what a probe finds in an untrained network) and test/benchmark upstreams that
need no download; s3prl loads them through its ordinary ``*_local`` entries, e.g.
``-u hubert_local -k tiny_hubert.pt``. Every writer takes the same architecture options; the
defaults make a tiny model (2 layers, dim 32, ~200 KB) with ``num_layers + 1`` hidden states. The
Base models are ``num_layers=12, dim=768, ffn_dim=3072, heads=12, conv_dim=512``.
"""

import torch

# Seven conv layers whose strides multiply to 320 samples (20 ms), as in HuBERT.
_CONV_LAYERS = "[({dim}, 10, 5)] + [({dim}, 3, 2)] * 4 + [({dim}, 2, 2)] * 2"
_TASK_CFG = {"sample_rate": 16000, "normalize": False}


def _encoder_cfg(num_layers, dim, ffn_dim, heads, conv_dim, layer_norm_first):
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


def _seeded(seed, build):
    """``build()`` with torch's global generator seeded, leaving the caller's random state as it was."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return build()


def write_random_hubert(
    path, num_layers=2, dim=32, ffn_dim=None, heads=2, conv_dim=None, layer_norm_first=False, seed=0
):
    """Write a random HuBERT as s3prl's converted checkpoint (loadable with ``hubert_local``)."""
    from s3prl.upstream.hubert.hubert_model import (
        HubertConfig,
        HubertModel,
        HubertPretrainingConfig,
    )
    from s3prl.upstream.utils import merge_with_parent

    task_cfg = {**_TASK_CFG, "label_rate": 50.0}
    model_cfg = {
        **_encoder_cfg(num_layers, dim, ffn_dim, heads, conv_dim, layer_norm_first),
        "label_rate": 50.0,
        "final_dim": max(dim // 2, 8),
    }
    model = _seeded(
        seed,
        lambda: HubertModel(
            merge_with_parent(HubertConfig, model_cfg), merge_with_parent(HubertPretrainingConfig, task_cfg), [None]
        ),
    )
    checkpoint = {
        "task_cfg": task_cfg,
        "model_cfg": model_cfg,
        "model_weight": model.state_dict(),
        "dictionaries_symbols": [None],
    }
    torch.save(checkpoint, path)
    return path


def write_random_wav2vec2(
    path, num_layers=2, dim=32, ffn_dim=None, heads=2, conv_dim=None, layer_norm_first=False, seed=0
):
    """Write a random wav2vec 2.0 as s3prl's converted checkpoint (loadable with ``wav2vec2_local``).

    ``layer_norm_first=True`` makes the pre-LN variant (as wav2vec 2.0 Large LV-60).
    """
    from s3prl.upstream.utils import merge_with_parent
    from s3prl.upstream.wav2vec2.wav2vec2_model import Wav2Vec2Config, Wav2Vec2Model

    model_cfg = _encoder_cfg(num_layers, dim, ffn_dim, heads, conv_dim, layer_norm_first)
    model = _seeded(seed, lambda: Wav2Vec2Model(merge_with_parent(Wav2Vec2Config, model_cfg)))
    torch.save({"task_cfg": _TASK_CFG, "model_cfg": model_cfg, "model_weight": model.state_dict()}, path)
    return path


def write_random_data2vec(
    path, num_layers=2, dim=32, ffn_dim=None, heads=2, conv_dim=None, layer_norm_first=False, seed=0
):
    """Write a random data2vec (audio) as s3prl's converted checkpoint (loadable with ``data2vec_local``).

    The loader drops pretraining modules and expects an ``_ema`` entry among the weights.
    """
    from s3prl.upstream.data2vec.data2vec_model import (
        Data2VecAudioConfig,
        Data2VecAudioModel,
    )
    from s3prl.upstream.utils import merge_with_parent

    model_cfg = _encoder_cfg(num_layers, dim, ffn_dim, heads, conv_dim, layer_norm_first)
    model = _seeded(seed, lambda: Data2VecAudioModel(merge_with_parent(Data2VecAudioConfig, model_cfg)))
    model.remove_pretraining_modules()
    weights = {**model.state_dict(), "_ema": {}}
    torch.save({"task_cfg": _TASK_CFG, "model_cfg": model_cfg, "model_weight": weights}, path)
    return path


def write_random_wavlm(
    path, num_layers=2, dim=32, ffn_dim=None, heads=2, conv_dim=None, layer_norm_first=False, seed=0
):
    """Write a random WavLM as ``{"cfg", "model"}`` (loadable with ``wavlm_local``).

    It has WavLM's gated relative position bias (computed in the first layer, shared by all).
    """
    from s3prl.upstream.wavlm.WavLM import WavLM, WavLMConfig

    cfg = {
        **_encoder_cfg(num_layers, dim, ffn_dim, heads, conv_dim, layer_norm_first),
        **_TASK_CFG,
        "relative_position_embedding": True,
        "num_buckets": 32,
        "max_distance": 128,
        "gru_rel_pos": True,
    }
    model = _seeded(seed, lambda: WavLM(WavLMConfig(cfg)))
    torch.save({"cfg": cfg, "model": model.state_dict()}, path)
    return path
