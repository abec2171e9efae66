"""Online codelength (MDL) on cases whose code is known by hand."""

import math

import numpy as np
import pytest

from s3prl_mi_probe.analyses import mdl
from s3prl_mi_probe.analyses.mdl import block_ends, coding_order, online_codelength
from s3prl_mi_probe.probe.bank_training import POLISH_TOL
from s3prl_mi_probe.probe.train import LayerProbes, shrinking_candidates

FAST = {"l2_grid": (1e-2,), "max_epochs": 10, "batch_size": 1024, "progress": False}


def test_block_ends():
    assert block_ends(10000) == [10, 20, 40, 80, 160, 320, 625, 1250, 2500, 5000, 10000]
    assert block_ends(12345) == [13, 25, 50, 99, 198, 396, 772, 1544, 3087, 6173, 12345]
    assert block_ends(10) == [1, 2, 3, 5, 10]
    assert block_ends(1) == [1]
    with pytest.raises(ValueError):
        block_ends(0)


def test_a_single_row_is_coded_uniformly():
    dev = (np.zeros((1, 3, 2)), [0, 1, 2])
    (row,) = online_codelength((np.zeros((1, 1, 2)), [2]), dev, classes=[0, 1, 2], **FAST)
    assert row == {"mdl_bits": math.log2(3), "compression": 1.0}


def test_codelength_of_class_frequencies_alone():
    """Zero features: each probe learns only its prefix's class frequencies, by its bias.

    In coding order the first 4000 labels repeat 0, 0, 1, 2 and the last 4000 repeat 0, 1, 2, 2. Every
    block end of N = 8000 is a multiple of 4, so every training prefix has frequencies p = (1/2, 1/4, 1/4)
    (as has dev). The first block (8 rows) costs log2 3 bits a row, the blocks up to row 4000 cost
    H(p) = 1.5 bits a row, and the last block, whose frequencies are (1/4, 1/4, 1/2), costs
    1/4 * 1 + 1/4 * 2 + 1/2 * 2 = 1.75 bits a row. A probe that had seen the last block would code it
    at 1.56 bits a row (750 bits less in all).
    """
    num_rows = 8000
    assert all(end % 4 == 0 for end in block_ends(num_rows))
    in_order = np.concatenate([np.resize([0, 0, 1, 2], 4000), np.resize([0, 1, 2, 2], 4000)])
    labels = np.empty(num_rows, dtype=int)
    labels[coding_order(num_rows, seed=3)] = in_order
    train = (np.zeros((1, num_rows, 1)), labels)
    dev = (np.zeros((1, 400, 1)), np.resize([0, 0, 1, 2], 400))
    (row,) = online_codelength(train, dev, classes=[0, 1, 2], seed=3, **FAST)
    expected = 8 * math.log2(3) + 3992 * 1.5 + 4000 * 1.75
    # Tolerance. The bias gradient of a probe's objective is q - p, and polishing stops once every entry
    # is below POLISH_TOL, so |q_c - p_c| < POLISH_TOL (an early-stopped fit wins on dev only when it is
    # even closer to p, since dev has frequencies p). Blocks coded with their own frequencies p lose
    # KL(p || q) / ln 2 < 1e-7 bits a row, second order. The last block loses to first order
    # sum_c m_c (p_c - q_c) / (p_c ln 2), with counts m = (1000, 1000, 2000): m_c / p_c = (2000, 4000, 8000)
    # and sum_c (q_c - p_c) = 0 give at most (8000 - 2000) * POLISH_TOL / ln 2 (0.87 bits). float32
    # log-softmax rounding adds ~1e-7 of 12700 bits; 0.01 bits covers it and the second-order terms.
    tolerance = (8000 - 2000) * POLISH_TOL / math.log(2) + 0.01
    assert row["mdl_bits"] == pytest.approx(expected, abs=tolerance)
    assert row["compression"] == pytest.approx(num_rows * math.log2(3) / row["mdl_bits"])


def test_informative_features_compress_and_noise_does_not():
    rng = np.random.default_rng(0)
    num_rows = 3000
    labels = rng.integers(4, size=num_rows + 300)
    informative = 2.0 * np.eye(4)[labels] + rng.standard_normal((labels.size, 4))
    noise = rng.standard_normal((labels.size, 16))
    train = ([informative[:num_rows], noise[:num_rows]], labels[:num_rows])
    dev = ([informative[num_rows:], noise[num_rows:]], labels[num_rows:])
    signal, chance = online_codelength(train, dev, classes=range(4), **FAST)
    assert signal["compression"] > 1.5
    assert 0.9 < chance["compression"] < 1.01


def _recorded_fits(monkeypatch):
    """What each block's fit learned (rows, L2 candidates) and whether it started from the previous fit."""
    fits = []

    class RecordedProbes(LayerProbes):
        def fit(self, train, dev=None, groups=None):
            warm = self.warm_start and hasattr(self, "probe_")
            super().fit(train, dev=dev, groups=groups)
            fits.append({"rows": self.num_train_segments_, "candidates": self.l2_candidates_, "l2": self.l2_})
            fits[-1]["warm"] = warm
            return self

    monkeypatch.setattr(mdl, "LayerProbes", RecordedProbes)
    return fits


def _separable_enough(num_rows, seed=1):
    rng = np.random.default_rng(seed)
    labels = rng.integers(3, size=num_rows + 100)
    features = (np.eye(3)[labels] + rng.standard_normal((labels.size, 3)))[None]
    return (features[:, :num_rows], labels[:num_rows]), (features[:, num_rows:], labels[num_rows:])


def test_prefixes_after_a_large_one_train_its_choice_and_the_next_smaller_strength(monkeypatch):
    fits = _recorded_fits(monkeypatch)
    train, dev = _separable_enough(1000)
    grid = (1e-3, 1e-2, 1e-1)
    online_codelength(train, dev, range(3), **{**FAST, "l2_grid": grid})
    assert [fit["rows"] for fit in fits] == block_ends(1000)[:-1]
    for previous, fit in zip(fits, fits[1:]):
        trimmed = previous["rows"] >= mdl.PILOT_ROWS
        expected = shrinking_candidates(grid, previous["l2"]) if trimmed else [list(grid)]
        assert fit["candidates"] == expected


def test_each_prefix_starts_from_the_probes_of_the_prefix_before(monkeypatch):
    """A warm start (tests/probe: what it does): the fit of a longer prefix starts where the previous prefix's
    fit ended, which saw fewer rows of the same order, so the code stays an online code."""
    fits = _recorded_fits(monkeypatch)
    train, dev = _separable_enough(1000)
    online_codelength(train, dev, range(3), **FAST)
    assert [fit["warm"] for fit in fits] == [False] + [True] * (len(fits) - 1)
