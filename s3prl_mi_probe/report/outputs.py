"""The files of a sweep or a probe run: ``sweep.csv``, ``sweep.json`` (rows + provenance), plots, TensorBoard."""

from s3prl_mi_probe.common.atomic import write_json_atomic
from s3prl_mi_probe.metrics.columns import SWEEP_COLUMNS
from s3prl_mi_probe.report.plots import plot_sweep
from s3prl_mi_probe.report.rows import write_sweep_csv
from s3prl_mi_probe.report.tensorboard import write_sweep_events


def write_sweep_outputs(out, rows, provenance):
    """``sweep.csv``, ``sweep.json``, ``plots/*.png`` and ``tb/`` of a sweep."""
    out.mkdir(parents=True, exist_ok=True)
    write_sweep_csv(out / "sweep.csv", rows)
    write_json_atomic(out / "sweep.json", {"columns": list(SWEEP_COLUMNS), "rows": rows, "provenance": provenance})
    plot_sweep(rows, out / "plots")
    write_sweep_events(rows, out / "tb")
