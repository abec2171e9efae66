"""Helpers every corpus recipe shares: manifest rows, input checks, TextGrid conversion, finishing."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import soundfile
from praatio import textgrid

from s3prl_mi_probe.corpus.audio import audio_info
from s3prl_mi_probe.corpus.errors import CorpusError
from s3prl_mi_probe.corpus.manifest import ManifestRow, write_manifest
from s3prl_mi_probe.corpus.overview import corpus_summary
from s3prl_mi_probe.corpus.textgrid import write_textgrid

OUR_TIERS = ("words", "phones")


Interval = tuple[float, float, str]


class InputProblem(ValueError):
    """One unusable input file; the message names the file and says why."""


def check_audio(path: Path) -> tuple[int, int]:
    """``(num_samples, sample_rate)`` of an audio file; InputProblem when it is missing or unreadable."""
    if not path.is_file():
        raise InputProblem(f"{path}: audio file not found")
    try:
        return audio_info(path)
    except soundfile.SoundFileError as error:
        raise InputProblem(f"{path}: unreadable audio ({error})") from error


def read_tiers(path: Path, tier_names: list[str]) -> tuple[dict[str, list[Interval]], float]:
    """The labelled intervals of the named interval tiers of a TextGrid, and the grid's end time."""
    if not path.is_file():
        raise InputProblem(f"{path}: TextGrid not found")
    try:
        grid = textgrid.openTextgrid(str(path), includeEmptyIntervals=False, reportingMode="silence")
    except Exception as error:  # praatio fails with IndexError, ParsingError, TextgridStateError, UnicodeError, ...
        reason = " ".join(str(error).split()) or "no details"
        raise InputProblem(f"{path}: unreadable TextGrid ({type(error).__name__}: {reason})") from error
    missing = [name for name in tier_names if name not in grid.tierNames]
    if missing:
        present = ", ".join(f"'{name}'" for name in grid.tierNames) or "none"
        wanted = ", ".join(f"'{name}'" for name in missing)
        raise InputProblem(f"{path}: no tier {wanted} (tiers present: {present})")
    point_tiers = [name for name in tier_names if not isinstance(grid.getTier(name), textgrid.IntervalTier)]
    if point_tiers:
        raise InputProblem(f"{path}: tier(s) {', '.join(point_tiers)} are point tiers, not interval tiers")
    tiers = {name: [(e.start, e.end, e.label) for e in grid.getTier(name).entries] for name in tier_names}
    return tiers, grid.maxTimestamp


def convert_textgrid(
    source: Path,
    target: Path,
    source_tiers: dict[str, str],
    relabel: dict[str, Callable[[str], str]] | None = None,
) -> None:
    """Write ``target`` with our tier names, e.g. ``source_tiers={"phones": "MAU", "words": "ORT-MAU"}``.

    ``relabel`` maps one of our tier names to a function applied to each of its labels.
    """
    tiers, duration = read_tiers(source, list(source_tiers.values()))
    relabel = relabel or {}
    converted = {}
    for ours, theirs in source_tiers.items():
        label_of = relabel.get(ours, str)
        converted[ours] = [(start, end, label_of(label)) for start, end, label in tiers[theirs]]
    write_textgrid(target, converted, duration)


def skipped_note(what: str, names: list[str]) -> str:
    """One summary line listing what a recipe skipped."""
    return f"{len(names)} {what}: {', '.join(names)}"


def finish_recipe(source: Path, out: Path, rows: list[ManifestRow], problems: list[str], notes: list[str]) -> Path:
    """Raise the problems of a recipe as one CorpusError, or write its manifest and print notes and summary."""
    if not rows and not problems:
        problems = [f"{source}: no utterance with both audio and alignment found"]
    if problems:
        raise CorpusError(source, problems)
    manifest = write_manifest(out, rows)
    print("\n".join([*notes, corpus_summary(manifest)]))
    return manifest
