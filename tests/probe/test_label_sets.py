"""Several label sets of the same rows in one bank pass (a task and its control) against fits on their own."""

import numpy as np
import pytest
import torch

from s3prl_mi_probe.probe.bank_kernels import UNSCORED, LinearKernel
from s3prl_mi_probe.probe.bank_training import bank_cross_entropy, bank_inputs
from s3prl_mi_probe.probe.rows import ResidentRows
from s3prl_mi_probe.probe.train import LayerProbes

TOLERANCE_BITS = 1e-4  # float rounding of a wider bank: same batches, same decisions


def task_and_control(seed=0, num_rows=900):
    """Two Gaussian layers with 5 classes (train, dev, test), and a control label per row: a random function
    of a 40-value key drawing 3 classes, so that the control has fewer classes than the task."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(5, size=num_rows)
    means = rng.standard_normal((5, 6))
    layers = np.stack([scale * means[labels] + rng.standard_normal((num_rows, 6)) for scale in (0.5, 1.5)])
    keys = rng.integers(40, size=num_rows)
    controls = rng.integers(3, size=40)[keys]
    splits = np.repeat(["train", "dev", "test"], [600, 150, 150])
    controls[(splits == "dev") & (keys < 4)] = -1  # dev rows the control does not score
    return {
        split: (layers[:, splits == split].astype(np.float32), labels[splits == split])
        for split in ("train", "dev", "test")
    }, {split: controls[splits == split] for split in ("train", "dev", "test")}


def rows_by_layer(probes, features, labels):
    return {row["layer"]: row for row in probes.evaluate(features, labels)}


@pytest.mark.parametrize("kind", ["linear", "mlp1"])
def test_a_control_trained_in_the_task_pass_is_the_control_trained_alone(kind):
    data, controls = task_and_control()
    params = {"kind": kind, "l2_grid": (1e-3, 1e-1), "max_epochs": 30, "mlp_width": 16, "progress": False}
    shared = LayerProbes(**params).fit(
        data["train"], dev=data["dev"], extra_labels=[(controls["train"], controls["dev"])]
    )
    alone = LayerProbes(**params).fit(data["train"], dev=data["dev"])
    scored = controls["dev"] != UNSCORED
    dev_features, _ = data["dev"]
    control = LayerProbes(**params).fit(
        (data["train"][0], controls["train"]), dev=(dev_features[:, scored], controls["dev"][scored])
    )
    [shared_control] = shared.extra_probes_
    assert list(shared_control.classes_) == [0, 1, 2] and list(shared.classes_) == [0, 1, 2, 3, 4]
    test_features, test_labels = data["test"]
    test_scored = controls["test"] != UNSCORED
    for together, apart, labels, rows in (
        (shared, alone, test_labels, slice(None)),
        (shared_control, control, controls["test"][test_scored], test_scored),
    ):
        assert together.l2_ == apart.l2_ and together.fit_kind_ == apart.fit_kind_
        assert together.best_epoch_ == apart.best_epoch_
        ours, theirs = (
            rows_by_layer(together, test_features[:, rows], labels),
            rows_by_layer(apart, test_features[:, rows], labels),
        )
        for layer, row in ours.items():
            assert row["mi_bits"] == pytest.approx(theirs[layer]["mi_bits"], abs=TOLERANCE_BITS)
            assert row["accuracy"] == pytest.approx(theirs[layer]["accuracy"], abs=1 / len(labels))


def test_each_label_set_reads_every_layer_and_scores_only_its_rows():
    features, labels = torch.randn(2, 7, 3), torch.tensor([[0, 1], [1, UNSCORED], [2, 0]] * 2 + [[1, 1]])
    bank_features, bank_labels = bank_inputs(features, labels)
    assert bank_features.shape == (4, 7, 3) and torch.equal(bank_features[2], features[0])
    assert torch.equal(bank_labels[3], labels[:, 1]) and torch.equal(bank_labels[0], labels[:, 0])
    picked_features, picked_labels = bank_inputs(features, labels, torch.tensor([3]))
    assert torch.equal(picked_features[0], features[1]) and torch.equal(picked_labels[0], labels[:, 1])
    kernel = LinearKernel(None, 1)
    params = {"weight": torch.randn(4, 3, 1, 3), "bias": torch.randn(4, 1, 3)}
    mean = bank_cross_entropy(kernel, params, ResidentRows(features, labels))
    scored = labels[:, 1] != UNSCORED
    alone = {name: value[2:] for name, value in params.items()}
    expected = kernel.losses(alone, features[:, scored], labels[scored, 1]) / int(scored.sum())
    assert torch.allclose(mean[2:], expected)
