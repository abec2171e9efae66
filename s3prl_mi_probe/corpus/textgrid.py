"""Writing Praat TextGrids (long format) with interval tiers: what the corpus recipes and synthesisers emit."""

from __future__ import annotations

from pathlib import Path

from s3prl_mi_probe.common.atomic import write_text_atomic

SILENCE = "sil"  # the label our writers give pauses


def write_textgrid(path: Path, tiers: dict[str, list[tuple[float, float, str]]], duration: float) -> None:
    """Write a long-format Praat TextGrid with the given interval tiers.

    Gaps are filled with empty intervals, as Praat does; intervals are written as
    given otherwise, so broken inputs (overlaps, times past ``duration``) can be written.
    """
    end = max([duration, *(e for intervals in tiers.values() for _, e, _ in intervals)])
    lines = [
        'File type = "ooTextFile"',
        'Object class = "TextGrid"',
        "",
        "xmin = 0",
        f"xmax = {end!r}",
        "tiers? <exists>",
        f"size = {len(tiers)}",
        "item []:",
    ]
    for tier_number, (name, intervals) in enumerate(tiers.items(), start=1):
        filled = _fill_gaps(sorted(intervals), end)
        lines += [
            f"    item [{tier_number}]:",
            '        class = "IntervalTier"',
            f'        name = "{name}"',
            "        xmin = 0",
            f"        xmax = {end!r}",
            f"        intervals: size = {len(filled)}",
        ]
        for number, (start, stop, label) in enumerate(filled, start=1):
            escaped = label.replace('"', '""')
            lines += [
                f"        intervals [{number}]:",
                f"            xmin = {float(start)!r}",
                f"            xmax = {float(stop)!r}",
                f'            text = "{escaped}"',
            ]
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(path, "\n".join(lines) + "\n")


def _fill_gaps(intervals: list[tuple[float, float, str]], end: float) -> list[tuple[float, float, str]]:
    filled, cursor = [], 0.0
    for start, stop, label in intervals:
        if start > cursor:
            filled.append((cursor, start, ""))
        filled.append((start, stop, label))
        cursor = max(cursor, stop)
    if cursor < end:
        filled.append((cursor, end, ""))
    return filled
