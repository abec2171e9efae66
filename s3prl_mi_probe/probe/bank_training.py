"""Training a probe bank: minibatch Adam with early stopping per probe, then the convex polish.

Every (layer, L2 strength) pair is an independent probe; all of them sit in one *probe bank* (a
probe module whose leading dimension indexes the pairs) and train together with minibatch Adam.
Adam's update is elementwise, so training the bank on the sum of the probes' losses is exactly
training each probe on its own. Each probe has its own learning rate, halved at the 1st, 3rd, 5th
... epoch in a row without a dev improvement; it stops after ``patience`` such epochs and leaves
the bank. What an epoch yields, and what dev judges, is the average of the probe's iterates over
that epoch (less minibatch noise); every probe keeps its best dev epoch.

Then every linear probe is *polished*: from its early-stopped parameters, full-batch gradient
descent with a Barzilai–Borwein step of its own runs to the optimum of its regularised train objective
(the solution scikit-learn finds for that L2). The full-batch objective and its gradient are summed
over row chunks, so the polish needs no more memory than a chunk.

Rows come as :mod:`s3prl_mi_probe.probe.rows` objects (resident or streamed): ``batches`` for an
epoch, ``chunks`` for full passes. L2 convention: a probe minimises
``mean_i CE_i (nats) + l2 / 2 * sum ||W||_F^2`` over its weight matrices (biases not penalised).
"""

import contextlib

import torch
import torch.nn.functional as F
from torch.func import functional_call
from tqdm import tqdm

from s3prl_mi_probe.metrics.bounds import LN2

ADAM_BETAS = (0.9, 0.999)
ADAM_EPS = 1e-8
POLISH_TOL = 1e-4
POLISH_MAX_STEPS = 30
DEFAULT_CHUNK_ROWS = 1024


@contextlib.contextmanager
def flushed_denormals():
    """Flush subnormal floats to zero meanwhile: Adam's decaying moments otherwise slow CPUs down ~10x."""
    torch.set_flush_denormal(True)
    try:
        yield
    finally:
        torch.set_flush_denormal(False)


def layer_groups(layer_of):
    """``[(layer, positions)]``: each block layer some probe reads, and its probes' positions in ``layer_of``."""
    return [(layer, (layer_of == layer).nonzero().squeeze(1)) for layer in layer_of.unique().tolist()]


def bank_losses(bank, params, features, labels, groups):
    """Summed cross-entropy (nats) ``[P]`` of each probe on its layer of ``features [L, B, D]``, labels ``[B]``."""
    total = None
    for layer, members in groups:
        subset = {name: value[members] for name, value in params.items()}
        logits = functional_call(bank, subset, (features[layer].expand(members.numel(), -1, -1),))
        loss = F.cross_entropy(
            logits.reshape(-1, logits.shape[-1]), labels.repeat(members.numel()), reduction="none"
        ).view(members.numel(), -1)
        if total is None:
            total = loss.new_zeros(sum(group.numel() for _, group in groups))
        total = total.index_add(0, members, loss.sum(1))
    return total


def bank_cross_entropy(bank, params, rows, layer_of, chunk_rows=DEFAULT_CHUNK_ROWS):
    """Mean cross-entropy (nats) ``[P]`` of each probe of the bank on its layer of ``rows`` (in chunks)."""
    groups = layer_groups(layer_of)
    total = torch.zeros(layer_of.numel(), device=layer_of.device)
    for features, labels in rows.chunks(chunk_rows):
        total += bank_losses(bank, params, features, labels, groups)
    return total / rows.num_rows


def train_bank(
    bank, kind, train, dev, layer_of, l2, generator, max_epochs, batch_size, patience, lr, chunk_rows, progress
):
    """Minibatch Adam over the bank with per-probe learning rates and early stopping on dev CE.

    ``train`` and ``dev`` are rows objects. Returns the best dev CE ``[P]`` (nats), best epoch ``[P]``
    (1-based) and parameters at that epoch.
    """
    num_probes = layer_of.numel()
    best_params = {name: value.detach().clone() for name, value in bank.named_parameters()}
    best_dev = bank_cross_entropy(bank, best_params, dev, layer_of, chunk_rows)
    best_epoch = torch.zeros(num_probes, dtype=torch.long)
    active = torch.arange(num_probes, device=layer_of.device)
    groups = layer_groups(layer_of)
    params = {name: value.clone().requires_grad_() for name, value in best_params.items()}
    moments = {name: (torch.zeros_like(value), torch.zeros_like(value)) for name, value in params.items()}
    probe_lr = torch.full((num_probes,), lr, device=layer_of.device)
    stale = torch.zeros(num_probes, dtype=torch.long, device=layer_of.device)
    step = 0
    epochs = tqdm(range(1, max_epochs + 1), desc="probes", unit="epoch", disable=not progress, leave=False)
    with flushed_denormals():
        for epoch in epochs:
            num_batches = train.num_batches(batch_size)
            average = {name: torch.zeros_like(value) for name, value in params.items()}
            for features, targets in train.batches(generator, batch_size):
                loss = bank_losses(bank, params, features, targets, groups)
                penalty = sum((params[name] ** 2).flatten(1).sum(1) for name in kind.penalized)
                total = loss.sum() / targets.numel() + (l2[active] * penalty).sum() / 2
                grads = torch.autograd.grad(total, list(params.values()))
                step += 1
                _adam_step(params, grads, moments, probe_lr[active], step)
                with torch.no_grad():
                    for name, value in params.items():
                        average[name].add_(value, alpha=1 / num_batches)
            with torch.no_grad():
                dev_ce = bank_cross_entropy(bank, average, dev, layer_of[active], chunk_rows)
                improved = dev_ce < best_dev[active]
                better = active[improved]
                best_dev[better] = dev_ce[improved]
                best_epoch[better.cpu()] = epoch
                for name, value in average.items():
                    best_params[name][better] = value[improved]
                stale[active] = torch.where(improved, 0, stale[active] + 1)
                probe_lr[active[stale[active] % 2 == 1]] /= 2
                keep = stale[active] < patience
                if not keep.all():
                    active = active[keep]
                    groups = layer_groups(layer_of[active])
                    params = {name: value[keep].detach().requires_grad_() for name, value in params.items()}
                    moments = {name: (m[keep], v[keep]) for name, (m, v) in moments.items()}
            epochs.set_postfix(active=active.numel(), dev_bits=f"{float(best_dev.mean()) / LN2:.3f}")
            if active.numel() == 0:
                break
    return {"dev_ce": best_dev, "epoch": best_epoch, "params": best_params}


@torch.no_grad()
def _adam_step(params, grads, moments, probe_lr, step):
    """One Adam update in place, with a learning rate per probe (the leading dimension)."""
    beta1, beta2 = ADAM_BETAS
    for (name, value), grad in zip(params.items(), grads):
        mean, sq = moments[name]
        mean.lerp_(grad, 1 - beta1)
        sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
        denom = (sq / (1 - beta2**step)).sqrt_().add_(ADAM_EPS)
        scale = (probe_lr / (1 - beta1**step)).view(-1, *[1] * (value.dim() - 1))
        value.addcdiv_(mean * scale, denom, value=-1)


def bank_objective(bank, kind, params, rows, layer_of, l2, chunk_rows=DEFAULT_CHUNK_ROWS):
    """Each probe's regularised train objective ``[P]`` and its gradient (a dict like ``params``), full batch.

    The cross-entropy and its gradient are accumulated chunk by chunk, so no graph outlives a chunk.
    """
    params = {name: value.detach().requires_grad_() for name, value in params.items()}
    groups = layer_groups(layer_of)
    total = torch.zeros(layer_of.numel(), device=layer_of.device)
    grads = {name: torch.zeros_like(value) for name, value in params.items()}
    for features, labels in rows.chunks(chunk_rows):
        loss = bank_losses(bank, params, features, labels, groups)
        for grad, chunk_grad in zip(grads.values(), torch.autograd.grad(loss.sum(), list(params.values()))):
            grad += chunk_grad
        total += loss.detach()
    penalty = sum((params[name] ** 2).flatten(1).sum(1) for name in kind.penalized)
    penalty_grads = torch.autograd.grad((l2 * penalty).sum() / 2, [params[name] for name in kind.penalized])
    for name, penalty_grad in zip(kind.penalized, penalty_grads):
        grads[name] = grads[name] / rows.num_rows + penalty_grad
    for name in grads:
        if name not in kind.penalized:
            grads[name] = grads[name] / rows.num_rows
    objective = total / rows.num_rows + l2 * penalty.detach() / 2
    return objective, grads


def _per_probe_dot(a, b):
    """``sum over parameters of <a[p], b[p]>`` for every probe p: ``[P]``."""
    return sum((a[name] * b[name]).flatten(1).sum(1) for name in a)


@torch.no_grad()
def polish_bank(bank, kind, start, rows, layer_of, l2, tol, max_steps, chunk_rows=DEFAULT_CHUNK_ROWS):
    """Full-batch gradient descent from ``start`` with a Barzilai–Borwein step per probe, to each probe's optimum.

    A probe stops once its largest gradient entry is below ``tol`` (scikit-learn's lbfgs criterion) or
    after ``max_steps``. Returns the parameters (a dict like ``start``) and the steps each probe took ``[P]``.
    """
    polished = {name: value.clone() for name, value in start.items()}
    steps = torch.zeros(layer_of.numel(), dtype=torch.long, device=layer_of.device)
    active = torch.arange(layer_of.numel(), device=layer_of.device)
    params = {name: value.clone() for name, value in start.items()}
    with torch.enable_grad():
        _, grads = bank_objective(bank, kind, params, rows, layer_of, l2, chunk_rows)
    rate = 1 / (1 + l2)
    for _ in range(max_steps):
        largest = torch.stack([grad.abs().flatten(1).amax(1) for grad in grads.values()]).amax(0)
        done = largest < tol
        if done.any():
            for name, value in params.items():
                polished[name][active[done]] = value[done]
            keep = ~done
            active, rate = active[keep], rate[keep]
            params = {name: value[keep] for name, value in params.items()}
            grads = {name: value[keep] for name, value in grads.items()}
        if active.numel() == 0:
            break
        moves = {name: -_broadcast(rate, grad) * grad for name, grad in grads.items()}
        params = {name: value + moves[name] for name, value in params.items()}
        with torch.enable_grad():
            _, new_grads = bank_objective(bank, kind, params, rows, layer_of[active], l2[active], chunk_rows)
        changes = {name: new_grads[name] - grads[name] for name in grads}
        curvature = _per_probe_dot(moves, changes)
        rate = torch.where(curvature > 0, _per_probe_dot(moves, moves) / curvature, rate / 2).clamp(1e-4, 1e4)
        grads = new_grads
        steps[active] += 1
    for name, value in params.items():
        polished[name][active] = value
    return polished, steps


def _broadcast(per_probe, like):
    """``per_probe [P]`` viewed to broadcast against ``like [P, ...]``."""
    return per_probe.view(-1, *[1] * (like.dim() - 1))
