"""One error for "these problems were found": every problem of an input (a manifest and its files, a
corpus, a protocol, a features folder, a benchmark run) reported at once, each with where and why."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Problem:
    """One problem: the ``file`` it is in as shown to users (a path or a name; None when no one file is
    at fault), the ``line`` or ``utterance`` there where known, and the ``reason``.

    ``str(problem)`` reads ``manifest.tsv:4 (utt3): <reason>``.
    """

    file: str | Path | None
    reason: str
    line: int | None = None
    utterance: str | None = None

    def __str__(self):
        where = "" if self.file is None else str(self.file)
        if self.line is not None:
            where += f":{self.line}"
        if self.utterance:
            where += f" ({self.utterance})"
        return f"{where}: {self.reason}" if where else self.reason


class ProblemsFound(ValueError):
    """Every problem found in ``source`` (what was checked, as shown), raised together.

    ``problems`` are :class:`Problem` s; the message is ``N problem(s) found in <source>:`` and then
    one indented line per problem.
    """

    def __init__(self, source: str | Path, problems: list[Problem]):
        self.source = source
        self.problems = list(problems)
        header = f"{len(self.problems)} problem(s) found in {source}:"
        super().__init__("\n".join([header, *(f"  {problem}" for problem in self.problems)]))


def unusable(file: str | Path, reason: str) -> ProblemsFound:
    """The error of one file that cannot be used: one problem, in that file."""
    return ProblemsFound(file, [Problem(file, reason)])
