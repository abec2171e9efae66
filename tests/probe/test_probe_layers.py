"""probe_layers on data whose mutual information is known, against scikit-learn, and its input handling."""

import subprocess
import sys

import numpy as np
import pytest
from scipy.special import logsumexp, softmax

from s3prl_mi_probe.probe.arrays import carve_dev
from s3prl_mi_probe.probe.bank_lbfgs import FULL_BATCH_ROWS
from s3prl_mi_probe.probe.bank_training import POLISH_MAX_STEPS, polish_bank
from s3prl_mi_probe.probe.kinds import probe_kind
from s3prl_mi_probe.probe.rows import ResidentRows
from s3prl_mi_probe.probe.train import LayerProbes, fit_layer_probes, probe_layers

FAST = {"progress": False, "l2_grid": (1e-4, 1e-3, 1e-2)}


def gaussian_classes(rng, num_rows, means, sigma=1.0):
    """Equiprobable isotropic Gaussian classes: features ``[N, D]``, labels, true posteriors ``[N, C]``."""
    labels = rng.integers(len(means), size=num_rows)
    features = means[labels] + sigma * rng.standard_normal((num_rows, means.shape[1]))
    logits = (features @ means.T - 0.5 * (means**2).sum(1)) / sigma**2
    return features, labels, softmax(logits, axis=1)


def true_mi_bits(labels, posterior):
    """Monte Carlo I(Z;Y) = H(Y) - E[H(Y|z)] (bits) with the true posterior, equiprobable classes."""
    num_classes = posterior.shape[1]
    conditional = -(posterior * np.log2(np.clip(posterior, 1e-300, None))).sum(1).mean()
    return np.log2(num_classes) - conditional


@pytest.fixture(scope="module")
def three_layers():
    """Layers of decreasing information about 4 classes in 4 dimensions (the last is pure noise)."""
    rng = np.random.default_rng(0)
    directions = np.eye(4)
    layer_scales = (1.5, 0.6, 0.0)
    labels = rng.integers(4, size=8000)
    layers, true_mi = [], []
    for scale in layer_scales:
        means = scale * directions
        layers.append(means[labels] + rng.standard_normal((labels.size, 4)))
        _, mc_labels, posterior = gaussian_classes(rng, 200_000, means)
        true_mi.append(true_mi_bits(mc_labels, posterior))
    features = np.stack(layers)
    train = (features[:, :4000], labels[:4000])
    test = (features[:, 4000:], labels[4000:])
    return train, test, np.array(true_mi)


def test_bound_is_tight_for_gaussian_classes_and_orders_layers(three_layers):
    train, test, true_mi = three_layers
    rows = probe_layers(train, test, seed=0, **FAST)
    bound = np.array([row["mi_bits"] for row in rows])
    assert np.all(np.abs(bound - true_mi) < 0.05), (bound, true_mi)
    assert np.all(bound <= true_mi + 0.03), (bound, true_mi)
    assert bound[0] > bound[1] > bound[2]
    assert bound[2] <= 0.05
    assert [row["layer"] for row in rows] == [0, 1, 2]
    assert {row["split"] for row in rows} == {"test"} and {row["probe"] for row in rows} == {"linear"}
    assert all(row["num_segments"] == 4000 and row["num_classes"] == 4 for row in rows)
    assert rows[0]["accuracy"] > rows[1]["accuracy"] > 0.2


def test_linear_bound_stays_below_the_mi_of_xor_classes():
    rng = np.random.default_rng(1)
    corners = 2.0 * np.array([[1, 1], [-1, -1], [1, -1], [-1, 1]])
    components = rng.integers(4, size=100_000)
    features = corners[components] + rng.standard_normal((components.size, 2))
    labels = components // 2  # class 0: the diagonal corners, class 1: the anti-diagonal ones
    log_density = -0.5 * ((features[:, None, :] - corners[None]) ** 2).sum(-1)
    class_log_density = np.stack([logsumexp(log_density[:, :2], 1), logsumexp(log_density[:, 2:], 1)], 1)
    true_mi = true_mi_bits(labels, softmax(class_log_density, axis=1))
    rows = probe_layers((features[None, :4000], labels[:4000]), (features[None, 4000:8000], labels[4000:8000]), **FAST)
    assert true_mi > 0.8
    assert rows[0]["mi_bits"] < 0.05 < true_mi - 0.7


@pytest.mark.parametrize("full_batch_rows", [0, FULL_BATCH_ROWS], ids=["adam", "lbfgs"])
def test_test_cross_entropy_matches_tuned_sklearn_logistic_regression(full_batch_rows):
    LogisticRegression = pytest.importorskip("sklearn.linear_model").LogisticRegression
    rng = np.random.default_rng(2)
    num_classes, dim, sizes = 8, 32, (2000, 500, 1000)
    labels = rng.integers(num_classes, size=sum(sizes))
    means = rng.standard_normal((num_classes, dim)) / np.sqrt(dim)
    mixing = np.eye(dim) + 0.3 * rng.standard_normal((dim, dim)) / np.sqrt(dim)
    features = np.stack(
        [(scale * means[labels] + rng.standard_normal((labels.size, dim))) @ mixing for scale in (0.5, 1.5, 3.0)]
    )
    train, dev, test = ((features[:, a:b], labels[a:b]) for a, b in ((0, 2000), (2000, 2500), (2500, 3500)))
    l2_grid = (1e-4, 1e-3, 1e-2, 1e-1, 1.0)
    rows = probe_layers(train, test, dev=dev, l2_grid=l2_grid, progress=False, full_batch_rows=full_batch_rows)
    mean, std = train[0].mean(1, keepdims=True), train[0].std(1, keepdims=True) + 1e-5
    for layer, row in enumerate(rows):
        standardized = [(x[layer] - mean[layer]) / std[layer] for x in (train[0], dev[0], test[0])]
        fits = [LogisticRegression(C=1 / (l2 * 2000), max_iter=1000).fit(standardized[0], train[1]) for l2 in l2_grid]
        dev_ce = [-np.log(fit.predict_proba(standardized[1])[np.arange(500), dev[1]]).mean() for fit in fits]
        best = fits[int(np.argmin(dev_ce))]
        sklearn_ce = -np.log2(best.predict_proba(standardized[2])[np.arange(1000), test[1]]).mean()
        assert row["ce_bits"] <= sklearn_ce + 0.01, (layer, row["ce_bits"], sklearn_ce)


def test_converged_probes_are_sklearn_logistic_regression_for_each_l2():
    LogisticRegression = pytest.importorskip("sklearn.linear_model").LogisticRegression
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(5)
    labels = rng.integers(3, size=400)
    features = np.stack(
        [np.pad(np.eye(3)[labels], ((0, 0), (0, 1))) * scale + rng.standard_normal((400, 4)) for scale in (0.5, 2.0)]
    )
    features = (features - features.mean(1, keepdims=True)) / features.std(1, keepdims=True)
    l2_grid = (1e-2, 1e-1)
    kind = probe_kind("linear")
    bank = kind.build(4, 4, 3)
    kernel, l2 = kind.kernel(bank, 2), torch.tensor(l2_grid).repeat(2, 1)
    start = kernel.from_bank({name: value.detach() for name, value in bank.named_parameters()})
    inputs, targets = torch.as_tensor(features, dtype=torch.float32), torch.as_tensor(labels)
    converged, steps = polish_bank(
        kernel, kind.penalized, start, ResidentRows(inputs, targets), l2, 0.0, POLISH_MAX_STEPS, grad_tol=1e-6
    )
    assert steps.max() < POLISH_MAX_STEPS
    converged = kernel.to_bank(converged)
    for probe, strength in enumerate(l2.flatten().tolist()):
        layer = probe // 2
        fit = LogisticRegression(C=1 / (strength * 400), tol=1e-10, max_iter=10_000).fit(features[layer], labels)
        weight, bias = converged["weight"][probe].numpy(), converged["bias"][probe].numpy()
        assert np.allclose(weight, fit.coef_.T, atol=1e-4)  # unpenalised biases agree up to a shared shift
        assert np.allclose(bias - bias.mean(), fit.intercept_ - fit.intercept_.mean(), atol=1e-4)


@pytest.fixture(scope="module")
def small_task():
    """Two layers of widths 3 and 5, three classes, a few hundred rows."""
    rng = np.random.default_rng(3)
    labels = rng.integers(3, size=600)
    narrow = np.eye(3)[labels] + 0.8 * rng.standard_normal((600, 3))
    wide = np.pad(np.eye(3)[labels], ((0, 0), (0, 2))) + 1.2 * rng.standard_normal((600, 5))
    return [narrow, wide], labels


def test_layers_of_different_widths_equal_the_zero_padded_array(small_task):
    (narrow, wide), labels = small_task
    padded = np.stack([np.pad(narrow, ((0, 0), (0, 2))), wide])
    as_list = probe_layers(
        ([narrow[:400], wide[:400]], labels[:400]), ([narrow[400:], wide[400:]], labels[400:]), **FAST
    )
    as_array = probe_layers((padded[:, :400], labels[:400]), (padded[:, 400:], labels[400:]), **FAST)
    assert as_list == as_array
    fitted = fit_layer_probes(([narrow[:400], wide[:400]], labels[:400]), **FAST)
    assert fitted.probe_.weight[0, 3:].abs().max() == 0


def test_unseen_test_labels_are_dropped_and_counted(small_task):
    (narrow, wide), labels = small_task
    test_labels = labels[400:].copy()
    test_labels[:7] = 99
    with pytest.warns(UserWarning, match="7 of 200 rows have labels never seen in train"):
        rows = probe_layers(
            ([narrow[:400], wide[:400]], labels[:400]), ([narrow[400:], wide[400:]], test_labels), **FAST
        )
    assert all(row["dropped_unseen"] == 7 and row["num_segments"] == 193 for row in rows)
    assert all(row["num_classes"] == 3 for row in rows)


def test_arbitrary_integer_labels_give_the_same_rows(small_task):
    (narrow, wide), labels = small_task
    train, test = ([narrow[:400], wide[:400]], slice(0, 400)), ([narrow[400:], wide[400:]], slice(400, None))
    plain = probe_layers((train[0], labels[train[1]]), (test[0], labels[test[1]]), **FAST)
    renamed = 10 * (labels + 1)
    spaced = probe_layers((train[0], renamed[train[1]]), (test[0], renamed[test[1]]), **FAST)
    assert plain == spaced
    assert list(fit_layer_probes((train[0], renamed[train[1]]), **FAST).classes_) == [10, 20, 30]


def test_dev_carved_by_groups_keeps_groups_whole_and_is_seeded(small_task):
    (narrow, wide), labels = small_task
    groups = np.repeat(np.arange(30), 20)
    dev = carve_dev(600, groups, seed=5)
    assert set(groups[dev]).isdisjoint(groups[~dev])
    assert len(set(groups[dev])) == 3
    assert np.array_equal(dev, carve_dev(600, groups, seed=5))
    assert not np.array_equal(dev, carve_dev(600, groups, seed=6))
    assert carve_dev(600, seed=5).sum() == 60
    rows = probe_layers(([narrow, wide], labels), ([narrow, wide], labels), groups=groups, **FAST)
    assert len(rows) == 2


def test_same_seed_gives_identical_numbers(small_task):
    (narrow, wide), labels = small_task
    train, test = ([narrow[:400], wide[:400]], labels[:400]), ([narrow[400:], wide[400:]], labels[400:])
    assert probe_layers(train, test, seed=4, **FAST) == probe_layers(train, test, seed=4, **FAST)


def test_package_import_stays_free_of_torch():
    code = "import sys, s3prl_mi_probe; assert 'torch' not in sys.modules; assert callable(s3prl_mi_probe.probe_layers)"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_a_warm_start_begins_where_the_previous_fit_ended(three_layers):
    """A refit capped at one pass is as good as the fit before it only when it starts from that fit's probes."""
    train, test, _ = three_layers
    fitted = LayerProbes(**FAST).fit(train)
    before = [row["mi_bits"] for row in fitted.evaluate(test)]
    cold = LayerProbes(**FAST, max_epochs=1).fit(train)
    fitted.set_params(warm_start=True, max_epochs=1)
    warm = [row["mi_bits"] for row in fitted.fit(train).evaluate(test)]
    assert np.allclose(warm, before, atol=0.01), (warm, before)
    assert [row["mi_bits"] for row in cold.evaluate(test)][0] < before[0] - 0.1
    assert not fitted.seed_independent_


def test_a_warm_start_refuses_other_classes_or_layers(three_layers):
    (features, labels), _, _ = three_layers
    probes = LayerProbes(**FAST, warm_start=True).fit((features, labels))
    with pytest.raises(ValueError, match="warm_start needs"):
        probes.fit((features[:2], labels))
    with pytest.raises(ValueError, match="warm_start needs"):
        probes.fit((features, labels % 2))
