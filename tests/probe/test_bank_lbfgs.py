"""Full-batch L-BFGS for small train splits: against Adam's trainer, a long run, scikit-learn's optimum, and alone."""

import numpy as np
import pytest
import torch

from s3prl_mi_probe.probe.bank_lbfgs import lbfgs_bank
from s3prl_mi_probe.probe.bank_training import TrainOptions, bank_objective
from s3prl_mi_probe.probe.kinds import probe_kind
from s3prl_mi_probe.probe.rows import ResidentRows
from s3prl_mi_probe.probe.train import LayerProbes
from tests.support.gaussian_rows import gaussian_layers, two_layer_rows

OPTIONS = TrainOptions(max_epochs=100, batch_size=256, patience=4, lr=1e-2)


def linear_start(num_layers, num_candidates, dim, num_classes):
    """A linear kernel and its zero start for ``num_candidates`` probes per layer."""
    kind = probe_kind("linear")
    bank = kind.build(num_layers * num_candidates, dim, num_classes)
    kernel = kind.kernel(bank, num_candidates)
    return kernel, kernel.from_bank({name: value.detach() for name, value in bank.named_parameters()}), kind.penalized


def test_lbfgs_bounds_are_never_below_adams_and_agree_with_a_long_run():
    features, labels = gaussian_layers(np.random.default_rng(1), 6000, (0.3, 1.0, 2.0))
    train, dev, test = ((features[:, a:b], labels[a:b]) for a, b in ((0, 4000), (4000, 5000), (5000, 6000)))
    lbfgs = LayerProbes(progress=False).fit(train, dev=dev)
    adam = LayerProbes(progress=False, full_batch_rows=0).fit(train, dev=dev)
    long_run = LayerProbes(
        progress=False, full_batch_rows=0, tol_bits=0.0, patience=20, polish_steps=500, max_epochs=300
    ).fit(train, dev=dev)
    bounds = [[row["mi_bits"] for row in probes.evaluate(test)] for probes in (lbfgs, adam, long_run)]
    for ours, current, reference in zip(*bounds):
        assert ours > current - 0.002  # Adam's polish may stop short of the optimum; L-BFGS gets there
        assert abs(ours - reference) < 0.002
    assert sum(lbfgs.train_passes_) < sum(adam.train_passes_) / 2
    assert all(passes == run + 1 for passes, run in zip(lbfgs.train_passes_, lbfgs.epochs_run_))


def test_a_converged_probe_sits_at_the_optimum_scikit_learn_finds():
    LogisticRegression = pytest.importorskip("sklearn.linear_model").LogisticRegression
    rng = np.random.default_rng(5)
    labels = rng.integers(3, size=4400)
    features = np.stack(
        [np.pad(np.eye(3)[labels], ((0, 0), (0, 1))) * scale + rng.standard_normal((4400, 4)) for scale in (0.5, 2.0)]
    )
    features = (features - features.mean(1, keepdims=True)) / features.std(1, keepdims=True)
    inputs, targets = torch.as_tensor(features, dtype=torch.float32), torch.as_tensor(labels)
    train, dev = ResidentRows(inputs[:, :400], targets[:400]), ResidentRows(inputs[:, 400:], targets[400:])
    l2 = torch.tensor((1e-1, 1.0)).repeat(2, 1)
    kernel, start, penalized = linear_start(2, 2, 4, 3)
    fitted = lbfgs_bank(kernel, start, penalized, train, dev, l2, OPTIONS)
    assert fitted["converged"].any()
    ours, _ = bank_objective(kernel, penalized, fitted["params"], train, l2)
    optimum = {"weight": torch.empty(2, 4, 2, 3), "bias": torch.empty(2, 2, 3)}
    for layer in range(2):
        for candidate, strength in enumerate(l2[layer].tolist()):
            fit = LogisticRegression(C=1 / (strength * 400), tol=1e-10, max_iter=10_000)
            fit.fit(features[layer, :400], labels[:400])
            optimum["weight"][layer, :, candidate] = torch.as_tensor(fit.coef_.T)
            optimum["bias"][layer, candidate] = torch.as_tensor(fit.intercept_)
    best, _ = bank_objective(kernel, penalized, optimum, train, l2)
    assert (ours >= best - 1e-6).all()
    gap = (ours - best)[fitted["converged"]]
    assert (gap < 1e-4).all(), gap  # within the tolerance a step must beat to count as a move


def test_a_probe_that_cannot_catch_up_stops_and_the_others_train_as_alone():
    train, dev = two_layer_rows(4)
    l2 = torch.tensor((1e-4, 1e-2, 100.0)).repeat(2, 1)
    kernel, start, penalized = linear_start(2, 3, 6, 5)
    together = lbfgs_bank(kernel, start, penalized, train, dev, l2, OPTIONS)
    # The strength 100 keeps its probe near the uniform one, far behind its layer's best: it stops as
    # soon as it can be judged, before the rule of patience would stop it.
    assert (together["epochs_run"][:, 2] == OPTIONS.patience).all(), together["epochs_run"]
    assert (together["epochs_run"][:, :2] > OPTIONS.patience).all()
    for candidate in range(2):
        column = torch.tensor([[candidate]] * 2)
        alone = lbfgs_bank(
            linear_start(2, 1, 6, 5)[0],
            kernel.take_candidates(start, column),
            penalized,
            train,
            dev,
            l2.gather(1, column),
            OPTIONS,
        )
        assert torch.equal(together["best_epoch"][:, candidate : candidate + 1], alone["best_epoch"])
        assert (together["epochs_run"][:, candidate : candidate + 1] <= alone["epochs_run"]).all()
        assert torch.allclose(together["dev_ce"][:, candidate : candidate + 1], alone["dev_ce"], atol=1e-5)
        for name, value in kernel.take_candidates(together["params"], column).items():
            assert torch.allclose(value, alone["params"][name], atol=1e-4), name
