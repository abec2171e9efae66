"""Plain-language notes that reports and logs print under their numbers."""

import math

NEGATIVE_BOUND_NOTE = (
    "A negative mi_bits (or interval limit) means the probe's held-out cross-entropy is above H(Y): it "
    "predicts the held-out labels worse than their frequencies do (over-confident where it is wrong, or not "
    "trained far enough, as early runner evaluations often are, even at high accuracy). That is no evidence "
    'of information, not negative information: see docs/method.md, "Why a bound can be negative".'
)


def negative_bound_note(rows):
    """:data:`NEGATIVE_BOUND_NOTE` when a row's ``mi_bits`` or its interval's lower limit is below zero, else ``""``."""
    values = [row.get(name) for row in rows for name in ("mi_bits", "mi_bits_ci_low")]
    return NEGATIVE_BOUND_NOTE if any(value is not None and value < 0 for value in values) else ""


def with_interval(row, metric, digits=3):
    """``"1.234 [1.101, 1.360]"``: a metric with its 95 % interval, the value alone without one, "" when missing."""
    value = row.get(metric)
    if value is None or math.isnan(value):
        return ""
    low, high = row.get(f"{metric}_ci_low"), row.get(f"{metric}_ci_high")
    if low is None or high is None or math.isnan(low) or math.isnan(high):
        return f"{value:.{digits}f}"
    return f"{value:.{digits}f} [{low:.{digits}f}, {high:.{digits}f}]"
