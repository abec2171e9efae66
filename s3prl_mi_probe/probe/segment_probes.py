"""Layer probes trained batch by batch on an upstream's hidden states, as s3prl's runner trains a downstream.

Each batch: the labelled segments of every utterance are pooled from the hidden states
(:mod:`s3prl_mi_probe.features.pooling`), standardised per layer with running train statistics
(all-reduced across ranks under DDP) and probed, one probe per layer. Probes that pool through their
own layers (the fine-tune probe's copies of the upper layers,
:class:`~s3prl_mi_probe.finetune.probes.FinetuneProbes`) take the hidden states instead. A control
probe learns the control labels of the same segments; control segments whose key value never occurs
in train are not scored. Held-out batches record per-segment results, from which :meth:`SegmentProbes.rows`
makes one metric row per layer (:mod:`s3prl_mi_probe.metrics.records`).
"""

import torch
from torch import nn

from s3prl_mi_probe.common.process_group import ProcessGroup
from s3prl_mi_probe.corpus.control import UNSEEN
from s3prl_mi_probe.features.pooling import batch_pooling_matrices, pool_batch
from s3prl_mi_probe.metrics.bounds import LN2, cross_entropy_bits
from s3prl_mi_probe.metrics.records import RECORD_NAMES, metric_rows, record_batch

CONTROL_PREFIX = "control_"


class SegmentProbes(nn.Module):
    """``probe`` (one probe per layer of ``layer_ids``) and optionally ``control_probe`` on segment batches.

    ``pooling`` is the task's pooling mode and ``downsample_rate`` the upstream's; with a
    ``standardizer`` the probes take standardised pooled segments of ``hidden_layers`` (the layers
    of the hidden states passed); without one they pool through their own layers (``pooled``) and
    ``frame_lengths(hidden)`` gives the frames the upstream's blocks attended to. ``group``: the
    process group the standardiser's statistics are all-reduced over (default: a lone process).
    """

    def __init__(
        self,
        probe,
        layer_ids,
        hidden_layers,
        num_classes,
        pooling,
        downsample_rate,
        control_probe=None,
        standardizer=None,
        frame_lengths=None,
        group=None,
    ):
        super().__init__()
        self.layer_ids, self.hidden_layers = list(layer_ids), list(hidden_layers)
        self.num_classes, self.pooling, self.downsample_rate = num_classes, pooling, downsample_rate
        self.standardizer = standardizer
        self.probe, self.control_probe = probe, control_probe
        self.frame_lengths, self.group = frame_lengths, group or ProcessGroup()

    def prefixes(self):
        """The record prefixes of the probes: the task's, then the control's."""
        return ("",) if self.control_probe is None else ("", CONTROL_PREFIX)

    def record_keys(self):
        """Every record an evaluation batch adds."""
        return [f"{prefix}{name}" for prefix in self.prefixes() for name in RECORD_NAMES]

    def probe_batch(self, split, hidden, lengths, segments, records):
        """Sum over layers (and the control probe) of the mean CE (nats) on a batch; results go to ``records``.

        ``hidden [L, B, T, D]`` and valid frames ``lengths [B]``; ``segments``: per utterance
        ``(starts, ends, labels)``, plus its control labels with a control probe. Training batches
        (``split`` train, module in training mode) update the standardiser first.
        """
        matrices, labels, controls = self._batch_segments(hidden, lengths, segments)
        shared = None if self.standardizer is None else self._standardized(hidden, matrices, split)
        loss = self._probe_step(self.probe, "", shared, hidden, matrices, labels, split, records)
        if self.control_probe is not None:
            loss = loss + self._probe_step(
                self.control_probe, CONTROL_PREFIX, shared, hidden, matrices, controls, split, records
            )
        return loss

    def _batch_segments(self, hidden, lengths, segments):
        """Per utterance of a batch, its segment pooling matrix; all labels ``[S]``; control labels or None."""
        spans = [(starts, ends) for starts, ends, *_ in segments]
        matrices = batch_pooling_matrices(spans, lengths.tolist(), self.downsample_rate, self.pooling)
        labels = [torch.as_tensor(segment_labels, dtype=torch.long) for _, _, segment_labels, *_ in segments]
        controls = [torch.as_tensor(values, dtype=torch.long) for _, _, _, *control in segments for values in control]
        device = hidden.device
        return matrices, torch.cat(labels).to(device), torch.cat(controls).to(device) if controls else None

    def _standardized(self, hidden, matrices, split):
        """Standardised pooled segments ``[L, S, D]``; training batches update the statistics first."""
        pooled = pool_batch(hidden, matrices)
        if split == "train" and self.training:
            if self.group.world_size > 1:
                self.standardizer.update_across_ranks(pooled)
            else:
                self.standardizer.update(pooled)
        return self.standardizer(pooled)

    def _probe_step(self, probe, prefix, inputs, hidden, matrices, labels, split, records):
        """One probe's summed mean CE (nats) on a batch; its per-segment results go to ``records``."""
        if inputs is None:
            inputs = probe.pooled(dict(zip(self.hidden_layers, hidden)), self.frame_lengths(hidden[0]), matrices)
        logits = probe(inputs)
        scored = labels != UNSEEN
        if not scored.all():
            inputs, logits, labels = inputs[:, scored], logits[:, scored], labels[scored]
        ce_bits = cross_entropy_bits(logits, labels)  # [L, S]
        if split == "train":
            records[f"{prefix}ce_bits"].append(ce_bits.detach().mean(dim=1).cpu())
        else:
            with torch.no_grad():
                record_batch(records, logits, labels, probe.margins(inputs, labels), prefix, ce_bits)
        return ce_bits.sum(dim=1).sum() * LN2 / max(labels.numel(), 1)

    def train_ce_bits(self, records, prefix=""):
        """Per layer, the mean training CE (bits) over the recorded training batches."""
        return torch.stack(records[f"{prefix}ce_bits"]).mean(dim=0).tolist()

    def rows(self, records, heads, prefix=""):
        """One metric row per layer from an evaluation's records (see :func:`metric_rows`)."""
        return metric_rows(records, self.num_classes, heads, prefix=prefix)
