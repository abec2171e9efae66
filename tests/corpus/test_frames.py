"""The frame task: labelled 10 ms frames of a fixed grid, read from a TextGrid phones tier."""

from collections import Counter

import numpy as np
import pytest
from praatio import textgrid

from s3prl_mi_probe.corpus.frames import FRAME_SECONDS, frames_in_intervals, sampled_frames
from s3prl_mi_probe.corpus.task import TaskOptions, build_task


def test_a_frame_belongs_to_the_interval_holding_its_centre():
    # Centres lie at 5, 15, 25, 35, 45, 55, 65 ms: [0, 35) ms holds frames 0-2, [35, 50) frames 3-4,
    # [50, 52) no centre at all, [52, 70) frames 5 and 6.
    frame_index, interval_index = frames_in_intervals(
        np.array([0.0, 0.035, 0.050, 0.052]), np.array([0.035, 0.050, 0.052, 0.070])
    )
    assert frame_index.tolist() == [0, 1, 2, 3, 4, 5, 6]
    assert interval_index.tolist() == [0, 0, 0, 1, 1, 3, 3]


def test_grid_aligned_intervals_give_back_their_frames_despite_float_noise():
    # Runs of equal frame labels written as k/100 s (what prepare libriphone writes) read back exactly.
    boundaries = np.array([0, 3, 4, 11, 250, 251])
    starts, ends = boundaries[:-1] / 100 + 1e-12, boundaries[1:] / 100 - 1e-12
    frame_index, interval_index = frames_in_intervals(starts, ends)
    assert frame_index.tolist() == list(range(251))
    assert np.bincount(interval_index).tolist() == np.diff(boundaries).tolist()


def test_sampled_frames_are_seeded_per_utterance_and_sorted():
    first = sampled_frames(100, 10, seed=0, utterance_id="a")
    assert first.tolist() == sorted(set(first.tolist())) and first.size == 10
    assert np.array_equal(first, sampled_frames(100, 10, seed=0, utterance_id="a"))
    assert not np.array_equal(first, sampled_frames(100, 10, seed=0, utterance_id="b"))
    assert not np.array_equal(first, sampled_frames(100, 10, seed=1, utterance_id="a"))
    assert sampled_frames(7, 10, seed=0, utterance_id="a").tolist() == list(range(7))
    assert sampled_frames(7, None, seed=0, utterance_id="a").tolist() == list(range(7))


def _tier_ms(utterance, tier):
    """The intervals of a tier in whole milliseconds (the tone corpus times are whole milliseconds)."""
    grid = textgrid.openTextgrid(str(utterance.alignment), includeEmptyIntervals=False)
    return [(round(e.start * 1000), round(e.end * 1000), e.label) for e in grid.getTier(tier).entries]


def _centre_ms(start_seconds):
    return round(start_seconds * 1000) + 5


def test_frame_task_labels_every_frame_by_the_phone_at_its_centre(tone_manifest):
    silence = TaskOptions(task="phone").silence_labels  # the phone task's, to compare class sets
    task = build_task(tone_manifest, TaskOptions(task="frame_phone", min_count=1, silence_labels=silence))
    phones = build_task(tone_manifest, TaskOptions(task="phone", min_count=1))
    assert sorted(task.classes) == sorted(phones.classes)
    silence_frames = 0
    for utterance in task.splits["train"]:
        assert np.allclose(utterance.ends - utterance.starts, FRAME_SECONDS)
        intervals = _tier_ms(utterance.utterance, "phones")
        for start, label in zip(utterance.starts, utterance.labels):
            [holding] = [name for low, high, name in intervals if low <= _centre_ms(start) < high]
            assert task.classes[label] == holding
        centres = 10 * np.arange(1000) + 5
        silence_frames += sum(
            int(((centres >= low) & (centres < high)).sum()) for low, high, name in intervals if name == "sil"
        )
    # Frames are dropped only as silence: the length filters do not apply to frames.
    assert task.dropped["train"]["silence"] == silence_frames > 0
    assert task.dropped["train"]["too_short"] == task.dropped["train"]["too_long"] == 0
    # A 60-160 ms phone gives 6-16 frames: many more samples than segments.
    assert task.label_counts("train").sum() > 6 * phones.label_counts("train").sum()


def test_silence_is_a_class_by_default_as_in_phone_linear(tone_manifest):
    for options in (TaskOptions(task="frame_phone", min_count=1), TaskOptions(task="frame_phone", silence_labels=())):
        task = build_task(tone_manifest, options)
        assert "sil" in task.classes and task.dropped["train"]["silence"] == 0


def test_frames_per_utterance_keeps_a_seeded_subset(tone_manifest):
    full = build_task(tone_manifest, TaskOptions(task="frame_phone", min_count=1))
    sampled = build_task(tone_manifest, TaskOptions(task="frame_phone", min_count=1, frames_per_utterance=5))
    again = build_task(tone_manifest, TaskOptions(task="frame_phone", min_count=1, frames_per_utterance=5))
    for split in ("train", "dev", "test"):
        assert all(len(utterance.labels) == 5 for utterance in sampled.splits[split])
        for part, whole, repeat in zip(sampled.splits[split], full.splits[split], again.splits[split]):
            assert set(part.starts.round(3)) <= set(whole.starts.round(3))
            assert np.array_equal(part.starts, repeat.starts)
        kept = sampled.label_counts(split).sum()
        assert sampled.dropped[split]["not_sampled"] == full.label_counts(split).sum() - kept


def test_frame_options_are_checked():
    with pytest.raises(ValueError, match="frames_per_utterance"):
        TaskOptions(task="phone", frames_per_utterance=10)
    with pytest.raises(ValueError, match="frames_per_utterance"):
        TaskOptions(task="frame_phone", frames_per_utterance=0)


def test_word_types_follow_each_frame(tone_manifest):
    task = build_task(tone_manifest, TaskOptions(task="frame_phone", min_count=1))
    utterance = task.splits["train"][0]
    words = _tier_ms(utterance.utterance, "words")
    for start, word in zip(utterance.starts, utterance.words):
        assert word == next(name for low, high, name in words if low <= _centre_ms(start) < high)
    assert Counter(utterance.words).most_common(1)[0][1] > 1


def test_stats_count_the_frames_left_out_by_sampling(tone_manifest):
    from s3prl_mi_probe.corpus.stats import manifest_stats

    text = manifest_stats(tone_manifest, TaskOptions(task="frame_phone", min_count=1, frames_per_utterance=5))
    header = next(line for line in text.splitlines() if line.startswith("split"))
    assert header.split() == [
        "split",
        "segments",
        "silence",
        "too_short",
        "too_long",
        "rare_class",
        "not_sampled",
        "kept",
        "kept_%",
    ]
