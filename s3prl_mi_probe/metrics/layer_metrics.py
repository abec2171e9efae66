"""The per-layer metric rows shared by the runner expert and the array API."""

import numpy as np

from s3prl_mi_probe.metrics.bounds import entropy_bits
from s3prl_mi_probe.metrics.margin import margin_summary

METRIC_NAMES = (
    "mi_bits",
    "h_y_bits",
    "ce_bits",
    "accuracy",
    "margin_median",
    "margin_p10",
    "margin_min",
    "margin_positive_frac",
    "num_segments",
    "num_classes",
)


def layer_metrics(ce_bits, correct, margins, labels, num_classes):
    """One dict of METRIC_NAMES per layer from per-sample arrays ``[L, N]`` and labels ``[N]``.

    ``h_y_bits`` is the plug-in entropy of the evaluated labels, ``mi_bits = h_y_bits - ce_bits``
    (the Barber–Agakov bound), ``num_classes`` the number of classes the probe chooses among.
    """
    ce_bits, correct, margins = (np.asarray(a, dtype=np.float64) for a in (ce_bits, correct, margins))
    labels = np.asarray(labels)
    h_y = entropy_bits(np.bincount(labels, minlength=num_classes))
    rows = []
    for layer_ce, layer_correct, layer_margins in zip(ce_bits, correct, margins):
        ce = float(layer_ce.mean())
        rows.append(
            {
                "mi_bits": h_y - ce,
                "h_y_bits": h_y,
                "ce_bits": ce,
                "accuracy": float(layer_correct.mean()),
                **margin_summary(layer_margins),
                "num_segments": int(labels.size),
                "num_classes": int(num_classes),
            }
        )
    return rows
