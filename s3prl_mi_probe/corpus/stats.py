"""What a task's filters keep and drop: class counts, segment durations, drop reasons per split."""

from __future__ import annotations

import io
import math
from dataclasses import replace
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from s3prl_mi_probe.common.atomic import write_bytes_atomic, write_text_atomic
from s3prl_mi_probe.common.problems import ProblemsFound
from s3prl_mi_probe.common.table import format_table
from s3prl_mi_probe.corpus.task import DROP_REASONS, TaskData, TaskOptions, build_task

TABLE_CLASSES = 40  # classes listed in the text table
PLOT_CLASSES = 30  # classes drawn in the bar chart
DURATION_EDGES = (0.0, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0)  # seconds; the bounds are added


def manifest_stats(manifest: str | Path, options: TaskOptions, out: Path | None = None) -> str:
    """Class counts, a segment-duration histogram and what ``options`` keep and drop, as text.

    The raw counts come from the task built with nothing filtered (no silence labels, no length
    bounds, every train label a class); the kept counts from the task built with ``options``
    (if it cannot be built, its problems are shown instead). With ``out``, also writes
    ``out/stats.md`` and ``out/stats.png`` (top classes, duration histogram with the bounds).
    """
    unfiltered = replace(
        options, min_count=1, max_classes=None, silence_labels=(), min_duration=1e-9, max_duration=math.inf
    )
    raw = build_task(manifest, unfiltered)
    try:
        filtered, filter_problem = build_task(manifest, options), None
    except ProblemsFound as error:
        filtered, filter_problem = None, error
    labels, durations = _raw_segments(raw)
    is_speech = np.array([options.normalize_label(label) is not None for label in labels], dtype=bool)

    sections = [
        f"manifest: {manifest}\ntask: {options.task}; min_count={options.min_count}, "
        f"max_classes={options.max_classes}, "
        f"durations in [{options.min_duration}, {options.max_duration}) s, fold_stress={options.fold_stress}"
        + ("; dev carved from train" if raw.dev_carved else ""),
        "What the filters keep and drop (segments):\n"
        + (
            format_table(
                _filter_rows(filtered), ["split", "segments", *_reasons(filtered), "kept", "kept_%"], float_digits=1
            )
            if filtered is not None
            else f"not usable with these options: {filter_problem}"
        ),
        _class_section(raw, options, filtered),
        "Durations of non-silence segments (all splits):\n"
        + format_table(_duration_rows(durations[is_speech], options), ["from_ms", "to_ms", "segments", "filter"]),
    ]
    text = "\n\n".join(sections)
    if out is not None:
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        _plot(raw, options, filtered, durations[is_speech], out / "stats.png")
        markdown = f"# Segment statistics\n\n```\n{text}\n```\n\n![class counts and durations](stats.png)\n"
        write_text_atomic(out / "stats.md", markdown)
    return text


def _raw_segments(raw: TaskData) -> tuple[list[str], np.ndarray]:
    """Label and duration (seconds) of every segment of every split."""
    labels, durations = [], []
    for utterances in raw.splits.values():
        for segments in utterances:
            labels += [raw.classes[index] for index in segments.labels]
            durations.append(segments.ends - segments.starts)
    return labels, np.concatenate(durations) if durations else np.zeros(0)


def _reasons(filtered: TaskData) -> list[str]:
    """The drop reasons: the usual ones, then any other a task counts (frame tasks: ``not_sampled``)."""
    return list(dict.fromkeys([*DROP_REASONS, *(reason for counts in filtered.dropped.values() for reason in counts)]))


def _filter_rows(filtered: TaskData) -> list[dict]:
    rows = []
    for split, counts in filtered.counts().items():
        dropped = filtered.dropped[split]
        total = counts["segments"] + sum(dropped.values())
        share = 100 * counts["segments"] / total if total else 0.0
        rows.append({"split": split, "segments": total, **dropped, "kept": counts["segments"], "kept_%": share})
    return rows


def _class_status(label: str, options: TaskOptions, filtered: TaskData | None) -> str:
    if options.normalize_label(label) is None:
        return "silence"
    if filtered is None:
        return "?"
    return "kept" if label in filtered.classes else "dropped"


def _class_section(raw: TaskData, options: TaskOptions, filtered: TaskData | None) -> str:
    """Raw per-split counts of the most frequent train classes, with what the filters make of them."""
    per_split = {split: raw.label_counts(split) for split in raw.splits}
    rows = [
        {
            "class": label,
            **{split: int(counts[index]) for split, counts in per_split.items()},
            "status": _class_status(label, options, filtered),
        }
        for index, label in enumerate(raw.classes[:TABLE_CLASSES])
    ]
    unseen = {split: raw.dropped[split]["rare_class"] for split in ("dev", "test")}
    lines = [
        f"Classes ({len(raw.classes)} train labels, most frequent first; raw counts before any filter; "
        f"{len(filtered.classes) if filtered is not None else '?'} kept):",
        format_table(rows, ["class", *per_split, "status"]),
    ]
    if len(raw.classes) > TABLE_CLASSES:
        lines.append(f"... {len(raw.classes) - TABLE_CLASSES} more classes")
    if any(unseen.values()):
        lines.append("segments with labels never seen in train: " + ", ".join(f"{s} {n}" for s, n in unseen.items()))
    return "\n".join(lines)


def _duration_edges(options: TaskOptions) -> np.ndarray:
    return np.array(sorted({*DURATION_EDGES, options.min_duration, options.max_duration}) + [math.inf])


def _duration_rows(durations: np.ndarray, options: TaskOptions) -> list[dict]:
    """Histogram rows over ``DURATION_EDGES`` plus the bounds; each bin lies wholly in or out of them."""
    edges = _duration_edges(options)
    counts = np.bincount(np.searchsorted(edges, durations, side="right") - 1, minlength=len(edges) - 1)
    rows = []
    for low, high, count in zip(edges[:-1], edges[1:], counts):
        verdict = "too_short" if high <= options.min_duration else "too_long" if low >= options.max_duration else "kept"
        rows.append(
            {"from_ms": f"{low * 1000:g}", "to_ms": f"{high * 1000:g}", "segments": int(count), "filter": verdict}
        )
    return rows


def _plot(raw: TaskData, options: TaskOptions, filtered: TaskData | None, durations: np.ndarray, path: Path) -> None:
    """Bar chart of the top train classes (coloured by status) beside the duration histogram with the bounds."""
    figure = Figure(figsize=(13, 4.8), layout="constrained")
    FigureCanvasAgg(figure)
    classes_axes, duration_axes = figure.subplots(1, 2, width_ratios=(3, 2))

    train_counts = raw.label_counts("train")[:PLOT_CLASSES]
    labels = raw.classes[:PLOT_CLASSES]
    colors = {"kept": "C0", "dropped": "C3", "silence": "0.7", "?": "0.4"}
    statuses = [_class_status(label, options, filtered) for label in labels]
    classes_axes.bar(range(len(labels)), train_counts, color=[colors[s] for s in statuses])
    classes_axes.set_xticks(range(len(labels)), labels, rotation=90, fontsize="small")
    classes_axes.axhline(options.min_count, color="black", linestyle="--", linewidth=1)
    handles = [Patch(color=colors[status], label=status) for status in dict.fromkeys(statuses)]
    handles.append(Line2D([], [], color="black", linestyle="--", label=f"min_count={options.min_count}"))
    classes_axes.set_yscale("log")
    classes_axes.set_ylabel("train segments")
    classes_axes.set_title(f"{options.task}: top {len(labels)} of {len(raw.classes)} train classes")
    classes_axes.legend(handles=handles, fontsize="small")

    if durations.size:
        bins = np.geomspace(max(durations.min(), 1e-4), durations.max() * 1.01, 40) * 1000
        duration_axes.hist(np.maximum(durations, 1e-4) * 1000, bins=bins, color="C0")
        duration_axes.set_xscale("log")
    for bound, name, color in ((options.min_duration, "min", "C3"), (options.max_duration, "max", "C1")):
        duration_axes.axvline(bound * 1000, color=color, linestyle="--", label=f"{name}_duration {bound * 1000:g} ms")
    duration_axes.set_xlabel("segment duration (ms)")
    duration_axes.set_ylabel("non-silence segments")
    duration_axes.set_title("segment durations (all splits)")
    duration_axes.legend(fontsize="small")

    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110)
    write_bytes_atomic(path, buffer.getvalue())
