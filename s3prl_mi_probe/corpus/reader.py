"""The one reader of a corpus's files: audio info and TextGrid interval tiers, each unusable file
raised as :class:`~s3prl_mi_probe.common.problems.ProblemsFound` with one problem that says why."""

from __future__ import annotations

from pathlib import Path

import soundfile
from praatio import textgrid
from praatio.utilities.errors import PraatioException, TextgridStateError

from s3prl_mi_probe.common.problems import unusable
from s3prl_mi_probe.corpus.audio import audio_info

Interval = tuple[float, float, str]  # (start, end, label) in seconds; praatio's intervals are such tuples


def read_audio_info(path: Path) -> tuple[int, int]:
    """``(num_samples, sample_rate)`` of an audio file, without decoding it."""
    if not path.is_file():
        raise unusable(path, "audio file not found")
    try:
        return audio_info(path)
    except soundfile.SoundFileError as error:
        raise unusable(path, f"unreadable audio ({error})") from error


def open_textgrid(path: Path) -> textgrid.Textgrid:
    """A parsed TextGrid (empty intervals left out)."""
    if not path.is_file():
        raise unusable(path, "TextGrid not found")
    try:
        return textgrid.openTextgrid(str(path), includeEmptyIntervals=False, reportingMode="silence")
    except TextgridStateError as error:  # praatio rejects overlapping or reversed intervals
        raise unusable(path, f"invalid intervals in TextGrid ({_one_line(error)})") from error
    except Exception as error:  # praatio's parser fails with IndexError, ParsingError, UnicodeError, ...
        raise unusable(path, f"malformed TextGrid ({_parse_failure(error)})") from error


def interval_tiers(grid: textgrid.Textgrid, path: Path, tier_names: list[str]) -> dict[str, list[Interval]]:
    """The labelled intervals of the named interval tiers of a TextGrid opened from ``path``."""
    missing = [name for name in tier_names if name not in grid.tierNames]
    if missing:
        present = ", ".join(f"'{name}'" for name in grid.tierNames) or "none"
        wanted = ", ".join(f"'{name}'" for name in missing)
        raise unusable(path, f"no {wanted} tier{'s' if len(missing) > 1 else ''} (tiers present: {present})")
    point_tiers = [f"'{name}'" for name in tier_names if not isinstance(grid.getTier(name), textgrid.IntervalTier)]
    if len(point_tiers) == 1:
        raise unusable(path, f"tier {point_tiers[0]} is a point tier, not an interval tier")
    if point_tiers:
        raise unusable(path, f"tiers {', '.join(point_tiers)} are point tiers, not interval tiers")
    return {name: list(grid.getTier(name).entries) for name in tier_names}


def read_tiers(path: Path, tier_names: list[str]) -> tuple[dict[str, list[Interval]], float]:
    """The labelled intervals of the named interval tiers of a TextGrid file, and the grid's end time."""
    grid = open_textgrid(path)
    return interval_tiers(grid, path, tier_names), grid.maxTimestamp


def _parse_failure(error: Exception) -> str:
    """Why praatio could not read a TextGrid, in words (its own message where it gives one)."""
    if isinstance(error, PraatioException):
        return _one_line(error).rstrip(".")
    if isinstance(error, UnicodeError):
        return "not UTF-8 or UTF-16 text"
    return "not in Praat's TextGrid format, or cut short"


def _one_line(error: Exception) -> str:
    return " ".join(str(error).split()) or "no details"
