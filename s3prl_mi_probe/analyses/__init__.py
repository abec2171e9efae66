"""Stage 4, analyses beside the bound: MDL codelength, hard margin, control-task selectivity, seed spread.

Takes cached features and the probe trainer, gives extra columns for the metric rows.
"""
