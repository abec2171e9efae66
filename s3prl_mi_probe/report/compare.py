"""Side-by-side comparison of several sweep folders: a wide CSV, a Markdown report and overlay plots."""

import csv
import io
from pathlib import Path

from s3prl_mi_probe.common.atomic import write_text_atomic
from s3prl_mi_probe.common.table import format_table
from s3prl_mi_probe.report.plots import PLOT_FILE_STEMS, plot_layer_curves
from s3prl_mi_probe.report.rows import best_layers, read_sweep_csv

COMPARED_METRICS = ("mi_bits", "accuracy", "margin_median")
COMPARED_SPLIT = "test"
BEST_LAYER_COLUMNS = ("upstream", "probe", "best_layer", "mi_bits", "h_y_bits", "accuracy", "margin_median")


def _load_sweeps(sweep_dirs):
    """Rows of every folder's sweep.csv, with upstream labels found in several folders renamed ``label (dirname)``.

    Returns (rows, {label: folder}).
    """
    loaded = []
    for sweep_dir in map(Path, sweep_dirs):
        csv_path = sweep_dir / "sweep.csv"
        if not csv_path.is_file():
            raise FileNotFoundError(f"sweep folder {sweep_dir} has no sweep.csv ({csv_path} is missing)")
        loaded.append((sweep_dir, read_sweep_csv(csv_path)))

    folders_per_label = {}
    for sweep_dir, rows in loaded:
        for label in dict.fromkeys(row["upstream"] for row in rows):
            folders_per_label.setdefault(label, []).append(sweep_dir)

    merged, sources = [], {}
    for sweep_dir, rows in loaded:
        for row in rows:
            label = row["upstream"]
            if len(folders_per_label[label]) > 1:
                label = f"{label} ({sweep_dir.name})"
            if sources.setdefault(label, sweep_dir) != sweep_dir:
                raise ValueError(f"upstream label {label!r} is ambiguous: {sources[label]} and {sweep_dir}")
            merged.append({**row, "upstream": label})
    return merged, sources


def _wide_rows(rows, upstreams):
    """One dict per (task, probe, layer) with ``<upstream>:<metric>`` entries for the compared split."""
    wide = {}
    for row in rows:
        if row["split"] != COMPARED_SPLIT:
            continue
        line = wide.setdefault(
            (row["task"], row["probe"], row["layer"]),
            {"task": row["task"], "probe": row["probe"], "layer": row["layer"]},
        )
        for metric in COMPARED_METRICS:
            line[f"{row['upstream']}:{metric}"] = row[metric]
    columns = ["task", "probe", "layer"] + [
        f"{upstream}:{metric}" for upstream in upstreams for metric in COMPARED_METRICS
    ]
    return [wide[key] for key in sorted(wide)], columns


def _csv_text(wide_rows, columns):
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(wide_rows)
    return buffer.getvalue()


def _task_section(task, task_rows, upstreams, plot_paths, out):
    """Markdown for one task: H(Y), mi_bits per layer × upstream, best layers, embedded plots."""
    test_rows = [row for row in task_rows if row["split"] == COMPARED_SPLIT]
    entropies = sorted({round(row["h_y_bits"], 3) for row in test_rows})
    lines = [
        f"## Task: {task}",
        "",
        f"H(Y) on the {COMPARED_SPLIT} split: {', '.join(f'{h:.3f}' for h in entropies)} bits "
        "(the ceiling for every mi_bits value below).",
        "",
    ]

    for probe in dict.fromkeys(row["probe"] for row in test_rows):
        by_layer = {}
        for row in test_rows:
            if row["probe"] == probe:
                by_layer.setdefault(row["layer"], {"layer": row["layer"]})[row["upstream"]] = row["mi_bits"]
        present = [upstream for upstream in upstreams if any(upstream in line for line in by_layer.values())]
        lines += [
            f"### mi_bits (bits) per layer, {probe} probe",
            "",
            "```",
            format_table([by_layer[layer] for layer in sorted(by_layer)], ["layer", *present]),
            "```",
            "",
        ]

    best = best_layers(task_rows, metric="mi_bits", split=COMPARED_SPLIT)
    best_rows = [
        {
            "upstream": upstream,
            "probe": probe,
            "best_layer": row["layer"],
            "mi_bits": row["mi_bits"],
            "h_y_bits": row["h_y_bits"],
            "accuracy": row["accuracy"],
            "margin_median": row["margin_median"],
        }
        for (upstream, _, probe), row in best.items()
    ]
    lines += [
        "### Best layer per upstream (highest mi_bits; ties go to the lowest layer)",
        "",
        "```",
        format_table(best_rows, BEST_LAYER_COLUMNS),
        "```",
        "",
    ]

    lines += ["### Plots", ""]
    lines += [f"![{task} {metric}]({path.relative_to(out).as_posix()})" for metric, path in plot_paths.items()]
    return lines + [""]


def compare_sweeps(sweep_dirs, out) -> dict:
    """Compare sweep folders (each holding sweep.csv) and write the comparison into folder ``out``.

    Outputs:
      - ``out/compare.csv``: one row per (task, probe, layer), sorted, on the test split, with columns
        ``task, probe, layer`` then, per upstream in input order, ``<upstream>:mi_bits``,
        ``<upstream>:accuracy``, ``<upstream>:margin_median``; a cell is empty where an upstream has no
        such layer. An upstream label present in several folders becomes ``label (dirname)``.
      - ``out/compare.md``: per task, a layer × upstream table of mi_bits, H(Y), each upstream's best layer
        with its mi_bits/accuracy/margin, and the plots linked relatively.
      - ``out/plots/<task>_mi_bits.png``, ``<task>_accuracy.png``, ``<task>_margin.png``: overlays.

    Returns {"csv": path, "markdown": path, "plots": {task: {metric: path}}}.
    Raises FileNotFoundError naming the folder when a sweep.csv is missing, ValueError on a wrong header.
    """
    out = Path(out)
    rows, sources = _load_sweeps(sweep_dirs)
    upstreams = list(sources)
    plots_dir = out / "plots"
    plots_dir.mkdir(parents=True, exist_ok=True)

    wide_rows, columns = _wide_rows(rows, upstreams)
    csv_path = out / "compare.csv"
    write_text_atomic(csv_path, _csv_text(wide_rows, columns))

    lines = ["# Sweep comparison", "", "| upstream | sweep folder |", "| --- | --- |"]
    lines += [f"| {upstream} | {folder} |" for upstream, folder in sources.items()]
    lines.append("")
    plots = {}
    for task in sorted({row["task"] for row in rows if row["split"] == COMPARED_SPLIT}):
        task_rows = [row for row in rows if row["task"] == task]
        plots[task] = {
            metric: plot_layer_curves(task_rows, metric, plots_dir / f"{task}_{stem}.png", split=COMPARED_SPLIT)
            for metric, stem in PLOT_FILE_STEMS.items()
        }
        lines += _task_section(task, task_rows, upstreams, plots[task], out)
    markdown_path = out / "compare.md"
    write_text_atomic(markdown_path, "\n".join(lines))
    return {"csv": csv_path, "markdown": markdown_path, "plots": plots}
