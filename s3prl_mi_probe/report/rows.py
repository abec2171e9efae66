"""Sweep result rows: the sweep.csv format and picking each upstream's best layer."""

import csv
import io
import math
from pathlib import Path

from s3prl_mi_probe.common.atomic import write_text_atomic
from s3prl_mi_probe.metrics.columns import FLOAT_COLUMNS, INT_COLUMNS, SWEEP_COLUMNS, TRAINING_COLUMNS


def write_sweep_csv(path, rows):
    """Atomically write rows (dicts keyed by SWEEP_COLUMNS; a missing analysis column is an empty cell) as CSV.

    Floats keep full precision.
    """
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(SWEEP_COLUMNS)
    for row in rows:
        writer.writerow(["" if row.get(column) is None else row[column] for column in SWEEP_COLUMNS])
    write_text_atomic(path, buffer.getvalue())


def _parse_cell(column, text):
    if text == "":
        return None
    if column in INT_COLUMNS:
        return int(text)
    if column in FLOAT_COLUMNS:
        return float(text)
    return text


def read_sweep_csv(path) -> list[dict]:
    """Rows of a sweep.csv as dicts, numbers parsed back to int/float and empty cells to None.

    A file written before the training columns existed reads with those columns empty.
    """
    path = Path(path)
    earlier = SWEEP_COLUMNS[: -len(TRAINING_COLUMNS)]
    with open(path, newline="") as stream:
        reader = csv.reader(stream)
        header = tuple(next(reader, ()))
        if header not in (SWEEP_COLUMNS, earlier):
            raise ValueError(f"{path}: unexpected header {','.join(header)!r}; expected {','.join(SWEEP_COLUMNS)!r}")
        return [
            dict.fromkeys(SWEEP_COLUMNS) | {column: _parse_cell(column, text) for column, text in zip(header, line)}
            for line in reader
        ]


def best_layers(rows, metric="mi_bits", split="test") -> dict:
    """The row with the highest ``metric`` per (upstream, task, probe) on ``split``; ties go to the lowest layer.

    Rows whose metric is missing or NaN are skipped.
    """
    best = {}
    for row in rows:
        value = row[metric]
        if row["split"] != split or value is None or math.isnan(value):
            continue
        key = (row["upstream"], row["task"], row["probe"])
        current = best.get(key)
        if current is None or (value, -row["layer"]) > (current[metric], -current["layer"]):
            best[key] = row
    return best
