"""Metrics on hand-computable cases."""

import math

import numpy as np
import pytest
import torch

from s3prl_mi_probe.metrics.bounds import (
    cross_entropy_bits,
    entropy_bits,
    miller_madow_entropy_bits,
)
from s3prl_mi_probe.metrics.columns import MARGIN_COLUMNS
from s3prl_mi_probe.metrics.layer_metrics import layer_metrics
from s3prl_mi_probe.metrics.margin import geometric_margins, margin_summary
from s3prl_mi_probe.metrics.uncertainty import bootstrap_intervals


def test_entropy_of_uniform_and_skewed_histograms():
    assert entropy_bits([5, 5, 5, 5]) == pytest.approx(2.0)
    assert entropy_bits([1, 0, 1]) == pytest.approx(1.0)
    assert entropy_bits([3, 1]) == pytest.approx(-(0.75 * math.log2(0.75) + 0.25 * math.log2(0.25)))
    assert entropy_bits([7]) == 0.0


def test_cross_entropy_in_bits():
    logits = torch.log(torch.tensor([[0.5, 0.25, 0.25], [0.125, 0.125, 0.75]]))
    labels = torch.tensor([0, 1])
    np.testing.assert_allclose(cross_entropy_bits(logits, labels).numpy(), [1.0, 3.0], rtol=1e-6)
    batched = cross_entropy_bits(torch.stack([logits, torch.zeros(2, 3)]), labels)
    np.testing.assert_allclose(batched[1].numpy(), [math.log2(3)] * 2, rtol=1e-6)


def test_margin_of_a_known_two_class_classifier():
    # w_1 - w_0 = (2, 0), b_1 - b_0 = -2: boundary x = 1, ||w_1 - w_0|| = 2.
    weight = torch.tensor([[0.0, 2.0], [0.0, 0.0]])
    bias = torch.tensor([1.0, -1.0])
    features = torch.tensor([[3.0, 5.0], [0.0, 1.0], [2.0, 0.0], [1.0, 7.0]])
    labels = torch.tensor([1, 0, 0, 1])
    margins = geometric_margins(features, labels, weight, bias).numpy()
    np.testing.assert_allclose(margins, [2.0, 1.0, -1.0, 0.0])


def test_margin_is_the_distance_to_the_nearest_other_class():
    # Three classes at the corners: means (0,0), (4,0), (0,2); nearest-mean classifier.
    means = torch.tensor([[0.0, 0.0], [4.0, 0.0], [0.0, 2.0]])
    weight = means.T
    bias = -0.5 * (means * means).sum(dim=1)
    point = torch.tensor([[0.5, 0.0]])
    margin = geometric_margins(point, torch.tensor([0]), weight, bias).item()
    # Boundaries: x = 2 (distance 1.5) and y = 1 (distance 1.0).
    assert margin == pytest.approx(1.0)


def test_margin_sign_matches_correctness_and_summary():
    torch.manual_seed(0)
    features, weight, bias = torch.randn(2, 200, 5), torch.randn(2, 5, 4), torch.randn(2, 4)
    labels = torch.randint(0, 4, (200,))
    margins = geometric_margins(features, labels, weight, bias)
    correct = (features @ weight + bias[:, None]).argmax(-1) == labels
    assert torch.equal(margins > 0, correct)
    summary = margin_summary([-1.0, 0.5, 1.0, 2.0])
    assert summary == {
        "margin_median": 0.75,
        "margin_p10": pytest.approx(-0.55),
        "margin_min": -1.0,
        "margin_positive_frac": 0.75,
    }


def test_no_margins_summarise_to_nan_and_no_segments_are_refused():
    summary = margin_summary(np.zeros(0))
    assert sorted(summary) == sorted(MARGIN_COLUMNS) and all(math.isnan(value) for value in summary.values())
    empty = np.zeros((2, 0))
    with pytest.raises(ValueError, match="no segments to evaluate"):
        layer_metrics(empty, empty, empty, np.zeros(0, dtype=np.int64), num_classes=3)


def test_layer_metrics_rows():
    labels = np.array([0, 0, 1, 1])
    rows = layer_metrics(
        ce_bits=[[1.0, 1.0, 1.0, 1.0], [0.5, 0.5, 0.0, 0.0]],
        correct=[[1, 0, 1, 0], [1, 1, 1, 1]],
        margins=[[1.0, -1.0, 1.0, -1.0], [1.0, 1.0, 2.0, 2.0]],
        labels=labels,
        num_classes=3,
    )
    assert [row["mi_bits"] for row in rows] == [0.0, 0.75]
    assert rows[0]["h_y_bits"] == 1.0 and rows[1]["accuracy"] == 1.0
    assert rows[1]["num_segments"] == 4 and rows[1]["num_classes"] == 3
    assert rows[0]["h_y_mm_bits"] == pytest.approx(1.0 + 1 / (8 * math.log(2)))
    for row in rows:
        assert row["mi_bits_ci_low"] <= row["mi_bits"] <= row["mi_bits_ci_high"]
        assert row["accuracy_ci_low"] <= row["accuracy"] <= row["accuracy_ci_high"]
    assert rows[1]["accuracy_ci_low"] == rows[1]["accuracy_ci_high"] == 1.0


def test_miller_madow_adds_the_observed_bins_correction():
    # Histogram (6, 2, 0, 0): N = 8, K_observed = 2.
    plug_in = -(0.75 * math.log2(0.75) + 0.25 * math.log2(0.25))
    assert miller_madow_entropy_bits([6, 2, 0, 0]) == pytest.approx(plug_in + 1 / (16 * math.log(2)))
    assert miller_madow_entropy_bits([5]) == 0.0


def test_bootstrap_shares_resamples_across_layers():
    rng = np.random.default_rng(1)
    ce = rng.exponential(size=300)
    labels = rng.integers(3, size=300)
    correct = rng.random(300) < 0.6
    # A constant offset in CE shifts every resampled bound by exactly that offset.
    low, shifted = bootstrap_intervals(np.stack([ce, ce + 0.5]), np.stack([correct, correct]), labels, 3)
    assert shifted["mi_bits_ci_low"] == pytest.approx(low["mi_bits_ci_low"] - 0.5)
    assert shifted["mi_bits_ci_high"] == pytest.approx(low["mi_bits_ci_high"] - 0.5)
    assert shifted["accuracy_ci_low"] == low["accuracy_ci_low"]


# A synthetic joint p(z, y) over 3 feature values and 4 labels, and two fixed probes q(y|z).
P_Z = np.array([0.5, 0.3, 0.2])
P_Y_GIVEN_Z = np.array([[0.7, 0.1, 0.1, 0.1], [0.1, 0.6, 0.2, 0.1], [0.25, 0.25, 0.25, 0.25]])
PROBES = np.array(
    [
        [[0.6, 0.2, 0.1, 0.1], [0.1, 0.5, 0.3, 0.1], [0.3, 0.2, 0.3, 0.2]],
        [[0.4, 0.2, 0.2, 0.2], [0.2, 0.3, 0.4, 0.1], [0.1, 0.1, 0.1, 0.7]],
    ]
)


def test_bootstrap_intervals_cover_the_true_bound_and_accuracy():
    """95% intervals from 200 independent test sets of 300 segments cover the analytic values ~95% of the time."""
    p_y = P_Z @ P_Y_GIVEN_Z
    true_ce = np.einsum("z,zy,lzy->l", P_Z, P_Y_GIVEN_Z, -np.log2(PROBES))
    true_mi = -(p_y * np.log2(p_y)).sum() - true_ce
    guesses = PROBES.argmax(-1)  # [L, Z]
    true_accuracy = (P_Z * np.take_along_axis(P_Y_GIVEN_Z[None], guesses[..., None], -1)[..., 0]).sum(-1)
    rng = np.random.default_rng(0)
    covered = np.zeros((2, 2))
    num_sets, num_rows = 200, 300
    for trial in range(num_sets):
        z = rng.choice(3, size=num_rows, p=P_Z)
        y = (rng.random(num_rows)[:, None] > P_Y_GIVEN_Z[z, :-1].cumsum(1)).sum(1)
        ce = -np.log2(PROBES[:, z, y])
        correct = guesses[:, z] == y
        for layer, interval in enumerate(bootstrap_intervals(ce, correct, y, 4, seed=trial)):
            covered[layer, 0] += interval["mi_bits_ci_low"] <= true_mi[layer] <= interval["mi_bits_ci_high"]
            covered[layer, 1] += interval["accuracy_ci_low"] <= true_accuracy[layer] <= interval["accuracy_ci_high"]
    # Binomial sd of a 95% rate over 200 sets is 1.5 points; the plug-in H(Y) bias (3/(600 ln 2) = 0.007 bits)
    # is about a tenth of the interval's half-width.
    assert ((covered / num_sets >= 0.88) & (covered / num_sets <= 0.99)).all(), covered / num_sets


def test_a_saturated_layers_interval_stops_at_h_y():
    """A near-perfect probe on balanced labels: the bias-corrected upper limit would pass H(Y), which bounds
    I(Z;Y); it is clipped there, in the rows every output reads. The unsaturated layer's limit is untouched."""
    labels = np.repeat(np.arange(4), 10)
    rng = np.random.default_rng(0)
    ce = np.stack([np.full(40, 1e-3), rng.exponential(size=40)])
    correct = np.stack([np.ones(40, dtype=bool), rng.random(40) < 0.5])
    saturated, informative = layer_metrics(ce, correct, np.ones((2, 40)), labels, 4)
    assert saturated["h_y_bits"] == pytest.approx(2.0)
    assert saturated["mi_bits_ci_low"] < saturated["mi_bits"] < saturated["mi_bits_ci_high"] == saturated["h_y_bits"]
    assert saturated["accuracy_ci_high"] == 1.0
    assert informative["mi_bits_ci_high"] < informative["h_y_bits"]
    assert informative["mi_bits_ci_low"] < informative["mi_bits"] < informative["mi_bits_ci_high"]
