"""Online (prequential) codelength of the labels given a layer's features (Voita & Titov 2020).

Protocol. The N training rows are put in one seeded random order (:func:`coding_order`) and cut into
blocks that end at the fractions :data:`BLOCK_PERCENTS` of N (:func:`block_ends`). The first block
(t₁ rows) is sent with the uniform code, t₁·log₂K bits for K classes. Every later block is sent with a
probe trained on all rows before it (:class:`~s3prl_mi_probe.probe.train.LayerProbes`, L2 and early
stopping chosen on a fixed dev set, all K classes as outputs): its cost is the block's summed
cross-entropy under that probe.

Units. ``mdl_bits`` is the total codelength of the N training labels in bits (not per row);
``compression`` is the uniform codelength N·log₂K divided by ``mdl_bits``: above 1 when the features
let a probe predict the labels better than chance, about 1 or below when they do not (an online code
also pays for learning, so uninformative features cost slightly more than the uniform code).
"""

import math
from fractions import Fraction
from itertools import pairwise

import numpy as np
from tqdm import tqdm

from s3prl_mi_probe.probe.arrays import encode_labels
from s3prl_mi_probe.probe.source import as_source
from s3prl_mi_probe.probe.train import DEFAULT_L2_GRID, LayerProbes, shrinking_candidates

BLOCK_PERCENTS = (0.1, 0.2, 0.4, 0.8, 1.6, 3.2, 6.25, 12.5, 25, 50, 100)
PILOT_ROWS = 200  # a prefix of at least this many rows chooses the L2 candidates of the next one


def block_ends(num_rows):
    """Row counts, strictly increasing and ending at ``num_rows``, where the coding blocks end.

    Block k ends at ceil(N · BLOCK_PERCENTS[k] / 100) (exact rational arithmetic), so the first block has
    at least one row. When N < 1000 several fractions round up to the same count and are merged: for
    N = 10 the ends are 1, 2, 3, 5, 10; for N = 1 the single row is the first block and is coded uniformly.
    """
    if num_rows < 1:
        raise ValueError("online codelength needs at least one row")
    return sorted({math.ceil(num_rows * Fraction(str(percent)) / 100) for percent in BLOCK_PERCENTS})


def coding_order(num_rows, seed=0):
    """The order in which rows are coded: ``np.random.default_rng(seed).permutation(num_rows)``."""
    return np.random.default_rng(seed).permutation(num_rows)


def online_codelength(train, dev, classes, seed=0, progress=True, **estimator_params):
    """Per-layer online codelength of ``train``: ``[{"mdl_bits", "compression"}, ...]``, one per layer.

    ``train`` is ``(X, y)`` (``X`` ``[L, N, D]`` or a list of L ``[N, D_l]`` arrays) or a RowSource, its
    labels all in ``classes``; ``dev`` likewise chooses each block's probe. ``seed`` fixes the coding order
    and the probe fits; ``estimator_params`` go to :class:`~s3prl_mi_probe.probe.train.LayerProbes` (e.g.
    ``kind``, a short ``l2_grid``, ``max_epochs``, ``device``, ``memory_budget``, ``layers``). Every fit and
    every block's code is computed from the source in bounded memory. ``progress`` shows a bar over the blocks.
    """
    classes = np.unique(np.asarray(classes))
    if classes.size < 2:
        raise ValueError("online codelength needs at least two classes")
    train = as_source(train, name="train")
    ordered = train.subset(coding_order(train.num_rows, seed))
    if not encode_labels(ordered.labels, classes)[1].all():
        raise ValueError("train labels outside the given classes")
    ends = block_ends(ordered.num_rows)
    uniform_bits_per_row = math.log2(classes.size)
    num_layers = len(estimator_params.get("layers") or ordered.layer_ids)
    codelength = np.full(num_layers, ends[0] * uniform_bits_per_row)
    grid = estimator_params.get("l2_grid") or DEFAULT_L2_GRID
    fixed = {"classes": classes, "seed": seed, "progress": False, "warm_start": True}
    probes = LayerProbes(**{**estimator_params, **fixed})
    blocks = tqdm(list(pairwise(ends)), desc="MDL blocks", unit="block", disable=not progress, leave=False)
    for start, end in blocks:
        probes.fit(ordered.subset(np.arange(start)), dev=dev)
        codelength += probes.summed_cross_entropy_bits(ordered.subset(np.arange(start, end)))
        if start >= PILOT_ROWS:
            probes.set_params(l2_candidates=shrinking_candidates(grid, probes.l2_))
    uniform = ordered.num_rows * uniform_bits_per_row
    return [{"mdl_bits": float(bits), "compression": uniform / float(bits)} for bits in codelength]
