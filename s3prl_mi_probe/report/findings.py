"""Findings in words, computed from sweep rows: which upstream holds the most, and which differences
the 95 % bootstrap intervals support (docs/method.md, "Uncertainty").

Each upstream is taken at the layer whose *dev* bound is highest (so the test numbers quoted are not
picked on the test split) and compared on the test split. Two upstreams are said to differ only when
their intervals do not overlap, a conservative check; overlapping intervals mean "not shown to differ".
"""

from s3prl_mi_probe.report.notes import with_interval
from s3prl_mi_probe.report.rows import best_layers


def chosen_layers(rows, task_name, probe):
    """Per upstream: its test row at the layer of highest dev mi_bits (lowest on ties), as :func:`best_layers`."""
    return {
        upstream: row
        for (upstream, row_task, row_probe), row in best_layers(rows).items()
        if (row_task, row_probe) == (task_name, probe)
    }


def interval_order(first, second, metric="mi_bits"):
    """1 when ``first``'s interval lies above ``second``'s, -1 below, 0 when they overlap."""
    if first[f"{metric}_ci_low"] > second[f"{metric}_ci_high"]:
        return 1
    if first[f"{metric}_ci_high"] < second[f"{metric}_ci_low"]:
        return -1
    return 0


def _quoted(upstream, row):
    return f"{upstream} (layer {row['layer']}: {with_interval(row, 'mi_bits', digits=2)})"


def ranking_finding(rows, task_name, probe="linear"):
    """One sentence: the upstream with the highest bound, those not shown to differ from it, those below it."""
    chosen = chosen_layers(rows, task_name, probe)
    if not chosen:
        return ""
    ranked = sorted(chosen.items(), key=lambda item: -item[1]["mi_bits"])
    (top, top_row), others = ranked[0], ranked[1:]
    tied = [_quoted(upstream, row) for upstream, row in others if interval_order(top_row, row) == 0]
    below = [_quoted(upstream, row) for upstream, row in others if interval_order(top_row, row) == 1]
    sentence = (
        f"**{task_name}, {probe} probe.** Most information: {_quoted(top, top_row)} of H(Y) = "
        f"{top_row['h_y_bits']:.2f} bits."
    )
    if tied:
        sentence += f" Not shown to differ from it (intervals overlap): {', '.join(tied)}."
    if below:
        sentence += f" Clearly below it (intervals do not overlap): {', '.join(below)}."
    return sentence


def pair_finding(rows, task_name, first, second, probe="linear"):
    """One sentence comparing upstream ``first`` with ``second`` (e.g. a pretrained model and its random twin)."""
    chosen = chosen_layers(rows, task_name, probe)
    if first not in chosen or second not in chosen:
        return ""
    a, b = chosen[first], chosen[second]
    difference = a["mi_bits"] - b["mi_bits"]
    order = interval_order(a, b)
    verdict = {
        1: f"{first} holds more, and the intervals do not overlap: a real difference on this test set",
        -1: f"{first} holds less, and the intervals do not overlap: a real difference on this test set",
        0: "the intervals overlap: this run does not show a difference",
    }[order]
    return (
        f"**{task_name}: {first} vs {second}.** {difference:+.2f} bits (layer {a['layer']}: "
        f"{with_interval(a, 'mi_bits', digits=2)} vs layer {b['layer']}: {with_interval(b, 'mi_bits', digits=2)}); "
        f"{verdict}."
    )
