"""A synthetic English speech corpus: espeak-ng voices as speakers, alignments from the synthesizer.

Word and phone intervals come from espeak-ng's own word and phoneme events, so they are exact
to the sample. Phone labels are espeak-ng's IPA phoneme names without stress marks (ˈ ˌ);
length marks and espeak-ng's multi-symbol units (aɪ, ɑːɹ, əl) are kept. Pauses are ``sil`` on
both tiers; the stretch between a word's start event and its first phoneme (a stop closure or
onset silence) is left unlabelled. espeak-ng speaks a few word pairs as one word ("in the",
"of the"): such a pair is one word interval labelled with both words.
"""

from __future__ import annotations

import io
import multiprocessing
import os
import queue
import re
from bisect import bisect_right
from dataclasses import dataclass
from math import gcd
from pathlib import Path

import numpy as np
import soundfile
from scipy.signal import resample_poly
from tqdm import tqdm

from s3prl_mi_probe.common.atomic import write_bytes_atomic
from s3prl_mi_probe.corpus.audio import SAMPLE_RATE
from s3prl_mi_probe.corpus.manifest import ManifestRow, write_manifest
from s3prl_mi_probe.corpus.splits import assign_splits
from s3prl_mi_probe.corpus.synthetic import espeak
from s3prl_mi_probe.corpus.textgrid import SILENCE, write_textgrid

DEFAULT_VOICES = (
    "en-us",
    "en-us+f3",
    "en-us+m3",
    "en-us+f4",
    "en-gb-x-rp",
    "en-gb-x-rp+f2",
    "en-gb-x-rp+m1",
    "en-gb-scotland+f5",
)
SPLIT_MODES = ("speaker", "random")
HELD_OUT_FRACTION = 0.15  # of the speakers (or utterances) for each of dev and test; at least one
RATE_RANGE = (150, 196)  # words per minute, drawn per utterance
PITCH_RANGE = (40, 61)  # espeak-ng pitch (0-100, voice default 50), drawn per utterance
SENTENCES = Path(__file__).with_name("sentences_en.txt")
STRESS_MARKS = str.maketrans("", "", "ˈˌ")

_progress: multiprocessing.Queue | None = None  # set in each worker by _keep_progress_queue


@dataclass(frozen=True)
class _Job:
    """One utterance to synthesize: its id, text and espeak-ng settings."""

    utterance_id: str
    text: str
    rate: int
    pitch: int
    rand_seed: int


def synthesize_corpus(
    out: Path, utterances: int, voices: list[str] | None = None, seed: int = 0, split: str = "speaker"
) -> Path:
    """Write ``utterances`` espeak-ng utterances (16 kHz WAV + TextGrid) and a manifest; return its path.

    Sentences are drawn with ``seed`` from ``sentences_en.txt``; voices (the speakers) take turns.
    ``split="speaker"`` holds out whole voices for dev and test (needs 3+ voices), ``"random"``
    utterances. The same arguments give byte-identical files.
    """
    voices = list(voices or DEFAULT_VOICES)
    _check_arguments(utterances, voices, split)
    for voice in voices:
        espeak.check_voice(voice)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    jobs = [
        _Job(
            f"utt{index:05d}",
            text,
            int(rng.integers(*RATE_RANGE)),
            int(rng.integers(*PITCH_RANGE)),
            int(rng.integers(2**31)),
        )
        for index, text in enumerate(_draw_sentences(utterances, rng))
    ]
    speakers = [voices[index % len(voices)] for index in range(utterances)]
    if split == "speaker":
        split_of_speaker = assign_splits(voices, HELD_OUT_FRACTION, HELD_OUT_FRACTION, rng)
        splits = [split_of_speaker[speaker] for speaker in speakers]
    else:
        split_of_job = assign_splits([job.utterance_id for job in jobs], HELD_OUT_FRACTION, HELD_OUT_FRACTION, rng)
        splits = [split_of_job[job.utterance_id] for job in jobs]
    _synthesize_jobs(out, {voice: [job for job, s in zip(jobs, speakers) if s == voice] for voice in voices})

    rows = [
        ManifestRow(
            job.utterance_id, out / f"{job.utterance_id}.wav", out / f"{job.utterance_id}.TextGrid", split, speaker
        )
        for job, split, speaker in zip(jobs, splits, speakers)
    ]
    manifest = write_manifest(out, rows)
    return manifest


def _check_arguments(utterances: int, voices: list[str], split: str) -> None:
    if split not in SPLIT_MODES:
        raise ValueError(f"unknown split {split!r}; expected one of {', '.join(SPLIT_MODES)}")
    if len(set(voices)) != len(voices):
        raise ValueError(f"voices repeat: {', '.join(voices)}")
    if split == "speaker" and len(voices) < 3:
        raise ValueError(f"a speaker split needs at least 3 voices (train, dev, test), got {len(voices)}")
    minimum = len(voices) if split == "speaker" else 3
    if utterances < minimum:
        raise ValueError(f"need at least {minimum} utterances for a {split} split over {len(voices)} voice(s)")


def _draw_sentences(count: int, rng: np.random.Generator) -> list[str]:
    """``count`` sentences: shuffled passes over the sentence list, so repeats come only after all are used."""
    sentences = [line.strip() for line in SENTENCES.read_text(encoding="utf-8").splitlines() if line.strip()]
    passes = -(-count // len(sentences))
    order = np.concatenate([rng.permutation(len(sentences)) for _ in range(passes)])[:count]
    return [sentences[index] for index in order]


def _synthesize_jobs(out: Path, jobs_of_voice: dict[str, list[_Job]]) -> None:
    """Run each voice's jobs in a fresh process of its own (espeak-ng settings leak between voices)."""
    context = multiprocessing.get_context("spawn")
    progress = context.Queue()
    total = sum(len(jobs) for jobs in jobs_of_voice.values())
    workers = min(len(jobs_of_voice), os.cpu_count() or 1)
    pool = context.Pool(workers, initializer=_keep_progress_queue, initargs=(progress,), maxtasksperchild=1)
    with pool, tqdm(total=total, desc="synth", unit="utt") as bar:
        result = pool.starmap_async(_synthesize_voice, [(out, voice, jobs) for voice, jobs in jobs_of_voice.items()])
        while bar.n < total:
            try:
                bar.update(progress.get(timeout=0.5))
            except queue.Empty:
                if result.ready() and not result.successful():
                    result.get()  # raises the worker's error
        result.get()


def _keep_progress_queue(progress: multiprocessing.Queue) -> None:
    global _progress
    _progress = progress


def _synthesize_voice(out: Path, voice: str, jobs: list[_Job]) -> None:
    """Synthesize and write one voice's utterances, reporting each to the progress queue."""
    for job in jobs:
        synthesis = espeak.synthesize(job.text, voice, rate=job.rate, pitch=job.pitch, rand_seed=job.rand_seed)
        audio, tiers = _resampled_utterance(synthesis, job.text)
        buffer = io.BytesIO()
        soundfile.write(buffer, audio, SAMPLE_RATE, format="WAV", subtype="PCM_16")
        write_bytes_atomic(out / f"{job.utterance_id}.wav", buffer.getvalue())
        write_textgrid(out / f"{job.utterance_id}.TextGrid", tiers, len(audio) / SAMPLE_RATE)
        _progress.put(1)


def _resampled_utterance(synthesis: espeak.Synthesis, text: str) -> tuple[np.ndarray, dict]:
    """The audio as int16 at SAMPLE_RATE and the ``words`` and ``phones`` tiers in seconds."""
    common = gcd(SAMPLE_RATE, synthesis.sample_rate)
    up, down = SAMPLE_RATE // common, synthesis.sample_rate // common
    audio = resample_poly(synthesis.samples.astype(np.float64), up, down)
    audio = np.clip(np.round(audio), -32768, 32767).astype(np.int16)
    native_end = len(synthesis.samples)

    def seconds(sample: int) -> float:
        resampled = len(audio) if sample >= native_end else min(round(sample * up / down), len(audio))
        return resampled / SAMPLE_RATE

    tiers = {
        name: [(seconds(start), seconds(stop), label) for start, stop, label in intervals]
        for name, intervals in _alignment(synthesis, text).items()
    }
    return audio, {name: [i for i in intervals if i[0] < i[1]] for name, intervals in tiers.items()}


def _alignment(synthesis: espeak.Synthesis, text: str) -> dict[str, list[tuple[int, int, str]]]:
    """Word and phone intervals in native samples from the events; pauses are SILENCE on both tiers.

    A phoneme lasts until the next phoneme, word start or the end. Pause events between two
    phonemes of one word (espeak-ng's hiatus breaks, not silent) extend the phoneme before them;
    of events at one sample only the last lasts. A word spans its phonemes.
    """
    end = len(synthesis.samples)
    events = synthesis.phonemes
    kept = [event for index, event in enumerate(events) if event.name or not _inside_word(events, index)]
    starting_at = {event.sample: event for event in kept if event.sample < end}
    boundaries = sorted(set(starting_at) | {word.sample for word in synthesis.words} | {end})
    phones, pauses, span_of_word = [], [], {}
    for start, event in starting_at.items():
        stop = boundaries[bisect_right(boundaries, start)]
        if not event.name:
            if pauses and pauses[-1][1] == start:
                start = pauses.pop()[0]
            pauses.append((start, stop, SILENCE))
            continue
        phones.append((start, stop, event.name.translate(STRESS_MARKS)))
        if event.word >= 0:
            first = span_of_word.get(event.word, (start, stop))[0]
            span_of_word[event.word] = (first, stop)
    positions = [word.position for word in synthesis.words] + [len(text)]
    words = [
        (first, stop, " ".join(re.findall(r"[\w']+", text[positions[word] : positions[word + 1]].lower())))
        for word, (first, stop) in span_of_word.items()
    ]
    return {"words": words + pauses, "phones": phones + pauses}


def _inside_word(events: list[espeak.PhonemeEvent], index: int) -> bool:
    """Whether the named phonemes just before and after ``events[index]`` belong to one word."""
    before = [event.word for event in events[:index] if event.name][-1:]
    after = [event.word for event in events[index + 1 :] if event.name][:1]
    return bool(before) and before == after
