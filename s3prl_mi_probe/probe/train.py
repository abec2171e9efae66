"""Fit one probe per layer on feature arrays and report held-out Barber–Agakov bounds (docs/method.md, "The bound").

Every (layer, L2 strength) pair is an independent probe; all of them sit in one *probe bank* (a
probe module whose leading dimension indexes the pairs) and train together with minibatch Adam.
Adam's update is elementwise, so training the bank on the sum of the probes' losses is exactly
training each probe on its own. Each probe has its own learning rate, halved at the 1st, 3rd, 5th
... epoch in a row without a dev improvement; it stops after ``patience`` such epochs and leaves
the bank. What an epoch yields, and what dev judges, is the average of the probe's iterates over
that epoch (less minibatch noise); every probe keeps its best dev epoch.

Then every linear probe is *polished*: from its early-stopped parameters, full-batch gradient
descent with a Barzilai–Borwein step of its own runs to the optimum of its regularised train objective
(the solution scikit-learn finds for that L2). MLP probes have no such optimum to run to and keep their
early-stopped fit. Per layer, the candidate with the lowest dev cross-entropy wins, over all L2
strengths and the fits there are ("early_stop", and for linear probes "converged").

L2 convention: a probe minimises ``mean_i CE_i (nats) + l2 / 2 * sum ||W||_F^2`` over its weight
matrices (biases not penalised). For the linear probe this is scikit-learn's ``LogisticRegression``
objective divided by ``C * N``: ``C = 1 / (l2 * N)``.
"""

import contextlib
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch.func import functional_call
from tqdm import tqdm

from s3prl_mi_probe.metrics.bounds import LN2, cross_entropy_bits
from s3prl_mi_probe.metrics.layer_metrics import layer_metrics
from s3prl_mi_probe.probe.arrays import carve_dev, encode_labels, stack_layers
from s3prl_mi_probe.probe.kinds import DEFAULT_HIDDEN_DIM, build_probe_bank, probe_kind
from s3prl_mi_probe.probe.standardize import RunningStandardizer

DEFAULT_L2_GRID = (1e-5, 1e-4, 1e-3, 1e-2, 1e-1, 1.0)
EVAL_CHUNK_ROWS = 1024
ADAM_BETAS = (0.9, 0.999)
ADAM_EPS = 1e-8
POLISH_TOL = 1e-4
POLISH_MAX_STEPS = 30
FITS = ("early_stop", "converged")


@dataclass
class FittedProbes:
    """Per-layer probes chosen on dev: the probe, the train standardizer, and what was chosen.

    ``epochs`` counts the Adam epochs of the chosen probe; ``fit`` says whether it won early-stopped
    or converged (see the module docstring); ``kind`` names the probe kind (a key of ``PROBE_KINDS``).
    """

    probe: torch.nn.Module
    standardizer: RunningStandardizer
    classes: np.ndarray
    l2: list
    epochs: list
    fit: list
    kind: str = "linear"

    @torch.no_grad()
    def evaluate(self, features, labels, split):
        """One metric row per layer (``layer_metrics`` plus layer, split, probe, l2, epochs, fit, dropped_unseen).

        Rows whose label was not among the training classes are dropped and counted.
        """
        targets, known = encode_labels(labels, self.classes)
        device = next(self.probe.parameters()).device
        inputs = self.standardizer(stack_layers(features)[:, torch.as_tensor(known)].to(device))
        targets = targets.to(device)
        logits = self.probe(inputs)
        rows = layer_metrics(
            cross_entropy_bits(logits, targets).cpu(),
            (logits.argmax(-1) == targets).cpu(),
            self.probe.margins(inputs, targets).cpu(),
            targets.cpu().numpy(),
            len(self.classes),
        )
        extra = {"split": split, "probe": self.kind, "dropped_unseen": int((~known).sum())}
        return [
            {"layer": layer, **extra, **row, "l2": self.l2[layer], "epochs": self.epochs[layer], "fit": self.fit[layer]}
            for layer, row in enumerate(rows)
        ]


@contextlib.contextmanager
def flushed_denormals():
    """Flush subnormal floats to zero meanwhile: Adam's decaying moments otherwise slow CPUs down ~10x."""
    torch.set_flush_denormal(True)
    try:
        yield
    finally:
        torch.set_flush_denormal(False)


def _layer_groups(layer_of):
    """``(layer, positions)`` for each layer some probe of the bank reads, its probes' positions in ``layer_of``."""
    for layer in layer_of.unique().tolist():
        yield layer, (layer_of == layer).nonzero().squeeze(1)


def _bank_losses(bank, params, features, labels, layer_of, chunk_rows):
    """Summed cross-entropy (nats) ``[P]`` of each probe on its layer, in row chunks, without copying features."""
    total = torch.zeros(layer_of.numel(), device=features.device)
    for layer, members in _layer_groups(layer_of):
        subset = {name: value[members] for name, value in params.items()}
        for start in range(0, labels.numel(), chunk_rows):
            rows = slice(start, start + chunk_rows)
            logits = functional_call(bank, subset, (features[layer, rows].expand(members.numel(), -1, -1),))
            loss = F.cross_entropy(
                logits.reshape(-1, logits.shape[-1]), labels[rows].repeat(members.numel()), reduction="none"
            )
            total = total.index_add(0, members, loss.view(members.numel(), -1).sum(1))
    return total


def bank_cross_entropy(bank, params, features, labels, layer_of, chunk_rows=EVAL_CHUNK_ROWS):
    """Mean cross-entropy (nats) of each probe of the bank ``[P]`` on its layer's ``features [L, N, D]``."""
    return _bank_losses(bank, params, features, labels, layer_of, chunk_rows) / labels.numel()


def fit_layer_probes(
    train,
    dev=None,
    probe="linear",
    seed=0,
    device="cpu",
    groups=None,
    l2_grid=None,
    max_epochs=100,
    batch_size=256,
    patience=6,
    lr=1e-2,
    progress=True,
    classes=None,
    hidden_dim=DEFAULT_HIDDEN_DIM,
):
    """Fit one probe per layer on ``train = (X, y)``, choosing L2, and early-stopped or converged, per layer on dev CE.

    ``X`` is ``[L, N, D]`` or a list of L ``[N, D_l]`` arrays (zero-padded to the widest), ``y`` integer
    labels ``[N]``. ``dev`` is ``(X, y)`` or, when None, carved from train: whole ``groups`` (one id per
    train row) when given, else random rows, about 10% either way, seeded. Dev rows of classes unseen in
    train are dropped. ``classes`` fixes the label set the probes choose among (default: the labels
    seen in train; MDL needs all of them while training on a prefix). ``probe`` is a key of
    ``PROBE_KINDS``; ``hidden_dim`` is the width of MLP probes. Returns a :class:`FittedProbes`.
    """
    kind = probe_kind(probe)
    generator = torch.Generator().manual_seed(seed)
    features, labels = stack_layers(train[0]), np.asarray(train[1])
    if dev is None:
        dev_rows = carve_dev(labels.size, groups, seed)
        dev = (features[:, torch.as_tensor(dev_rows)], labels[dev_rows])
        features, labels = features[:, torch.as_tensor(~dev_rows)], labels[~dev_rows]
    classes = np.unique(labels) if classes is None else np.unique(np.asarray(classes))
    if not np.isin(labels, classes).all():
        raise ValueError("train labels outside the given classes")
    num_layers, _, dim = features.shape
    dev_features, dev_labels = stack_layers(dev[0]), dev[1]
    dev_targets, dev_known = encode_labels(dev_labels, classes)
    dev_features = dev_features[:, torch.as_tensor(dev_known)]
    if dev_features.shape[2] != dim:
        raise ValueError(f"dev features are {dev_features.shape[2]} wide, train features {dim}")

    standardizer = RunningStandardizer(num_layers, dim).to(device)
    features = features.to(device)
    standardizer.update(features)
    features = standardizer(features)
    dev_features = standardizer(dev_features.to(device))
    targets = torch.as_tensor(encode_labels(labels, classes)[0], device=device)
    dev_targets = dev_targets.to(device)

    l2_grid = [float(l2) for l2 in (DEFAULT_L2_GRID if l2_grid is None else l2_grid)]
    num_candidates = len(l2_grid)
    bank = build_probe_bank(probe, num_layers * num_candidates, dim, len(classes), hidden_dim, seed).to(device)
    layer_of = torch.arange(num_layers, device=device).repeat_interleave(num_candidates)
    l2 = torch.tensor(l2_grid, device=device).repeat(num_layers)
    best = _train_bank(
        bank,
        kind,
        features,
        targets,
        dev_features,
        dev_targets,
        layer_of,
        l2,
        generator,
        max_epochs,
        batch_size,
        patience,
        lr,
        progress,
    )
    fits, fits_dev_ce = [best["params"]], [best["dev_ce"]]
    if kind.convex:
        with flushed_denormals():
            converged, _ = _polish_bank(
                bank, kind, best["params"], features, targets, layer_of, l2, POLISH_TOL, POLISH_MAX_STEPS
            )
            fits_dev_ce.append(bank_cross_entropy(bank, converged, dev_features, dev_targets, layer_of))
        fits.append(converged)
    dev_ce = torch.stack(fits_dev_ce).view(len(fits), num_layers, num_candidates)
    chosen = dev_ce.transpose(0, 1).reshape(num_layers, -1).argmin(1)
    fit, chosen = chosen // num_candidates, chosen % num_candidates
    picks = torch.arange(num_layers, device=device) * num_candidates + chosen
    candidates = {name: torch.stack([params[name] for params in fits]) for name in best["params"]}
    fitted = build_probe_bank(probe, num_layers, dim, len(classes), hidden_dim, seed).to(device)
    fitted.load_state_dict({name: value[fit, picks] for name, value in candidates.items()})
    return FittedProbes(
        probe=fitted,
        standardizer=standardizer,
        classes=classes,
        l2=[l2_grid[k] for k in chosen.tolist()],
        epochs=[int(best["epoch"][p]) for p in picks.cpu()],
        fit=[FITS[k] for k in fit.tolist()],
        kind=probe,
    )


def _train_bank(
    bank,
    kind,
    features,
    targets,
    dev_features,
    dev_targets,
    layer_of,
    l2,
    generator,
    max_epochs,
    batch_size,
    patience,
    lr,
    progress,
):
    """Minibatch Adam over the bank with per-probe learning rates and early stopping on dev CE.

    Returns the best dev CE ``[P]`` (nats), best epoch ``[P]`` (1-based) and parameters at that epoch.
    """
    num_probes, num_rows = layer_of.numel(), targets.numel()
    best_params = {name: value.detach().clone() for name, value in bank.named_parameters()}
    best_dev = bank_cross_entropy(bank, best_params, dev_features, dev_targets, layer_of)
    best_epoch = torch.zeros(num_probes, dtype=torch.long)
    active = torch.arange(num_probes, device=layer_of.device)
    params = {name: value.clone().requires_grad_() for name, value in best_params.items()}
    moments = {name: (torch.zeros_like(value), torch.zeros_like(value)) for name, value in params.items()}
    probe_lr = torch.full((num_probes,), lr, device=layer_of.device)
    stale = torch.zeros(num_probes, dtype=torch.long, device=layer_of.device)
    step = 0
    epochs = tqdm(range(1, max_epochs + 1), desc="probes", unit="epoch", disable=not progress, leave=False)
    with flushed_denormals():
        for epoch in epochs:
            order = torch.randperm(num_rows, generator=generator).to(targets.device)
            starts = range(0, num_rows, batch_size)
            average = {name: torch.zeros_like(value) for name, value in params.items()}
            for start in starts:
                rows = order[start : start + batch_size]
                loss = _bank_losses(bank, params, features[:, rows], targets[rows], layer_of[active], batch_size)
                penalty = sum((params[name] ** 2).flatten(1).sum(1) for name in kind.penalized)
                total = loss.sum() / rows.numel() + (l2[active] * penalty).sum() / 2
                grads = torch.autograd.grad(total, list(params.values()))
                step += 1
                _adam_step(params, grads, moments, probe_lr[active], step)
                with torch.no_grad():
                    for name, value in params.items():
                        average[name].add_(value, alpha=1 / len(starts))
            with torch.no_grad():
                dev_ce = bank_cross_entropy(bank, average, dev_features, dev_targets, layer_of[active])
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


def bank_objective(bank, kind, params, features, labels, layer_of, l2, chunk_rows=EVAL_CHUNK_ROWS):
    """Each probe's regularised train objective ``[P]`` and its gradient (a dict like ``params``), full batch."""
    params = {name: value.detach().requires_grad_() for name, value in params.items()}
    penalty = sum((params[name] ** 2).flatten(1).sum(1) for name in kind.penalized)
    objective = bank_cross_entropy(bank, params, features, labels, layer_of, chunk_rows) + l2 * penalty / 2
    grads = torch.autograd.grad(objective.sum(), list(params.values()))
    return objective.detach(), dict(zip(params, grads))


def _per_probe_dot(a, b):
    """``sum over parameters of <a[p], b[p]>`` for every probe p: ``[P]``."""
    return sum((a[name] * b[name]).flatten(1).sum(1) for name in a)


@torch.no_grad()
def _polish_bank(bank, kind, start, features, targets, layer_of, l2, tol, max_steps):
    """Full-batch gradient descent from ``start`` with a Barzilai–Borwein step per probe, to each probe's optimum.

    A probe stops once its largest gradient entry is below ``tol`` (scikit-learn's lbfgs criterion) or
    after ``max_steps``. Returns the parameters (a dict like ``start``) and the steps each probe took ``[P]``.
    """
    polished = {name: value.clone() for name, value in start.items()}
    steps = torch.zeros(layer_of.numel(), dtype=torch.long, device=layer_of.device)
    active = torch.arange(layer_of.numel(), device=layer_of.device)
    params = {name: value.clone() for name, value in start.items()}
    with torch.enable_grad():
        _, grads = bank_objective(bank, kind, params, features, targets, layer_of, l2)
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
            _, new_grads = bank_objective(bank, kind, params, features, targets, layer_of[active], l2[active])
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


def probe_layers(
    train,
    test,
    dev=None,
    probe="linear",
    seed=0,
    device="cpu",
    groups=None,
    l2_grid=None,
    max_epochs=100,
    batch_size=256,
    patience=6,
    progress=True,
    hidden_dim=DEFAULT_HIDDEN_DIM,
):
    """Test-split metric rows, one per layer: probes fitted by :func:`fit_layer_probes`, evaluated on ``test``."""
    fitted = fit_layer_probes(
        train,
        dev=dev,
        probe=probe,
        seed=seed,
        device=device,
        groups=groups,
        l2_grid=l2_grid,
        max_epochs=max_epochs,
        batch_size=batch_size,
        patience=patience,
        progress=progress,
        hidden_dim=hidden_dim,
    )
    return fitted.evaluate(*test, split="test")
