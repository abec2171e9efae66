"""The rows of one probe kind with its analyses merged in: the seed spread and the control columns."""

from s3prl_mi_probe.analyses.seed_spread import merge_seed_rows
from s3prl_mi_probe.analyses.selectivity import with_control_columns


def merged_rows(rows_per_seed, control_rows=None, seed_columns=True):
    """One row per (layer, split) of a probe kind from its runs, each a row list in the same order.

    ``rows_per_seed``: one run per seed, merged by :func:`merge_seed_rows` (``num_seeds`` and the
    seed spread); with ``seed_columns`` False, a single run that is not part of a seed study (the
    runner's), taken as it is. ``control_rows``: the run on control labels, which adds the control
    columns (:func:`with_control_columns`); None without a control task.
    """
    if seed_columns:
        rows = merge_seed_rows(rows_per_seed)
    else:
        [rows] = rows_per_seed
    return rows if control_rows is None else with_control_columns(rows, control_rows)
