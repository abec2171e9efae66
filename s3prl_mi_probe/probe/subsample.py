"""Seeded, class-stratified subsamples of rows: for small machines, the L2 pre-search and the hard margin."""

import numpy as np


def stratified_subsample(labels, max_rows=None, max_per_class=None, seed=0):
    """Ascending positions of a seeded subsample of ``labels`` that keeps the class proportions.

    First every class keeps at most ``max_per_class`` rows; then, if more than ``max_rows`` remain,
    each class keeps its share of ``max_rows`` (largest remainders first, at least one row per class
    while ``max_rows`` allows). Rows are drawn uniformly within a class. None means no limit.
    """
    labels = np.asarray(labels)
    classes, codes, counts = np.unique(labels, return_inverse=True, return_counts=True)
    quotas = counts if max_per_class is None else np.minimum(counts, max_per_class)
    if max_rows is not None and quotas.sum() > max_rows:
        quotas = _proportional_quotas(quotas, max_rows)
    rng = np.random.default_rng(seed)
    by_class = np.argsort(codes, kind="stable")
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    chosen = [
        by_class[start + rng.choice(count, size=quota, replace=False)]
        for start, count, quota in zip(starts, counts, quotas)
        if quota
    ]
    return np.sort(np.concatenate(chosen)) if chosen else np.zeros(0, dtype=np.int64)


def _proportional_quotas(available, total):
    """Integer quotas summing to ``total`` (< available.sum()), proportional to ``available``, none above it."""
    share = available * (total / available.sum())
    quotas = np.floor(share).astype(np.int64)
    if total >= available.size:
        quotas = np.maximum(quotas, 1)
    surplus = quotas.sum() - total
    order = np.argsort(-quotas, kind="stable")
    while surplus > 0:  # taking back what the one-row minimum added, from the largest classes
        for index in order:
            if surplus and quotas[index] > 1:
                quotas[index] -= 1
                surplus -= 1
    missing = total - quotas.sum()
    for index in np.argsort(-(share - np.floor(share)), kind="stable"):  # largest remainders first
        if missing > 0 and quotas[index] < available[index]:
            quotas[index] += 1
            missing -= 1
    return quotas
