"""The bank trainer: closed-form linear gradients against autograd, the stopping rule, warm starts."""

import numpy as np
import pytest
import torch

from s3prl_mi_probe.metrics.bounds import LN2
from s3prl_mi_probe.probe.bank_kernels import AutogradKernel, LinearKernel
from s3prl_mi_probe.probe.bank_lbfgs import FULL_BATCH_ROWS
from s3prl_mi_probe.probe.bank_training import (
    POLISH_MAX_STEPS,
    TrainOptions,
    polish_bank,
    polish_best,
    polish_contenders,
    train_bank,
)
from s3prl_mi_probe.probe.kinds import probe_kind
from s3prl_mi_probe.probe.source import as_source
from s3prl_mi_probe.probe.train import LayerProbes, shrinking_candidates
from tests.support.gaussian_rows import gaussian_layers, two_layer_rows

L2_GRID = (1e-4, 1e-2, 1.0)


def random_linear_bank(num_layers, num_candidates, dim, num_classes, seed=0):
    """A linear bank with random (non-zero) parameters, so that every gradient term is exercised."""
    bank = probe_kind("linear").build(num_layers * num_candidates, dim, num_classes)
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for value in bank.parameters():
            value.copy_(torch.randn(value.shape, generator=generator))
    return bank


def test_closed_form_linear_gradient_equals_autograd():
    bank = random_linear_bank(3, 2, 5, 4)
    features, labels = torch.randn(3, 11, 5), torch.randint(4, (11,))
    state = {name: value.detach() for name, value in bank.named_parameters()}
    closed, autograd = LinearKernel(bank, 2), AutogradKernel(bank, 2)
    closed_grads, closed_losses = closed.gradients(closed.from_bank(state), features, labels, with_losses=True)
    auto_grads, auto_losses = autograd.gradients(autograd.from_bank(state), features, labels, with_losses=True)
    assert torch.allclose(closed_losses, auto_losses, atol=1e-5)
    assert torch.allclose(closed.losses(closed.from_bank(state), features, labels), auto_losses, atol=1e-5)
    for name, grad in closed.to_bank(closed_grads).items():
        assert torch.allclose(grad, autograd.to_bank(auto_grads)[name], atol=1e-5), name
    assert closed.to_bank(closed.from_bank(state)).keys() == state.keys()
    for name, value in closed.to_bank(closed.from_bank(state)).items():
        assert torch.equal(value, state[name])


def test_linear_bank_trains_and_polishes_as_the_autograd_trainer_does():
    train, dev = two_layer_rows(0)
    kind, l2 = probe_kind("linear"), torch.tensor(L2_GRID).repeat(2, 1)
    bank = kind.build(6, 6, 5)
    options = TrainOptions(max_epochs=100, batch_size=128, patience=6, lr=1e-2)
    results = []
    for kernel in (LinearKernel(bank, 3), AutogradKernel(bank, 3)):
        start = kernel.from_bank({name: value.detach() for name, value in bank.named_parameters()})
        best = train_bank(kernel, start, kind.penalized, train, dev, l2, torch.Generator().manual_seed(0), options)
        polished, _ = polish_bank(kernel, kind.penalized, best["params"], train, l2, 1e-3, POLISH_MAX_STEPS)
        results.append((best, kernel.to_bank(polished)))
    (closed, closed_polished), (auto, auto_polished) = results
    assert (closed["dev_ce"] - auto["dev_ce"]).abs().max() / LN2 < 0.002
    assert torch.equal(closed["best_epoch"], auto["best_epoch"])
    assert torch.equal(closed["epochs_run"], auto["epochs_run"])
    for name, value in closed_polished.items():
        assert torch.allclose(value, auto_polished[name], atol=1e-3), name


def test_a_probe_trains_as_it_would_alone_while_the_others_stop_and_leave_the_gemms():
    train, dev = two_layer_rows(4)
    kind, l2 = probe_kind("linear"), torch.tensor(L2_GRID).repeat(2, 1)
    bank = random_linear_bank(2, 3, 6, 5)
    options = TrainOptions(max_epochs=100, batch_size=128, patience=3, lr=1e-2)
    kernel = LinearKernel(bank, 3)
    start = kernel.from_bank({name: value.detach() for name, value in bank.named_parameters()})
    together = train_bank(kernel, start, kind.penalized, train, dev, l2, torch.Generator().manual_seed(0), options)
    assert len(set(together["epochs_run"].flatten().tolist())) > 2  # probes stop at different rounds
    for candidate in range(3):
        column = torch.tensor([[candidate]] * 2)
        alone = train_bank(
            LinearKernel(bank, 1),
            kernel.take_candidates(start, column),
            kind.penalized,
            train,
            dev,
            l2.gather(1, column),
            torch.Generator().manual_seed(0),
            options,
        )
        for key in ("best_epoch", "epochs_run"):
            assert torch.equal(together[key][:, candidate : candidate + 1], alone[key]), key
        assert torch.allclose(together["dev_ce"][:, candidate : candidate + 1], alone["dev_ce"], atol=1e-5)
        for name, value in kernel.take_candidates(together["params"], column).items():
            assert torch.allclose(value, alone["params"][name], atol=1e-4), name


def test_polish_contenders_are_the_best_on_dev_and_the_next_stronger_l2():
    l2 = torch.tensor([[1e-2, 1e-4, 1.0, 1e-3], [1e-4, 1e-3, 1e-2, 1.0], [1e-4, 1e-3, 1e-2, 1.0]])
    dev_ce = torch.tensor([[2.0, 3.0, 4.0, 1.0], [3.0, 2.0, 1.0, 0.5], [0.5, 1.0, 2.0, 3.0]])
    contenders = polish_contenders(dev_ce, l2).tolist()
    assert contenders == [[3, 0], [2, 3], [0, 1]]  # best 1e-3 then 1e-2; best the strongest; best the weakest
    assert polish_contenders(dev_ce, l2, count=9).shape == (3, 4)


def test_only_the_contenders_are_polished_and_the_others_keep_their_early_stopped_fit():
    train, dev = two_layer_rows(3)
    kind, l2 = probe_kind("linear"), torch.tensor(L2_GRID).repeat(2, 1)
    bank = kind.build(6, 6, 5)
    kernel = LinearKernel(bank, 3)
    start = kernel.from_bank({name: value.detach() for name, value in bank.named_parameters()})
    options = TrainOptions(max_epochs=3, batch_size=128, patience=6, lr=1e-2)
    best = train_bank(kernel, start, kind.penalized, train, dev, l2, torch.Generator().manual_seed(0), options)
    polished = polish_best(kernel, kind.penalized, best, train, dev, l2, 1e-3, POLISH_MAX_STEPS)
    contenders = polish_contenders(best["dev_ce"], l2)
    alone, steps = polish_bank(
        kernel,
        kind.penalized,
        kernel.take_candidates(best["params"], contenders),
        train,
        l2.gather(1, contenders),
        1e-3,
        POLISH_MAX_STEPS,
    )
    was_polished = torch.zeros_like(l2, dtype=torch.bool).scatter(1, contenders, True)
    assert torch.equal(polished["passes"].gather(1, contenders), (1 + steps).double())
    assert torch.equal(polished["passes"] == 0, ~was_polished) and torch.isinf(polished["dev_ce"][~was_polished]).all()
    for name, value in kernel.take_candidates(polished["params"], contenders).items():
        assert torch.equal(value, alone[name]), name
    others = kernel.put_candidates(polished["params"], contenders, kernel.take_candidates(best["params"], contenders))
    for name, value in others.items():
        assert torch.equal(value, best["params"][name]), name


@pytest.mark.parametrize("full_batch_rows", [0, FULL_BATCH_ROWS], ids=["adam", "lbfgs"])
def test_training_stops_on_the_tolerance_well_before_the_epoch_cap(full_batch_rows):
    rng = np.random.default_rng(1)
    features, labels = gaussian_layers(rng, 4000, (0.2, 0.5, 1.0))
    settings = {"progress": False, "l2_grid": L2_GRID, "full_batch_rows": full_batch_rows}
    probes = LayerProbes(**settings).fit((features[:, :3000], labels[:3000]))
    assert max(probes.epochs_run_) < probes.max_epochs / 2, probes.epochs_run_
    assert all(best <= run for best, run in zip(probes.best_epoch_, probes.epochs_run_))
    # Adam's linear probes are polished (a full pass over train per step); L-BFGS counts its first pass.
    assert all(passes > run for passes, run in zip(probes.train_passes_, probes.epochs_run_))
    rows = probes.evaluate((features[:, 3000:], labels[3000:]))
    assert {"best_epoch", "epochs_run", "train_passes"} <= rows[0].keys()
    patient = LayerProbes(**settings, tol_bits=0.0).fit((features[:, :3000], labels[:3000]))
    assert sum(patient.epochs_run_) > sum(probes.epochs_run_)
    long_run = patient.evaluate((features[:, 3000:], labels[3000:]))
    assert max(abs(row["mi_bits"] - ref["mi_bits"]) for row, ref in zip(rows, long_run)) < 0.005


def test_full_data_starts_from_the_probes_of_the_subsample_search():
    rng = np.random.default_rng(2)
    features, labels = gaussian_layers(rng, 3000, (0.5, 1.5))
    estimator = LayerProbes(progress=False, l2_grid=L2_GRID, l2_search_rows=800)
    train = as_source((features, labels), name="train")
    candidates, pilot = estimator._l2_candidates(train, train.subset(np.arange(3000) < 600), np.arange(5), 2)
    assert pilot is not None and all(len(pair) == 2 for pair in candidates)
    bank, l2 = estimator._initial_bank(train, [0, 1], candidates, 5, pilot)
    assert l2.shape == (2, 2)
    for layer in range(2):
        for candidate in range(2):
            assert torch.equal(bank.weight[layer * 2 + candidate], pilot.probe_.weight[layer])
    fitted = estimator.fit((features, labels))
    assert fitted.l2_candidates_ == candidates


def test_given_l2_candidates_train_as_they_would_in_the_whole_grid():
    # Probes of a bank train independently, so a layer's chosen strength trained beside its smaller
    # neighbour only ends where the whole grid's fit ended (what lets MDL's later prefixes train two).
    rng = np.random.default_rng(4)
    features, labels = gaussian_layers(rng, 1500, (0.5, 1.5))
    train, dev = (features[:, :1200], labels[:1200]), (features[:, 1200:], labels[1200:])
    grid = LayerProbes(progress=False, l2_grid=L2_GRID).fit(train, dev=dev)
    candidates = shrinking_candidates(L2_GRID, grid.l2_)
    pair = LayerProbes(progress=False, l2_grid=L2_GRID, l2_candidates=candidates).fit(train, dev=dev)
    assert pair.l2_candidates_ == candidates and pair.l2_ == grid.l2_
    torch.testing.assert_close(pair.probe_.weight, grid.probe_.weight, rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="l2_candidates needs 2 lists of one length"):
        LayerProbes(progress=False, l2_candidates=[[1e-2, 1e-3], [1e-2]]).fit(train, dev=dev)


def test_shrinking_candidates_are_the_choice_and_the_next_smaller_strength():
    assert shrinking_candidates((1.0, 1e-4, 1e-2), [1e-2, 1e-4, 1.0]) == [[1e-4, 1e-2], [1e-4, 1e-2], [1e-2, 1.0]]
