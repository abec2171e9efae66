"""The error raised when a corpus (manifest, audio, alignments) has problems."""

from __future__ import annotations

from pathlib import Path


class CorpusError(ValueError):
    """All problems found in one manifest, reported together.

    ``problems`` holds one line per problem; each names the file and manifest
    line (and utterance id where known) and the reason.
    """

    def __init__(self, manifest: str | Path, problems: list[str]):
        self.manifest = Path(manifest)
        self.problems = list(problems)
        header = f"{len(self.problems)} problem(s) found in {self.manifest}:"
        super().__init__("\n".join([header, *(f"  {p}" for p in self.problems)]))


def problem_at(manifest: str | Path, line: int | None, utterance_id: str | None, message: str) -> str:
    """Format one problem as ``manifest.tsv:4 (utt3): <message>``."""
    where = Path(manifest).name if line is None else f"{Path(manifest).name}:{line}"
    if utterance_id:
        where += f" ({utterance_id})"
    return f"{where}: {message}"
