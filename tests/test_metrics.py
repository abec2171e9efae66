"""Metrics on hand-computable cases."""

import math

import numpy as np
import pytest
import torch

from s3prl_mi_probe.metrics.bounds import cross_entropy_bits, entropy_bits
from s3prl_mi_probe.metrics.layer_metrics import layer_metrics
from s3prl_mi_probe.metrics.margin import geometric_margins, margin_summary


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
