"""Percentile-bootstrap intervals for the per-layer Barber–Agakov bound and accuracy.

Test segments are resampled with replacement. In each resample the bound is recomputed as the plug-in
H(Y) of the resampled labels minus the mean cross-entropy of the resampled segments, so the interval
covers the variability of both terms. All layers share the same resamples.

The plug-in entropy of a resample is biased low (by about (K-1)/(2N ln 2) bits, Miller–Madow), so
the raw percentiles of the bound sit below the estimate: for a saturated layer the interval would
not even contain it. Each interval is therefore shifted by the bootstrap estimate of that bias
(mean of the resampled statistic minus the estimate), a bias-corrected percentile interval.

That shift can carry a saturated layer's upper limit above H(Y), which no bound on I(Z;Y) can
exceed (I(Z;Y) <= H(Y)): the upper limit of ``mi_bits`` is clipped at the split's plug-in H(Y), and
the accuracy interval at [0, 1].

A resample is a row of multinomial counts ``[N]`` (how often each segment was drawn); the per-layer
sums are one matmul of count rows with the per-sample values, and the label histogram of a resample
is a sum of counts over each class's segments. Count rows are built in chunks to bound memory.
"""

import numpy as np

CHUNK_ELEMENTS = 1 << 22


def _entropy_bits_rows(class_counts, total):
    """Plug-in entropy (bits) of each row of a histogram matrix whose rows all sum to ``total``."""
    safe = np.where(class_counts > 0, class_counts, 1.0)
    return np.log2(total) - (class_counts * np.log2(safe)).sum(axis=1) / total


def _resampled_statistics(values, class_starts, resamples, rng):
    """Per resample: the sums of ``values [N, V]`` over the drawn segments ``[B, V]``, and H(Y) bits ``[B]``.

    ``values`` rows are sorted by class; ``class_starts`` is where each present class begins.
    """
    num_rows = values.shape[0]
    sums = np.empty((resamples, values.shape[1]))
    entropies = np.empty(resamples)
    chunk_rows = max(1, CHUNK_ELEMENTS // num_rows)
    counts = np.empty((min(chunk_rows, resamples), num_rows))
    for first in range(0, resamples, chunk_rows):
        chunk = slice(first, min(first + chunk_rows, resamples))
        block = counts[: chunk.stop - chunk.start]
        for row, draws in zip(block, rng.integers(0, num_rows, size=block.shape)):
            row[:] = np.bincount(draws, minlength=num_rows)
        sums[chunk] = block @ values
        entropies[chunk] = _entropy_bits_rows(np.add.reduceat(block, class_starts, axis=1), num_rows)
    return sums, entropies


def _bias_corrected_percentiles(resampled, estimate, level):
    """``level`` percentile limits ``[V]`` of ``resampled [B, V]``, shifted by the bootstrap bias estimate."""
    tails = ((1 - level) / 2, (1 + level) / 2)
    low, high = np.quantile(resampled, tails, axis=0)
    bias = resampled.mean(axis=0) - estimate
    return low - bias, high - bias


def bootstrap_intervals(ce_bits, correct, labels, num_classes, resamples=1000, level=0.95, seed=0):
    """Percentile-bootstrap ``level`` intervals of each layer's ``mi_bits`` and ``accuracy``.

    ``ce_bits`` and ``correct`` are per-sample ``[L, N]``, ``labels [N]`` integers in ``[0, num_classes)``.
    Returns one dict per layer with ``mi_bits_ci_low``, ``mi_bits_ci_high`` (at most the labels' plug-in
    H(Y)), ``accuracy_ci_low``, ``accuracy_ci_high`` (within [0, 1]); NaN when there are no samples.
    """
    ce_bits, correct = np.asarray(ce_bits, dtype=np.float64), np.asarray(correct, dtype=np.float64)
    labels = np.asarray(labels)
    num_layers, num_rows = ce_bits.shape
    if num_rows == 0:
        names = ("mi_bits_ci_low", "mi_bits_ci_high", "accuracy_ci_low", "accuracy_ci_high")
        return [dict.fromkeys(names, float("nan")) for _ in range(num_layers)]
    order = np.argsort(labels, kind="stable")
    class_sizes = np.bincount(labels, minlength=num_classes)
    class_starts = (np.cumsum(class_sizes) - class_sizes)[class_sizes > 0]
    values = np.concatenate([ce_bits, correct])[:, order].T
    sums, entropies = _resampled_statistics(values, class_starts, resamples, np.random.default_rng(seed))
    means = sums / num_rows
    mi = entropies[:, None] - means[:, :num_layers]
    accuracy = means[:, num_layers:]
    label_entropy = _entropy_bits_rows(class_sizes[None, class_sizes > 0].astype(np.float64), num_rows)[0]
    plug_in = {"mi": label_entropy - ce_bits.mean(axis=1), "accuracy": correct.mean(axis=1)}
    mi_low, mi_high = _bias_corrected_percentiles(mi, plug_in["mi"], level)
    mi_high = np.minimum(mi_high, label_entropy)
    accuracy_low, accuracy_high = np.clip(_bias_corrected_percentiles(accuracy, plug_in["accuracy"], level), 0, 1)
    return [
        {
            "mi_bits_ci_low": float(mi_low[layer]),
            "mi_bits_ci_high": float(mi_high[layer]),
            "accuracy_ci_low": float(accuracy_low[layer]),
            "accuracy_ci_high": float(accuracy_high[layer]),
        }
        for layer in range(num_layers)
    ]
