"""The benchmark leaderboard: per task and upstream the best layer's bound, ranks, and an overall rank.

Read from the finished cells of a benchmark folder (each a sweep: ``sweep.csv`` and ``sweep.json``);
written as ``leaderboard.csv`` (one row per task and upstream, plus ``overall`` rows),
``leaderboard.md``, its self-contained twin ``leaderboard.html`` and overlay plots under ``plots/``.

The rule, stated in the page too: per task, an upstream's layer is the one with the highest
``mi_bits`` of the protocol's first probe on **dev** (ties: the lowest layer), so that the layer
is not chosen on the numbers it is scored by; its **test** ``mi_bits`` ranks the upstreams.
Overall: the mean over the protocol's tasks of ``mi_bits / H(Y)`` at those layers, for upstreams
with every task finished.
"""

import csv
import io
import json
import math
from pathlib import Path

from s3prl_mi_probe.common.atomic import write_text_atomic
from s3prl_mi_probe.report.html import write_html_report
from s3prl_mi_probe.report.plots import plot_layer_curves
from s3prl_mi_probe.report.rows import REPORT_SPLIT, best_layers, read_sweep_csv

OVERALL = "overall"
LEADERBOARD_COLUMNS = (
    "task",
    "rank",
    "upstream",
    "best_layer",
    "num_layers",
    "mi_bits",
    "mi_bits_ci_low",
    "mi_bits_ci_high",
    "h_y_bits",
    "mi_fraction",
    "last_layer_mi_bits",
    "drop_bits",
    "accuracy",
    "margin_median",
    "finetune_layer",
    "finetune_mi_bits",
    "test_segments",
    "train_segments",
    "checkpoint_sha256",
)
PLOTTED_METRICS = {"mi_bits": "mi_bits", "accuracy": "accuracy"}


def cell_entry(rows, primary_probe):
    """The leaderboard entry of one upstream × task sweep (its rows), or None when no layer has a bound."""
    test = {(row["probe"], row["layer"]): row for row in rows if row["split"] == REPORT_SPLIT}
    chosen = {probe: row for (_, _, probe), row in best_layers(rows).items()}
    if primary_probe not in chosen:
        return None
    best = chosen[primary_probe]
    last_layer = max(layer for probe, layer in test if probe == primary_probe)
    last = test[(primary_probe, last_layer)]
    finetune = chosen.get("finetune")
    return {
        "upstream": best["upstream"],
        "task": best["task"],
        "best_layer": best["layer"],
        "num_layers": last_layer + 1,
        "mi_bits": best["mi_bits"],
        "mi_bits_ci_low": best["mi_bits_ci_low"],
        "mi_bits_ci_high": best["mi_bits_ci_high"],
        "h_y_bits": best["h_y_bits"],
        "mi_fraction": best["mi_bits"] / best["h_y_bits"],
        "last_layer_mi_bits": last["mi_bits"],
        "drop_bits": best["mi_bits"] - last["mi_bits"],
        "accuracy": best["accuracy"],
        "margin_median": best["margin_median"],
        "finetune_layer": None if finetune is None else finetune["layer"],
        "finetune_mi_bits": None if finetune is None else finetune["mi_bits"],
        "test_segments": best["num_segments"],
    }


def competition_ranks(scores):
    """Ranks of ``scores`` (higher is better), equal scores sharing a rank: 1, 1, 3."""
    return [1 + sum(other > score for other in scores) for score in scores]


def leaderboard_entries(cells, tasks, primary_probe):
    """``(per_task, overall)``: {task: entries ranked}, and the overall entries ranked.

    ``cells`` are ``(record, rows, provenance)`` of finished sweeps (record: the cell's upstream,
    checkpoint sha256, task; provenance: the sweep's, for segment counts).
    """
    per_task = {task_name: [] for task_name in tasks}
    for record, rows, provenance in cells:
        entry = cell_entry(rows, primary_probe)
        if entry is not None:
            entry["train_segments"] = provenance["segments"]["train"]
            entry["checkpoint_sha256"] = record["checkpoint_sha256"]
            per_task[record["task"]].append(entry)
    for entries in per_task.values():
        for entry, rank in zip(entries, competition_ranks([entry["mi_bits"] for entry in entries])):
            entry["rank"] = rank
        entries.sort(key=lambda entry: (entry["rank"], entry["upstream"]))
    fractions = {}
    for task_name, entries in per_task.items():
        for entry in entries:
            fractions.setdefault(entry["upstream"], {})[task_name] = entry["mi_fraction"]
    complete = {upstream: values for upstream, values in fractions.items() if len(values) == len(tasks)}
    overall = [
        {"task": OVERALL, "upstream": upstream, "mi_fraction": sum(values.values()) / len(tasks), "per_task": values}
        for upstream, values in complete.items()
    ]
    for entry, rank in zip(overall, competition_ranks([entry["mi_fraction"] for entry in overall])):
        entry["rank"] = rank
    overall.sort(key=lambda entry: (entry["rank"], entry["upstream"]))
    return per_task, overall


def write_leaderboard(out, finished, context):
    """Write the leaderboard of ``finished`` cells (``[(record, folder)]``) into ``out``; returns the paths.

    ``context``: ``protocol``, ``protocol_sha256``, ``description``, ``tasks`` (in order),
    ``primary_probe`` and ``sample_units`` ({task: "segments" or "frames"}).
    """
    out = Path(out)
    cells = []
    for record, folder in finished:
        provenance = json.loads((Path(folder) / "sweep.json").read_text())["provenance"]
        cells.append((record, read_sweep_csv(Path(folder) / "sweep.csv"), provenance))
    per_task, overall = leaderboard_entries(cells, context["tasks"], context["primary_probe"])
    plots = _plots(out, cells, context)
    csv_path = out / "leaderboard.csv"
    write_text_atomic(csv_path, _csv_text(per_task, overall))
    markdown_path = out / "leaderboard.md"
    write_text_atomic(markdown_path, _markdown(per_task, overall, cells, plots, context, out))
    html_path = write_html_report(markdown_path)
    return {"csv": csv_path, "markdown": markdown_path, "html": html_path, "plots": plots}


def _plots(out, cells, context):
    """Per task, overlays of every upstream's curves (stars on the layer chosen on dev)."""
    plots = {}
    (out / "plots").mkdir(parents=True, exist_ok=True)
    for task_name in context["tasks"]:
        rows = [row for record, cell_rows, _ in cells if record["task"] == task_name for row in cell_rows]
        if not any(row["split"] == REPORT_SPLIT for row in rows):
            continue
        plots[task_name] = {
            metric: plot_layer_curves(
                rows,
                metric,
                out / "plots" / f"{task_name}_{stem}.png",
                split=REPORT_SPLIT,
            )
            for metric, stem in PLOTTED_METRICS.items()
        }
    return plots


def _csv_text(per_task, overall):
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(LEADERBOARD_COLUMNS)
    for entry in [*(entry for entries in per_task.values() for entry in entries), *overall]:
        writer.writerow(["" if entry.get(column) is None else entry[column] for column in LEADERBOARD_COLUMNS])
    return buffer.getvalue()


def _number(value, digits=3):
    return "—" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.{digits}f}"


def _rule(context):
    tasks = context["tasks"]
    return (
        f"**Ranking rule.** Per task, each upstream's layer is the one with the highest mi_bits of the "
        f"`{context['primary_probe']}` probe on **dev** (ties: the lowest layer), so the layer is not chosen on "
        f"the numbers that score it; its **test** mi_bits ranks the upstreams (higher is better; equal values "
        f"share a rank). **Overall**: the mean over the {len(tasks)} tasks ({', '.join(tasks)}) of mi_bits / H(Y) "
        f"at those layers, each task weighing the same whatever its H(Y); only upstreams with every task "
        f"finished are ranked overall. Upstreams whose 95 % intervals overlap are not told apart by this data."
    )


def _overall_section(overall, tasks):
    lines = ["## Overall", "", f"| rank | upstream | {' | '.join(tasks)} | overall |", "|---" * (len(tasks) + 3) + "|"]
    for entry in overall:
        cells = " | ".join(_number(entry["per_task"][task_name]) for task_name in tasks)
        lines.append(f"| {entry['rank']} | {entry['upstream']} | {cells} | **{_number(entry['mi_fraction'])}** |")
    if not overall:
        lines.append(f"| — | no upstream has every task finished yet | {' | '.join('—' for _ in tasks)} | — |")
    lines += ["", "Cells: mi_bits / H(Y) at each upstream's chosen layer (test split).", ""]
    return lines


def _task_header(task_name, cells, unit):
    """Classes and the ``unit`` (segments, frames) used per split, and a warning when the cells' manifests differ."""
    provenances = [provenance for record, _, provenance in cells if record["task"] == task_name]
    if not provenances:
        return ["No finished cell yet.", ""]
    first = provenances[0]
    segments = first["segments"]
    sampled = first["task"].get("frames_per_utterance")
    lines = [
        f"{len(first['classes'])} classes; {unit} used: train {segments['train']:,}, dev {segments['dev']:,}, "
        f"test {segments['test']:,}" + (f" ({sampled} per utterance, seeded)" if sampled else "") + ".",
        "",
    ]
    manifests = {provenance["manifest_sha256"] for provenance in provenances}
    if len(manifests) > 1:
        lines += [
            f"**Warning:** the cells of this task read {len(manifests)} different manifests (sha256 "
            f"{', '.join(sorted(sha[:12] for sha in manifests))}): their numbers do not compare.",
            "",
        ]
    return lines


def _task_section(task_name, entries, cells, plots, out, unit):
    lines = [f"## Task: {task_name}", ""]
    lines += _task_header(task_name, cells, unit)
    if entries:
        lines += [
            f"H(Y) = {entries[0]['h_y_bits']:.3f} bits on the test split (the ceiling of every bound below).",
            "",
            "| rank | upstream | layer (of) | mi_bits [95 % CI] | mi / H(Y) | last layer | drop | accuracy | "
            "margin | fine-tune |",
            "|---|---|---|---|---|---|---|---|---|---|",
        ]
        for entry in entries:
            finetune = (
                "—"
                if entry["finetune_mi_bits"] is None
                else f"{_number(entry['finetune_mi_bits'])} (L{entry['finetune_layer']})"
            )
            lines.append(
                f"| {entry['rank']} | {entry['upstream']} | {entry['best_layer']} ({entry['num_layers']}) | "
                f"{_number(entry['mi_bits'])} "
                f"[{_number(entry['mi_bits_ci_low'])}, {_number(entry['mi_bits_ci_high'])}] | "
                f"{_number(entry['mi_fraction'])} | {_number(entry['last_layer_mi_bits'])} | "
                f"{_number(entry['drop_bits'])} | {_number(entry['accuracy'])} | {_number(entry['margin_median'])} | "
                f"{finetune} |"
            )
        lines.append("")
    for metric, path in plots.get(task_name, {}).items():
        lines.append(f"![{task_name} {metric}]({path.relative_to(out).as_posix()})")
    return lines + [""]


HOW_TO_READ = """## How to read it

- **mi_bits** is a lower bound on I(layer; label) in bits (H(Y) minus the probe's test cross-entropy):
  it can only under-estimate, so a higher value is a tighter, better bound; H(Y) is the ceiling.
- **mi / H(Y)** is the share of the label entropy the layer is shown to hold; it compares across tasks.
- **last layer** and **drop**: the bound at the upstream's last layer and how much lower it is than at
  the chosen layer: how much of the information a model keeps to its top (a linear probe's bound may
  peak mid-network even though true information cannot grow with depth).
- **accuracy** and **margin** (median geometric margin of the probe, standardised features) at the
  chosen layer; the margin still separates layers whose bound saturates at H(Y).
- **fine-tune**: the best dev layer of the fine-tune-from-layer probe, its test bound (a richer probe,
  so a tighter bound on the same information); `—` where the protocol or the upstream has none.
- The method and its caveats: docs/method.md; the benchmark: docs/benchmark.md.
"""


def _runs_section(cells):
    """Per upstream: checkpoint, tasks and probes; the package versions (each distinct set once)."""
    upstreams = {}
    for record, _, _ in cells:
        entry = upstreams.setdefault(record["upstream"], {"record": record, "tasks": [], "probes": {}})
        entry["tasks"].append(record["task"])
        entry["probes"].update(dict.fromkeys(record["probes"]))
    lines = ["## Runs", "", "| upstream | checkpoint sha256 | tasks | probes |", "|---|---|---|---|"]
    for upstream, entry in upstreams.items():
        sha256 = entry["record"]["checkpoint_sha256"]
        checkpoint = sha256[:12] if sha256 else "none (no checkpoint file)"
        lines.append(f"| {upstream} | {checkpoint} | {', '.join(entry['tasks'])} | {', '.join(entry['probes'])} |")
    versions = {
        ", ".join(f"{name} {version}" for name, version in provenance["versions"].items() if version)
        for _, _, provenance in cells
    }
    label = "Versions" if len(versions) == 1 else "Versions (the cells ran with different ones)"
    return lines + ["", f"{label}: " + "; ".join(sorted(versions)) + ".", ""]


def _markdown(per_task, overall, cells, plots, context, out):
    tasks = context["tasks"]
    lines = [
        f"# Leaderboard: {context['protocol']}",
        "",
        f"Protocol **{context['protocol']}** (sha256 `{context['protocol_sha256'][:12]}`): {context['description']}",
        "",
        _rule(context),
        "",
    ]
    lines += _overall_section(overall, tasks)
    for task_name in tasks:
        lines += _task_section(task_name, per_task[task_name], cells, plots, out, context["sample_units"][task_name])
    lines += [HOW_TO_READ]
    lines += _runs_section(cells)
    return "\n".join(lines)
