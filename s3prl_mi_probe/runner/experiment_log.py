"""What the ``mi_probe`` expert reports of an experiment: console lines, TensorBoard scalars and EXPDIR's files.

TensorBoard tags follow s3prl's style (``mi_probe/<split>-<metric>-layer_<k>``). Every evaluation of
a training run is appended to ``EXPDIR/metrics.jsonl`` and rewrites ``EXPDIR/summary.json`` (per layer,
the test metrics at that layer's best dev step); ``-m evaluate`` writes ``EXPDIR/evaluate-<split>.json``.
"""

from pathlib import Path

from tqdm import tqdm

from s3prl_mi_probe.common.atomic import append_jsonl, write_json_atomic
from s3prl_mi_probe.common.table import format_table
from s3prl_mi_probe.metrics.columns import CONTROL_COLUMNS, METRIC_NAMES, present_columns
from s3prl_mi_probe.report.notes import negative_bound_note
from s3prl_mi_probe.report.tensorboard import scalar_tag
from s3prl_mi_probe.runner.experiment_summary import read_metrics_log, write_summary


def print_task(task, options, layer_ids, num_workers, control_unscored):
    """The line that says what the expert probes: task, classes, layers, utterances, segments, what was dropped."""
    counts = {split: len(items) for split, items in task.splits.items()}
    segments = {split: sum(len(item.labels) for item in items) for split, items in task.splits.items()}
    tqdm.write(
        f"[mi_probe] task={options.task} classes={len(task.classes)} layers={layer_ids} "
        f"utterances={counts} segments={segments} dropped={ {s: dict(c) for s, c in task.dropped.items()} }"
        + (" (dev carved from train)" if task.dev_carved else "")
        + f" loader_workers={num_workers}"
        + (f" control_unscored_segments={control_unscored}" if control_unscored else "")
    )


def log_training(logger, name, layer_ids, values, step):
    """One training metric per layer to TensorBoard."""
    for layer, value in zip(layer_ids, values):
        logger.add_scalar(scalar_tag("train", name, layer), value, step)


def log_evaluation(logger, split, rows, step):
    """An evaluation's metric rows to TensorBoard and to the console (a table, and a note on negative bounds)."""
    for row in rows:
        for name in (*METRIC_NAMES, *CONTROL_COLUMNS):
            if row.get(name) is not None:
                logger.add_scalar(scalar_tag(split, name, row["layer"]), row[name], step)
    note = negative_bound_note(rows)
    tqdm.write(
        f"[mi_probe] {split} at step {step}:\n{format_table(rows, present_columns(rows))}"
        + (f"\n[mi_probe] {note}" if note else "")
    )


class ExperimentFiles:
    """The files of one experiment folder ``expdir``; a ``fresh`` experiment drops the files of an earlier one."""

    def __init__(self, expdir, fresh=False):
        self.expdir = Path(expdir)
        self.metrics_path = self.expdir / "metrics.jsonl"
        self.summary_path = self.expdir / "summary.json"
        if fresh:  # earlier results must not mix into the new experiment's summary
            self.metrics_path.unlink(missing_ok=True)
            self.summary_path.unlink(missing_ok=True)

    def append(self, rows, provenance):
        """A training run's evaluation rows into ``metrics.jsonl``, and ``summary.json`` from the whole log."""
        append_jsonl(self.metrics_path, rows)
        write_summary(self.summary_path, read_metrics_log(self.metrics_path), provenance)

    def evaluated(self, split, checkpoint, rows, provenance):
        """``evaluate-<split>.json`` of ``-m evaluate``: the evaluated checkpoint, its rows and the provenance."""
        write_json_atomic(
            self.expdir / f"evaluate-{split}.json", {"checkpoint": checkpoint, "rows": rows, "provenance": provenance}
        )
