"""The files of a sweep or a probe run: ``sweep.csv``, ``sweep.json`` (rows + provenance), plots, TensorBoard."""

from s3prl_mi_probe.common.atomic import replace_folder, write_json_atomic
from s3prl_mi_probe.metrics.columns import SWEEP_COLUMNS
from s3prl_mi_probe.report.plots import plot_sweep
from s3prl_mi_probe.report.rows import write_sweep_csv
from s3prl_mi_probe.report.tensorboard import write_sweep_events


def write_sweep_outputs(out, rows, provenance):
    """``sweep.csv``, ``sweep.json``, ``plots/*.png`` and ``tb/`` of a sweep; plots and events of an earlier
    sweep into ``out`` are replaced, not mixed in."""
    out.mkdir(parents=True, exist_ok=True)
    replace_folder(out / "tb", lambda folder: write_sweep_events(rows, folder))
    replace_folder(out / "plots", lambda folder: plot_sweep(rows, folder))
    write_json_atomic(out / "sweep.json", {"columns": list(SWEEP_COLUMNS), "rows": rows, "provenance": provenance})
    write_sweep_csv(out / "sweep.csv", rows)
