"""When probe training stops (torch-free, so that the command line can show the defaults).

A probe's dev cross-entropy is judged after every round (an epoch, or ``ROUND_ROWS`` train rows when
an epoch is longer). A gain of at least ``DEFAULT_TOL_BITS`` over the last such gain is progress;
after ``DEFAULT_PATIENCE`` rounds in a row without progress the probe stops (docs/method.md,
"Training, stopping and passes").
"""

DEFAULT_TOL_BITS = 1e-3
DEFAULT_PATIENCE = 4
ROUND_ROWS = 65_536
