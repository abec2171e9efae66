"""How many train rows an analysis takes (torch-free, so that the command line can show the default).

The hard margin's solver grows faster than linearly in the rows: it runs on a seeded, stratified
subsample of at most ``HARD_MARGIN_ROWS`` train rows (docs/method.md, "Margins").
"""

HARD_MARGIN_ROWS = 10_000
