"""Hard (Crammer–Singer) margins against closed forms, scikit-learn and an exact QP."""

import math

import numpy as np
import pytest
import torch
from scipy.optimize import minimize
from sklearn.svm import LinearSVC

from s3prl_mi_probe.analyses.hard_margin import hard_margins
from s3prl_mi_probe.analyses.support_set import _ConstraintSystem, support_set_margin

# The solver stops once its margin is within tol = 0.3% of an upper bound on the optimum; the references
# are solved to 1e-8 or exactly, so 1% leaves room for the upper bound's own slack and float32 scores.
RTOL = 1e-2


def functional_margin(features, labels, weight, bias):
    """min_{i, j≠y_i} (s_{i y_i} − s_ij) / ‖W‖_F for scores s = features @ weight + bias."""
    scores = features @ weight + bias
    rows = np.arange(len(labels))
    gaps = scores[rows, labels][:, None] - scores
    gaps[rows, labels] = np.inf
    return gaps.min() / np.linalg.norm(weight)


def gaussian_classes(num_rows, dim, num_classes, spread, seed, offset=0.0):
    """Labelled rows around random class means (larger ``spread``, better separated)."""
    rng = np.random.default_rng(seed)
    means = spread * rng.standard_normal((num_classes, dim))
    labels = rng.integers(0, num_classes, num_rows)
    return means[labels] + rng.standard_normal((num_rows, dim)) + offset, labels


def two_vertical_segments(half_gap, shift):
    """Class 1 at x = half_gap, class 0 at x = −half_gap (overlapping heights), all moved by ``shift``."""
    features = np.array([[half_gap, -1.0], [half_gap, 2.0], [-half_gap, 0.0], [-half_gap, 1.5]]) + shift
    return features, np.array([1, 1, 0, 0])


def exact_biased_margin(features, labels, num_classes):
    """1/‖W*‖ of min ½‖W‖² s.t. (w_y − w_j)·x_i + b_y − b_j ≥ 1, by SLSQP on a tiny problem."""
    dim = features.shape[1]

    def unpack(params):
        return params[: dim * num_classes].reshape(dim, num_classes), params[dim * num_classes :]

    def constraint_values(params):
        weight, bias = unpack(params)
        scores = features @ weight + bias
        gaps = scores[np.arange(len(labels)), labels][:, None] - scores - 1
        return gaps[np.arange(num_classes)[None] != labels[:, None]]

    penalised = np.r_[np.ones(dim * num_classes), np.zeros(num_classes)]  # W only, not b
    result = minimize(
        lambda params: 0.5 * np.sum(penalised * params**2),
        np.zeros(penalised.size),
        jac=lambda params: penalised * params,
        method="SLSQP",
        constraints={"type": "ineq", "fun": constraint_values},
        options={"ftol": 1e-12, "maxiter": 1000},
    )
    assert result.success
    return 1 / np.linalg.norm(unpack(result.x)[0])


def test_two_classes_at_plus_minus_a_have_the_closed_form_margin():
    # w_1 = −w_0 = v at the optimum with 2 v·(a e_x) = 1, so ‖W‖_F = √2‖v‖ = 1/(√2 a): margin √2 a.
    half_gap = 1.5
    centred, labels = two_vertical_segments(half_gap, shift=0.0)
    assert hard_margins(centred[None], labels, bias=False)[0] == pytest.approx(math.sqrt(2) * half_gap, rel=RTOL)
    # Moved off the origin: a bias recovers the same margin; through the origin class 0 lies inside class 1's cone.
    moved, labels = two_vertical_segments(half_gap, shift=np.array([5.0, 0.0]))
    assert hard_margins(moved[None], labels, bias=True)[0] == pytest.approx(math.sqrt(2) * half_gap, rel=RTOL)
    assert math.isnan(hard_margins(moved[None], labels, bias=False)[0])


def test_matches_sklearn_crammer_singer_without_intercept():
    features, labels = gaussian_classes(150, 12, 4, spread=1.5, seed=0)
    reference = LinearSVC(multi_class="crammer_singer", C=1e4, fit_intercept=False, tol=1e-8, max_iter=100_000)
    reference.fit(features, labels)
    expected = functional_margin(features, labels, reference.coef_.T, 0.0)
    assert expected > 0
    ours = hard_margins(features[None], labels, bias=False)[0]
    assert ours == pytest.approx(expected, rel=RTOL)


def test_biased_margin_matches_an_exact_qp():
    features, labels = gaussian_classes(30, 2, 3, spread=4.0, seed=3, offset=6.0)
    expected = exact_biased_margin(features, labels, 3)
    ours = hard_margins(features[None], labels, bias=True)[0]
    assert ours == pytest.approx(expected, rel=RTOL)
    assert ours <= expected * (1 + 1e-6)  # a feasible direction's margin: never above the optimum
    unbiased = hard_margins(features[None], labels, bias=False)[0]
    assert math.isnan(unbiased) or unbiased < ours


def test_non_separable_sets_give_nan():
    overlapping, labels = gaussian_classes(200, 3, 4, spread=0.5, seed=1)
    assert all(math.isnan(m) for m in hard_margins(np.stack([overlapping, overlapping]), labels))
    duplicated = np.array([[0.0, 1.0], [0.0, 1.0], [2.0, 0.0]])
    assert math.isnan(hard_margins([duplicated], ["a", "b", "b"], bias=True)[0])


def test_layers_of_a_batch_are_solved_independently():
    separable, labels = gaussian_classes(120, 6, 3, spread=3.0, seed=2)
    overlapping, _ = gaussian_classes(120, 6, 3, spread=0.3, seed=4)
    narrow = separable[:, :4] * 0.1
    alone = [hard_margins([layer], labels)[0] for layer in (separable, overlapping, narrow)]
    batched = hard_margins([separable, overlapping, narrow], labels)
    np.testing.assert_allclose(batched, alone, rtol=1e-5)
    assert math.isnan(batched[1]) and batched[0] > 0 and batched[2] > 0


def ill_conditioned_classes(num_rows, dim, num_classes, spread, decades=3, seed=0):
    """Standardised Gaussian classes seen through a map whose singular values span ``decades`` orders of magnitude."""
    features, labels = gaussian_classes(num_rows, dim, num_classes, spread, seed)
    rng = np.random.default_rng(seed + 1)
    rotation, _ = np.linalg.qr(rng.standard_normal((dim, dim)))
    features = features @ (rotation * np.logspace(0, -decades, dim)) @ rotation.T
    return ((features - features.mean(0)) / features.std(0)).astype(np.float32), labels


def sklearn_crammer_singer_margin(features, labels, intercept):
    """The margin of scikit-learn's Crammer–Singer fit at C = 1e5 (a penalised intercept, scaled by 10)."""
    model = LinearSVC(multi_class="crammer_singer", C=1e5, fit_intercept=intercept, intercept_scaling=10.0)
    model.set_params(tol=1e-8, max_iter=100_000).fit(features, labels)
    return functional_margin(features.astype(np.float64), labels, model.coef_.T, model.intercept_ if intercept else 0)


def test_ill_conditioned_features_get_the_exact_margin_from_the_support_set():
    # Here the squared-hinge stages alone stalled 0.17 % (no bias) and 0.16 % (bias) below the optimum.
    features, labels = ill_conditioned_classes(600, 30, 8, spread=2.5)
    exact = sklearn_crammer_singer_margin(features, labels, intercept=False)
    assert hard_margins(features[None], labels, bias=False)[0] == pytest.approx(exact, rel=1e-5)
    features, labels = ill_conditioned_classes(1000, 40, 10, spread=1.5)
    penalised_intercept = sklearn_crammer_singer_margin(features, labels, intercept=True)
    ours = hard_margins(features[None], labels, bias=True)[0]
    assert penalised_intercept * (1 - 1e-6) <= ours <= penalised_intercept * (1 + 1e-3)


def squared_hinge_solution(features, labels, num_classes, cost):
    """argmin ½‖W‖² + C/2 Σ_i Σ_{j≠y_i} max(0, 1 − (w_{y_i} − w_j)·x_i)², no bias, by scipy's L-BFGS-B."""
    rows = np.arange(len(labels))

    def objective(flat):
        weight = flat.reshape(features.shape[1], num_classes)
        scores = features @ weight
        slack = np.maximum(0, 1 - (scores[rows, labels][:, None] - scores))
        slack[rows, labels] = 0
        score_grad = slack.copy()
        score_grad[rows, labels] = -slack.sum(1)
        value = 0.5 * np.sum(weight**2) + cost / 2 * np.sum(slack**2)
        return value, (weight + cost * features.T @ score_grad).ravel()

    start = np.zeros(features.shape[1] * num_classes)
    result = minimize(objective, start, jac=True, method="L-BFGS-B", options={"maxiter": 5000, "gtol": 1e-10})
    return result.x.reshape(features.shape[1], num_classes)


def test_the_support_set_method_certifies_its_margin_or_declines():
    features, labels = ill_conditioned_classes(600, 30, 8, spread=2.5)
    exact = sklearn_crammer_singer_margin(features, labels, intercept=False)
    targets = torch.as_tensor(labels)
    hinge_solution = torch.as_tensor(squared_hinge_solution(features.astype(np.float64), labels, 8, cost=10.0))
    weight, lower, upper = support_set_margin(torch.as_tensor(features), targets, 8, hinge_solution, False, 1e-4)
    # scikit-learn's margin is a feasible one (below the bound u); ours is certified within 1e-4 of u.
    assert exact <= upper * (1 + 1e-9) and lower >= (1 - 1e-4) * upper and lower == pytest.approx(exact, rel=1e-6)
    assert functional_margin(features.astype(np.float64), labels, weight.numpy(), 0) == pytest.approx(lower)
    assert support_set_margin(torch.as_tensor(features), targets, 8, hinge_solution, False, 1e-4, 50) is None


def test_the_support_set_method_reaches_the_optimum_from_a_poor_start():
    # A weakly penalised squared-hinge solution (C = 0.1) starts the rounds far from the support:
    # they take about 20, the defects falling all the while (12 rounds ended it uncertified before).
    features, labels = ill_conditioned_classes(3000, 100, 20, spread=1.0)
    targets = torch.as_tensor(labels)
    poor_start = torch.as_tensor(squared_hinge_solution(features.astype(np.float64), labels, 20, cost=0.1))
    weight, lower, upper = support_set_margin(torch.as_tensor(features), targets, 20, poor_start, False, 3e-3)
    assert lower >= (1 - 3e-4) * upper
    assert functional_margin(features.astype(np.float64), labels, weight.numpy(), 0) == pytest.approx(lower)
    assert hard_margins(features[None], labels, bias=False)[0] == pytest.approx(lower, rel=3e-4)


def test_the_constraint_system_kept_across_rounds_solves_as_a_fresh_factor_would():
    # Small changes border the factor and deactivate constraints (a Schur complement on them); the
    # solves must equal a dense solve of Q restricted to the working set.
    rng = np.random.default_rng(0)
    num_rows, dim, num_classes = 200, 30, 5
    features = torch.as_tensor(rng.standard_normal((num_rows, dim)))
    targets = torch.as_tensor(rng.integers(0, num_classes, num_rows))
    allowed = [i * num_classes + j for i in range(num_rows) for j in range(num_classes) if j != targets[i]]
    pool = torch.as_tensor(rng.permutation(allowed)[:70])
    right = torch.as_tensor(rng.standard_normal((70, 3)))

    def dense_solve(working):
        rows, other = working // num_classes, working % num_classes
        one_hot = torch.nn.functional.one_hot
        signs = (one_hot(targets[rows], num_classes) - one_hot(other, num_classes)).double()
        gram = (features[rows] @ features[rows].T) * (signs @ signs.T)
        return torch.linalg.solve(gram, right[: len(working)])

    system = _ConstraintSystem(features, targets, num_classes, max_constraints=1000)
    assert system.reset(pool[:60])
    steps = [(pool[[3, 17]], pool[60:62]), (pool[[60, 40]], pool[[3, 62]])]  # leave and join; then re-join pool[3]
    for leaving, joining in steps:
        assert system.update(leaving, joining)
        assert (~system.active).any()  # the kept factor, not a fresh one
        working = system.working()
        expected = set(working.tolist())
        assert len(expected) == 60 and not expected & set(leaving.tolist()) and set(joining.tolist()) <= expected
        torch.testing.assert_close(system.solve(right[:60]), dense_solve(working), rtol=1e-8, atol=1e-10)
