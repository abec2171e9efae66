"""A tone corpus: synthetic WAV + TextGrid + manifest where each phone is a tone complex.

Exact alignments by construction and no download: the offline corpus of the tests (and of
``bench/check_s3prl_fork.py``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile

from s3prl_mi_probe.corpus.manifest import ManifestRow, write_manifest
from s3prl_mi_probe.corpus.textgrid import SILENCE, write_textgrid

PHONE_INVENTORY = ("AA", "B", "K", "IY", "S", "M", "N", "T", "UW", "L", "R", "EH", "F", "G", "OW", "Z")
WORD_NAMES = ("apple", "brick", "cloud", "drum", "echo", "fern", "glass", "hill")
DEFAULT_SPLIT_PATTERN = ("train", "train", "train", "dev", "test")


def write_tone_corpus(
    root: Path,
    *,
    num_utterances: int = 24,
    speakers: tuple[str, ...] = ("s1", "s2", "s3"),
    splits: tuple[str, ...] | None = None,
    shuffle_labels: bool = False,
    seed: int = 0,
    sample_rate: int = 16000,
    phone_classes: int = 6,
) -> Path:
    """Write a corpus where each phone is a tone complex and return its manifest path.

    Phone k has a fundamental between 200 and 2000 Hz (plus harmonics and a little
    noise), lasts 60-160 ms; silence is low noise. Words are fixed 2-3 phone
    sequences from a 5+ word vocabulary and every utterance says every word, so every
    split holds every class. ``splits`` is a pattern cycled over utterance index
    (default 60% train / 20% dev / 20% test); ``speakers`` are cycled likewise, and an
    empty tuple writes no speaker column. ``shuffle_labels`` permutes the non-silence
    labels of each tier across the whole corpus, keeping the intervals.
    """
    if not 1 <= phone_classes <= len(PHONE_INVENTORY):
        raise ValueError(f"phone_classes must be between 1 and {len(PHONE_INVENTORY)}")
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    phones = PHONE_INVENTORY[:phone_classes]
    fundamentals = dict(zip(phones, np.geomspace(200.0, 2000.0, phone_classes)))
    vocabulary = _vocabulary(phones)
    pattern = splits or DEFAULT_SPLIT_PATTERN

    layouts = [_utterance_layout(vocabulary, rng) for _ in range(num_utterances)]
    if shuffle_labels:
        _shuffle_tier_labels(layouts, "words", rng)
        _shuffle_tier_labels(layouts, "phones", rng)

    rows = []
    for index, (true_phones, tiers, duration) in enumerate(layouts):
        utterance_id = f"utt{index:03d}"
        audio = _synthesize(true_phones, fundamentals, duration, sample_rate, rng)
        audio_path = root / f"{utterance_id}.wav"
        soundfile.write(audio_path, audio, sample_rate, subtype="PCM_16")
        write_textgrid(root / f"{utterance_id}.TextGrid", tiers, duration)
        speaker = speakers[index % len(speakers)] if speakers else None
        split = pattern[index % len(pattern)]
        rows.append(ManifestRow(utterance_id, audio_path, root / f"{utterance_id}.TextGrid", split, speaker))
    return write_manifest(root, rows)


def _vocabulary(phones: tuple[str, ...]) -> dict[str, tuple[str, ...]]:
    """Words of alternately 2 and 3 phones, walking the inventory cyclically so all phones occur."""
    vocabulary, position = {}, 0
    for index in range(max(5, -(-2 * len(phones) // 5))):
        length = 2 + index % 2
        vocabulary[WORD_NAMES[index]] = tuple(phones[(position + offset) % len(phones)] for offset in range(length))
        position += length
    return vocabulary


def _utterance_layout(vocabulary: dict[str, tuple[str, ...]], rng: np.random.Generator):
    """Timing of one utterance: every word once plus 0-2 extra, with silences.

    Returns (phone intervals with true labels, tiers for the TextGrid, duration).
    """
    words = list(vocabulary) + list(rng.choice(list(vocabulary), size=rng.integers(0, 3)))
    rng.shuffle(words)
    word_tier, phone_tier = [], []
    time_ms = 0

    def add(tier: list, milliseconds: int, label: str) -> None:
        tier.append((time_ms / 1000, (time_ms + milliseconds) / 1000, label))

    def add_silence(milliseconds: int) -> None:
        nonlocal time_ms
        add(word_tier, milliseconds, SILENCE)
        add(phone_tier, milliseconds, SILENCE)
        time_ms += milliseconds

    add_silence(int(rng.integers(100, 300)))
    for position, word in enumerate(words):
        if position and rng.random() < 0.3:
            add_silence(int(rng.integers(50, 150)))
        word_start_ms = time_ms
        for phone in vocabulary[word]:
            length_ms = int(rng.integers(60, 160))
            add(phone_tier, length_ms, phone)
            time_ms += length_ms
        word_tier.append((word_start_ms / 1000, time_ms / 1000, word))
    add_silence(int(rng.integers(100, 300)))
    duration = time_ms / 1000
    return list(phone_tier), {"words": word_tier, "phones": phone_tier}, duration


def _shuffle_tier_labels(layouts: list, tier_name: str, rng: np.random.Generator) -> None:
    """Permute the non-silence labels of one tier across all utterances, in place."""
    slots = [
        (u, i)
        for u, (_, tiers, _) in enumerate(layouts)
        for i, (_, _, label) in enumerate(tiers[tier_name])
        if label != SILENCE
    ]
    labels = [layouts[u][1][tier_name][i][2] for u, i in slots]
    for (u, i), label in zip(slots, rng.permutation(labels)):
        start, end, _ = layouts[u][1][tier_name][i]
        layouts[u][1][tier_name][i] = (start, end, str(label))


def _synthesize(phone_intervals, fundamentals, duration, sample_rate, rng) -> np.ndarray:
    """Tone complexes for phones, low noise for silence, a little noise everywhere."""
    audio = rng.normal(0.0, 0.003, int(round(duration * sample_rate)))
    for start, end, label in phone_intervals:
        if label == SILENCE:
            continue
        first, last = int(round(start * sample_rate)), int(round(end * sample_rate))
        t = np.arange(last - first) / sample_rate
        f0 = fundamentals[label]
        tone = sum(
            np.sin(2 * np.pi * harmonic * f0 * t + rng.uniform(0, 2 * np.pi)) / harmonic
            for harmonic in (1, 2, 3)
            if harmonic * f0 < 0.45 * sample_rate
        )
        ramp = np.minimum(1.0, np.minimum(t, t[::-1]) / 0.01)
        audio[first:last] += 0.25 * ramp * tone + rng.normal(0.0, 0.01, last - first)
    return np.clip(audio, -1.0, 1.0).astype(np.float32)
