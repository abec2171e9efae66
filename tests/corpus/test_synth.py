"""Tests of the espeak-ng corpus: exact alignments, speakers, splits, reproducibility."""

from __future__ import annotations

import pytest
from praatio import textgrid

from s3prl_mi_probe.corpus.audio import audio_info
from s3prl_mi_probe.corpus.manifest import read_manifest
from s3prl_mi_probe.corpus.synthetic.synth import synthesize_corpus
from s3prl_mi_probe.corpus.task import TaskOptions, build_task

pytest.importorskip("espeakng_loader", reason="the synthetic corpus needs espeak-ng: pip install espeakng-loader")

VOICES = ["en-us", "en-us+f3", "en-gb-x-rp"]
UTTERANCES = 24


@pytest.fixture(scope="module")
def synth_manifest(tmp_path_factory):
    return synthesize_corpus(tmp_path_factory.mktemp("synth"), UTTERANCES, voices=VOICES, seed=3)


def read_grid(path):
    return textgrid.openTextgrid(str(path), includeEmptyIntervals=False)


def test_alignments_end_exactly_at_the_audio_end(synth_manifest):
    for utterance in read_manifest(synth_manifest):
        num_samples, sample_rate = audio_info(utterance.audio)
        assert sample_rate == 16000
        grid = read_grid(utterance.alignment)
        assert grid.maxTimestamp == num_samples / sample_rate
        assert all(grid.getTier(name).maxTimestamp == num_samples / sample_rate for name in ("words", "phones"))


def test_word_intervals_are_unions_of_phone_intervals(synth_manifest):
    for utterance in read_manifest(synth_manifest):
        grid = read_grid(utterance.alignment)
        phones = [entry for entry in grid.getTier("phones").entries if entry.label != "sil"]
        words = [entry for entry in grid.getTier("words").entries if entry.label != "sil"]
        assert words and phones
        for word in words:
            inside = [phone for phone in phones if word.start <= phone.start < word.end]
            assert inside, word
            assert inside[0].start == word.start and inside[-1].end == word.end, word
            assert all(a.end == b.start for a, b in zip(inside, inside[1:])), word
        assert sum(p.end - p.start for p in phones) == pytest.approx(sum(w.end - w.start for w in words))


def test_phone_labels_are_ipa_without_stress_marks(synth_manifest):
    labels = {
        entry.label
        for utterance in read_manifest(synth_manifest)
        for entry in read_grid(utterance.alignment).getTier("phones").entries
    }
    assert not any(mark in label for label in labels for mark in "ˈˌ")
    assert {"ð", "ə", "n"} <= labels


def test_every_voice_is_a_speaker_held_out_whole(synth_manifest):
    utterances = read_manifest(synth_manifest)
    assert {u.speaker for u in utterances} == set(VOICES)
    speakers_of = {split: {u.speaker for u in utterances if u.split == split} for split in ("train", "dev", "test")}
    assert all(speakers_of.values())
    assert not (
        speakers_of["train"] & speakers_of["dev"]
        or speakers_of["train"] & speakers_of["test"]
        or speakers_of["dev"] & speakers_of["test"]
    )


def test_same_seed_gives_byte_identical_files(synth_manifest, tmp_path):
    again = synthesize_corpus(tmp_path, UTTERANCES, voices=VOICES, seed=3)
    first = sorted(p.name for p in synth_manifest.parent.iterdir())
    assert sorted(p.name for p in again.parent.iterdir()) == first
    assert len(first) == 2 * UTTERANCES + 1
    for name in first:
        assert (again.parent / name).read_bytes() == (synth_manifest.parent / name).read_bytes(), name


@pytest.mark.parametrize("task", ["phone", "word"])
def test_build_task_accepts_the_corpus(synth_manifest, task):
    data = build_task(synth_manifest, TaskOptions(task=task, min_count=2))  # 8 train utterances: few repeats
    assert len(data.classes) >= 2
    assert all(data.counts()[split]["segments"] > 0 for split in ("train", "dev", "test"))


@pytest.mark.parametrize(
    "arguments, message",
    [
        ({"utterances": 12, "voices": ["en-us", "en-us+f3"]}, "at least 3 voices"),
        ({"utterances": 2, "voices": VOICES}, "at least 3 utterances"),
        ({"utterances": 12, "voices": VOICES, "split": "by-voice"}, "unknown split"),
        ({"utterances": 12, "voices": ["en-us", "en-zz", "en-us+f3"]}, "no voice 'en-zz'"),
        ({"utterances": 12, "voices": ["en-us", "en-us+zz", "en-us+f3"]}, "no voice variant 'zz'"),
    ],
)
def test_bad_arguments_are_refused_before_synthesis(tmp_path, arguments, message):
    with pytest.raises(ValueError, match=message):
        synthesize_corpus(tmp_path / "corpus", **arguments)
    assert not (tmp_path / "corpus").exists()
