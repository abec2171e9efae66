"""Margin bounds from pairs of classes: closed-form cases and the pairs a layer is tested on."""

import math

import numpy as np
import pytest

from s3prl_mi_probe.analyses import class_pairs
from s3prl_mi_probe.analyses.class_pairs import confused_pairs, pair_margin_bound, pairwise_margin_bound
from s3prl_mi_probe.analyses.hard_margin import hard_margins


def test_rays_on_one_side_of_the_origin_meet_only_without_a_bias():
    # On a line, {1, 2} and {3} are separated by a threshold (a bias) but not through the origin.
    first, second = np.array([[1.0], [2.0]]), np.array([[3.0]])
    assert pair_margin_bound(first, second, bias=True) == math.inf
    assert pair_margin_bound(first, second, bias=False) == pytest.approx(0, abs=1e-9)


def test_a_point_inside_the_other_class_hull_bounds_the_margin_by_zero():
    square = np.array([[0.0, 0.0], [2.0, 0.0], [0.0, 2.0], [2.0, 2.0]])
    centre = np.array([[1.0, 1.0], [5.0, 5.0]])
    assert pair_margin_bound(square, centre, bias=True) == pytest.approx(0, abs=1e-9)
    assert pair_margin_bound(square, centre[1:], bias=True) == math.inf


def test_the_pair_nearest_class_means_confuses_most_is_tried_first():
    rng = np.random.default_rng(0)
    means = np.array([[0.0, 0.0], [0.3, 0.0], [10.0, 0.0]])
    targets = rng.integers(0, 3, 300)
    features = means[targets] + rng.standard_normal((300, 2))
    assert confused_pairs(features, targets, 3)[0] == (0, 1)
    assert all((a, c) != (0, 2) and (a, c) != (1, 2) for a, c in confused_pairs(features, targets, 3))
    assert pairwise_margin_bound(features, targets, 3, bias=True) == pytest.approx(0, abs=1e-9)


def test_the_solver_alone_still_finds_overlapping_classes_not_separable():
    rng = np.random.default_rng(1)
    targets = rng.integers(0, 4, 200)
    features = 0.5 * rng.standard_normal((4, 3))[targets] + rng.standard_normal((200, 3))
    assert pairwise_margin_bound(features, targets, 4, bias=True) < 1e-9
    assert math.isnan(hard_margins([features], targets, class_pairs=0)[0])
    assert math.isnan(hard_margins([features], targets)[0])


def test_large_pairs_enter_the_programme_by_their_rows_nearest_the_middle(monkeypatch):
    # With room for 16 rows a class, the overlap of two long clouds is found among the rows in the middle;
    # pairs that would leave no more than D + 1 rows are not tried.
    rng = np.random.default_rng(2)
    first = np.c_[rng.uniform(-20, 0.5, 400), rng.standard_normal(400)]
    second = np.c_[rng.uniform(-0.5, 20, 400), rng.standard_normal(400)]
    features, targets = np.vstack([first, second]), np.repeat([0, 1], 400)
    monkeypatch.setattr(class_pairs, "LP_ENTRIES", 16 * 2 * 4)
    assert pairwise_margin_bound(features, targets, 2, bias=True) == pytest.approx(0, abs=1e-9)
    monkeypatch.setattr(class_pairs, "LP_ENTRIES", 3 * 4)
    assert pairwise_margin_bound(features, targets, 2, bias=True) == math.inf
