"""Metrics, a leaf: Barber–Agakov bounds in bits, label entropies, margins, bootstrap intervals, row columns.

Takes per-segment cross-entropies, correctness and margins, gives one metric row per layer.
Imports nothing else of this package.
"""
