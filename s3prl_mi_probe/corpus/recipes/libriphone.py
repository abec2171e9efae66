"""s3prl's phone-classification data (``phone_linear``): frame labels of LibriSpeech train-clean-100.

The files (the CPC paper's Kaldi alignments, as s3prl ships them):

* ``converted_aligned_phones.txt``: one line per utterance, ``<id> <l_0> <l_1> ...``, separated by
  single spaces, one integer label in ``0..40`` per 10 ms frame (41 classes, silence among them);
* ``train_split.txt`` and ``test_split.txt``: one utterance id per line.

s3prl's ``phone_linear`` holds out dev from train thus: the lines of ``train_split.txt`` (as
``readlines`` returns them, blank lines included) are shuffled by Python's ``random`` seeded with
1337; the first ``int(0.9 · n)`` are train, the rest dev. :func:`phone_linear_split` reproduces
that rule. Label k is paired with the 10 ms frame ``[k·10 ms, (k+1)·10 ms)`` of our frame grid,
which pairs it with fbank frame k and HuBERT frame k//2, as ``phone_linear`` does.
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import replace
from pathlib import Path

import numpy as np
from tqdm import tqdm

from s3prl_mi_probe.common.problems import Problem, ProblemsFound
from s3prl_mi_probe.common.table import format_table
from s3prl_mi_probe.corpus.frames import FRAME_SECONDS
from s3prl_mi_probe.corpus.manifest import ManifestRow, write_manifest
from s3prl_mi_probe.corpus.reader import read_audio_info
from s3prl_mi_probe.corpus.recipes.registry import CliOption, Recipe, register_recipe
from s3prl_mi_probe.corpus.textgrid import write_textgrid

PHONES_FILE = "converted_aligned_phones.txt"
TRAIN_SPLIT_FILE = "train_split.txt"
TEST_SPLIT_FILE = "test_split.txt"
NUM_CLASSES = 41  # phone_linear's class count: labels 0..40
TRAIN_DEV_SEED = 1337  # phone_linear's train_dev_seed
TRAIN_FRACTION = 0.9
SUBSET = "train-clean-100"
KALDI_WINDOW, KALDI_SHIFT = 400, 160  # samples of a 25 ms window and a 10 ms shift at 16 kHz


def phone_linear_split(lines: list[str], seed: int = TRAIN_DEV_SEED) -> tuple[list[str], list[str]]:
    """``(train, dev)`` lines of ``train_split.txt`` as s3prl's ``phone_linear`` draws them.

    ``lines`` are the file's lines as ``readlines`` returns them (blank ones included: they take
    part in the shuffle); a shuffle with ``random.Random(seed)``, then the first 90 % are train.
    """
    shuffled = list(lines)
    random.Random(seed).shuffle(shuffled)
    cut = int(len(shuffled) * TRAIN_FRACTION)
    return shuffled[:cut], shuffled[cut:]


def prepare_libriphone(corpus_dir: Path, output_dir: Path, libri_root: Path) -> Path:
    """Write ``output_dir/manifest.tsv`` and one TextGrid per utterance for the ``frame_phone`` task.

    ``corpus_dir`` holds the three files above; ``libri_root`` is the LibriSpeech folder holding
    ``train-clean-100/<speaker>/<chapter>/<id>.flac``. Splits: train and dev by
    :func:`phone_linear_split`, test from ``test_split.txt``. Each TextGrid has one ``phones`` tier
    whose intervals are the runs of equal labels on the 10 ms grid, labelled by the integer.
    Missing files, malformed lines, ids without labels or audio, ids listed twice, and label
    counts that disagree with the audio length by more than a frame raise one ProblemsFound listing
    every problem; nothing is written then. Labels whose frame centre lies past the audio end (at
    most one frame) are left out and counted.
    """
    phone_path, libri_root, out = Path(corpus_dir), Path(libri_root), Path(output_dir)
    problems = _missing_inputs(phone_path, libri_root)
    if problems:
        raise ProblemsFound(phone_path / PHONES_FILE, problems)
    labels, problems = _read_phone_labels(phone_path / PHONES_FILE)
    train_lines, train_problems = _read_split_lines(phone_path / TRAIN_SPLIT_FILE)
    test_lines, test_problems = _read_split_lines(phone_path / TEST_SPLIT_FILE)
    problems += train_problems + test_problems
    dev_ids = set(_ids(phone_linear_split(train_lines)[1]))
    split_of = {
        utterance_id: ("dev" if utterance_id in dev_ids else "train", TRAIN_SPLIT_FILE)
        for utterance_id in _ids(train_lines)
    }
    split_of.update((utterance_id, ("test", TEST_SPLIT_FILE)) for utterance_id in _ids(test_lines))
    problems += _duplicate_ids(train_lines, test_lines)

    rows, grids, truncated = [], [], 0
    for utterance_id, (split, source) in tqdm(split_of.items(), desc="libriphone", unit="utt", leave=False):
        if utterance_id not in labels:
            problems.append(Problem(phone_path / source, f"utterance '{utterance_id}' has no labels in {PHONES_FILE}"))
            continue
        audio = _audio_path(libri_root, utterance_id)
        try:
            num_samples, sample_rate = read_audio_info(audio)
        except ProblemsFound as error:
            of_utterance = f" (utterance '{utterance_id}' of {phone_path / source})"
            problems += [replace(problem, reason=problem.reason + of_utterance) for problem in error.problems]
            continue
        frame_labels = labels[utterance_id]
        mismatch = _length_mismatch(frame_labels.size, num_samples, sample_rate)
        if mismatch:
            problems.append(Problem(audio, f"'{utterance_id}': {mismatch}"))
            continue
        duration = num_samples / sample_rate
        inside = int(np.ceil(duration / FRAME_SECONDS - 0.5))  # frames whose centre lies before the end
        truncated += max(frame_labels.size - inside, 0)
        speaker = utterance_id.split("-")[0]
        grid = out / "alignments" / audio.parent.relative_to(libri_root / SUBSET) / f"{utterance_id}.TextGrid"
        rows.append(ManifestRow(utterance_id, audio, grid, split, speaker))
        grids.append((grid, frame_labels[:inside], duration))
    if problems:
        raise ProblemsFound(phone_path / PHONES_FILE, problems)

    for grid, frame_labels, duration in tqdm(grids, desc="write TextGrids", unit="utt", leave=False):
        write_textgrid(grid, {"phones": label_runs(frame_labels, duration)}, duration)
    manifest = write_manifest(out, rows)
    unused = len(labels) - len(rows)
    print(_summary(rows, grids, truncated, unused))
    return manifest


def label_runs(frame_labels: np.ndarray, duration: float) -> list[tuple[float, float, str]]:
    """Intervals ``(start, end, label)`` of the runs of equal frame labels on the 10 ms grid, the last
    one clipped to ``duration``."""
    if frame_labels.size == 0:
        return []
    change = np.flatnonzero(np.diff(frame_labels)) + 1
    starts = np.concatenate([[0], change])
    stops = np.concatenate([change, [frame_labels.size]])
    return [
        (start / 100, min(stop / 100, duration), str(int(frame_labels[start])))
        for start, stop in zip(starts.tolist(), stops.tolist())
    ]


def _missing_inputs(phone_path: Path, libri_root: Path) -> list[Problem]:
    missing = [
        Problem(path, "file not found")
        for path in (phone_path / name for name in (PHONES_FILE, TRAIN_SPLIT_FILE, TEST_SPLIT_FILE))
        if not path.is_file()
    ]
    if not (libri_root / SUBSET).is_dir():
        missing.append(Problem(libri_root / SUBSET, f"folder not found (--libri-root is the folder holding {SUBSET})"))
    return missing


def _read_phone_labels(path: Path) -> tuple[dict[str, np.ndarray], list[Problem]]:
    """Per utterance id, its frame labels (int8); and the problems of malformed or repeated lines."""
    labels, problems, first_line = {}, [], {}
    with open(path) as stream:
        for number, line in enumerate(stream, start=1):
            fields = line.rstrip("\n").split(" ")
            if not line.strip():
                continue
            utterance_id, values = fields[0], fields[1:]
            if not utterance_id or not values:
                reason = "expected '<utterance id> <label> <label> ...' separated by single spaces"
                problems.append(Problem(path, reason, number))
                continue
            try:
                frame_labels = np.array([int(value) for value in values], dtype=np.int64)
            except ValueError:
                bad = next(value for value in values if not value.lstrip("-").isdigit())
                problems.append(Problem(path, f"label {bad!r} is not an integer", number, utterance_id))
                continue
            outside = frame_labels[(frame_labels < 0) | (frame_labels >= NUM_CLASSES)]
            if outside.size:
                reason = f"label {int(outside[0])} outside 0..{NUM_CLASSES - 1} ({outside.size} such label(s))"
                problems.append(Problem(path, reason, number, utterance_id))
                continue
            if utterance_id in first_line:
                reason = f"utterance '{utterance_id}' repeated (first on line {first_line[utterance_id]})"
                problems.append(Problem(path, reason, number))
                continue
            first_line[utterance_id] = number
            labels[utterance_id] = frame_labels.astype(np.int8)
    return labels, problems


def _read_split_lines(path: Path) -> tuple[list[str], list[Problem]]:
    """The lines of a split file as ``readlines`` gives them, and the problems of ids with blanks inside."""
    with open(path) as stream:
        lines = stream.readlines()
    problems = [
        Problem(path, f"{line.rstrip(chr(10))!r} is not an utterance id (whitespace around or inside it)", number)
        for number, line in enumerate(lines, start=1)
        if line.strip() and (line.rstrip("\n") != line.strip() or len(line.split()) > 1)
    ]
    return lines, problems


def _ids(lines: list[str]) -> list[str]:
    """The utterance ids of split-file lines, blank lines skipped."""
    return [line.rstrip("\n") for line in lines if line.strip()]


def _duplicate_ids(train_lines: list[str], test_lines: list[str]) -> list[Problem]:
    counts = Counter(_ids([*train_lines, *test_lines]))
    repeated = sorted(utterance_id for utterance_id, count in counts.items() if count > 1)
    return [
        Problem(None, f"utterance '{utterance_id}' is listed more than once in the split files")
        for utterance_id in repeated
    ]


def _audio_path(libri_root: Path, utterance_id: str) -> Path:
    speaker, chapter, _ = (utterance_id.split("-") + ["", ""])[:3]
    return libri_root / SUBSET / speaker / chapter / f"{utterance_id}.flac"


def _length_mismatch(num_labels: int, num_samples: int, sample_rate: int) -> str | None:
    """Why ``num_labels`` 10 ms labels do not fit the audio, or None.

    Kaldi counts ``1 + (N - 400) // 160`` frames with ``snip_edges`` and about ``N / 160`` without:
    a label count within one frame of that range fits.
    """
    samples = num_samples * 16000 / sample_rate
    shortest = 1 + int((samples - KALDI_WINDOW) // KALDI_SHIFT) - 1
    longest = int(np.ceil(samples / KALDI_SHIFT)) + 1
    if shortest <= num_labels <= longest:
        return None
    return (
        f"{num_labels} frame labels ({num_labels * FRAME_SECONDS:.2f} s) for {num_samples / sample_rate:.2f} s of "
        f"audio: expected {shortest + 1} to {longest - 1} (one per 10 ms, with or without Kaldi's snip_edges), "
        f"give or take one"
    )


def _summary(rows: list[ManifestRow], grids: list, truncated: int, unused: int) -> str:
    table = []
    for split in ("train", "dev", "test"):
        chosen = [(row, grid) for row, grid in zip(rows, grids) if row.split == split]
        frames = np.concatenate([grid[1] for _, grid in chosen]) if chosen else np.zeros(0, dtype=np.int8)
        table.append(
            {
                "split": split,
                "utterances": len(chosen),
                "speakers": len({row.speaker for row, _ in chosen}),
                "hours": sum(grid[2] for _, grid in chosen) / 3600,
                "frames": int(frames.size),
                "classes": int(np.unique(frames).size),
            }
        )
    notes = [format_table(table, ["split", "utterances", "speakers", "hours", "frames", "classes"])]
    notes.append(f"split: phone_linear's rule (train_split.txt shuffled with seed {TRAIN_DEV_SEED}, 90 % train)")
    if truncated:
        notes.append(f"{truncated} label(s) whose 10 ms frame centre lies past the audio end left out")
    if unused:
        notes.append(f"{unused} labelled utterance(s) in no split file, not used")
    return "\n".join(notes)


register_recipe(
    Recipe(
        name="libriphone",
        help="s3prl's phone_linear frame labels of train-clean-100 (for the frame_phone task)",
        prepare=prepare_libriphone,
        options={
            "corpus_dir": CliOption(
                "folder of converted_aligned_phones.txt, train_split.txt, test_split.txt", flag="--phone-path"
            ),
            "libri_root": CliOption("LibriSpeech folder holding train-clean-100"),
        },
    )
)
