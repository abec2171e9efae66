"""Frame-level tasks: one sample per labelled 10 ms frame of a fixed grid (s3prl's ``phone_linear`` convention).

Frame k of an utterance is the segment ``[k·10 ms, (k+1)·10 ms)``; its label is that of the
interval of the alignment tier that holds the frame's centre ``(k + 0.5)·10 ms``. The grid is
the same for every upstream, whatever its frame rate: each frame is later paired with the one
upstream frame covering its centre (``features.pooling``, pooling ``centre``), so every upstream
is scored on exactly the same labels. Length filters do not apply to frames; silence labels do.
``frames_per_utterance`` keeps a seeded random subset of each utterance's labelled frames (the
same subset whichever split the utterance lands in).
"""

from __future__ import annotations

import zlib
from collections import Counter
from dataclasses import replace

import numpy as np

FRAME_SECONDS = 0.010
_GRID_DECIMALS = 6  # frame positions are rounded to 1e-6 frame before ceil, absorbing float noise


def frames_in_intervals(starts: np.ndarray, ends: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(frame_index, interval_index)`` of every grid frame whose centre lies in an interval ``[start, end)``.

    Frames come in interval order (ascending time for non-overlapping intervals).
    """
    first = _first_frame_at_or_after(np.asarray(starts, dtype=np.float64))
    stop = _first_frame_at_or_after(np.asarray(ends, dtype=np.float64))
    counts = np.maximum(stop - first, 0)
    interval_index = np.repeat(np.arange(counts.size), counts)
    offsets = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
    return first[interval_index] + offsets, interval_index


def _first_frame_at_or_after(times: np.ndarray) -> np.ndarray:
    """The smallest k with ``(k + 0.5)·FRAME_SECONDS >= time``."""
    return np.ceil(np.round(times / FRAME_SECONDS - 0.5, _GRID_DECIMALS)).astype(np.int64)


def frame_span(frame_index: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(starts, ends)`` in seconds of grid frames."""
    starts = np.asarray(frame_index, dtype=np.float64) * FRAME_SECONDS
    return starts, starts + FRAME_SECONDS


def sampled_frames(num_frames: int, limit: int | None, seed: int, utterance_id: str) -> np.ndarray:
    """Ascending indices of at most ``limit`` of ``num_frames`` frames, drawn with a generator seeded by
    ``seed`` and the utterance id (all frames when ``limit`` is None or not below ``num_frames``)."""
    if limit is None or num_frames <= limit:
        return np.arange(num_frames)
    rng = np.random.default_rng([seed, zlib.crc32(utterance_id.encode())])
    return np.sort(rng.choice(num_frames, size=limit, replace=False))


def frame_segments(utterance, options, dropped: Counter):
    """An utterance's intervals turned into its labelled grid frames (a copy of the same dataclass).

    Frames in silence intervals are dropped and counted as ``silence``; frames left out by
    ``options.frames_per_utterance`` are counted as ``not_sampled``.
    """
    labels = [options.normalize_label(raw) for raw in utterance.labels]
    frame_index, interval_index = frames_in_intervals(utterance.starts, utterance.ends)
    speech = np.array([labels[i] is not None for i in interval_index], dtype=bool)
    dropped["silence"] += int((~speech).sum())
    frame_index, interval_index = frame_index[speech], interval_index[speech]
    keep = sampled_frames(frame_index.size, options.frames_per_utterance, options.seed, utterance.utterance.id)
    if keep.size < frame_index.size:
        dropped["not_sampled"] += int(frame_index.size - keep.size)
    frame_index, interval_index = frame_index[keep], interval_index[keep]
    starts, ends = frame_span(frame_index)
    return replace(
        utterance,
        starts=starts,
        ends=ends,
        labels=[labels[i] for i in interval_index],
        words=None if utterance.words is None else utterance.words[interval_index],
    )
