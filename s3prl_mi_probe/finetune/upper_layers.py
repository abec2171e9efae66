"""The upper part of an s3prl transformer upstream, as a trainable copy that replays it from layer l.

s3prl's experts for HuBERT, wav2vec 2.0, WavLM and data2vec return ``hidden_states``: entry k < L
is the input of transformer block k (hooked time-major, returned batch-major), entry L the
encoder's output, which for pre-LN models (``layer_norm_first``) has passed the encoder's final
LayerNorm. Blocks run time-major with a key padding mask that each model derives from the wav
lengths in its own way (:func:`hidden_states_with_lengths` reads it off the running model). WavLM
computes a relative position bias in block 0 and hands it to every later block.
"""

import math
from copy import deepcopy

import torch
from torch import nn

from s3prl_mi_probe.toolkit.models import transformer_classes

SUPPORTED_FAMILIES = ("hubert", "wav2vec2", "wavlm", "data2vec")


class UnsupportedUpstream(ValueError):
    """The upstream is not one whose transformer blocks :func:`upper_layers` can copy."""


def upstream_family(upstream):
    """The family (one of SUPPORTED_FAMILIES) of an s3prl upstream expert, or UnsupportedUpstream."""
    model = getattr(upstream, "model", None)
    for family, (model_class, block_class) in transformer_classes().items():
        if (
            isinstance(model, model_class)
            and all(isinstance(block, block_class) for block in model.encoder.layers)
            and getattr(upstream, "feature_selection", None) is None
        ):
            return family
    raise UnsupportedUpstream(
        f"cannot fine-tune the upper layers of {type(upstream).__module__}.{type(upstream).__name__}"
        f"{f' (model {type(model).__name__})' if model is not None else ''}: supported are s3prl's "
        f"transformer experts of the families {', '.join(SUPPORTED_FAMILIES)} with their default hidden_states"
    )


class PaddingRecorder:
    """Records, at every forward of ``upstream``, the valid frames ``[B]`` its transformer blocks attend to.

    They are read off the key padding mask the model hands its encoder (each family derives it from
    the wav lengths differently); all frames are valid where it passes none. s3prl's Runner calls
    the upstream before the downstream on each batch, so the fine-tune probe reads the batch's
    lengths here. Raises UnsupportedUpstream for upstreams :func:`upper_layers` cannot copy.
    """

    def __init__(self, upstream):
        upstream_family(upstream)
        self.mask = None
        self.handle = upstream.model.encoder.register_forward_pre_hook(self._capture, with_kwargs=True)

    def _capture(self, module, args, kwargs):
        self.mask = kwargs.get("padding_mask", args[1] if len(args) > 1 else None)

    def lengths(self, hidden):
        """Valid frames ``[B]`` of the last forward, whose hidden states ``hidden`` are ``[B, T, D]``."""
        batch, frames = hidden.shape[:2]
        if self.mask is None:
            return torch.full((batch,), frames, dtype=torch.long, device=hidden.device)
        if self.mask.size(0) != batch:
            raise RuntimeError(f"the recorded padding mask is for {self.mask.size(0)} utterances, not {batch}")
        return (~self.mask[:, :frames]).sum(dim=1).to(hidden.device)

    def remove(self):
        """Stop recording."""
        self.handle.remove()


def hidden_states_with_lengths(upstream, wavs):
    """Run ``upstream`` on ``wavs``: its ``hidden_states`` list and the valid frames ``[B]`` its blocks attend to."""
    recorder = PaddingRecorder(upstream)
    try:
        hidden = list(upstream(wavs)["hidden_states"])
    finally:
        recorder.remove()
    return hidden, recorder.lengths(hidden[0])


class RelativePositionBias(nn.Module):
    """WavLM's bucketed relative position bias ``[B·H, T, T]``, from a copy of block 0's embedding.

    Distances below a quarter of the buckets get a bucket each; longer ones share log-spaced buckets
    up to ``max_distance``; the sign of the distance picks one half of the buckets.
    """

    def __init__(self, attention):
        super().__init__()
        self.embedding = deepcopy(attention.relative_attention_bias).requires_grad_(True)
        self.num_buckets = attention.num_buckets
        self.max_distance = attention.max_distance

    def buckets(self, length):
        """Bucket index ``[T, T]`` of key position minus query position."""
        positions = torch.arange(length, device=self.embedding.weight.device)
        distance = positions[None, :] - positions[:, None]
        half = self.num_buckets // 2
        exact = half // 2
        magnitude = distance.abs()
        spread = torch.log(magnitude.float() / exact) / math.log(self.max_distance / exact) * (half - exact)
        far = (exact + spread.to(torch.long)).clamp(max=half - 1)
        return (distance > 0).long() * half + torch.where(magnitude < exact, magnitude, far)

    def forward(self, length, batch_size):
        heads_first = self.embedding(self.buckets(length)).permute(2, 0, 1)  # [H, T, T]
        return heads_first.repeat(batch_size, 1, 1)


class UpperLayers(nn.Module):
    """Trainable copies of the transformer blocks above one hidden state, without layer drop.

    ``forward(hidden [B, T, D], lengths [B]) -> [B, T, D]`` maps the upstream's hidden state
    ``from_layer`` to its last hidden state, attending only to the first ``lengths[b]`` frames.
    """

    def __init__(self, blocks, dim, final_norm=None, position_bias=None, passes_position_bias=False):
        super().__init__()
        self.blocks = nn.ModuleList(blocks)
        self.dim = dim
        self.final_norm = final_norm
        self.position_bias = position_bias
        self.passes_position_bias = passes_position_bias

    def forward(self, hidden, lengths):
        if not self.blocks:
            return hidden
        batch, frames = hidden.shape[:2]
        padding = torch.arange(frames, device=hidden.device)[None, :] >= lengths.to(hidden.device)[:, None]
        bias = None if self.position_bias is None else self.position_bias(frames, batch)
        x = hidden.transpose(0, 1)
        for block in self.blocks:
            if self.passes_position_bias:
                x, _, bias = block(x, self_attn_padding_mask=padding, need_weights=False, pos_bias=bias)
            else:
                x, _ = block(x, self_attn_padding_mask=padding, need_weights=False)
        x = x.transpose(0, 1)
        return x if self.final_norm is None else self.final_norm(x)


def _trainable_copy(module):
    """A deep copy with its own trainable parameters and none of s3prl's hidden-state hooks
    (a deep copy keeps forward hooks, which would feed the upstream's list of hidden states)."""
    copy = deepcopy(module)
    for submodule in copy.modules():
        submodule._forward_hooks.clear()
    return copy.requires_grad_(True)


def upper_layers(upstream, from_layer):
    """Trainable copies of what maps ``hidden_states[from_layer]`` of ``upstream`` to ``hidden_states[L]``.

    That is blocks ``from_layer .. L-1`` (0-based; the paper's l+1..L), the final LayerNorm of pre-LN
    models and, for WavLM above block 0, the relative position bias of block 0. ``from_layer == L``
    gives an identity module. Raises UnsupportedUpstream for other upstreams.
    """
    family = upstream_family(upstream)
    encoder = upstream.model.encoder
    num_blocks = len(encoder.layers)
    if not 0 <= from_layer <= num_blocks:
        raise ValueError(f"from_layer must be in 0..{num_blocks} for this upstream, got {from_layer}")
    blocks = [_trainable_copy(block) for block in encoder.layers[from_layer:]]
    final_norm = _trainable_copy(encoder.layer_norm) if blocks and encoder.layer_norm_first else None
    shares_bias = family == "wavlm" and encoder.relative_position_embedding and 0 < from_layer < num_blocks
    position_bias = RelativePositionBias(encoder.layers[0].self_attn) if shares_bias else None
    return UpperLayers(blocks, encoder.embedding_dim, final_norm, position_bias, passes_position_bias=family == "wavlm")
