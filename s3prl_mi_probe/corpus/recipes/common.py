"""Helpers every corpus recipe shares: TextGrid conversion, the note of what was skipped, finishing."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from s3prl_mi_probe.common.problems import Problem, ProblemsFound
from s3prl_mi_probe.corpus.manifest import ManifestRow, write_manifest
from s3prl_mi_probe.corpus.overview import corpus_summary
from s3prl_mi_probe.corpus.reader import read_tiers
from s3prl_mi_probe.corpus.textgrid import write_textgrid

OUR_TIERS = ("words", "phones")


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


def finish_recipe(source: Path, out: Path, rows: list[ManifestRow], problems: list[Problem], notes: list[str]) -> Path:
    """Raise the problems of a recipe as one ProblemsFound, or write its manifest and print notes and summary."""
    if not rows and not problems:
        problems = [Problem(source, "no utterance with both audio and alignment found")]
    if problems:
        raise ProblemsFound(source, problems)
    manifest = write_manifest(out, rows)
    print("\n".join([*notes, corpus_summary(manifest)]))
    return manifest
