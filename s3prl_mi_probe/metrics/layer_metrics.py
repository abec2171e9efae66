"""The per-layer metric rows of every evaluation (made through :mod:`s3prl_mi_probe.metrics.records`)."""

import numpy as np

from s3prl_mi_probe.metrics.bounds import entropy_bits, miller_madow_entropy_bits
from s3prl_mi_probe.metrics.margin import margin_summary
from s3prl_mi_probe.metrics.uncertainty import bootstrap_intervals


def layer_metrics(ce_bits, correct, margins, labels, num_classes, resamples=1000, level=0.95, seed=0):
    """One dict of METRIC_NAMES per layer from per-sample arrays ``[L, N]`` and labels ``[N]``.

    ``h_y_bits`` is the plug-in entropy of the evaluated labels, ``h_y_mm_bits`` its Miller–Madow
    correction, ``mi_bits = h_y_bits - ce_bits`` (the Barber–Agakov bound), ``num_classes`` the number
    of classes the probe chooses among. The ``*_ci_*`` columns are percentile-bootstrap ``level``
    intervals over the evaluated segments (:func:`bootstrap_intervals`, ``resamples`` seeded by ``seed``).
    ValueError without segments: a bound needs held-out segments to be measured on.
    """
    ce_bits, correct, margins = (np.asarray(a, dtype=np.float64) for a in (ce_bits, correct, margins))
    labels = np.asarray(labels)
    if labels.size == 0:
        raise ValueError("no segments to evaluate: a bound, accuracy and margins need held-out segments")
    histogram = np.bincount(labels, minlength=num_classes)
    h_y = entropy_bits(histogram)
    h_y_mm = miller_madow_entropy_bits(histogram)
    intervals = bootstrap_intervals(ce_bits, correct, labels, num_classes, resamples=resamples, level=level, seed=seed)
    rows = []
    for layer_ce, layer_correct, layer_margins, interval in zip(ce_bits, correct, margins, intervals):
        ce = float(layer_ce.mean())
        rows.append(
            {
                "mi_bits": h_y - ce,
                "h_y_bits": h_y,
                "h_y_mm_bits": h_y_mm,
                "ce_bits": ce,
                "accuracy": float(layer_correct.mean()),
                **interval,
                **margin_summary(layer_margins),
                "num_segments": int(labels.size),
                "num_classes": int(num_classes),
            }
        )
    return rows
