"""Class-stratified, seeded subsamples of training rows."""

import numpy as np
import pytest

from s3prl_mi_probe.probe.subsample import stratified_subsample


@pytest.fixture(scope="module")
def labels():
    """Classes of 5000, 3000, 1500, 400, 90 and 10 rows, shuffled."""
    counts = (5000, 3000, 1500, 400, 90, 10)
    return np.random.default_rng(0).permutation(np.repeat([f"c{k}" for k in range(len(counts))], counts))


def test_a_row_cap_keeps_every_class_in_proportion(labels):
    kept = stratified_subsample(labels, max_rows=1000, seed=3)
    assert kept.size == 1000 and np.all(np.diff(kept) > 0)
    _, counts = np.unique(labels[kept], return_counts=True)
    expected = np.array([5000, 3000, 1500, 400, 90, 10]) * 1000 / 10_000
    assert np.all(np.abs(counts - expected) <= 1), counts


def test_a_per_class_cap_trims_only_the_large_classes(labels):
    kept = stratified_subsample(labels, max_per_class=200, seed=3)
    classes, counts = np.unique(labels[kept], return_counts=True)
    assert list(counts) == [200, 200, 200, 200, 90, 10]
    both = stratified_subsample(labels, max_rows=300, max_per_class=200, seed=3)
    assert both.size == 300 and set(labels[both]) == set(classes)


def test_the_seed_fixes_the_rows_and_tiny_caps_keep_each_class(labels):
    assert np.array_equal(stratified_subsample(labels, 500, seed=1), stratified_subsample(labels, 500, seed=1))
    assert not np.array_equal(stratified_subsample(labels, 500, seed=1), stratified_subsample(labels, 500, seed=2))
    tiny = stratified_subsample(labels, max_rows=8, seed=0)
    assert tiny.size == 8 and len(set(labels[tiny])) == 6
    assert np.array_equal(stratified_subsample(labels, seed=0), np.arange(labels.size))
