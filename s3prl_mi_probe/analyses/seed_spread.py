"""Merging the metric rows of probes trained with k seeds: the mean, and the spread between seeds."""

import numpy as np

from s3prl_mi_probe.metrics.columns import COUNT_METRICS, METRIC_NAMES, SPREAD_METRICS


def merge_seed_rows(rows_per_seed):
    """One row per (layer, split): metric means over the seeds, ``num_seeds`` and ``<metric>_seed_std``.

    ``rows_per_seed`` is a list (one entry per seed) of row lists in the same (layer, split) order.
    The standard deviation is the sample one (ddof=1); it is None for a single seed. Non-metric
    fields (l2, epochs, fit, ...) are those of the first seed.
    """
    merged = []
    for rows in zip(*rows_per_seed):
        if len({(row["layer"], row["split"]) for row in rows}) != 1:
            raise ValueError("rows of different seeds are not aligned by (layer, split)")
        means = {
            name: float(np.mean([row[name] for row in rows])) for name in METRIC_NAMES if name not in COUNT_METRICS
        }
        spread = {
            f"{name}_seed_std": float(np.std([row[name] for row in rows], ddof=1)) if len(rows) > 1 else None
            for name in SPREAD_METRICS
        }
        merged.append({**rows[0], **means, **spread, "num_seeds": len(rows)})
    return merged
