"""``summary.json`` of a runner experiment: per layer, the test metrics at its best dev step."""

import json

from s3prl_mi_probe.common.atomic import write_json_atomic


def read_metrics_log(path):
    """The rows of a ``metrics.jsonl`` (an empty list when it does not exist yet)."""
    if not path.exists():
        return []
    with open(path) as stream:
        return [json.loads(line) for line in stream if line.strip()]


def best_dev_rows(rows):
    """Per layer: ``{"layer", "best_dev_step", "dev": row, "test": row or None}``.

    The best dev step of a layer is the one with the lowest dev ``ce_bits`` (earliest on ties);
    ``test`` is that layer's test row at the same step, if the test split was evaluated then.
    """
    best = {}
    for row in rows:
        if row["split"] == "dev":
            current = best.get(row["layer"])
            if current is None or row["ce_bits"] < current["ce_bits"]:
                best[row["layer"]] = row
    test_rows = {(row["layer"], row["step"]): row for row in rows if row["split"] == "test"}
    return [
        {
            "layer": layer,
            "best_dev_step": dev["step"],
            "dev": dev,
            "test": test_rows.get((layer, dev["step"])),
        }
        for layer, dev in sorted(best.items())
    ]


def write_summary(path, metrics_rows, provenance):
    """Atomically write ``summary.json`` from the metrics log and the run's provenance."""
    write_json_atomic(path, {"layers": best_dev_rows(metrics_rows), "provenance": provenance})
