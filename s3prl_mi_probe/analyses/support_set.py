"""The exact hard margin of one layer from a good separator: an active-set method on its support constraints.

Where the squared-hinge stages of :mod:`s3prl_mi_probe.analyses.hard_margin` stall (ill-conditioned
features: L-BFGS at large C barely moves, so its margin ℓ stays below γ* and its dual bound u stays
loose), the optimum is found from the constraints that support it. For a working set S of constraints
(i, j), the hard-margin problem with only those constraints, held as equalities, is a linear system
(the KKT conditions): with v_ij = z_i (e_{y_i} − e_j)ᵀ and, with a bias, E_ij = e_{y_i} − e_j,

    W = Σ_S α_ij v_ij,   Q α + E b = 1,   Eᵀ α = 0 (with a bias),   Q = (Z_S Z_Sᵀ) ∘ (E Eᵀ),

solved by a Cholesky factor of Q (|S| × |S|, float64) and the small (K − 1) × (K − 1) system for b
(one bias fixed at 0: only differences of biases matter). S starts as the constraints with a slack in
a squared-hinge solution (gap below 1), which approach the support as C grows. Each round,
constraints with α < 0 leave S, and the most violated constraint of each row whose gaps fall below 1
joins it (at most ``ADDED_PER_ROUND`` of them and no more than the cap leaves room for, the most
violated first). When every α ≥ 0 and nothing is violated, (W, b) is the optimum. The *defects* of a
round, its constraints with α < 0 and its rows with a gap below 1, fall round by round; from an early
squared-hinge iterate (25 L-BFGS iterations at C = 1) that takes 10-25 rounds. Adding few
constraints a round keeps the set from churning: with up to 1,000 a round, the demo corpus's fbank
layers swapped about 900 constraints in and out for ten rounds and needed 17 to 20 in all.

Certificate, every round: ℓ = min_ij g_ij / ‖W‖ of the round's (W, b) on all rows (ℓ ≤ γ*), and the
weak-duality bound of the clipped multipliers α⁺ = max(α, 0), u = (‖Σ α⁺ v‖ + ‖Eᵀα⁺‖₁ · R/√2) / Σ α⁺
(R the largest row norm; the second term only with a bias: the bound of hard_margin.py), so γ* ≤ u.
At the optimum ℓ = u = 1/‖W‖. The method stops once the best ℓ is within tol/10 of the least u, and
its result counts if that is within ``tol`` when the rounds or the working set's cap end it. The
rounds end, uncertified, once ``STALL_ROUNDS`` rounds in a row have not brought the defects below
their least count so far (or after ``MAX_ROUNDS``).

Cost: |S|³/3 flops for a fresh factor, so S is capped (``max_constraints``, and never more than D·K,
the dimension of W, which bounds the independent constraints); rounds that change S by little keep
the factor (:class:`_ConstraintSystem`). A start above the cap, a singular Q (duplicate
constraints), or rounds or a cap that end it uncertified give None, and the caller keeps its own result.
"""

import math

import torch

ADDED_PER_ROUND = 150
MAX_ROUNDS = 60
STALL_ROUNDS = 3
REBUILD_SHARE = 0.1  # a round changing more of the working set than this (with the inactive) refactors Q
MAX_CONSTRAINTS = 4000  # a fresh factor then takes about 0.4 s on 2 cores
PEAK_BYTES = 3 * 8 * MAX_CONSTRAINTS**2  # Q, E Eᵀ and the factor (or the old and the bordered factor), float64


def support_set_margin(features, targets, num_classes, weight, bias, tol, max_constraints=MAX_CONSTRAINTS):
    """``(weight, ℓ, u)`` with ℓ ≥ (1 − tol)·u, or None (see the module docstring); it aims at tol / 10.

    ``features`` ``[N, D]``, ``targets`` ``[N]`` (class indices), ``weight`` ``[D (+1), K]`` (its last row
    the bias when ``bias``) a squared-hinge solution: its constraints with a gap below 1 (those with a
    slack) start the working set.
    """
    features = features.double()
    gaps = _gaps(features, targets, weight.double(), bias)
    max_constraints = min(max_constraints, features.shape[1] * num_classes)  # W's dimension bounds independent ones
    working = (gaps.flatten() < 1).nonzero().flatten()  # flat indices i · K + j
    system = _ConstraintSystem(features, targets, num_classes, max_constraints)
    if not 0 < len(working) <= max_constraints or not system.reset(working):
        return None
    radius = features.norm(dim=1).amax() if bias else None
    best, best_lower, upper = None, 0.0, math.inf
    fewest_defects, stalled = math.inf, 0
    for _ in range(MAX_ROUNDS):
        working = system.working()
        rows, signs = _class_signs(targets, num_classes, working)
        alpha, candidate = _kkt_solution(system, rows, signs, bias)
        gaps = _gaps(features, targets, candidate, bias)
        norm = (candidate[:-1] if bias else candidate).norm()
        lower = (gaps.min().clamp_min(0) / norm).item()
        if lower > best_lower:
            best, best_lower = candidate, lower
        upper = min(upper, _dual_bound(features, rows, signs, alpha.clamp_min(0), radius))
        if best_lower >= (1 - tol / 10) * upper:
            break
        kept = working[alpha >= 0]
        room = min(ADDED_PER_ROUND, max_constraints - len(kept))
        row_gaps = gaps.min(1)
        violated = (row_gaps.values < 1).nonzero().flatten()
        defects = len(working) - len(kept) + len(violated)
        fewest_defects, stalled = min(fewest_defects, defects), 0 if defects < fewest_defects else stalled + 1
        if room < min(len(violated), 1) or stalled >= STALL_ROUNDS:
            break
        violated = violated[row_gaps.values[violated].argsort()[:room]]
        joining = violated * num_classes + row_gaps.indices[violated]
        if not system.update(working[alpha < 0], joining[~torch.isin(joining, kept)]):
            return None
    return (best, best_lower, upper) if best_lower >= (1 - tol) * upper else None


def _gaps(features, targets, weight, bias):
    """g_ij = s_{i y_i} − s_ij ``[N, K]``, +inf at j = y_i."""
    scores = features @ weight[:-1] + weight[-1] if bias else features @ weight
    gaps = scores.gather(1, targets[:, None]) - scores
    return gaps.scatter(1, targets[:, None], math.inf)


def _class_signs(targets, num_classes, working):
    """The rows of the working set and E ``[|S|, K]``: +1 at the row's class, −1 at the constraint's class."""
    rows = working // num_classes
    signs = torch.zeros(len(working), num_classes, dtype=torch.float64, device=working.device)
    positions = torch.arange(len(working), device=working.device)
    signs[positions, targets[rows]] = 1
    signs[positions, working % num_classes] = -1
    return rows, signs


class _ConstraintSystem:
    """Q of a set U of constraints, Cholesky-factored, of which the *active* ones are the working set S.

    A round changes S by a few constraints once the rounds near the optimum, so the factor is kept:
    joining constraints border it (their rows of Q against U, a triangular solve and the factor of
    their own m × m block: |U|²·m flops instead of |U|³/3), leaving ones stay in U, inactive, and
    solves on S go through Q_U's factor with a Schur complement on the inactive set R:
    Q_SS⁻¹ r = [Q_U⁻¹ r̃ − G (G_R)⁻¹ (Q_U⁻¹ r̃)_R]_S, with G = Q_U⁻¹ P_R (r̃: r put on S, 0 on R).
    Q is factored afresh on S when a round's changes and R together pass ``REBUILD_SHARE`` of S,
    or U would pass the cap.
    """

    def __init__(self, features, targets, num_classes, max_constraints):
        self.features, self.targets, self.num_classes = features, targets, num_classes
        self.max_constraints = max_constraints

    def working(self):
        """The active constraints' flat indices, in the factor's order."""
        return self.ids[self.active]

    def reset(self, working):
        """Factor Q of ``working``, all active; False where Q is singular."""
        gram = self._block(working, working)
        self.ridge = 1e-12 * gram.diagonal().mean()  # duplicate constraints: a ridge far below the scale
        gram.diagonal().add_(self.ridge)
        factor, failed = torch.linalg.cholesky_ex(gram)
        if failed.item():
            return False
        self.ids, self.factor = working, factor
        self.active = torch.ones(len(working), dtype=torch.bool, device=working.device)
        return True

    def update(self, leaving, joining):
        """Deactivate the active ``leaving``, activate ``joining`` (none of them active); False where Q is singular."""
        inactive = int((~self.active).sum())
        size = int(self.active.sum()) - len(leaving) + len(joining)
        fresh = joining[~torch.isin(joining, self.ids)]
        if (
            len(leaving) + len(joining) + inactive > REBUILD_SHARE * size
            or len(self.ids) + len(fresh) > self.max_constraints
        ):
            kept = self.working()[~torch.isin(self.working(), leaving)]
            return self.reset(torch.cat([kept, joining]))
        self.active &= ~torch.isin(self.ids, leaving)
        self.active |= torch.isin(self.ids, joining)
        if not len(fresh) or self._border(fresh):
            return True
        return self.reset(torch.cat([self.working(), fresh]))  # the bordered block lost definiteness to rounding

    def solve(self, right):
        """Q_SS⁻¹ ``right`` (rows: the working set, in order)."""
        padded = right.new_zeros(len(self.ids), right.shape[1])
        padded[self.active] = right
        solved = _cholesky_solved(self.factor, padded)
        inactive = (~self.active).nonzero().flatten()
        if len(inactive):
            units = right.new_zeros(len(self.ids), len(inactive))
            units[inactive, torch.arange(len(inactive), device=inactive.device)] = 1
            columns = _cholesky_solved(self.factor, units)
            solved -= columns @ torch.linalg.solve(columns[inactive], solved[inactive])
        return solved[self.active]

    def _border(self, fresh):
        """Append the constraints ``fresh`` to U (active), bordering the factor; False (nothing changed) where
        the bordered block is not positive definite."""
        below = torch.linalg.solve_triangular(self.factor, self._block(self.ids, fresh), upper=False).T
        corner = self._block(fresh, fresh)
        corner.diagonal().add_(self.ridge)
        tail, failed = torch.linalg.cholesky_ex(corner - below @ below.T)
        if failed.item():
            return False
        size = len(self.ids)
        factor = self.factor.new_zeros(size + len(fresh), size + len(fresh))
        factor[:size, :size], factor[size:, :size], factor[size:, size:] = self.factor, below, tail
        self.factor, self.ids = factor, torch.cat([self.ids, fresh])
        self.active = torch.cat([self.active, self.active.new_ones(len(fresh))])
        return True

    def _block(self, first, second):
        """Q's entries between the constraints ``first`` and ``second``: (Z Zᵀ) ∘ (E Eᵀ)."""
        first_rows, first_signs = _class_signs(self.targets, self.num_classes, first)
        second_rows, second_signs = _class_signs(self.targets, self.num_classes, second)
        return (self.features[first_rows] @ self.features[second_rows].T) * (first_signs @ second_signs.T)


def _kkt_solution(system, rows, signs, bias):
    """``(α, weight)`` with the working set's constraints (its ``rows`` and ``signs``, see
    :func:`_class_signs`) held as equalities."""
    ones = signs.new_ones(len(rows), 1)
    if bias:
        tied = signs[:, 1:]  # the first class's bias is 0
        solved = system.solve(torch.cat([ones, tied], dim=1))
        biases = torch.linalg.lstsq(tied.T @ solved[:, 1:], tied.T @ solved[:, :1]).solution
        alpha = (solved[:, :1] - solved[:, 1:] @ biases)[:, 0]
        biases = torch.cat([biases.new_zeros(1, 1), biases])[:, 0]
    else:
        alpha = system.solve(ones)[:, 0]
    weight = system.features[rows].T @ (alpha[:, None] * signs)
    return alpha, torch.cat([weight, biases[None]]) if bias else weight


def _cholesky_solved(factor, right):
    """Q⁻¹ ``right`` from Q's lower Cholesky ``factor``: two triangular solves (a third of
    ``torch.cholesky_solve``'s time on the CPU for a few dozen right-hand sides)."""
    halfway = torch.linalg.solve_triangular(factor, right, upper=False)
    return torch.linalg.solve_triangular(factor.T, halfway, upper=True)


def _dual_bound(features, rows, signs, alpha, radius):
    """u ≥ γ* of nonnegative multipliers ``alpha`` on the working set (its ``rows`` and ``signs``; ``radius``
    None: no bias)."""
    mass = alpha.sum()
    if not mass > 0:
        return math.inf
    spread = (features[rows].T @ (alpha[:, None] * signs)).norm()
    if radius is not None:
        spread = spread + (signs.T @ alpha).abs().sum() * radius / math.sqrt(2)
    return (spread / mass).item()
