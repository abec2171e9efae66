"""Per-layer curves of sweep metrics, drawn off-screen with matplotlib's Agg canvas."""

import io
import textwrap
from pathlib import Path

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from s3prl_mi_probe.common.atomic import write_bytes_atomic
from s3prl_mi_probe.report.rows import SELECT_SPLIT, best_layers

AXIS_LABELS = {
    "mi_bits": "I(layer; label) lower bound (bits)",
    "h_y_bits": "H(Y) (bits)",
    "ce_bits": "probe cross-entropy (bits)",
    "accuracy": "accuracy",
    "margin_median": "geometric margin (standardised units)",
    "margin_p10": "geometric margin, 10th percentile (standardised units)",
    "margin_min": "geometric margin, minimum (standardised units)",
    "margin_positive_frac": "fraction of segments with positive margin",
    "selectivity": "selectivity (accuracy - control accuracy)",
    "mdl_bits": "MDL online codelength (bits)",
    "compression": "compression (uniform / online codelength)",
    "hard_margin": "hard (max-)margin of train features (standardised units)",
}
PLOT_FILE_STEMS = {"mi_bits": "mi_bits", "accuracy": "accuracy", "margin_median": "margin"}
MAX_LABELLED_LAYERS = 16  # up to this many layers every one gets a tick
DODGE_STEP = 0.2  # layers between the points of neighbouring single-layer curves
TITLE_WIDTH = 70  # characters per title line


def _curves(rows, split):
    """{(upstream, task, probe): rows sorted by layer} for ``split``, in first-seen order."""
    curves = {}
    for row in rows:
        if row["split"] == split:
            curves.setdefault((row["upstream"], row["task"], row["probe"]), []).append(row)
    return {key: sorted(curve, key=lambda row: row["layer"]) for key, curve in curves.items()}


def _interval(curve, metric):
    """``(low, high)`` lists of ``metric``'s confidence interval along a curve, or None without one."""
    low, high = f"{metric}_ci_low", f"{metric}_ci_high"
    if not all(row.get(low) is not None and row.get(high) is not None for row in curve):
        return None
    return [row[low] for row in curve], [row[high] for row in curve]


def _draw_entropy_lines(axes, curves, label_tasks):
    """One dashed H(Y) line per task (the largest H(Y) among its rows: the ceiling for any bound), kept inside
    the axes with room for its label."""
    entropies = {}
    for (_, task, _), curve in curves.items():
        entropies[task] = max(entropies.get(task, float("-inf")), *(row["h_y_bits"] for row in curve))
    low, high = axes.get_ylim()
    top = max(high, *entropies.values())
    axes.set_ylim(low, top + 0.08 * (top - low))
    for task, entropy in entropies.items():
        label = f"H(Y) {task}" if label_tasks else "H(Y)"
        axes.axhline(entropy, linestyle="--", color="0.4", linewidth=1.2, label=label)
        axes.annotate(
            f"{label} = {entropy:.2f}",
            (0, entropy),
            xycoords=("axes fraction", "data"),
            xytext=(4, 3),
            textcoords="offset points",
            fontsize="small",
            color="0.3",
        )


def _layer_axis(axes, layers):
    """Integer layer ticks only, with half a layer of room on both sides (one layer is one tick, not a range)."""
    first, last = min(layers), max(layers)
    axes.set_xlim(first - 0.6, last + 0.6)
    if last - first <= MAX_LABELLED_LAYERS:
        axes.set_xticks(range(first, last + 1))
    else:
        axes.xaxis.set_major_locator(MaxNLocator(integer=True))
    axes.set_xlabel("layer")


def _dodges(curves):
    """Horizontal offsets that keep the points of single-layer curves (fbank, mfcc, ...) from covering each other."""
    single = [key for key, curve in curves.items() if len(curve) == 1]
    step = min(DODGE_STEP, 0.8 / max(len(single), 1))
    return {key: (index - (len(single) - 1) / 2) * step for index, key in enumerate(single)}


def plot_layer_curves(rows, metric, path, split="test", title=None):
    """Save :func:`layer_curve_figure` as a PNG, atomically, at ``path``; returns ``path``."""
    buffer = io.BytesIO()
    layer_curve_figure(rows, metric, split, title).savefig(buffer, format="png", dpi=120)
    write_bytes_atomic(path, buffer.getvalue())
    return Path(path)


def layer_curve_figure(rows, metric, split="test", title=None):
    """A figure of ``metric`` against layer, one line per (upstream, probe).

    Each line's best layer (highest metric on dev, as every report chooses it: :func:`best_layers`;
    lowest layer on ties) gets a star, and its legend entry names it with its ``split`` value; for ``mi_bits`` each
    task's H(Y) is a dashed reference line. Where the rows carry a confidence interval
    (``<metric>_ci_low``/``_ci_high``, the bootstrap over test segments) it is a shaded band, or an
    error bar for a single-layer upstream. If the rows hold several tasks, the task is added to each
    line's label.
    """
    curves = _curves(rows, split)
    if not curves:
        raise ValueError(f"no {split!r} rows to plot for {metric}")
    label_tasks = len({task for _, task, _ in curves}) > 1
    best = best_layers(rows, metric=metric, report_split=split)
    dodges = _dodges(curves)

    figure = Figure(figsize=(9, 5.2), layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    banded = False
    for index, (key, curve) in enumerate(curves.items()):
        upstream, task, probe = key
        color = f"C{index % 10}"
        label = f"{upstream} · {probe}" + (f" · {task}" if label_tasks else "")
        top = next((row for row in curve if key in best and row["layer"] == best[key]["layer"]), None)
        if top is not None:
            label += f" (best: L{top['layer']}, {top[metric]:.3g})"
        layers = [row["layer"] + dodges.get(key, 0.0) for row in curve]
        values = [row[metric] for row in curve]
        axes.plot(layers, values, marker="o", markersize=4, linewidth=1.6, color=color, label=label)
        interval = _interval(curve, metric)
        if interval is not None and len(curve) == 1:
            (low,), (high,) = interval
            # A bias-corrected interval need not contain the estimate: no error bar reaches past it.
            below, above = max(values[0] - low, 0.0), max(high - values[0], 0.0)
            axes.errorbar(layers, values, yerr=[[below], [above]], color=color, capsize=4)
            banded = True
        elif interval is not None:
            axes.fill_between(layers, *interval, color=color, alpha=0.18, linewidth=0)
            banded = True
        if top is not None:
            axes.plot(
                top["layer"] + dodges.get(key, 0.0),
                top[metric],
                marker="*",
                markersize=15,
                color=color,
                markeredgecolor="black",
                linestyle="none",
            )
    _layer_axis(axes, [row["layer"] for curve in curves.values() for row in curve])
    if metric == "mi_bits":
        _draw_entropy_lines(axes, curves, label_tasks)

    axes.set_ylabel(AXIS_LABELS.get(metric, metric))
    tasks = ", ".join(dict.fromkeys(task for _, task, _ in curves))
    figure.suptitle(textwrap.fill(title or f"{tasks}: {metric} per layer ({split} split)", TITLE_WIDTH))
    keys = [f"★ best layer (chosen on {SELECT_SPLIT})"] + (["bands/bars: 95 % bootstrap CI"] if banded else [])
    keys += ["dashed: H(Y), the ceiling"] if metric == "mi_bits" else []
    axes.set_title("; ".join(keys), fontsize="small", color="0.3")
    axes.grid(True, alpha=0.3)
    axes.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)
    return figure


def plot_sweep(rows, plots_dir) -> dict:
    """Write mi_bits.png, accuracy.png and margin.png (median margin) for one sweep; returns {metric: path}."""
    plots_dir = Path(plots_dir)
    plots_dir.mkdir(parents=True, exist_ok=True)
    return {
        metric: plot_layer_curves(rows, metric, plots_dir / f"{stem}.png") for metric, stem in PLOT_FILE_STEMS.items()
    }
