"""Per-segment results of layer probes on held-out batches, and the metric rows made from them.

Every evaluation (the probe estimator, the fine-tune probe, the runner's expert) records, batch by
batch, each probe's cross-entropy in bits, whether it was right, its margin and the label of each
segment; :func:`metric_rows` turns those records into one row per layer. ``records`` is a mapping
from record name to a list of per-batch tensors (``collections.defaultdict(list)``, as s3prl's runner
passes); a ``prefix`` keeps the records of several probes (the control probe's: ``control_``) apart.
"""

import torch

from s3prl_mi_probe.metrics.bounds import cross_entropy_bits
from s3prl_mi_probe.metrics.layer_metrics import layer_metrics

RECORD_NAMES = ("ce_bits", "correct", "margins", "labels")


@torch.no_grad()
def record_batch(records, logits, labels, margins, prefix="", ce_bits=None):
    """Append a batch's per-segment results: ``logits [L, S, C]``, ``labels [S]``, ``margins [L, S]``.

    ``ce_bits [L, S]`` is computed from the logits unless the caller has it already.
    """
    ce_bits = cross_entropy_bits(logits, labels) if ce_bits is None else ce_bits.detach()
    records[f"{prefix}ce_bits"].append(ce_bits.cpu())
    records[f"{prefix}correct"].append((logits.argmax(dim=-1) == labels).cpu())
    records[f"{prefix}margins"].append(margins.cpu())
    records[f"{prefix}labels"].append(labels.cpu())


def recorded(records, name, prefix=""):
    """All batches of one record, concatenated along segments (the last dimension)."""
    return torch.cat(records[f"{prefix}{name}"], dim=-1)


def metric_rows(records, num_classes, heads, tails=None, prefix=""):
    """One row per layer: its ``heads`` entry, the layer's :func:`layer_metrics`, then its ``tails`` entry.

    ``heads`` and ``tails`` hold one dict per layer (in the records' layer order) of the columns that
    name the row and describe how its probe was trained.
    """
    metrics = layer_metrics(
        *(recorded(records, name, prefix) for name in ("ce_bits", "correct", "margins")),
        recorded(records, "labels", prefix).numpy(),
        num_classes,
    )
    tails = [{}] * len(heads) if tails is None else tails
    return [{**head, **row, **tail} for head, row, tail in zip(heads, metrics, tails, strict=True)]
