"""Random wav2vec 2.0, data2vec and WavLM upstreams in s3prl's checkpoint formats, for the fine-tuning tests.

The options are those of :func:`s3prl_mi_probe.demo.random_upstreams.write_random_hubert` (the
HuBERT writer, which the demo uses): a tiny model by default.
"""

import torch

from s3prl_mi_probe.demo.random_upstreams import TASK_CONFIG, encoder_config, seeded
from s3prl_mi_probe.toolkit import activate


def write_random_wav2vec2(
    path, num_layers=2, dim=32, ffn_dim=None, heads=2, conv_dim=None, layer_norm_first=False, seed=0
):
    """Write a random wav2vec 2.0 as s3prl's converted checkpoint (loadable with ``wav2vec2_local``).

    ``layer_norm_first=True`` makes the pre-LN variant (as wav2vec 2.0 Large LV-60).
    """
    activate()
    from s3prl.upstream.utils import merge_with_parent
    from s3prl.upstream.wav2vec2.wav2vec2_model import Wav2Vec2Config, Wav2Vec2Model

    model_cfg = encoder_config(num_layers, dim, ffn_dim, heads, conv_dim, layer_norm_first)
    model = seeded(seed, lambda: Wav2Vec2Model(merge_with_parent(Wav2Vec2Config, model_cfg)))
    torch.save({"task_cfg": TASK_CONFIG, "model_cfg": model_cfg, "model_weight": model.state_dict()}, path)
    return path


def write_random_data2vec(
    path, num_layers=2, dim=32, ffn_dim=None, heads=2, conv_dim=None, layer_norm_first=False, seed=0
):
    """Write a random data2vec (audio) as s3prl's converted checkpoint (loadable with ``data2vec_local``).

    The loader drops pretraining modules and expects an ``_ema`` entry among the weights.
    """
    activate()
    from s3prl.upstream.data2vec.data2vec_model import (
        Data2VecAudioConfig,
        Data2VecAudioModel,
    )
    from s3prl.upstream.utils import merge_with_parent

    model_cfg = encoder_config(num_layers, dim, ffn_dim, heads, conv_dim, layer_norm_first)
    model = seeded(seed, lambda: Data2VecAudioModel(merge_with_parent(Data2VecAudioConfig, model_cfg)))
    model.remove_pretraining_modules()
    weights = {**model.state_dict(), "_ema": {}}
    torch.save({"task_cfg": TASK_CONFIG, "model_cfg": model_cfg, "model_weight": weights}, path)
    return path


def write_random_wavlm(
    path, num_layers=2, dim=32, ffn_dim=None, heads=2, conv_dim=None, layer_norm_first=False, seed=0
):
    """Write a random WavLM as ``{"cfg", "model"}`` (loadable with ``wavlm_local``).

    It has WavLM's gated relative position bias (computed in the first layer, shared by all).
    """
    activate()
    from s3prl.upstream.wavlm.WavLM import WavLM, WavLMConfig

    cfg = {
        **encoder_config(num_layers, dim, ffn_dim, heads, conv_dim, layer_norm_first),
        **TASK_CONFIG,
        "relative_position_embedding": True,
        "num_buckets": 32,
        "max_distance": 128,
        "gru_rel_pos": True,
    }
    model = seeded(seed, lambda: WavLM(WavLMConfig(cfg)))
    torch.save({"cfg": cfg, "model": model.state_dict()}, path)
    return path
