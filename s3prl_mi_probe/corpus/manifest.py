"""Parsing and checking the manifest TSV (``id, audio, alignment, split[, speaker]``)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from s3prl_mi_probe.common.atomic import write_text_atomic
from s3prl_mi_probe.common.problems import Problem, ProblemsFound

REQUIRED_COLUMNS = ("id", "audio", "alignment", "split")
SPLITS = ("train", "dev", "test")


@dataclass(frozen=True)
class Utterance:
    """One manifest row; paths are resolved, ``line`` is the 1-based manifest line."""

    id: str
    audio: Path
    alignment: Path
    split: str
    speaker: str | None
    line: int


@dataclass(frozen=True)
class ManifestRow:
    """One utterance to write into a manifest (paths absolute or relative to the working folder)."""

    id: str
    audio: Path
    alignment: Path
    split: str
    speaker: str | None = None


def read_manifest(path: str | Path) -> list[Utterance]:
    """Read a manifest; raise one ProblemsFound listing every problem found.

    Checks the header, each row's column count, empty fields, split names,
    duplicate ids and an empty manifest. Audio and alignment files are not opened.
    """
    utterances, problems = parse_manifest(path)
    if problems:
        raise ProblemsFound(path, problems)
    return utterances


def parse_manifest(path: str | Path) -> tuple[list[Utterance], list[Problem]]:
    """The well-formed rows of a manifest and the problems of the others.

    Raises ProblemsFound at once only when nothing can be read (no file, no header, no rows).
    """
    path = Path(path)
    if not path.is_file():
        raise ProblemsFound(path, [Problem(path.name, "manifest file not found")])
    lines = path.read_text(encoding="utf-8-sig").splitlines()
    rows = [(number, line.split("\t")) for number, line in enumerate(lines, start=1) if line.strip()]
    if not rows:
        raise ProblemsFound(path, [Problem(path.name, "manifest is empty (no header, no utterances)")])

    header_line, header = rows[0]
    header = [name.strip() for name in header]
    missing = [name for name in REQUIRED_COLUMNS if name not in header]
    duplicated = sorted({name for name in header if header.count(name) > 1})
    header_problems = []
    if missing:
        header_problems.append(f"header lacks required column(s) {', '.join(missing)} (found: {', '.join(header)})")
    if duplicated:
        header_problems.append(f"header repeats column(s) {', '.join(duplicated)}")
    if header_problems:
        raise ProblemsFound(path, [Problem(path.name, p, header_line) for p in header_problems])
    if len(rows) == 1:
        raise ProblemsFound(path, [Problem(path.name, "manifest has a header but no utterances", header_line)])

    problems: list[Problem] = []
    utterances: list[Utterance] = []
    first_line_of_id: dict[str, int] = {}
    for number, fields in rows[1:]:
        if len(fields) != len(header):
            count = f"expected {len(header)} tab-separated columns, found {len(fields)}"
            problems.append(Problem(path.name, count, number))
            continue
        row = dict(zip(header, (field.strip() for field in fields)))
        utterance_id = row["id"]
        row_problems = [f"empty '{name}' column" for name in REQUIRED_COLUMNS if not row[name]]
        if row["split"] and row["split"] not in SPLITS:
            row_problems.append(f"unknown split '{row['split']}' (expected one of {', '.join(SPLITS)})")
        if utterance_id in first_line_of_id:
            row_problems.append(f"duplicate id '{utterance_id}' (first on line {first_line_of_id[utterance_id]})")
        elif utterance_id:
            first_line_of_id[utterance_id] = number
        problems.extend(Problem(path.name, p, number, utterance_id) for p in row_problems)
        if not row_problems:
            utterances.append(
                Utterance(
                    id=utterance_id,
                    audio=_resolve(path.parent, row["audio"]),
                    alignment=_resolve(path.parent, row["alignment"]),
                    split=row["split"],
                    speaker=row.get("speaker") or None,
                    line=number,
                )
            )
    return utterances, problems


def _resolve(folder: Path, value: str) -> Path:
    """Resolve a manifest path against the manifest's folder."""
    candidate = Path(value).expanduser()
    return candidate if candidate.is_absolute() else folder / candidate


def write_manifest(out: Path, rows: list[ManifestRow]) -> Path:
    """Write ``out/manifest.tsv`` atomically and return its path.

    Paths inside ``out`` are written relative to it, others absolute; the speaker column
    is written when any row has a speaker.
    """
    out.mkdir(parents=True, exist_ok=True)
    with_speaker = any(row.speaker for row in rows)
    lines = ["\t".join([*REQUIRED_COLUMNS] + (["speaker"] if with_speaker else []))]
    for row in rows:
        fields = [row.id, _manifest_path(row.audio, out), _manifest_path(row.alignment, out), row.split]
        lines.append("\t".join(fields + ([row.speaker or ""] if with_speaker else [])))
    manifest = out / "manifest.tsv"
    write_text_atomic(manifest, "\n".join(lines) + "\n")
    return manifest


def _manifest_path(path: Path, out: Path) -> str:
    path = path.absolute()
    return path.relative_to(out.absolute()).as_posix() if path.is_relative_to(out.absolute()) else str(path)
