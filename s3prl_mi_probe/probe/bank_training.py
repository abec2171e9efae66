"""Training a probe bank: minibatch Adam with early stopping per probe, then the convex polish.

Every (layer, L2 strength) pair is an independent probe; a bank holds K of them for each of L layers
and trains them together, through a kernel (:mod:`s3prl_mi_probe.probe.bank_kernels`: closed-form
gradients for linear probes, autograd for MLPs). Adam's update is elementwise and each probe has its
own learning rate, so training the bank is exactly training each probe on its own.

Training runs in *rounds*: an epoch, or ``round_rows`` train rows when an epoch is longer, so that a
large corpus is judged on dev as often (in optimiser steps) as a small one. What a round yields, and
what dev judges, is the average of the probe's iterates over the round (less minibatch noise); every
probe keeps its best dev round. A probe's learning rate halves at the 1st, 3rd, 5th ... round in a
row in which its dev cross-entropy did not improve by at least ``tol_bits``; after ``patience`` such
rounds it stops. Stopped probes leave the batched GEMMs: a layer with none running leaves, and every
layer keeps as many candidates as the layer with the most running ones (those first).

Then the linear probes that can still win are *polished*: per layer, the candidate with the best
early-stopped dev cross-entropy and the one of the next stronger L2 (``POLISH_CANDIDATES``; the
converged probe of a weaker L2 fits train more closely than its early-stopped one and loses on dev).
From its early-stopped parameters, each takes full-batch gradient descent with a Barzilai–Borwein
step of its own towards the optimum of its regularised train objective (the solution scikit-learn
finds for that L2). It stops once its largest gradient entry is
below ``POLISH_TOL`` (scikit-learn's lbfgs criterion) or its objective moved by less than a tenth of
``tol_bits`` in a step. The full-batch objective and its gradient are summed over row chunks, so the
polish needs no more memory than a chunk.

Rows come as :mod:`s3prl_mi_probe.probe.rows` objects (resident or streamed): ``batches`` for an
epoch, ``chunks`` for full passes. L2 convention: a probe minimises
``mean_i CE_i (nats) + l2 / 2 * sum ||W||_F^2`` over its weight matrices (biases not penalised).
"""

import contextlib
import math
from dataclasses import dataclass

import torch
from tqdm import tqdm

from s3prl_mi_probe.metrics.bounds import LN2
from s3prl_mi_probe.probe.stopping import DEFAULT_TOL_BITS, ROUND_ROWS

ADAM_BETAS = (0.9, 0.999)
ADAM_EPS = 1e-8
POLISH_TOL = 1e-4
POLISH_MAX_STEPS = 30
POLISH_TOL_SHARE = 0.1  # the polish stops on objective moves below this share of the stopping tolerance
POLISH_CANDIDATES = 2  # per layer: the best early-stopped candidate on dev and the next stronger L2
DEFAULT_CHUNK_ROWS = 1024


@dataclass(frozen=True)
class TrainOptions:
    """How a bank trains: Adam's ``lr`` on minibatches of ``batch_size`` rows, rounds of at most
    ``round_rows`` rows, stopping after ``patience`` rounds without a dev gain of ``tol_bits`` or at
    ``max_epochs`` passes, dev evaluated in chunks of ``chunk_rows``."""

    max_epochs: int
    batch_size: int
    patience: int
    lr: float
    tol_bits: float = DEFAULT_TOL_BITS
    round_rows: int = ROUND_ROWS
    chunk_rows: int = DEFAULT_CHUNK_ROWS


@contextlib.contextmanager
def flushed_denormals():
    """Flush subnormal floats to zero meanwhile: Adam's decaying moments otherwise slow CPUs down ~10x."""
    torch.set_flush_denormal(True)
    try:
        yield
    finally:
        torch.set_flush_denormal(False)


def _layers_of(features, layers):
    """``features [L, B, D]`` cut to the layer indices ``layers`` (None: all)."""
    return features if layers is None else features.index_select(0, layers)


@torch.no_grad()
def bank_cross_entropy(kernel, params, rows, layers=None, chunk_rows=DEFAULT_CHUNK_ROWS):
    """Mean cross-entropy (nats) ``[L', K]`` of each probe on its layer of ``rows``; ``params`` hold the
    layers ``layers`` (indices into the rows' layers; None: all of them)."""
    total = None
    for features, labels in rows.chunks(chunk_rows):
        part = kernel.losses(params, _layers_of(features, layers), labels)
        total = part if total is None else total + part
    return total / rows.num_rows


def take_layers(tensors, keep):
    """Every tensor of the dict ``tensors`` (or tuples of them) cut to the layers ``keep`` (a bool ``[L']``)."""
    return {
        name: tuple(part[keep] for part in value) if isinstance(value, tuple) else value[keep]
        for name, value in tensors.items()
    }


def _rounds(rows, batch_size, round_rows, generator):
    """``(epoch, batches)`` per round: each epoch of ``rows`` split into equal rounds of about ``round_rows``."""
    num_batches = rows.num_batches(batch_size)
    per_round = math.ceil(num_batches / math.ceil(rows.num_rows / round_rows))
    epoch = 0
    while True:
        epoch += 1
        batches = rows.batches(generator, batch_size)
        for _ in range(math.ceil(num_batches / per_round)):
            yield epoch, (batch for _, batch in zip(range(per_round), batches))


class DevRecord:
    """Per probe ``[L, K]``: the best dev cross-entropy so far (``dev_ce``), its parameters (``params``,
    kernel layout) and when it was reached (``when``), and the stopping rule's count of evaluations in
    a row without progress (``stale``): a gain of at least ``tol_bits`` over the last such gain."""

    def __init__(self, kernel, params, dev_ce, tol_bits):
        self.kernel, self.tol = kernel, tol_bits * LN2
        self.params = {name: value.clone() for name, value in params.items()}
        self.dev_ce, self.anchor = dev_ce.clone(), dev_ce.clone()
        self.when = torch.zeros_like(dev_ce, dtype=torch.long)
        self.stale = torch.zeros_like(self.when)

    def update(self, live, slots, judged, dev_ce, params, when):
        """Record the dev cross-entropies ``dev_ce [L', r]`` of ``params`` (kernel layout, the probes at
        ``(live, slots)``) for the probes ``judged``; ``when`` is kept with a new best. Returns which made progress."""
        held = (live.unsqueeze(1), slots)
        improved = judged & (dev_ce < self.dev_ce[held])
        layers_best = {name: value[live] for name, value in self.params.items()}
        kept = self.kernel.take_candidates(layers_best, slots)
        kept = {name: torch.where(self.kernel.expand(name, improved), params[name], kept[name]) for name in kept}
        for name, value in self.kernel.put_candidates(layers_best, slots, kept).items():
            self.params[name][live] = value
        self.dev_ce[held] = torch.where(improved, dev_ce, self.dev_ce[held])
        self.when[held] = torch.where(improved, when, self.when[held])
        significant = judged & (dev_ce < self.anchor[held] - self.tol)
        self.anchor[held] = torch.where(significant, dev_ce, self.anchor[held])
        self.stale[held] = torch.where(significant, 0, self.stale[held] + judged.long())
        return significant


def train_bank(kernel, params, penalized, train, dev, l2, generator, options, progress=False):
    """Minibatch Adam over the bank with per-probe learning rates and early stopping on dev CE.

    ``params`` are the kernel-layout starting parameters, ``penalized`` the names L2 covers, ``l2``
    ``[L, K]``, ``train`` and ``dev`` rows objects, ``options`` a :class:`TrainOptions`. Returns the best
    dev CE ``[L, K]`` (nats), the passes over train at the best round and when each probe stopped
    (``[L, K]`` floats), and the parameters of the best round.
    """
    num_layers = l2.shape[0]
    rounds_per_epoch = math.ceil(train.num_rows / options.round_rows)
    start_dev = bank_cross_entropy(kernel, params, dev, None, options.chunk_rows)
    record = DevRecord(kernel, params, start_dev, options.tol_bits)
    rounds_run = torch.zeros_like(record.when)
    running = torch.ones_like(l2, dtype=torch.bool)
    probe_lr = torch.full_like(l2, options.lr)
    live = torch.arange(num_layers, device=l2.device)
    slots = torch.arange(l2.shape[1], device=l2.device).expand(num_layers, -1)
    params = {name: value.clone() for name, value in params.items()}
    moments = {name: (torch.zeros_like(value), torch.zeros_like(value)) for name, value in params.items()}
    step = 0
    max_rounds = options.max_epochs * rounds_per_epoch
    bar = tqdm(total=max_rounds, desc="probes", unit="round", disable=not progress, leave=False)
    with bar, flushed_denormals():  # an interrupt clears the bar before the command's last line
        for index, (epoch, batches) in enumerate(_rounds(train, options.batch_size, options.round_rows, generator), 1):
            all_live = live.numel() == num_layers
            held = (live.unsqueeze(1), slots)  # the probes in the GEMMs: [L', r] per-probe entries
            alive, held_l2 = running[held], l2[held]
            held_lr = probe_lr[held] * alive
            average = {name: torch.zeros_like(value) for name, value in params.items()}
            count = 0
            for features, targets in batches:
                grads, _ = kernel.gradients(params, _layers_of(features, None if all_live else live), targets)
                step += 1
                _add_penalty(kernel, grads, params, penalized, held_l2, 1 / targets.numel())
                _adam_step(kernel, params, grads, moments, held_lr, step)
                for name, value in params.items():
                    average[name].add_(value)
                count += 1
            average = {name: value / count for name, value in average.items()}
            dev_ce = bank_cross_entropy(kernel, average, dev, None if all_live else live, options.chunk_rows)
            significant = record.update(live, slots, alive, dev_ce, average, index)
            stale = record.stale[held]
            halve = alive & ~significant & (stale % 2 == 1)
            probe_lr[held] = torch.where(halve, probe_lr[held] / 2, probe_lr[held])
            running[held] = alive & (stale < options.patience) & (index < max_rounds)
            rounds_run[held] = torch.where(alive, index, rounds_run[held])
            live, slots, params, moments = running_only(kernel, running[held], live, slots, params, moments)
            bar.update(1)
            bar.set_postfix(epoch=epoch, layers=live.numel(), dev_bits=f"{float(record.dev_ce.mean()) / LN2:.3f}")
            if live.numel() == 0:
                break
    return {
        "dev_ce": record.dev_ce,
        "best_epoch": record.when.double() / rounds_per_epoch,
        "epochs_run": rounds_run.double() / rounds_per_epoch,
        "params": record.params,
    }


def running_only(kernel, still, live, slots, params, state):
    """The layers ``live``, candidate positions ``slots [L', r]``, parameters and per-parameter ``state`` (a
    tuple of parameter-shaped tensors per name: Adam's moments) cut to the probes still running (``still
    [L', r]``): layers with none leave, and every layer keeps as many candidates as the busiest one has
    running, running ones first (the others no longer move)."""
    cut = running_cut(still)
    if cut is None:
        return live, slots, params, state
    keep, order = cut
    params, state = take_layers(params, keep), take_layers(state, keep)
    state = {
        name: tuple(kernel.take_candidates({name: part}, order)[name] for part in parts)
        for name, parts in state.items()
    }
    return live[keep], slots[keep].gather(1, order), kernel.take_candidates(params, order), state


def running_cut(still):
    """``(keep [L'], order [L'', width])`` for :func:`running_only`: the layers with a probe still running
    (``still [L', r]``) and, per kept layer, the candidate positions kept, running ones first; None when
    nothing is cut."""
    keep = still.any(1)
    width = int(still.sum(1).max())
    if keep.all() and width == still.shape[1]:
        return None
    return keep, still[keep].long().argsort(dim=1, descending=True, stable=True)[:, :width]


def _add_penalty(kernel, grads, params, penalized, l2, scale):
    """``grads`` of summed losses scaled by ``scale`` (to a mean), plus the L2 term's gradient, in place."""
    for name, grad in grads.items():
        grad.mul_(scale)
        if name in penalized:
            grad.add_(kernel.expand(name, l2) * params[name])


@torch.no_grad()
def _adam_step(kernel, params, grads, moments, probe_lr, step):
    """One Adam update in place, with a learning rate per probe ``[L, K]`` (zero: the probe stays put)."""
    beta1, beta2 = ADAM_BETAS
    for name, value in params.items():
        grad = grads[name]
        mean, sq = moments[name]
        mean.lerp_(grad, 1 - beta1)
        sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
        denom = (sq / (1 - beta2**step)).sqrt_().add_(ADAM_EPS)
        value.addcdiv_(mean * kernel.expand(name, probe_lr / (1 - beta1**step)), denom, value=-1)


@torch.no_grad()
def bank_objective(kernel, penalized, params, rows, l2, layers=None, chunk_rows=DEFAULT_CHUNK_ROWS):
    """Each probe's regularised train objective ``[L', K]`` and its gradient (kernel layout), full batch.

    ``params`` hold the layers ``layers`` of the rows (None: all). The cross-entropy and its gradient
    are accumulated chunk by chunk.
    """
    total, grads = None, None
    for features, labels in rows.chunks(chunk_rows):
        chunk_grads, losses = kernel.gradients(params, _layers_of(features, layers), labels, with_losses=True)
        if grads is None:
            total, grads = losses, chunk_grads
        else:
            total += losses
            for name, grad in chunk_grads.items():
                grads[name] += grad
    _add_penalty(kernel, grads, params, penalized, l2, 1 / rows.num_rows)
    penalty = sum(kernel.probe_sums(name, params[name] ** 2) for name in penalized)
    return total / rows.num_rows + l2 * penalty / 2, grads


@torch.no_grad()
def polish_bank(
    kernel, penalized, start, rows, l2, tol_bits, max_steps, chunk_rows=DEFAULT_CHUNK_ROWS, grad_tol=POLISH_TOL
):
    """Full-batch gradient descent from ``start`` with a Barzilai–Borwein step per probe, to each probe's optimum.

    A probe stops once its largest gradient entry is below ``grad_tol``, once its objective moved
    by less than ``POLISH_TOL_SHARE * tol_bits`` in a step, or after ``max_steps``. Returns the
    parameters (kernel layout) and the steps (full passes over ``rows``) each probe took ``[L, K]``.
    """
    polished = {name: value.clone() for name, value in start.items()}
    steps = torch.zeros_like(l2, dtype=torch.long)
    live = torch.arange(l2.shape[0], device=l2.device)
    running = torch.ones_like(l2, dtype=torch.bool)
    params = {name: value.clone() for name, value in start.items()}
    objective, grads = bank_objective(kernel, penalized, params, rows, l2, None, chunk_rows)
    rate, move_tol = 1 / (1 + l2), POLISH_TOL_SHARE * tol_bits * LN2
    for _ in range(max_steps):
        largest = torch.stack([kernel.probe_sums(name, grad.abs(), torch.amax) for name, grad in grads.items()])
        running[live] &= largest.amax(0) >= grad_tol
        keep = running[live].any(1)
        if not keep.all():
            for name, value in params.items():
                polished[name][live[~keep]] = value[~keep]
            live, rate, objective = live[keep], rate[keep], objective[keep]
            params, grads = take_layers(params, keep), take_layers(grads, keep)
        if live.numel() == 0:
            break
        alive = running[live]
        moves = {name: -kernel.expand(name, rate * alive) * grad for name, grad in grads.items()}
        params = {name: value + moves[name] for name, value in params.items()}
        new_objective, new_grads = bank_objective(kernel, penalized, params, rows, l2[live], live, chunk_rows)
        changes = {name: new_grads[name] - grads[name] for name in grads}
        curvature = kernel.probe_dot(moves, changes)
        rate = torch.where(curvature > 0, kernel.probe_dot(moves, moves) / curvature, rate / 2).clamp(1e-4, 1e4)
        steps[live] += alive.long()
        settled = alive & ((objective - new_objective).abs() < move_tol)
        running[live] &= ~settled
        objective, grads = new_objective, new_grads
    for name, value in params.items():
        polished[name][live] = value
    return polished, steps


def polish_contenders(dev_ce, l2, count=POLISH_CANDIDATES):
    """Per layer, the positions along K ``[L, m]`` of the candidates to polish: the one with the lowest
    early-stopped dev CE and the next stronger L2s (the strongest ``m`` when it is among them)."""
    count = min(count, l2.shape[1])
    order = l2.argsort(1)
    rank = (order == dev_ce.argmin(1, keepdim=True)).long().argmax(1, keepdim=True)
    first = rank.clamp(max=l2.shape[1] - count)
    return order.gather(1, first + torch.arange(count, device=l2.device))


@torch.no_grad()
def polish_best(kernel, penalized, best, train, dev, l2, tol_bits, max_steps, chunk_rows=DEFAULT_CHUNK_ROWS):
    """:func:`polish_bank` on the :func:`polish_contenders` of ``best`` (what :func:`train_bank` returned).

    Returns the polished parameters (kernel layout, all K candidates: the others keep their
    early-stopped ones), their dev CE ``[L, K]`` (nats; infinite where not polished) and the passes
    over train the polish took ``[L, K]`` (one to start plus one per step; zero where not polished).
    """
    index = polish_contenders(best["dev_ce"], l2)
    polished, steps = polish_bank(
        kernel,
        penalized,
        kernel.take_candidates(best["params"], index),
        train,
        l2.gather(1, index),
        tol_bits,
        max_steps,
        chunk_rows,
    )
    dev_ce = bank_cross_entropy(kernel, polished, dev, None, chunk_rows)
    return {
        "params": kernel.put_candidates(best["params"], index, polished),
        "dev_ce": torch.full_like(best["dev_ce"], math.inf).scatter(1, index, dev_ce),
        "passes": torch.zeros_like(best["epochs_run"]).scatter(1, index, (1 + steps).to(best["epochs_run"].dtype)),
    }
