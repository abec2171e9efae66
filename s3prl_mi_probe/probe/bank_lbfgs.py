"""Full-batch L-BFGS for a linear probe bank whose train split is small: every probe at once, early stopping on dev.

On a few thousand rows, minibatch Adam spends a dozen epochs and a polish on what a quasi-Newton
method does in a few dozen full passes. Each iteration here is one pass over train (the regularised
objective and its closed-form gradient for every probe of every layer, one GEMM per chunk, as in
:func:`~s3prl_mi_probe.probe.bank_training.bank_objective`) and one over dev. Every probe has its own
L-BFGS memory (the last ``LBFGS_MEMORY`` steps), direction and step: a step of 1 along the
quasi-Newton direction (1/‖g‖ along −g at first) is taken where it decreases the objective enough
(Armijo's rule) and shortened by a quadratic fit where not, to be tried on the next pass, so that a
pass never waits for one probe's line search.

The iterates form each probe's path from its start (zero) towards the optimum of its regularised
train objective, the solution scikit-learn's ``LogisticRegression`` finds for that L2. Dev judges
every accepted iterate by the rule of :mod:`s3prl_mi_probe.probe.stopping` (an iteration is a round):
each probe keeps its best dev iterate and stops after ``patience`` iterations without a dev gain of
``tol_bits``, or when it has converged: its largest gradient entry below ``POLISH_TOL``, or its
objective moving (or set to move) by less than ``POLISH_TOL_SHARE * tol_bits`` in a step. Stopped
probes leave the GEMMs as in Adam's training.
"""

import torch
from tqdm import tqdm

from s3prl_mi_probe.metrics.bounds import LN2
from s3prl_mi_probe.probe.bank_training import (
    POLISH_TOL,
    POLISH_TOL_SHARE,
    DevRecord,
    bank_cross_entropy,
    bank_objective,
    flushed_denormals,
    running_cut,
    take_layers,
)

LBFGS_MEMORY = 8  # curvature pairs kept per probe
ARMIJO = 1e-4  # the share of the predicted decrease a step must achieve
FULL_BATCH_ROWS = 32_768  # train splits of at most this many rows train by L-BFGS (linear probes)
LBFGS_COPIES = 2 * LBFGS_MEMORY + 8  # parameter-sized tensors held: pairs, iterate, gradients, direction, best


def _flat(kernel, tensors):
    """Parameter-shaped tensors (kernel layout) as one ``[L', r, P]`` tensor: each probe's entries in a row."""
    return torch.cat([value.movedim(kernel.probe_axes[name], 1).flatten(2) for name, value in tensors.items()], 2)


def _unflat(kernel, flat, like):
    """The inverse of :func:`_flat`: ``flat [L', r, P]`` as tensors shaped like those of ``like``."""
    moved = {name: value.movedim(kernel.probe_axes[name], 1).shape for name, value in like.items()}
    parts = flat.split([shape[2:].numel() for shape in moved.values()], 2)
    return {name: part.reshape(moved[name]).movedim(1, kernel.probe_axes[name]) for name, part in zip(like, parts)}


def _dot(a, b):
    """Per probe, the inner product of flat tensors ``[L', r, P]``: ``[L', r]``."""
    return torch.linalg.vecdot(a, b)


def _two_loop(grads, pairs, rhos, scale):
    """The L-BFGS direction ``−H g`` per probe from the flat gradient ``[L', r, P]``, the flat pairs ``[(s, y)]``
    (oldest first), their ``1 / <s, y>`` ``rhos`` (0 skips a pair for that probe) and the initial Hessian scale
    ``<s, y> / <y, y>`` (all ``[L', r]``)."""
    q = grads.clone()
    alphas = []
    for (s, y), rho in zip(reversed(pairs), reversed(rhos)):
        alpha = rho * _dot(s, q)
        alphas.append(alpha)
        q.sub_(alpha.unsqueeze(2) * y)
    q.mul_(scale.unsqueeze(2))
    for (s, y), rho, alpha in zip(pairs, rhos, reversed(alphas)):
        q.add_((alpha - rho * _dot(y, q)).unsqueeze(2) * s)
    return q.neg_()


@torch.no_grad()
def lbfgs_bank(kernel, params, penalized, train, dev, l2, options, progress=False):
    """Full-batch L-BFGS over the bank from ``params`` (kernel layout), with early stopping per probe on dev CE.

    Arguments as :func:`~s3prl_mi_probe.probe.bank_training.train_bank`'s (``options.max_epochs`` caps
    the passes). Returns the best dev CE ``[L, K]`` (nats) and its parameters, ``best_epoch`` and
    ``epochs_run`` (passes over train at the best iterate and when the probe stopped, the pass at the
    start not counted; ``[L, K]`` floats) and ``converged`` (``[L, K]`` bool: the best iterate is the optimum).
    """
    num_layers, num_candidates = l2.shape
    chunk = options.chunk_rows
    objective, grads = bank_objective(kernel, penalized, params, train, l2, None, chunk)
    record = DevRecord(kernel, params, bank_cross_entropy(kernel, params, dev, None, chunk), options.tol_bits)
    running = torch.ones_like(l2, dtype=torch.bool)
    converged = torch.zeros_like(running)
    passes, last_move = torch.zeros_like(record.when), torch.zeros_like(record.when)
    # The L-BFGS state is flat, a row per probe (gradient, direction, pairs): one kernel per update.
    grads = _flat(kernel, grads)
    step, scale = _inverse_norm(grads), torch.ones_like(l2)
    move_tol = POLISH_TOL_SHARE * options.tol_bits * LN2
    live = torch.arange(num_layers, device=l2.device)
    slots = torch.arange(num_candidates, device=l2.device).expand(num_layers, -1)
    params, direction = {name: value.clone() for name, value in params.items()}, -grads
    history = [record.dev_ce.clone()]  # the best dev CE after each of the last passes
    pairs, rhos = [], []  # the last steps (s, y), flat and cut like the bank, oldest first; 1 / <s, y> as [L, K]
    bar = tqdm(total=options.max_epochs, desc="probes", unit="pass", disable=not progress, leave=False)
    with bar, flushed_denormals():
        for index in range(1, options.max_epochs + 1):
            layers = None if live.numel() == num_layers else live
            held = (live.unsqueeze(1), slots)
            alive = running[held]
            rate, before = step[held] * alive, objective[held]
            s = rate.unsqueeze(2) * direction
            moves = _unflat(kernel, s, params)
            trial = {name: value + moves[name] for name, value in params.items()}
            trial_objective, trial_grads = bank_objective(kernel, penalized, trial, train, l2[held], layers, chunk)
            trial_grads = _flat(kernel, trial_grads)
            trial_dev = bank_cross_entropy(kernel, trial, dev, layers, chunk)
            slope = _dot(grads, direction)
            accept = alive & (trial_objective <= before + ARMIJO * rate * slope)
            record.update(live, slots, accept, trial_dev, trial, index)
            history = (history + [record.dev_ce.clone()])[-options.patience - 1 :]
            y = trial_grads - grads
            curvature = _dot(s, y)
            valid = accept & (curvature > 0)
            rho = torch.zeros_like(l2)
            rho[held] = torch.where(valid, 1 / curvature.clamp_min(torch.finfo(curvature.dtype).tiny), 0.0)
            scale[held] = torch.where(valid, curvature / _dot(y, y).clamp_min(1e-30), scale[held])
            pairs, rhos = (pairs + [(s, y)])[-LBFGS_MEMORY:], (rhos + [rho])[-LBFGS_MEMORY:]
            params = {
                name: torch.where(kernel.expand(name, accept), trial[name], value) for name, value in params.items()
            }
            grads = torch.where(accept.unsqueeze(2), trial_grads, grads)
            objective[held] = torch.where(accept, trial_objective, before)
            passes[held] += alive.long()
            last_move[held] = torch.where(accept, index, last_move[held])
            settled = alive & (
                (accept & ((grads.abs().amax(2) < POLISH_TOL) | ((before - trial_objective).abs() < move_tol)))
                | (-rate * slope < move_tol)
            )
            converged[held] |= settled
            beaten = alive & (index >= options.patience)
            beaten &= _beaten(record.dev_ce, history, options.max_epochs - index)[held]
            running[held] = alive & ~settled & ~beaten & (record.stale[held] < options.patience)
            running[held] &= index < options.max_epochs
            turn = _two_loop(grads, pairs, [value[held] for value in rhos], scale[held])
            descent = _dot(grads, turn) < 0
            direction = torch.where(accept.unsqueeze(2), torch.where(descent.unsqueeze(2), turn, -grads), direction)
            # A rejected step is shortened where a parabola through its two objectives has its minimum.
            excess = (trial_objective - before - slope * rate).clamp_min(torch.finfo(rate.dtype).tiny)
            shorter = torch.minimum(torch.maximum(-slope * rate**2 / (2 * excess), rate / 10), rate / 2)
            step[held] = torch.where(accept, torch.where(descent, 1.0, _inverse_norm(grads)), shorter)
            bar.update(1)
            bar.set_postfix(layers=live.numel(), dev_bits=f"{float(record.dev_ce.mean()) / LN2:.3f}")
            if not running.any():
                break
            cut = running_cut(running[held])
            if cut is not None:
                keep, order = cut
                live, slots = live[keep], slots[keep].gather(1, order)
                params = kernel.take_candidates(take_layers(params, keep), order)
                grads, direction = _taken(grads, keep, order), _taken(direction, keep, order)
                pairs = [(_taken(s, keep, order), _taken(y, keep, order)) for s, y in pairs]
    return {
        "dev_ce": record.dev_ce,
        "best_epoch": record.when.double(),
        "epochs_run": passes.double(),
        "converged": converged & (record.when == last_move),
        "params": record.params,
    }


def _beaten(best_dev, history, passes_left):
    """``[L, K]``: the probes whose best dev CE trails their layer's best by more than they would gain in
    ``passes_left`` passes at their mean gain per pass over ``history`` (best dev CEs after each of the
    last passes, oldest first; none is beaten before that history spans ``patience`` passes)."""
    gain = (history[0] - history[-1]) / (len(history) - 1)
    return best_dev - best_dev.amin(1, keepdim=True) > gain * passes_left


def _inverse_norm(grads):
    """``1 / ‖g‖`` per probe ``[L', r]`` of the flat ``grads``, finite where the gradient is zero (a probe
    already at its optimum)."""
    return _dot(grads, grads).clamp_min(1e-30).rsqrt()


def _taken(flat, keep, order):
    """A flat ``[L', r, P]`` tensor cut to the layers ``keep`` and, per layer, the candidates ``order``."""
    kept = flat[keep]
    return kept.gather(1, order.unsqueeze(2).expand(-1, -1, kept.shape[2]))
