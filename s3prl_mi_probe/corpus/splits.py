"""Drawing splits at random: which speakers or utterances go to train, dev and test (seeded)."""

import numpy as np


def pick_fraction(items, fraction, rng):
    """About ``fraction`` of ``items``, drawn with ``rng``: at least one, never all; in drawn order."""
    count = min(max(round(fraction * len(items)), 1), len(items) - 1)
    return [items[i] for i in rng.permutation(len(items))[:count]]


def assign_splits(keys, dev_fraction, test_fraction, rng):
    """``{key: split}`` for distinct ``keys`` (speakers or utterances, in a fixed order), drawn with ``rng``.

    About ``dev_fraction`` and ``test_fraction`` of the keys (at least one each) go to dev and
    test, the rest (at least one) to train. Raises ValueError for fewer than 3 keys.
    """
    if not (dev_fraction > 0 and test_fraction > 0 and dev_fraction + test_fraction < 1):
        raise ValueError(f"need dev and test fractions > 0 summing to < 1, got {dev_fraction} and {test_fraction}")
    if len(keys) < 3:
        raise ValueError(f"need at least 3 speakers or utterances for train, dev and test, found {len(keys)}")
    test_count = max(1, round(test_fraction * len(keys)))
    dev_count = min(max(1, round(dev_fraction * len(keys))), len(keys) - test_count - 1)
    order = [keys[i] for i in rng.permutation(len(keys))]
    split_of = dict.fromkeys(order[:test_count], "test")
    split_of.update(dict.fromkeys(order[test_count : test_count + dev_count], "dev"))
    split_of.update(dict.fromkeys(order[test_count + dev_count :], "train"))
    return split_of


def group_mask(groups, fraction, rng):
    """Boolean mask over rows: the rows of about ``fraction`` of the distinct ``groups`` (at least one group)."""
    names = list(np.unique(np.asarray(groups)))
    return np.isin(np.asarray(groups), pick_fraction(names, fraction, rng))
