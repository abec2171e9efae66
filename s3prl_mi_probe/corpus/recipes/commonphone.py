"""CommonPhone 1.0: Common Voice recordings with MAUS phone and word segmentations."""

from __future__ import annotations

import csv
from functools import partial
from pathlib import Path

from s3prl_mi_probe.common.problems import ProblemsFound, unusable
from s3prl_mi_probe.corpus.manifest import ManifestRow
from s3prl_mi_probe.corpus.reader import read_audio_info
from s3prl_mi_probe.corpus.recipes.common import convert_textgrid, finish_recipe
from s3prl_mi_probe.corpus.recipes.registry import CliOption, Recipe, register_recipe
from s3prl_mi_probe.corpus.task_kinds import DEFAULT_SILENCE_LABELS

CSV_SPLITS = ("train", "dev", "test")
MAUS_TIERS = {"phones": "MAU", "words": "ORT-MAU"}
# Accepted header names, best first, compared lower-case with "_" and "-" read as spaces.
FILE_COLUMNS = ("audio file", "file name", "filename", "file", "path", "audio", "wav")
SPEAKER_COLUMNS = ("client id", "speaker id", "speaker", "id")


def prepare_commonphone(corpus_dir: Path, output_dir: Path, languages: list[str]) -> Path:
    """Write ``output_dir/manifest.tsv`` and ``output_dir/grids/`` for CommonPhone ``languages`` (``en``, ...).

    Expects ``corpus_dir/<lang>/{train,dev,test}.csv``, ``corpus_dir/<lang>/wav/<name>.wav`` and
    ``corpus_dir/<lang>/grids/<name>.TextGrid`` with MAUS tiers ``MAU`` (phones) and ``ORT-MAU`` (words).
    Assumed CSV format: a header row, comma, semicolon or tab separated, in any column order,
    with the file in a column named like ``audio file`` (also ``audio_file``, ``file name``,
    ``filename``, ``file``, ``path``, ``audio``, ``wav``) and the speaker in one named like
    ``client id`` (also ``speaker id``, ``speaker``, ``id``). Only the file name's stem is used,
    so ``x.mp3``, ``x.wav`` and ``wav/x.wav`` all mean ``wav/x.wav``. Ids and word labels are
    prefixed with the language (``en_x``, ``en_the``); phone labels (SAMPA) and pauses are kept.
    Missing or unreadable CSVs, audio and TextGrids raise one ProblemsFound listing them all.
    """
    root, out = Path(corpus_dir), Path(output_dir)
    rows, problems = [], []
    for language in languages:
        for split in CSV_SPLITS:
            table = root / language / f"{split}.csv"
            try:
                entries = _read_split_csv(table)
            except ProblemsFound as error:
                problems += error.problems
                continue
            for stem, speaker in entries:
                utterance_id = f"{language}_{stem}"
                audio = root / language / "wav" / f"{stem}.wav"
                alignment = out / "grids" / f"{utterance_id}.TextGrid"
                try:
                    read_audio_info(audio)
                    convert_textgrid(
                        root / language / "grids" / f"{stem}.TextGrid",
                        alignment,
                        MAUS_TIERS,
                        relabel={"words": partial(_prefixed, prefix=f"{language}_")},
                    )
                except ProblemsFound as error:
                    problems += error.problems
                    continue
                rows.append(ManifestRow(utterance_id, audio, alignment, split, speaker))
    return finish_recipe(root, out, rows, problems, notes=[])


def _read_split_csv(path: Path) -> list[tuple[str, str | None]]:
    """``(file stem, speaker or None)`` of each row of a CommonPhone split CSV."""
    if not path.is_file():
        raise unusable(path, "split table not found")
    with path.open(newline="", encoding="utf-8-sig") as stream:
        header_line = stream.readline()
        delimiter = max(",;\t", key=header_line.count)
        stream.seek(0)
        reader = csv.DictReader(stream, delimiter=delimiter)
        columns = {_column_key(name): name for name in reader.fieldnames or []}
        file_column = next((columns[key] for key in FILE_COLUMNS if key in columns), None)
        speaker_column = next((columns[key] for key in SPEAKER_COLUMNS if key in columns), None)
        if file_column is None:
            found = ", ".join(reader.fieldnames or []) or "none"
            raise unusable(path, f"no audio file column (looked for {', '.join(FILE_COLUMNS)}; found: {found})")
        entries = []
        for row in reader:
            name = (row[file_column] or "").strip()
            speaker = (row[speaker_column] or "").strip() if speaker_column else ""
            if name:
                entries.append((Path(name).stem, speaker or None))
        return entries


def _column_key(name: str) -> str:
    return " ".join(name.lower().replace("_", " ").replace("-", " ").split())


def _prefixed(word: str, prefix: str) -> str:
    """``prefix + word`` for words; pauses and other silence labels as they are."""
    return word if word.strip().lower() in DEFAULT_SILENCE_LABELS else prefix + word.strip()


register_recipe(
    Recipe(
        name="commonphone",
        help="CommonPhone 1.0 (MAUS tiers MAU, ORT-MAU)",
        prepare=prepare_commonphone,
        options={
            "corpus_dir": CliOption("folder of the language folders (en, de, ...)", flag="--root"),
            "languages": CliOption("comma-separated, e.g. en,de"),
        },
    )
)
