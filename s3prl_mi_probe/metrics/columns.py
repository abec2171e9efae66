"""The columns of a result row, defined once for every stage that writes or reads rows.

A row describes one (upstream, layer, probe, task, split): the metrics of :func:`layer_metrics`,
then the columns that the optional analyses fill (empty where one was not asked for or does not
apply). ``sweep.csv``, TensorBoard, ``metrics.jsonl`` and the console tables all use these names.
"""

MARGIN_COLUMNS = ("margin_median", "margin_p10", "margin_min", "margin_positive_frac")
METRIC_NAMES = (
    "mi_bits",
    "h_y_bits",
    "h_y_mm_bits",
    "ce_bits",
    "accuracy",
    "mi_bits_ci_low",
    "mi_bits_ci_high",
    "accuracy_ci_low",
    "accuracy_ci_high",
    *MARGIN_COLUMNS,
    "num_segments",
    "num_classes",
)
COUNT_METRICS = ("num_segments", "num_classes")
CONTROL_COLUMNS = ("control_accuracy", "control_mi_bits", "selectivity")
SPREAD_METRICS = ("mi_bits", "accuracy")
SEED_COLUMNS = ("num_seeds", *(f"{name}_seed_std" for name in SPREAD_METRICS))
MDL_COLUMNS = ("mdl_bits", "compression")
ANALYSIS_COLUMNS = (*CONTROL_COLUMNS, *MDL_COLUMNS, "hard_margin", *SEED_COLUMNS)
# The train rows the probe was fitted on (after any subsampling), and those the hard margin was solved on.
SIZE_COLUMNS = ("num_train_segments", "hard_margin_segments")
# How the chosen probe was trained: its L2 strength, which fit won ("early_stop" or "converged"), the
# passes over train at its best dev round and when it stopped, and its passes over train in all
# (training, plus the polish's full passes). Read back from sweep.csv, not plotted.
TRAINING_COLUMNS = ("l2", "fit", "best_epoch", "epochs_run", "train_passes")
KEY_COLUMNS = ("upstream", "layer", "probe", "task", "split")
SWEEP_COLUMNS = (*KEY_COLUMNS, *METRIC_NAMES, *ANALYSIS_COLUMNS, *SIZE_COLUMNS, *TRAINING_COLUMNS)
TEXT_COLUMNS = ("upstream", "probe", "task", "split", "fit")
INT_COLUMNS = ("layer", *COUNT_METRICS, "num_seeds", *SIZE_COLUMNS)
METRIC_COLUMNS = tuple(
    column for column in SWEEP_COLUMNS if column not in TEXT_COLUMNS + INT_COLUMNS + TRAINING_COLUMNS
)
FLOAT_COLUMNS = (*METRIC_COLUMNS, *(column for column in TRAINING_COLUMNS if column not in TEXT_COLUMNS))
# What the console shows of each evaluation (columns without a value in any row are left out).
TABLE_COLUMNS = (
    "layer",
    "probe",
    "mi_bits",
    "mi_bits_ci_low",
    "mi_bits_ci_high",
    "h_y_bits",
    "ce_bits",
    "accuracy",
    "margin_median",
    "selectivity",
    "mdl_bits",
    "hard_margin",
)


def present_columns(rows, columns=TABLE_COLUMNS):
    """The ``columns`` that hold a value in at least one of ``rows``."""
    return [column for column in columns if any(row.get(column) is not None for row in rows)]
