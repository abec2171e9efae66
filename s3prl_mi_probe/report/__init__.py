"""Stage 5, the report: result rows to ``sweep.csv``, plots, TensorBoard events, comparisons and HTML.

Takes metric rows (columns in :mod:`s3prl_mi_probe.metrics.columns`), gives files people read.
"""
