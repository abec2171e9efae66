"""s3prl's model classes that this package builds or copies itself (not through the hub)."""

import copy

from s3prl_mi_probe.toolkit.activation import activate


def transformer_classes():
    """``{family: (model class, transformer block class)}`` of the s3prl experts whose blocks fine-tuning copies."""
    activate()
    from s3prl.upstream.data2vec.data2vec_model import Data2VecAudioModel
    from s3prl.upstream.hubert.hubert_model import HubertModel
    from s3prl.upstream.wav2vec2.wav2vec2_model import (
        TransformerSentenceEncoderLayer,
        Wav2Vec2Model,
    )
    from s3prl.upstream.wavlm.WavLM import TransformerSentenceEncoderLayer as WavLMLayer
    from s3prl.upstream.wavlm.WavLM import WavLM

    return {
        "hubert": (HubertModel, TransformerSentenceEncoderLayer),
        "wav2vec2": (Wav2Vec2Model, TransformerSentenceEncoderLayer),
        "wavlm": (WavLM, WavLMLayer),
        "data2vec": (Data2VecAudioModel, TransformerSentenceEncoderLayer),
    }


def hubert_model(model_cfg, task_cfg):
    """s3prl's HuBERT from the ``model_cfg`` and ``task_cfg`` dicts of its converted checkpoints (random weights)."""
    activate()
    from s3prl.upstream.hubert.hubert_model import (
        HubertConfig,
        HubertModel,
        HubertPretrainingConfig,
    )
    from s3prl.upstream.utils import merge_with_parent

    return HubertModel(
        merge_with_parent(HubertConfig, model_cfg), merge_with_parent(HubertPretrainingConfig, task_cfg), [None]
    )


def apc_model(feat_dim, paras):
    """s3prl's APC over ``feat_dim`` features with the ``model.paras`` of its config (random weights)."""
    activate()
    from s3prl.upstream.apc.apc import APC

    return APC(feat_dim, **paras)


def apc_preprocessor(audio_config):
    """s3prl's APC feature extractor for the ``data.audio`` part of its config (waveform ``[C, T]`` -> ``[T, D]``)."""
    activate()
    from s3prl.upstream.apc.audio import create_transform

    preprocessor, _ = create_transform(copy.deepcopy(audio_config))
    return preprocessor
