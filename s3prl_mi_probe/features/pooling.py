"""Segment pooling: the representation of a labelled time segment from an upstream's frames.

Two modes (a task's ``TaskKind.pooling``): ``mean`` (segments of the phone and word tasks) averages
the frames whose centre lies in the segment; ``centre`` (frame tasks) takes the one frame that covers
the segment's centre.
"""

import numpy as np
import torch

from s3prl_mi_probe.corpus.audio import SAMPLE_RATE

POOLING_MODES = ("mean", "centre")
_SAMPLE_EPSILON = 1e-6  # a centre on a frame boundary belongs to the later frame, despite float noise


def valid_frames(num_samples, downsample_rate, available):
    """Frames of an utterance inside a padded batch of ``available`` frames (s3prl's rule)."""
    return min(round(num_samples / downsample_rate), available)


def segment_pooling_matrix(starts, ends, num_frames, downsample_rate, sample_rate=SAMPLE_RATE):
    """Averaging weights ``[S, num_frames]`` of each segment ``[start, end)`` (seconds) over frames.

    Frame k covers samples ``[k·r, (k+1)·r)``; a segment averages the frames whose centre lies in
    ``[start, end)``, or takes the frame nearest to its midpoint when no centre falls inside.
    """
    starts = torch.as_tensor(np.asarray(starts, dtype=np.float64))
    ends = torch.as_tensor(np.asarray(ends, dtype=np.float64))
    frame_seconds = downsample_rate / sample_rate
    centres = (torch.arange(num_frames, dtype=torch.float64) + 0.5) * frame_seconds
    inside = (centres[None, :] >= starts[:, None]) & (centres[None, :] < ends[:, None])
    empty = ~inside.any(dim=1)
    if empty.any():
        midpoints = (starts[empty] + ends[empty]) / 2
        nearest = torch.round(midpoints / frame_seconds - 0.5).long().clamp(0, num_frames - 1)
        inside[empty.nonzero(as_tuple=True)[0], nearest] = True
    weights = inside.float()
    return weights / weights.sum(dim=1, keepdim=True)


def centre_frame_indices(starts, ends, num_frames, downsample_rate, sample_rate=SAMPLE_RATE):
    """Per segment ``[start, end)`` (seconds), the frame covering its centre (frame k covers samples
    ``[k·r, (k+1)·r)``), clamped to the last of ``num_frames`` frames as s3prl pads labels past the end."""
    centres = (np.asarray(starts, dtype=np.float64) + np.asarray(ends, dtype=np.float64)) / 2 * sample_rate
    index = np.floor(centres / downsample_rate + _SAMPLE_EPSILON).astype(np.int64)
    return np.clip(index, 0, num_frames - 1)


def centre_pooling_matrix(starts, ends, num_frames, downsample_rate, sample_rate=SAMPLE_RATE):
    """One-hot weights ``[S, num_frames]``: each segment takes the frame covering its centre, exactly."""
    index = torch.as_tensor(centre_frame_indices(starts, ends, num_frames, downsample_rate, sample_rate))
    weights = torch.zeros(index.numel(), num_frames)
    weights[torch.arange(index.numel()), index] = 1.0
    return weights


def pool_segments(hidden, pooling_matrix):
    """Pool frames ``[..., T, D]`` into segments ``[..., S, D]`` with a matrix from segment_pooling_matrix."""
    return torch.matmul(pooling_matrix.to(hidden.device, hidden.dtype), hidden)


def batch_pooling_matrices(spans, frame_counts, downsample_rate, mode="mean"):
    """Per utterance of a batch, the pooling matrix ``[S_b, frames_b]`` of its ``(starts, ends)`` segments."""
    if mode not in POOLING_MODES:
        raise ValueError(f"pooling must be one of {', '.join(POOLING_MODES)}, not {mode!r}")
    build = centre_pooling_matrix if mode == "centre" else segment_pooling_matrix
    return [build(starts, ends, count, downsample_rate) for (starts, ends), count in zip(spans, frame_counts)]


def pool_batch(hidden, matrices):
    """Segments ``[..., S, D]`` of a padded batch ``[..., B, T, D]``, utterances concatenated in batch order.

    ``matrices`` holds one matrix per utterance (:func:`batch_pooling_matrices`); its width is the
    utterance's count of valid frames.
    """
    return torch.cat(
        [pool_segments(hidden[..., index, : matrix.size(1), :], matrix) for index, matrix in enumerate(matrices)],
        dim=-2,
    )
