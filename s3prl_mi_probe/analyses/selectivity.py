"""Selectivity against a control task (Hewitt & Liang 2019): what a probe learns beyond memorising."""


def with_control_columns(rows, control_rows):
    """``rows`` with ``control_accuracy``, ``control_mi_bits`` and ``selectivity`` from aligned control rows.

    ``control_rows`` are the rows of the same probe kind trained and evaluated on control labels, in
    the same (layer, split) order; ``control_mi_bits`` is the control task's bound H(Y_c) - CE_c and
    ``selectivity`` the real accuracy minus the control accuracy.
    """
    merged = []
    for row, control in zip(rows, control_rows, strict=True):
        if (row["layer"], row["split"]) != (control["layer"], control["split"]):
            raise ValueError("control rows are not aligned with the task rows by (layer, split)")
        merged.append(
            {
                **row,
                "control_accuracy": control["accuracy"],
                "control_mi_bits": control["mi_bits"],
                "selectivity": row["accuracy"] - control["accuracy"],
            }
        )
    return merged
