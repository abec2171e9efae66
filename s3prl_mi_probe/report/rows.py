"""Sweep result rows: the sweep.csv format and picking each upstream's best layer."""

import csv
import io
import math
from pathlib import Path

from s3prl_mi_probe.common.atomic import write_text_atomic
from s3prl_mi_probe.metrics.columns import FLOAT_COLUMNS, INT_COLUMNS, SWEEP_COLUMNS, TRAINING_COLUMNS

# Every report picks each curve's best layer on dev and reports its test numbers (best_layers).
SELECT_SPLIT, REPORT_SPLIT = "dev", "test"


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


def best_layers(rows, metric="mi_bits", report_split=REPORT_SPLIT) -> dict:
    """Per (upstream, task, probe): its ``report_split`` row at the layer of highest ``metric`` on dev.

    The layer is chosen on dev (:data:`SELECT_SPLIT`) and reported on test by default, so that the
    reported number is not the one it was picked by. Ties go to the lowest layer; rows whose metric is
    missing or NaN are skipped, and so is a curve without a ``report_split`` row at the chosen layer.
    """
    chosen = {}
    for row in rows:
        value = row[metric]
        if row["split"] != SELECT_SPLIT or value is None or math.isnan(value):
            continue
        key = (row["upstream"], row["task"], row["probe"])
        current = chosen.get(key)
        if current is None or (value, -row["layer"]) > (current[metric], -current["layer"]):
            chosen[key] = row
    reported = {
        (row["upstream"], row["task"], row["probe"], row["layer"]): row for row in rows if row["split"] == report_split
    }
    return {key: reported[(*key, row["layer"])] for key, row in chosen.items() if (*key, row["layer"]) in reported}
