"""Tests of the corpus package: manifest, audio, TextGrid checks and task segments."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import soundfile
from praatio import textgrid

from s3prl_mi_probe.common.problems import ProblemsFound
from s3prl_mi_probe.corpus.audio import SAMPLE_RATE, audio_info, load_audio
from s3prl_mi_probe.corpus.manifest import Utterance, read_manifest
from s3prl_mi_probe.corpus.task import TaskOptions, build_task
from s3prl_mi_probe.corpus.textgrid import write_textgrid
from tests.support.tones import write_tone_corpus

SEGMENT = 0.1  # seconds per label in the hand-written corpora below


def write_label_corpus(root: Path, rows: list[tuple], *, speaker_column: bool = True) -> Path:
    """Write near-silent WAVs and TextGrids for rows ``(id, split, speaker, labels)``.

    Each label is a string (lasting SEGMENT) or ``(label, seconds)``; a ``sil``
    interval precedes and follows the labels. Returns the manifest path.
    """
    header = ["id", "audio", "alignment", "split"] + (["speaker"] if speaker_column else [])
    lines = ["\t".join(header)]
    for utterance_id, split, speaker, labels in rows:
        phones, time = [(0.0, SEGMENT, "sil")], SEGMENT
        for item in labels:
            label, length = (item, SEGMENT) if isinstance(item, str) else item
            phones.append((time, time + length, label))
            time += length
        phones.append((time, time + SEGMENT, "sil"))
        duration = time + SEGMENT
        soundfile.write(root / f"{utterance_id}.wav", np.zeros(round(duration * 16000)), 16000, subtype="PCM_16")
        write_textgrid(root / f"{utterance_id}.TextGrid", {"words": [(SEGMENT, time, "w")], "phones": phones}, duration)
        row = [utterance_id, f"{utterance_id}.wav", f"{utterance_id}.TextGrid", split]
        lines.append("\t".join(row + ([speaker] if speaker_column else [])))
    manifest = root / "manifest.tsv"
    manifest.write_text("\n".join(lines) + "\n")
    return manifest


def read_tiers(path: Path) -> dict[str, list[tuple[float, float, str]]]:
    grid = textgrid.openTextgrid(str(path), includeEmptyIntervals=False)
    return {name: [tuple(entry) for entry in grid.getTier(name).entries] for name in grid.tierNames}


def audio_seconds(path: Path) -> float:
    num_samples, sample_rate = audio_info(path)
    return num_samples / sample_rate


# --- manifest ---------------------------------------------------------------------------------


def test_read_manifest_resolves_relative_paths_in_any_column_order(tmp_path):
    (tmp_path / "sub").mkdir()
    manifest = tmp_path / "sub" / "m.tsv"
    manifest.write_text(
        "split\tnotes\talignment\tid\taudio\n"
        "train\tx\ta.TextGrid\tu1\t/abs/a.wav\n"
        "\n"
        "test\t\tdir/b.TextGrid\tu2\tb.flac\n"
    )
    first, second = read_manifest(manifest)
    assert first == Utterance("u1", Path("/abs/a.wav"), tmp_path / "sub" / "a.TextGrid", "train", None, 2)
    assert second == Utterance(
        "u2", tmp_path / "sub" / "b.flac", tmp_path / "sub" / "dir" / "b.TextGrid", "test", None, 4
    )


def test_read_manifest_reads_optional_speaker_column(tmp_path):
    manifest = tmp_path / "m.tsv"
    manifest.write_text(
        "id\taudio\talignment\tsplit\tspeaker\nu1\ta.wav\ta.TextGrid\tdev\tspk7\nu2\tb.wav\tb.TextGrid\tdev\t\n"
    )
    assert [u.speaker for u in read_manifest(manifest)] == ["spk7", None]


def test_read_manifest_reports_every_row_problem_with_its_line(tmp_path):
    manifest = tmp_path / "m.tsv"
    manifest.write_text(
        "id\taudio\talignment\tsplit\n"
        "u1\ta.wav\ta.TextGrid\ttrain\n"
        "u2\tb.wav\tb.TextGrid\tvalid\n"
        "u1\tc.wav\tc.TextGrid\ttest\n"
        "u4\td.wav\ttest\n"
        "u5\t\te.TextGrid\ttest\n"
    )
    with pytest.raises(ProblemsFound) as caught:
        read_manifest(manifest)
    problems = [str(problem) for problem in caught.value.problems]
    assert len(problems) == 4
    assert "m.tsv:3 (u2): unknown split 'valid'" in problems[0]
    assert "m.tsv:4 (u1): duplicate id 'u1' (first on line 2)" in problems[1]
    assert "m.tsv:5: expected 4 tab-separated columns, found 3" in problems[2]
    assert "m.tsv:6 (u5): empty 'audio' column" in problems[3]
    assert str(caught.value).startswith(f"4 problem(s) found in {manifest}:\n")


def test_read_manifest_requires_columns(tmp_path):
    manifest = tmp_path / "m.tsv"
    manifest.write_text("id\taudio\tsplit\nu1\ta.wav\ttrain\n")
    with pytest.raises(ProblemsFound, match="m.tsv:1: header lacks required column.s. alignment"):
        read_manifest(manifest)


@pytest.mark.parametrize("text", ["", "id\taudio\talignment\tsplit\n"])
def test_empty_manifest_is_an_error(tmp_path, text):
    manifest = tmp_path / "m.tsv"
    manifest.write_text(text)
    with pytest.raises(ProblemsFound, match="1 problem.s. found in .*m.tsv:\n.*(empty|no utterances)"):
        build_task(manifest)


# --- audio ------------------------------------------------------------------------------------


@pytest.mark.parametrize("rate", [8000, 22050])
def test_load_audio_mixes_down_and_resamples_to_16k(tmp_path, rate):
    seconds = 0.5
    t = np.arange(int(rate * seconds)) / rate
    tone = 0.5 * np.sin(2 * np.pi * 440.0 * t)
    soundfile.write(tmp_path / "a.wav", np.stack([tone, tone], axis=1), rate, subtype="PCM_16")
    audio = load_audio(tmp_path / "a.wav")
    assert audio.dtype == np.float32 and audio.ndim == 1
    assert len(audio) == int(SAMPLE_RATE * seconds)
    peak_hz = np.argmax(np.abs(np.fft.rfft(audio))) * SAMPLE_RATE / len(audio)
    assert abs(peak_hz - 440.0) < 5
    assert audio_info(tmp_path / "a.wav") == (len(t), rate)


# --- checking files ---------------------------------------------------------------------------


def test_build_task_reports_every_bad_file_together(tmp_path):
    manifest = write_tone_corpus(tmp_path)

    def wav(index):
        return tmp_path / f"utt{index:03d}.wav"

    def grid(index):
        return tmp_path / f"utt{index:03d}.TextGrid"

    wav(0).unlink()
    wav(1).write_text("not audio at all")
    grid(2).write_text("this is not a TextGrid\n")
    write_textgrid(grid(3), {"words": read_tiers(grid(3))["words"]}, audio_seconds(wav(3)))
    for index, change in ((5, "past_end"), (6, "overlap")):
        tiers, duration = read_tiers(grid(index)), audio_seconds(wav(index))
        phones = tiers["phones"]
        if change == "past_end":
            phones[-1] = (phones[-1][0], duration + 0.05, phones[-1][2])
        else:
            phones[2] = (phones[2][0] - 0.02, phones[2][1], phones[2][2])
        write_textgrid(grid(index), tiers, duration)

    with pytest.raises(ProblemsFound) as caught:
        build_task(manifest)
    problems = caught.value.problems
    expected = {
        0: (wav(0), "file not found"),
        1: (wav(1), "unreadable"),
        2: (grid(2), "malformed TextGrid"),
        3: (grid(3), "no 'phones' tier (tiers present: 'words')"),
        5: (grid(5), "past the audio end"),
        6: (grid(6), "overlap"),
    }
    assert len(problems) == len(expected)
    for problem, (index, (path, reason)) in zip(problems, expected.items()):
        assert (problem.file, problem.line, problem.utterance) == ("manifest.tsv", index + 2, f"utt{index:03d}")
        assert str(problem).startswith(f"manifest.tsv:{index + 2} (utt{index:03d}): {path}: ")
        assert reason in problem.reason
    assert "+50 ms" in problems[4].reason
    no_index_error = "malformed TextGrid (not in Praat's TextGrid format, or cut short)"
    assert problems[2].reason.endswith(no_index_error)


def test_overshoot_within_10ms_is_clipped_to_the_audio_end(tmp_path):
    manifest = write_tone_corpus(tmp_path)
    path, duration = tmp_path / "utt007.TextGrid", audio_seconds(tmp_path / "utt007.wav")
    tiers = read_tiers(path)
    start, _, _ = tiers["phones"][-1]
    tiers["phones"][-1] = (start, duration + 0.005, "AA")
    write_textgrid(path, tiers, duration)
    task = build_task(manifest)
    (segments,) = [s for s in task.splits["train"] if s.utterance.id == "utt007"]
    assert segments.ends[-1] == pytest.approx(duration)
    assert task.classes[segments.labels[-1]] == "AA"


def test_split_without_usable_segments_is_an_error(tmp_path):
    rows = [(f"tr{i}", "train", "s1", ["A", "B"] * 3) for i in range(2)]
    rows += [("dev0", "dev", "s1", ["A", "B"]), ("test0", "test", "s1", ["SIL", ("A", 0.01)])]
    with pytest.raises(ProblemsFound) as caught:
        build_task(write_label_corpus(tmp_path, rows))
    (problem,) = map(str, caught.value.problems)
    assert "split 'test': no usable segments in 1 utterance(s)" in problem
    assert "silence=3, too_short=1" in problem


def test_split_with_a_single_class_is_an_error(tmp_path):
    rows = [
        ("tr0", "train", "s1", ["A", "B"] * 5),
        ("dev0", "dev", "s1", ["A"] * 3),
        ("test0", "test", "s1", ["A", "B"]),
    ]
    with pytest.raises(ProblemsFound, match="split 'dev': only 1 class among 3 usable segments"):
        build_task(write_label_corpus(tmp_path, rows))


def test_missing_test_split_is_an_error(tmp_path):
    manifest = write_tone_corpus(tmp_path, splits=("train", "dev"))
    with pytest.raises(ProblemsFound, match="split 'test': no utterances in the manifest"):
        build_task(manifest)


# --- labels and classes -----------------------------------------------------------------------


def test_silence_labels_are_dropped_case_insensitively(tmp_path):
    train = ["A", "B"] * 5 + ["SIL", " sp ", "spn", "<UNK>", "pau"]
    rows = [("tr0", "train", "s1", train), ("dev0", "dev", "s1", ["A", "B"]), ("test0", "test", "s1", ["A", "B"])]
    task = build_task(write_label_corpus(tmp_path, rows))
    assert task.classes == ["A", "B"]
    assert task.dropped["train"]["silence"] == 5 + 2  # plus the sil at each end


def test_fold_stress_merges_stress_variants(tmp_path):
    train = ["AH0"] * 3 + ["AH1"] * 3 + ["T"] * 6 + ["B"] * 5
    rows = [
        ("tr0", "train", "s1", train),
        ("dev0", "dev", "s1", ["AH2", "T", "B"]),
        ("test0", "test", "s1", ["AH1", "T", "B"]),
    ]
    manifest = write_label_corpus(tmp_path, rows)
    folded = build_task(manifest)  # the phone task folds stress by default
    assert folded.options.fold_stress and folded.classes == ["AH", "T", "B"]
    assert folded.counts()["dev"]["classes"] == {"AH": 1, "T": 1, "B": 1}
    plain = build_task(manifest, TaskOptions(fold_stress=False))
    assert plain.classes == ["T", "B"]
    assert plain.dropped["train"]["rare_class"] == 6


def test_classes_are_chosen_on_train_and_other_classes_dropped(tmp_path):
    train = ["A"] * 7 + ["C"] * 5 + ["B"] * 5 + ["D"] * 4
    rows = [
        ("tr0", "train", "s1", train),
        ("dev0", "dev", "s1", ["A", "B", "C", "D", "E"]),
        ("test0", "test", "s1", ["A", "B", "B"]),
    ]
    manifest = write_label_corpus(tmp_path, rows)
    assert build_task(manifest).classes == ["A", "B", "C"]
    task = build_task(manifest, TaskOptions(max_classes=2))
    assert task.classes == ["A", "B"]
    assert task.dropped["train"]["rare_class"] == 9
    assert task.dropped["dev"]["rare_class"] == 3
    assert task.label_counts("test").tolist() == [1, 2]
    assert task.counts()["train"] == {"segments": 12, "classes": {"A": 7, "B": 5}}


def test_duration_bounds_drop_short_and_long_segments(tmp_path):
    train = ["A", "B"] * 5 + [("A", 0.02), ("B", 2.0)]
    rows = [("tr0", "train", "s1", train), ("dev0", "dev", "s1", ["A", "B"]), ("test0", "test", "s1", ["A", "B"])]
    task = build_task(write_label_corpus(tmp_path, rows))
    assert task.dropped["train"]["too_short"] == 1 and task.dropped["train"]["too_long"] == 1
    assert task.label_counts("train").tolist() == [5, 5]


def test_task_options_are_validated():
    with pytest.raises(ValueError, match="unknown task 'syllable'"):
        TaskOptions(task="syllable")
    with pytest.raises(ValueError, match="min_duration < max_duration"):
        TaskOptions(min_duration=0.5, max_duration=0.1)


# --- dev carving ------------------------------------------------------------------------------


def test_dev_is_carved_by_whole_speakers(tmp_path):
    manifest = write_tone_corpus(tmp_path, splits=("train", "train", "test"))
    task = build_task(manifest)
    assert task.dev_carved
    speakers = {split: {s.utterance.speaker for s in task.splits[split]} for split in ("train", "dev")}
    assert len(speakers["dev"]) == 1 and not speakers["dev"] & speakers["train"]
    assert all(s.utterance.split == "dev" for s in task.splits["dev"])
    assert [s.utterance.id for s in build_task(manifest).splits["dev"]] == [s.utterance.id for s in task.splits["dev"]]


def test_dev_is_carved_by_utterance_without_speakers(tmp_path):
    manifest = write_tone_corpus(tmp_path, speakers=(), splits=("train", "train", "test"))
    task = build_task(manifest, TaskOptions(seed=3))
    dev_ids = [s.utterance.id for s in task.splits["dev"]]
    train_ids = {s.utterance.id for s in task.splits["train"]}
    assert task.dev_carved and len(dev_ids) == 2 and not set(dev_ids) & train_ids
    assert len(train_ids) == 14


# --- the synthetic corpus ---------------------------------------------------------------------


@pytest.mark.parametrize("task_name, num_classes", [("phone", 6), ("word", 5)])
def test_tone_corpus_passes_build_task_with_every_class_in_every_split(tmp_path, task_name, num_classes):
    task = build_task(write_tone_corpus(tmp_path), TaskOptions(task=task_name, min_count=5))
    assert len(task.classes) == num_classes and not task.dev_carved
    for split in ("train", "dev", "test"):
        assert (task.label_counts(split) > 0).all()


def test_tone_corpus_with_shuffled_labels_keeps_the_intervals(tmp_path):
    true = build_task(write_tone_corpus(tmp_path / "true"))
    shuffled = build_task(write_tone_corpus(tmp_path / "shuffled", shuffle_labels=True))

    def segments(task):
        return [s for split in ("train", "dev", "test") for s in task.splits[split]]

    def labels(task):
        return [task.classes[i] for s in segments(task) for i in s.labels]

    for a, b in zip(segments(true), segments(shuffled), strict=True):
        np.testing.assert_array_equal(a.starts, b.starts)
        np.testing.assert_array_equal(a.ends, b.ends)
    assert Counter(labels(true)) == Counter(labels(shuffled))
    assert np.mean(np.array(labels(true)) == np.array(labels(shuffled))) < 0.5
