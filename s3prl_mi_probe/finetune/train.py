"""Sweep-side fine-tuning from layer l: train every chosen layer's probe jointly, report dev and test rows.

The frozen upstream runs under ``no_grad`` on each batch of utterances (length-sorted batches, in a
seeded random order every epoch); the probes of all ``from_layers`` train together with Adam on the
sum of their mean cross-entropies (their parameters are disjoint, so each trains as if alone).
Each probe keeps its best dev epoch and stops after ``patience`` epochs without a dev improvement.
"""

from collections import defaultdict

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from s3prl_mi_probe.corpus.audio import load_audio
from s3prl_mi_probe.features.batching import length_sorted_batches
from s3prl_mi_probe.features.pooling import batch_pooling_matrices, valid_frames
from s3prl_mi_probe.finetune.probes import FinetuneProbes
from s3prl_mi_probe.finetune.upper_layers import hidden_states_with_lengths
from s3prl_mi_probe.metrics.records import metric_rows, record_batch, recorded


def utterance_batches(utterances, batch_size):
    """Index lists of ``batch_size`` utterances each, by ascending length (stable)."""
    return length_sorted_batches([utterance.num_samples for utterance in utterances], batch_size)


@torch.no_grad()
def frozen_batch(upstream, utterances, device, pooling="mean"):
    """``(hidden_states, lengths, matrices, labels)`` of a batch: the upstream's output and the segments'
    pooling matrices (``pooling`` mode: ``mean``, or ``centre`` for frame tasks)."""
    waves = [torch.from_numpy(load_audio(utterance.utterance.audio)).to(device) for utterance in utterances]
    hidden, lengths = hidden_states_with_lengths(upstream, waves)
    rate = upstream.get_downsample_rates("hidden_states")
    frame_counts = [valid_frames(len(wave), rate, hidden[0].size(1)) for wave in waves]
    spans = [(u.starts, u.ends) for u in utterances]
    matrices = [matrix.to(device) for matrix in batch_pooling_matrices(spans, frame_counts, rate, pooling)]
    labels = torch.as_tensor(np.concatenate([u.labels for u in utterances]), device=device)
    return hidden, lengths, matrices, labels


@torch.no_grad()
def evaluate_split(probes, upstream, utterances, batch_size, device, members=None, pooling="mean"):
    """The probes' per-segment records on a split (:mod:`s3prl_mi_probe.metrics.records`)."""
    probes.eval()
    records = defaultdict(list)
    for batch in utterance_batches(utterances, batch_size):
        hidden, lengths, matrices, labels = frozen_batch(upstream, [utterances[i] for i in batch], device, pooling)
        pooled = probes.pooled(hidden, lengths, matrices, members)
        record_batch(records, probes(pooled, members), labels, probes.margins(pooled, labels, members))
    return records


def _dev_ce_bits(probes, upstream, task, batch_size, device, members=None):
    """Per probe of ``members``, its mean dev cross-entropy in bits ``[F]``."""
    pooling = task.options.kind.pooling
    records = evaluate_split(probes, upstream, task.splits["dev"], batch_size, device, members, pooling)
    return recorded(records, "ce_bits").mean(dim=1)


def _snapshot(probes, index):
    """A copy of probe ``index``'s parameters (its upper layers and its head)."""
    return {
        "upper": {name: value.detach().clone() for name, value in probes.uppers[index].state_dict().items()},
        "head": (probes.weight[index].detach().clone(), probes.bias[index].detach().clone()),
    }


@torch.no_grad()
def _restore(probes, index, snapshot):
    probes.uppers[index].load_state_dict(snapshot["upper"])
    probes.weight[index], probes.bias[index] = snapshot["head"]


def train_finetune_probes(
    probes, upstream, task, device, seed, max_epochs, batch_size, lr, head_lr, patience, progress
):
    """Train ``probes`` in place with early stopping on dev; returns each probe's best epoch (0: untrained) and
    the epochs it ran."""
    train = task.splits["train"]
    pooling = task.options.kind.pooling
    members = list(range(len(probes.from_layers)))
    optimizer = torch.optim.Adam(
        [{"params": probes.uppers.parameters(), "lr": lr}, {"params": [probes.weight, probes.bias], "lr": head_lr}]
    )
    best_dev = _dev_ce_bits(probes, upstream, task, batch_size, device)
    best = [_snapshot(probes, index) for index in members]
    best_epoch, stale, epochs_run = [0] * len(members), [0] * len(members), [0] * len(members)
    batches = utterance_batches(train, batch_size)
    order = torch.Generator().manual_seed(seed)
    epochs = tqdm(range(1, max_epochs + 1), desc="finetune", unit="epoch", disable=not progress, leave=False)
    for epoch in epochs:
        probes.train()
        for batch_index in torch.randperm(len(batches), generator=order).tolist():
            batch = [train[i] for i in batches[batch_index]]
            hidden, lengths, matrices, labels = frozen_batch(upstream, batch, device, pooling)
            logits = probes(probes.pooled(hidden, lengths, matrices, members), members)
            losses = F.cross_entropy(logits.flatten(0, 1), labels.repeat(len(members)), reduction="none")
            optimizer.zero_grad()
            losses.view(len(members), -1).mean(dim=1).sum().backward()
            optimizer.step()
        dev_ce = _dev_ce_bits(probes, upstream, task, batch_size, device, members)
        for index, ce in zip(members, dev_ce.tolist()):
            epochs_run[index] = epoch
            if ce < best_dev[index]:
                best_dev[index], best[index], best_epoch[index], stale[index] = ce, _snapshot(probes, index), epoch, 0
            else:
                stale[index] += 1
        members = [index for index in members if stale[index] < patience]
        epochs.set_postfix(active=len(members), dev_bits=f"{float(best_dev.mean()):.3f}")
        if not members:
            break
    for index, snapshot in enumerate(best):
        _restore(probes, index, snapshot)
    return best_epoch, epochs_run


def finetune_rows(
    upstream,
    task,
    from_layers,
    device="cpu",
    seed=0,
    max_epochs=40,
    batch_size=8,
    lr=1e-4,
    head_lr=1e-2,
    patience=5,
    progress=True,
):
    """Dev and test metric rows of fine-tuning ``upstream`` from each of ``from_layers`` on ``task`` (a TaskData).

    ``lr`` is the Adam learning rate of the copied upper layers (1e-4 suits pretrained Base models),
    ``head_lr`` that of the zero-initialised linear heads (as the linear probes' 1e-2). Row ``best_epoch``
    is the best dev epoch (0: the untrained probe, which predicts the uniform distribution, won).
    The upstream is put in eval mode and stays frozen; runs with the same seed give the same rows.
    """
    upstream = upstream.to(device).eval()
    cuda_devices = [torch.device(device)] if torch.device(device).type == "cuda" else []
    with torch.random.fork_rng(devices=cuda_devices):
        torch.manual_seed(seed)
        probes = FinetuneProbes(upstream, from_layers, len(task.classes)).to(device)
        best_epoch, epochs_run = train_finetune_probes(
            probes, upstream, task, device, seed, max_epochs, batch_size, lr, head_lr, patience, progress
        )
    trained = [
        {
            "l2": None,
            "best_epoch": best,
            "epochs_run": run,
            "train_passes": run,
            "fit": "early_stop",
            "dropped_unseen": 0,
        }
        for best, run in zip(best_epoch, epochs_run)
    ]
    rows = []
    for split in ("dev", "test"):
        records = evaluate_split(
            probes, upstream, task.splits[split], batch_size, device, pooling=task.options.kind.pooling
        )
        heads = [{"layer": layer, "split": split, "probe": "finetune"} for layer in probes.from_layers]
        rows += metric_rows(records, len(task.classes), heads, trained)
    return rows
