"""Side-by-side comparison of several sweep folders: a wide CSV, a Markdown report and overlay plots.

Bits are comparable only between sweeps of the same manifest, task and class filters (docs/method.md,
"Caveats"): the sweeps of each task must agree on these, read from each folder's ``sweep.json``, or
the comparison is refused with what differs.
"""

import csv
import io
import json
from pathlib import Path

from s3prl_mi_probe.common.atomic import replace_folder, write_text_atomic
from s3prl_mi_probe.common.table import markdown_table
from s3prl_mi_probe.report.notes import negative_bound_note, with_interval
from s3prl_mi_probe.report.plots import PLOT_FILE_STEMS, plot_layer_curves
from s3prl_mi_probe.report.rows import SELECT_SPLIT, best_layers, read_sweep_csv

COMPARED_METRICS = (
    "mi_bits",
    "mi_bits_ci_low",
    "mi_bits_ci_high",
    "accuracy",
    "accuracy_ci_low",
    "accuracy_ci_high",
    "margin_median",
    "selectivity",
)
COMPARED_SPLIT = "test"
SWEEP_FILES = ("sweep.csv", "sweep.json")
# Task options that do not change which test segments are evaluated (and so H(Y)).
OPTIONS_NOT_COMPARED = ("seed", "dev_fraction")
INTERVAL_NOTE = "Brackets: 95 % bootstrap interval over the test segments."


def sweep_folders(folder):
    """The sweep folders that an input of ``compare`` stands for.

    A folder that ``sweep`` or ``probe`` wrote (``sweep.csv`` and ``sweep.json``) stands for itself; a
    folder that ``benchmark`` wrote for the sweeps of its finished cells, ``runs/<upstream>/<task>/``.
    FileNotFoundError naming what is missing otherwise.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"no sweep folder {folder}")
    present = [name for name in SWEEP_FILES if (folder / name).is_file()]
    if present:
        for name in SWEEP_FILES:
            if name not in present:
                raise FileNotFoundError(f"sweep folder {folder} has no {name} ({folder / name} is missing)")
        return [folder]
    cells = sorted(path.parent for path in folder.glob("runs/*/*/sweep.json") if path.with_name("sweep.csv").is_file())
    if not cells:
        raise FileNotFoundError(
            f"{folder} is not a folder that sweep, probe or benchmark wrote: it has no sweep.csv and sweep.json, "
            "nor finished benchmark runs (runs/<upstream>/<task>/sweep.csv)"
        )
    return cells


def _load_sweeps(inputs):
    """Rows of every sweep folder's sweep.csv and each folder's provenance (sweep.json); ``inputs`` as
    :func:`sweep_folders` takes them.

    An upstream label found in several inputs of one task becomes ``label (name of the input folder)``.
    Returns (rows, {(task, label): sweep folder}, {sweep folder: (task, provenance)}).
    """
    loaded, provenances = [], {}
    for given in map(Path, inputs):
        for sweep_dir in sweep_folders(given):
            rows = read_sweep_csv(sweep_dir / "sweep.csv")
            loaded.append((given, sweep_dir, rows))
            provenance = json.loads((sweep_dir / "sweep.json").read_text()).get("provenance")
            if not isinstance(provenance, dict):
                raise ValueError(
                    f"{sweep_dir / 'sweep.json'} has no provenance: sweep, probe or benchmark did not write it"
                )
            for task_name in dict.fromkeys(row["task"] for row in rows):
                provenances[sweep_dir, task_name] = provenance

    folders_per_label = {}
    for given, _, rows in loaded:
        for key in dict.fromkeys((row["task"], row["upstream"]) for row in rows):
            folders_per_label.setdefault(key, []).append(given)

    merged, sources = [], {}
    for given, sweep_dir, rows in loaded:
        for row in rows:
            label = row["upstream"]
            if len(folders_per_label[(row["task"], label)]) > 1:
                label = f"{label} ({given.name})"
            if sources.setdefault((row["task"], label), sweep_dir) != sweep_dir:
                raise ValueError(
                    f"upstream label {label!r} is ambiguous: {sources[row['task'], label]} and {sweep_dir}"
                )
            merged.append({**row, "upstream": label})
    return merged, sources, provenances


def _setup(provenance):
    """What must agree between folders of one task for their bits to be comparable.

    A sweep: its manifest, task options and classes. A probe run: the same when it probed a sweep's
    cache (the cache's ``meta.json`` names the manifest and task options), else the features' rows.tsv;
    and its classes.
    """
    inputs = provenance.get("features_meta", {}).get("key_inputs", provenance)
    classes = sorted(provenance["classes"]) if provenance.get("classes") is not None else None
    if "task" not in inputs:
        return {"rows.tsv sha256": provenance.get("rows_tsv_sha256"), "classes": classes}
    options = {name: value for name, value in inputs["task"].items() if name not in OPTIONS_NOT_COMPARED}
    return {"manifest sha256": inputs["manifest_sha256"], **options, "classes": classes}


def _shown(name, value):
    if value is None:
        return "not recorded" if name != "max_classes" else "None"
    if name in ("manifest sha256", "rows.tsv sha256"):
        return f"{value[:12]}..." if value else "unknown"
    if name == "classes":
        return f"{len(value)} classes"
    return repr(value)


def check_comparable(provenances):
    """ValueError naming, per task, every setting in which its sweeps differ (manifest, class filters, classes).

    ``provenances``: {(sweep folder, task): that folder's provenance}.
    """
    by_task = {}
    for (folder, task_name), provenance in provenances.items():
        by_task.setdefault(task_name, []).append((folder, _setup(provenance)))
    problems = []
    for task_name, setups in by_task.items():
        names = dict.fromkeys(name for _, setup in setups for name in setup)
        differing = [name for name in names if len({json.dumps(setup.get(name)) for _, setup in setups}) > 1]
        for name in differing:
            values = ", ".join(f"{folder}: {_shown(name, setup.get(name))}" for folder, setup in setups)
            same_count = name == "classes" and len({len(setup[name]) for _, setup in setups}) == 1
            problems.append(
                f"{task_name} task: {name} differs ({values}{'; same count, other classes' if same_count else ''})"
            )
    if problems:
        raise ValueError(
            "these sweeps are not comparable: "
            + "; ".join(problems)
            + "; bits (and H(Y)) are comparable only on the same manifest, task and class filters: compare sweeps "
            "made with the same --manifest, --task and filters"
        )


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


def _best_layer_table(task_rows):
    """Each (upstream, probe)'s layer of highest dev mi_bits, with its test intervals, H(Y), margin and selectivity."""
    best = best_layers(task_rows, report_split=COMPARED_SPLIT)
    rows = [
        {
            "upstream": upstream,
            "probe": probe,
            "best layer": row["layer"],
            "mi_bits [95 % CI]": with_interval(row, "mi_bits"),
            "H(Y)": row["h_y_bits"],
            "accuracy [95 % CI]": with_interval(row, "accuracy"),
            "margin_median": row["margin_median"],
            "selectivity": row["selectivity"],
        }
        for (upstream, _, probe), row in best.items()
    ]
    columns = [
        column for column in rows[0] if column != "selectivity" or any(r["selectivity"] is not None for r in rows)
    ]
    return markdown_table(rows, columns)


def _task_section(task_name, task_rows, upstreams, plot_paths, out):
    """Markdown for one task: H(Y), mi_bits per layer × upstream with intervals, best layers, embedded plots."""
    test_rows = [row for row in task_rows if row["split"] == COMPARED_SPLIT]
    entropies = sorted({round(row["h_y_bits"], 3) for row in test_rows})
    lines = [
        f"## Task: {task_name}",
        "",
        f"H(Y) on the {COMPARED_SPLIT} split: {', '.join(f'{h:.3f}' for h in entropies)} bits "
        "(the ceiling for every mi_bits value below).",
        "",
    ]

    for probe in dict.fromkeys(row["probe"] for row in test_rows):
        by_layer = {}
        for row in test_rows:
            if row["probe"] == probe:
                by_layer.setdefault(row["layer"], {"layer": row["layer"]})[row["upstream"]] = with_interval(
                    row, "mi_bits"
                )
        present = [upstream for upstream in upstreams if any(upstream in line for line in by_layer.values())]
        lines += [
            f"### mi_bits (bits) per layer, {probe} probe",
            "",
            markdown_table([by_layer[layer] for layer in sorted(by_layer)], ["layer", *present]),
            "",
            INTERVAL_NOTE,
            "",
        ]
    note = negative_bound_note(test_rows)
    if note:
        lines += [note, ""]

    lines += [
        f"### Best layer per upstream (chosen on {SELECT_SPLIT}: highest {SELECT_SPLIT} mi_bits, ties to the lowest "
        f"layer; its {COMPARED_SPLIT} numbers)",
        "",
        _best_layer_table(task_rows),
        "",
        "### Plots",
        "",
    ]
    lines += [f"![{task_name} {metric}]({path.relative_to(out).as_posix()})" for metric, path in plot_paths.items()]
    return lines + [""]


def compare_sweeps(sweep_dirs, out) -> dict:
    """Compare the folders that sweep, probe or benchmark wrote (see :func:`sweep_folders`: a benchmark folder
    stands for its runs) and write the comparison into folder ``out``.

    Outputs:
      - ``out/compare.csv``: one row per (task, probe, layer), sorted, on the test split, with columns
        ``task, probe, layer`` then, per upstream in input order, ``<upstream>:<metric>`` for each of
        ``COMPARED_METRICS`` (the bound and accuracy with their 95 % intervals, the median margin,
        selectivity); a cell is empty where an upstream has no such layer or analysis. An upstream label
        present in several folders of one task becomes ``label (dirname)``.
      - ``out/compare.md``: per task, a layer × upstream table of mi_bits with intervals, H(Y), each
        upstream's best layer, and the plots linked relatively.
      - ``out/plots/<task>_mi_bits.png``, ``<task>_accuracy.png``, ``<task>_margin.png``: overlays.

    Returns {"csv": path, "markdown": path, "plots": {task: {metric: path}}}.
    Raises FileNotFoundError naming a missing folder, sweep.csv or sweep.json, ValueError on a wrong
    header or on sweeps of one task that differ in manifest or class filters (:func:`check_comparable`);
    nothing is written then.
    """
    out = Path(out)
    rows, sources, provenances = _load_sweeps(sweep_dirs)
    check_comparable(provenances)
    upstreams = list(dict.fromkeys(label for _, label in sources))
    tasks = {
        task_name: [row for row in rows if row["task"] == task_name]
        for task_name in sorted({row["task"] for row in rows})
    }
    tasks = {
        task_name: task_rows
        for task_name, task_rows in tasks.items()
        if any(r["split"] == COMPARED_SPLIT for r in task_rows)
    }
    plots_dir = out / "plots"
    plots = {
        task_name: {metric: plots_dir / f"{task_name}_{stem}.png" for metric, stem in PLOT_FILE_STEMS.items()}
        for task_name in tasks
    }

    def draw(folder):
        for task_name, task_rows in tasks.items():
            for metric, path in plots[task_name].items():
                plot_layer_curves(task_rows, metric, folder / path.name, split=COMPARED_SPLIT)

    replace_folder(plots_dir, draw)
    wide_rows, columns = _wide_rows(rows, upstreams)
    csv_path = out / "compare.csv"
    write_text_atomic(csv_path, _csv_text(wide_rows, columns))

    folders = [
        {"task": task_name, "upstream": label, "sweep folder": str(folder)}
        for (task_name, label), folder in sources.items()
    ]
    lines = ["# Sweep comparison", "", markdown_table(folders, ["task", "upstream", "sweep folder"]), ""]
    for task_name, task_rows in tasks.items():
        lines += _task_section(task_name, task_rows, upstreams, plots[task_name], out)
    markdown_path = out / "compare.md"
    write_text_atomic(markdown_path, "\n".join(lines))
    return {"csv": csv_path, "markdown": markdown_path, "plots": plots}
