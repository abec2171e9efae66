"""Upper bounds on a layer's hard margin from one pair of classes (docs/method.md, "Margins").

A multiclass linear separator restricted to classes a and c separates them with w_a − w_c, so if a
and c cannot be told apart linearly, no layer-wide separator exists. Their convex hulls (with a bias;
their cones through the origin without one) meet iff a linear programme is feasible: λ, μ ≥ 0 with
Z_aᵀλ = Z_cᵀμ, Σλ = Σμ = 1 (with a bias) or Σλ + Σμ = 1 (without). Any such (λ, μ), put on the
constraints (i ∈ a, j = c) and (i ∈ c, j = a), is a dual point of the hard-margin problem
(docs/method.md), balanced as a bias needs, so γ* ≤ ‖Z_aᵀλ − Z_cᵀμ‖/√2 with a bias and
≤ √2 ‖Z_aᵀλ − Z_cᵀμ‖ without: the bound is computed from the programme's solution after clipping it
to the constraints, so solver tolerances cannot make it too small.

The pairs tried are those that the nearest-class-mean rule confuses most, the likeliest to overlap.
The programme's cost grows fast with its size, so a pair enters it with at most ``LP_ENTRIES`` / (D + 2)
rows, those of each class nearest the midpoint of the two class means, where hulls that overlap overlap
(sub-hulls that meet prove that the hulls do),
and not at all when that leaves at most D + 1 rows, which lie in two separable hulls in general position.
"""

import numpy as np
from scipy.optimize import linprog

PAIRS_TRIED = 3
LP_ENTRIES = 250_000  # rows x (D + 2) of the largest programme tried (about 0.5 s)


def confused_pairs(features, targets, num_classes, count=PAIRS_TRIED):
    """Up to ``count`` class pairs ``(a, c)``, a < c, that nearest-class-mean most often confuses (never 0 times)."""
    means = np.zeros((num_classes, features.shape[1]))
    np.add.at(means, targets, features)
    means /= np.bincount(targets, minlength=num_classes)[:, None]
    distances = (means**2).sum(1)[None] - 2 * features @ means.T
    confusion = np.zeros((num_classes, num_classes))
    np.add.at(confusion, (targets, distances.argmin(1)), 1)
    confusion = np.triu(confusion + confusion.T, 1)
    order = np.argsort(-confusion, axis=None, kind="stable")[:count]
    return [(int(a), int(c)) for a, c in zip(*np.unravel_index(order, confusion.shape)) if confusion[a, c] > 0]


def pair_margin_bound(first, second, bias):
    """Upper bound on the hard margin of any set holding rows ``first`` of one class and ``second`` of
    another, from a point where their hulls (``bias``) or cones meet; ``inf`` when they do not meet."""
    first, second = np.asarray(first, dtype=np.float64), np.asarray(second, dtype=np.float64)
    num_first, num_second = len(first), len(second)
    sums = np.zeros((2, num_first + num_second))
    if bias:
        sums[0, :num_first], sums[1, num_first:] = 1, 1
    else:
        sums = np.ones((1, num_first + num_second))
    equalities = np.vstack([np.hstack([first.T, -second.T]), sums])
    right = np.r_[np.zeros(first.shape[1]), np.ones(len(sums))]
    result = linprog(np.zeros(num_first + num_second), A_eq=equalities, b_eq=right, bounds=(0, None), method="highs")
    if result.status != 0:
        return float("inf")
    weights = result.x.clip(0)
    first_weights, second_weights = weights[:num_first], weights[num_first:]
    if bias:
        if first_weights.sum() <= 0 or second_weights.sum() <= 0:
            return float("inf")
        first_weights, second_weights = first_weights / first_weights.sum(), second_weights / second_weights.sum()
        return float(np.linalg.norm(first.T @ first_weights - second.T @ second_weights) / np.sqrt(2))
    total = weights.sum()
    if total <= 0:
        return float("inf")
    return float(np.sqrt(2) * np.linalg.norm((first.T @ first_weights - second.T @ second_weights) / total))


def pairwise_margin_bound(features, targets, num_classes, bias, count=PAIRS_TRIED, enough=0.0):
    """The smallest :func:`pair_margin_bound` over the :func:`confused_pairs` of one layer (``inf`` if none),
    trying pairs in turn until one bounds the margin by ``enough``."""
    features = np.asarray(features, dtype=np.float64)
    per_class = LP_ENTRIES // (features.shape[1] + 2) // 2
    best = float("inf")
    for a, c in confused_pairs(features, targets, num_classes, count):
        first, second = features[targets == a], features[targets == c]
        middle = (first.mean(0) + second.mean(0)) / 2
        first, second = _nearest(first, middle, per_class), _nearest(second, middle, per_class)
        if len(first) + len(second) <= features.shape[1] + 1:
            continue
        best = min(best, pair_margin_bound(first, second, bias))
        if best <= enough:
            break
    return best


def _nearest(rows, point, count):
    """The ``count`` rows nearest ``point`` (all of them when there are no more)."""
    if len(rows) <= count:
        return rows
    return rows[np.argsort(((rows - point) ** 2).sum(1), kind="stable")[:count]]
