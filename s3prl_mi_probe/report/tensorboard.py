"""TensorBoard scalars in s3prl's tag style: sweep rows (the layer as the step) and the runner's tags.

s3prl's downstream experts log ``<downstream>/<split>-<name>`` (``phone_linear``: ``libri_phone/dev-acc``);
``mi_probe`` logs ``mi_probe/<split>-<metric>``, and ``-<metric>-layer_<k>`` where one run holds every layer.
"""

import math
from pathlib import Path

from tensorboardX import SummaryWriter

from s3prl_mi_probe.common.folder_names import run_folder_name
from s3prl_mi_probe.metrics.columns import METRIC_COLUMNS

DOWNSTREAM_TAG = "mi_probe"


def scalar_tag(split, metric, layer=None):
    """``mi_probe/<split>-<metric>``, or ``mi_probe/<split>-<metric>-layer_<k>`` for one layer of several."""
    return f"{DOWNSTREAM_TAG}/{split}-{metric}" + ("" if layer is None else f"-layer_{layer}")


def write_sweep_events(rows, tb_dir) -> dict:
    """Write ``mi_probe/<split>-<metric>`` scalars (step = layer), one run per upstream, task and probe
    kind, under ``tb_dir/<upstream>/<task>/<probe>/``.

    Returns {(upstream label, task, probe): run folder}. Missing (None) and NaN metric values (e.g. the
    hard margin of a layer that is not separable) are skipped.
    """
    runs = {}
    for row in rows:
        runs.setdefault((row["upstream"], row["task"], row["probe"]), []).append(row)
    folders = {}
    for (upstream, task, probe), run_rows in runs.items():
        folders[upstream, task, probe] = Path(tb_dir) / run_folder_name(upstream) / task / probe
        writer = SummaryWriter(logdir=str(folders[upstream, task, probe]))
        try:
            for row in sorted(run_rows, key=lambda row: row["layer"]):
                for metric in METRIC_COLUMNS:
                    if row.get(metric) is not None and not math.isnan(row[metric]):
                        writer.add_scalar(scalar_tag(row["split"], metric), row[metric], global_step=row["layer"])
        finally:
            writer.close()
    return folders
