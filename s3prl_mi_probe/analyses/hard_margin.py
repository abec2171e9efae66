"""Hard (max-)margin of layers whose train features are linearly separable (docs/method.md, "Margins").

Problem, per layer, on features z_i with labels y_i among the K classes that occur in ``labels``:

    min ½‖W‖²_F  s.t.  (w_{y_i} − w_j)·z_i + b_{y_i} − b_j ≥ 1  for all i and j ≠ y_i,

with an unpenalised bias b (``bias=True``, the geometric choice) or none (``bias=False``, which is
scikit-learn's ``LinearSVC(multi_class="crammer_singer", fit_intercept=False)`` as C → ∞). The margin is
γ* = 1/‖W*‖_F = max over (W, b) of min_{i, j≠y_i} ((w_{y_i} − w_j)·z_i + b_{y_i} − b_j) / ‖W‖_F, and NaN
when no (W, b) separates the rows. Features are used as given: standardise them first (docs/method.md, "Segments").

Non-separability first. For each layer a few pairs of classes are tested on their own
(:mod:`s3prl_mi_probe.analyses.class_pairs`): two classes whose hulls meet give a dual point that bounds γ*
by about 0; when that bound is below the resolution (below), the layer is NaN without running the solver.

Method. Crammer–Singer and Weston–Watkins share this hard-margin constraint set, so we minimise the
smooth Weston–Watkins squared-hinge objective

    f_C(W, b) = ½‖W‖² + C/2 · Σ_i Σ_{j≠y_i} max(0, 1 − g_ij)²,   g_ij = s_{i y_i} − s_ij,   s = ZW + b,

whose minimiser tends to (W*, b*) as C → ∞. Each layer is an independent problem; all of them run together
as one batch through L-BFGS with a backtracking (Armijo) line search on cached scores, so a trial step costs
no matmul and an iteration costs two batched matmuls. The Hessian of f_C is about I + C·N·Σ̃ ⊗ (K×K) with
Σ̃ = Z̃ᵀZ̃/N the covariance of the features (with a ones column for the bias), so L-BFGS starts each
two-loop recursion from (Σ̃ + I/(C·N))⁻¹ (one eigendecomposition per layer) rather than from the identity.
C grows tenfold per *stage*, warm-started. Every ``CHECK_EVERY`` iterations the bounds below are
computed; a stage ends when ‖∇f_C‖ ≤ ``grad_tol`` · ‖W‖, after ``max_iter`` iterations, or once ℓ > 0 has
grown by less than tol/10 since the last check (from the second check of the stage on).

Bounds, at every check. ℓ = max(0, min_ij g_ij) / ‖W‖ is the margin of the current (W, b), so ℓ ≤ γ*, and
ℓ > 0 certifies separability. With α_ij = C max(0, 1 − g_ij) ≥ 0, weak duality gives γ* ≤ u =
‖Σ_ij α_ij z_i (e_{y_i} − e_j)ᵀ‖_F / Σ_ij α_ij without a bias. With a bias, r = Σ_ij α_ij (e_{y_i} − e_j)
(= −∇_b f_C) need not vanish away from the optimum; the optimal biases of a separable set differ by at
most √2·R (R the largest ‖z_i‖, for ‖W‖ = 1), so u gains the term ‖r‖₁·R/√2 and stays a bound. ℓ and u
are kept at their best; u starts at the class pairs' bound.

Support set. At the first check where a layer's iterate separates (ℓ > 0), and again at the end of
each of the first ``SUPPORT_STAGES`` stages (C = ``initial_c``, then 10·``initial_c``) if it is not
yet certified, the layer goes to
:mod:`s3prl_mi_probe.analyses.support_set`, an active-set method that solves the problem on the
constraints with a slack and grows or shrinks that set until its multipliers certify the optimum
(ℓ ≥ (1 − tol/10) · u). Where it succeeds the layer is done with that (W, b), ℓ and u; where it
declines (its working set would pass a few thousand constraints, or its defects stop falling) the
stages go on. Ill-conditioned features are where this matters: on a demo corpus's fbank layer the
stages alone stopped 0.5-1.2 % below γ* after six stages (1.6 % on a corpus twice as large), while
the support set finds γ* from the iterate of the first check (within tol/10; its weights are kept in
float32, which costs ℓ about 2e-7 relative there). Trying it that early pays: from the end of the
first stage it needed fewer rounds, but the stage cost more.

Stopping, per layer: *separable* when ℓ ≥ (1 − ``tol``) · u, so the reported ℓ is within ``tol`` of γ*;
*not separable* when ℓ = 0 and u < ``resolution`` · (mean_i ‖z_i‖²)^½ (γ* is below that resolution, or zero);
*stalled* when at the end of a stage ℓ > 0 grew by less than tol/10 over the stage (ℓ has stopped growing,
though on ill-conditioned features it can still lie well below γ*, and u, computed from the not quite
stationary iterates of large-C stages, does not certify it); otherwise the next
stage, up to ``max_stages``, after which a layer reports its ℓ with a warning (a lower bound that may be
loose), or NaN if ℓ = 0.

Guarantees. The reported number is ℓ of the best (W, b) found, recomputed in float64 (from float32
weights): it never overstates γ*, and a number (not NaN) means a separating (W, b) was found. NaN does
not prove non-separability: it means γ* was bounded below the resolution (by a pair of classes or by
the solver's u), or the stages ran out without a separator.
"""

import math
import warnings

import numpy as np
import torch

from s3prl_mi_probe.analyses.class_pairs import PAIRS_TRIED, pairwise_margin_bound
from s3prl_mi_probe.analyses.sampling import HARD_MARGIN_ROWS
from s3prl_mi_probe.analyses.support_set import PEAK_BYTES as SUPPORT_SET_BYTES
from s3prl_mi_probe.analyses.support_set import support_set_margin
from s3prl_mi_probe.probe.arrays import stack_layers
from s3prl_mi_probe.probe.memory import DEFAULT_MEMORY_BUDGET
from s3prl_mi_probe.probe.source import as_source
from s3prl_mi_probe.probe.standardize import RunningStandardizer
from s3prl_mi_probe.probe.subsample import stratified_subsample

STAGE_FACTOR = 10.0
CHECK_EVERY = 25
HISTORY = 10
ARMIJO = 1e-4
MAX_BACKTRACKS = 40
SUPPORT_STAGES = 2  # the support-set method is tried again at the end of the first stages (C = initial_c, 10·initial_c)


def hard_margins(
    features,
    labels,
    device="cpu",
    bias=True,
    tol=3e-3,
    resolution=1e-4,
    initial_c=1.0,
    max_stages=10,
    max_iter=300,
    grad_tol=1e-2,
    class_pairs=PAIRS_TRIED,
):
    """Crammer–Singer hard margin per layer (NaN where not separable), see the module docstring.

    ``features``: ``[L, N, D]`` tensor/array or a list of L ``[N, D_l]`` arrays (zero-padded to one width,
    which leaves margins unchanged); ``labels``: ``[N]``, any hashable values; ``class_pairs``: how many
    pairs of classes are tried for a non-separability bound before the solver (0: none).
    """
    _, targets = np.unique(np.asarray(labels), return_inverse=True)
    num_classes = int(targets.max()) + 1
    if num_classes < 2:
        raise ValueError("a margin needs at least two classes")
    targets = targets.reshape(-1)
    features = stack_layers(features).cpu()
    scale = features.square().sum(-1).mean(-1).sqrt()
    pair_bounds = torch.tensor(
        [
            pairwise_margin_bound(
                layer.cpu().numpy(), targets, num_classes, bias, class_pairs, resolution * layer_scale
            )
            for layer, layer_scale in zip(features, scale.tolist())
        ],
        dtype=scale.dtype,
    )
    solved = (pair_bounds >= resolution * scale).nonzero().flatten()
    margins = [float("nan")] * len(features)
    if len(solved):
        features = features[solved].to(device)
        targets = torch.as_tensor(targets, device=device)
        solver = _SquaredHingeBank(features, targets, num_classes, bias, initial_c, pair_bounds[solved].to(device))
        weights = solver.solve(tol, resolution, max_stages, max_iter, grad_tol)
        for index, layer, weight in zip(solved.tolist(), features, weights):
            margins[index] = _certified_margin(layer, targets, weight, bias)
    return margins


def sampled_hard_margins(train, max_rows=HARD_MARGIN_ROWS, seed=0, device="cpu", memory_budget=DEFAULT_MEMORY_BUDGET):
    """Hard margin of every layer of ``train`` (``(X, y)`` or a RowSource), and the number of rows it used.

    The solver's cost grows faster than linearly with the rows, so at most ``max_rows`` train rows are
    used: all of them when there are no more, else a seeded, class-stratified subsample (a subsample
    of a separable set is separable, and its margin is at least the full set's). The rows are
    standardised with their own statistics. Layers are solved in groups whose features and solver
    state fit ``memory_budget`` (less the support-set step's peak, one layer at a time); each layer is an
    independent problem, so grouping changes nothing.
    """
    source = as_source(train, name="train")
    if source.num_rows > max_rows:
        source = source.subset(stratified_subsample(source.labels, max_rows, seed=seed))
    num_classes = np.unique(source.labels).size
    layer_bytes = 4 * (
        2 * source.num_rows * (source.dim + 6 * num_classes)
        + 2 * HISTORY * (source.dim + 1) * num_classes
        + 6 * (source.dim + 1) ** 2  # the covariance's eigenvectors, and the float64 decomposition
    )
    group = max(1, int((memory_budget - SUPPORT_SET_BYTES) // layer_bytes))  # layers meet the support set one by one
    margins = []
    for first in range(0, source.num_layers, group):
        part = source.select_layers(source.layer_ids[first : first + group])
        features = part.read()
        standardizer = RunningStandardizer(part.num_layers, part.dim)
        standardizer.update(features)
        margins += hard_margins(standardizer(features), part.labels, device=device)
    return margins, source.num_rows


def _certified_margin(features, targets, weight, bias):
    """ℓ = min functional margin / ‖W‖ in float64, NaN unless positive."""
    features, weight = features.double(), weight.double()
    scores = features @ weight[:-1] + weight[-1] if bias else features @ weight
    gap = scores.gather(1, targets[:, None]) - scores
    gap[torch.arange(len(targets)), targets] = float("inf")
    penalised = weight[:-1] if bias else weight
    margin = (gap.min() / penalised.norm()).item()  # W = 0 (no separator kept) gives ±inf or NaN: not > 0
    return margin if 0 < margin < float("inf") else float("nan")


class _SquaredHingeBank:
    """Squared-hinge problems f_C of the layers still being solved; tensors have the layer first.

    A layer's parameters are one ``[D (+1), K]`` matrix, the last row being the bias when there is one.
    """

    def __init__(self, features, targets, num_classes, bias, initial_c, upper):
        self.targets, self.bias = targets[None, :, None], bias
        self.own = torch.nn.functional.one_hot(targets, num_classes).bool()[None]
        num_layers, _, dim = features.shape
        rows = dim + 1 if bias else dim
        self.penalised = torch.ones(1, rows, 1, device=features.device)
        if bias:
            self.penalised[:, -1] = 0
        self.live = {
            "features": features,
            "layer": torch.arange(num_layers, device=features.device),
            "weight": features.new_zeros(num_layers, rows, num_classes),
            "scale": features.square().sum(-1).mean(-1).sqrt(),
            "stage": torch.zeros(num_layers, dtype=torch.long, device=features.device),
            "stage_iter": torch.zeros(num_layers, dtype=torch.long, device=features.device),
            "steps": features.new_zeros(num_layers, HISTORY, rows, num_classes),
            "changes": features.new_zeros(num_layers, HISTORY, rows, num_classes),
            "rho": features.new_zeros(num_layers, HISTORY),
            "gamma": features.new_ones(num_layers),
            "best": features.new_zeros(num_layers, rows, num_classes),
            "lower": features.new_zeros(num_layers),
            "check_lower": features.new_zeros(num_layers),
            "stage_lower": features.new_zeros(num_layers),
            "support_tried": torch.zeros(num_layers, dtype=torch.bool, device=features.device),
            "upper": upper.to(features.dtype),
            "radius": features.norm(dim=-1).amax(-1),
            "cost": features.new_full((num_layers,), initial_c),
        }
        self.live["eigval"], self.live["eigvec"] = _covariance_eigen(features, bias)
        self.num_rows = features.shape[1]
        self._set_scores(self.scores(self.live["weight"]))
        self.live["grad"] = self.gradient(self.live["weight"], self.live["slack"], self.live["cost"])

    def scores(self, weight):
        """s = ZW + b ``[L, N, K]``; linear in ``weight``, so it also maps a direction to score changes."""
        features = self.live["features"]
        if self.bias:
            return torch.baddbmm(weight[:, -1:], features, weight[:, :-1])
        return features @ weight

    def _set_scores(self, scores):
        """Keep the scores of the current weights with their gaps and slacks (the next line search starts there)."""
        self.live["scores"], self.live["gaps"] = scores, self.gaps(scores)
        self.live["slack"] = self.slack(self.live["gaps"])

    def gaps(self, scores):
        """g_ij = s_{i y_i} − s_ij ``[L, N, K]`` (0 at j = y_i, which the own mask excludes)."""
        return scores.gather(-1, self.targets.expand(scores.shape[0], -1, -1)) - scores

    def slack(self, gaps):
        """max(0, 1 − g_ij), zero at j = y_i."""
        return (1 - gaps).clamp_min(0).masked_fill(self.own, 0)

    def gradient(self, weight, slack, cost):
        """∇f_C ``[L, D (+1), K]``; its data part is −Σ α_ij z̃_i (e_{y_i} − e_j)ᵀ, α_ij = C · slack_ij."""
        score_grad = cost[:, None, None] * (slack - self.own * slack.sum(-1, keepdim=True))
        data_grad = self.live["features"].transpose(1, 2) @ score_grad
        if self.bias:
            data_grad = torch.cat([data_grad, score_grad.sum(1, keepdim=True)], dim=1)
        return self.penalised * weight + data_grad

    def solve(self, tol, resolution, max_stages, max_iter, grad_tol):
        """Run the stages; every layer's ``[D (+1), K]`` parameters of largest lower bound ℓ, in layer order."""
        live = self.live
        finished = {}
        pushes = 0
        while len(live["layer"]):
            self._lbfgs_step(pushes)
            pushes += 1
            live["stage_iter"] += 1
            wnorm = (self.penalised * live["weight"]).flatten(1).norm(dim=1)
            forced = (live["grad"].flatten(1).norm(dim=1) <= grad_tol * wnorm) | (live["stage_iter"] >= max_iter)
            checked = forced | (live["stage_iter"] % CHECK_EVERY == 0)
            if checked.any():
                done = self._check(checked, forced, wnorm, tol, resolution, max_stages)
                for layer, weight in zip(live["layer"][done].tolist(), live["best"][done]):
                    finished[layer] = weight
                self.live = live = {name: value[~done] for name, value in live.items()}
        return [finished[layer] for layer in sorted(finished)]

    def _lbfgs_step(self, pushes):
        """One L-BFGS iteration on every live layer, updating weights, scores, gradient and history."""
        live = self.live
        direction = self._lbfgs_direction(pushes)
        delta = self.scores(direction)
        step = self._line_search(direction, delta)
        move = step[:, None, None] * direction
        live["weight"] = live["weight"] + move
        self._set_scores(live["scores"] + step[:, None, None] * delta)
        grad = self.gradient(live["weight"], live["slack"], live["cost"])
        change = grad - live["grad"]
        live["grad"] = grad
        curvature = _dot(move, change)
        valid = curvature > 1e-12 * _dot(change, change)
        slot = pushes % HISTORY
        live["steps"][:, slot], live["changes"][:, slot] = move, change
        live["rho"][:, slot] = torch.where(valid, 1 / curvature.clamp_min(1e-30), 0)
        scaled = _dot(change, self._precondition(change))
        live["gamma"] = torch.where(valid, curvature / scaled.clamp_min(1e-30), live["gamma"])

    def _precondition(self, q):
        """(Σ + I/(C·N))⁻¹ q with Σ the (bias-augmented) feature covariance: the shape of f_C's Hessian."""
        live = self.live
        ridge = 1 / (live["cost"] * self.num_rows)
        basis = live["eigvec"]
        return basis @ ((basis.transpose(1, 2) @ q) / (live["eigval"][:, :, None] + ridge[:, None, None]))

    def _lbfgs_direction(self, pushes):
        """−H∇f by the two-loop recursion; pairs with ρ = 0 (reset or not curved) are skipped."""
        live = self.live
        order = [(pushes - 1 - back) % HISTORY for back in range(min(pushes, HISTORY))]
        q = live["grad"].clone()
        alphas = {}
        for slot in order:
            alphas[slot] = live["rho"][:, slot] * _dot(live["steps"][:, slot], q)
            q -= alphas[slot][:, None, None] * live["changes"][:, slot]
        r = live["gamma"][:, None, None] * self._precondition(q)
        for slot in reversed(order):
            beta = live["rho"][:, slot] * _dot(live["changes"][:, slot], r)
            r += (alphas[slot] - beta)[:, None, None] * live["steps"][:, slot]
        return -r

    def _line_search(self, direction, delta):
        """Armijo backtracking from the exact step of the local quadratic model, on cached scores."""
        live = self.live
        penalised_w, penalised_d = self.penalised * live["weight"], self.penalised * direction
        reg_slope, reg_curve = _dot(penalised_w, penalised_d), _dot(penalised_d, penalised_d)
        gaps, gap_delta, slack = live["gaps"], self.gaps(delta), live["slack"]
        cost = live["cost"]
        slope = _dot(live["grad"], direction)
        curve = reg_curve + cost * ((slack > 0) * gap_delta.square()).flatten(1).sum(1)
        regulariser = 0.5 * _dot(penalised_w, penalised_w)
        base = regulariser + 0.5 * cost * slack.square().flatten(1).sum(1)
        step = (-slope / curve).clamp_min(0)
        accepted = (slope >= 0) | (step == 0)
        step = torch.where(accepted, 0, step)
        for _ in range(MAX_BACKTRACKS):
            if accepted.all():
                break
            trial_slack = self.slack(gaps + step[:, None, None] * gap_delta)
            value = (
                regulariser
                + step * reg_slope
                + 0.5 * step.square() * reg_curve
                + 0.5 * cost * trial_slack.square().flatten(1).sum(1)
            )
            accepted = accepted | (value <= base + ARMIJO * step * slope)
            step = torch.where(accepted, step, step / 2)
        return torch.where(accepted, step, 0)

    def _check(self, checked, forced, wnorm, tol, resolution, max_stages):
        """Update the bounds of the ``checked`` layers, end the stages that are over (``forced``, or whose ℓ
        stopped growing) and grow C of the undecided. Returns the layers that are done."""
        live = self.live
        lower, upper = self._bounds(wnorm)
        better = checked & (lower > live["lower"])
        live["best"] = torch.where(better[:, None, None], live["weight"], live["best"])
        live["lower"] = torch.where(better, lower, live["lower"])
        live["upper"] = torch.where(checked, torch.minimum(upper, live["upper"]), live["upper"])
        growth = 1 + tol / 10
        plateau = checked & (live["lower"] > 0) & (live["lower"] <= live["check_lower"] * growth)
        plateau &= live["stage_iter"] >= 2 * CHECK_EVERY
        live["check_lower"] = torch.where(checked, live["lower"], live["check_lower"])
        ends = forced | plateau
        separable = live["lower"] >= (1 - tol) * live["upper"]
        hopeless = (live["lower"] == 0) & (live["upper"] < resolution * live["scale"])
        first_separator = checked & (live["lower"] > 0) & ~live["support_tried"]
        again = ends & (live["stage"] < SUPPORT_STAGES)
        separable |= self._polished((first_separator | again) & ~separable, tol)
        stalled = ends & (live["stage_lower"] > 0) & (live["lower"] <= live["stage_lower"] * growth)
        exhausted = ends & ~separable & ~hopeless & ~stalled & (live["stage"] + 1 >= max_stages)
        if exhausted.any():
            warnings.warn(
                f"hard margin: layers {live['layer'][exhausted].tolist()} ran out of stages; their margin "
                "is a lower bound that may be loose (or NaN: no separator found)",
                stacklevel=4,
            )
        done = checked & (separable | hopeless) | ends & (stalled | exhausted)
        grow = ends & ~done
        factor = torch.where(grow, STAGE_FACTOR, 1.0)
        live["grad"] = live["weight"] * self.penalised + factor[:, None, None] * (
            live["grad"] - live["weight"] * self.penalised
        )
        live["cost"] = live["cost"] * factor
        live["stage"] = live["stage"] + grow.long()
        live["stage_iter"] = torch.where(grow, 0, live["stage_iter"])
        live["stage_lower"] = torch.where(grow, live["lower"], live["stage_lower"])
        live["rho"] = torch.where(grow[:, None], 0, live["rho"])
        live["gamma"] = torch.where(grow, 1.0, live["gamma"])
        return done

    def _polished(self, tried, tol):
        """The layers ``tried`` (those with ℓ > 0) that the support-set method certifies (their best weights,
        ℓ and u replaced by its result's)."""
        live = self.live
        tried = tried & (live["lower"] > 0)
        live["support_tried"] |= tried
        certified = torch.zeros_like(tried)
        for index in tried.nonzero().flatten().tolist():
            exact = support_set_margin(
                live["features"][index], self.targets[0, :, 0], self.own.shape[-1], live["best"][index], self.bias, tol
            )
            if exact is not None:
                weight, live["lower"][index], live["upper"][index] = exact
                live["best"][index] = weight.to(live["best"].dtype)
                certified[index] = True
        return certified

    def _bounds(self, wnorm):
        """(ℓ, u) of the current iterates, per live layer: ℓ ≤ γ* ≤ u (module docstring)."""
        live = self.live
        gaps, slack = live["gaps"], live["slack"]
        lower = gaps.masked_fill(self.own, float("inf")).flatten(1).amin(1).clamp_min(0) / wnorm
        dual_mass = live["cost"] * slack.flatten(1).sum(1)
        data_grad = live["grad"] - self.penalised * live["weight"]
        spread = (self.penalised * data_grad).flatten(1).norm(dim=1)
        if self.bias:
            spread = spread + data_grad[:, -1].abs().sum(1) * live["radius"] / math.sqrt(2)
        upper = torch.where(dual_mass > 0, spread / dual_mass, float("inf"))
        return lower, upper


def _covariance_eigen(features, bias):
    """Eigenvalues and eigenvectors of Z̃ᵀZ̃/N per layer (Z̃: the features and, with a bias, a ones column).

    All-zero columns (a narrower layer's padding) are left out of the decomposition and get eigenvalue 0
    and their own unit vector, so that a layer is preconditioned the same whatever it is batched with.
    """
    if bias:
        features = torch.cat([features, features.new_ones(*features.shape[:2], 1)], dim=-1)
    num_layers, num_rows, width = features.shape
    values = torch.zeros(num_layers, width, dtype=torch.float64, device=features.device)
    vectors = torch.eye(width, dtype=torch.float64, device=features.device).repeat(num_layers, 1, 1)
    for layer, rows in enumerate(features):
        used = (rows != 0).any(0).nonzero().flatten()
        kept = rows[:, used].double()
        layer_values, layer_vectors = torch.linalg.eigh(kept.T @ kept / num_rows)
        values[layer, used] = layer_values.clamp_min(0)
        vectors[layer, used[:, None], used] = layer_vectors
    return values.to(features.dtype), vectors.to(features.dtype)


def _dot(a, b):
    """Per-layer inner product of two ``[L, ...]`` tensors."""
    return (a * b).flatten(1).sum(1)
