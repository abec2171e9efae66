"""Sweep rows as TensorBoard scalars: one run per upstream, the layer as the step."""

import math
from pathlib import Path

from tensorboardX import SummaryWriter

from s3prl_mi_probe.metrics.columns import METRIC_COLUMNS


def run_folder_name(upstream):
    """A folder name for an upstream label: ':' and '/' (and '\\') become '_'."""
    return upstream.replace(":", "_").replace("/", "_").replace("\\", "_")


def write_sweep_events(rows, tb_dir) -> dict:
    """Write ``<task>/<probe>/<split>/<metric>`` scalars (step = layer) per upstream under ``tb_dir``.

    Returns {upstream label: run folder}. Missing (None) and NaN metric values (e.g. the hard margin of a
    layer that is not separable) are skipped.
    """
    runs = {}
    for row in rows:
        runs.setdefault(row["upstream"], []).append(row)
    folders = {}
    for upstream, upstream_rows in runs.items():
        folders[upstream] = Path(tb_dir) / run_folder_name(upstream)
        writer = SummaryWriter(logdir=str(folders[upstream]))
        try:
            for row in sorted(upstream_rows, key=lambda row: row["layer"]):
                prefix = f"{row['task']}/{row['probe']}/{row['split']}"
                for metric in METRIC_COLUMNS:
                    if row.get(metric) is not None and not math.isnan(row[metric]):
                        writer.add_scalar(f"{prefix}/{metric}", row[metric], global_step=row["layer"])
        finally:
            writer.close()
    return folders
